"""Consistency filtering (Nomic Embed): keep a pair only if the teacher, searching the pair's query among
all documents of its chunk, ranks the pair's own document within the top k.

The rank is counted, not searched for: rank = how many other documents of the chunk score above the own
document. Counting needs no top-k at all (cheaper than a top-(k+1) search) and gives the exact rank of
every pair, however low. Scores within ``tie_tolerance`` of the own score are ties, and a tie counts
against the pair only when the other document comes earlier in the chunk (records sorted by id), so
the verdict is the same from run to run and does not hinge on floating-point noise between kernels.
"""
from __future__ import annotations

import importlib.util
import math
from typing import ClassVar, NamedTuple

import numpy as np
import torch

from embedding.models import Teacher, get_teacher
from embedding.search import DEFAULT_CORPUS_CHUNK, as_tensor
from filters.base import RecordFilter
from schemas.recipe import ConsistencyConfig
from schemas.record import PairRecord

INCONSISTENT = "inconsistent"


def num_chunks(num_records: int, chunk_size: int) -> int:
    """Chunks of at most about ``chunk_size`` records (at least one); a record's chunk is
    ``text.hashing.bucket(record_id, chunks)``."""
    return max(1, math.ceil(num_records / chunk_size))


def default_tie_tolerance(dtype: torch.dtype) -> float:
    """Two machine epsilons of the score dtype: wider than the rounding differences between matmul kernels."""
    return 2 * torch.finfo(dtype).eps


class OwnDocumentRanks(NamedTuple):
    """Per pair i (query row i, document row i) of a chunk."""

    ranks: torch.Tensor  # int64: documents j != i scoring above the own document (0 = best)
    own: torch.Tensor  # float32: the own document's score
    best_other: torch.Tensor  # float32: the best score of any other document (-inf in a chunk of one)


def fused_ranks_available(tensor: torch.Tensor) -> bool:
    """True where ``filters.consistency_kernels`` can count ranks: a CUDA tensor, with Triton installed."""
    return tensor.is_cuda and importlib.util.find_spec("triton") is not None


def own_document_ranks(
    queries: np.ndarray | torch.Tensor,
    documents: np.ndarray | torch.Tensor,
    query_batch: int,
    corpus_chunk: int = DEFAULT_CORPUS_CHUNK,
    tie_tolerance: float | None = None,
) -> OwnDocumentRanks:
    """Each pair's rank, own score and best other score; rank 0 = best.

    Rank i = number of documents j != i scoring above the own score, ties (within ``tie_tolerance``)
    counted only for j < i. On a CUDA GPU one fused kernel counts them (``filters.consistency_kernels``);
    elsewhere ``blockwise_own_document_ranks`` does, in query_batch x corpus_chunk blocks of scores.
    """
    queries, documents = as_tensor(queries), as_tensor(documents)
    if queries.dtype != documents.dtype:
        queries = queries.to(documents.dtype)
    if not fused_ranks_available(queries):
        return blockwise_own_document_ranks(queries, documents, query_batch, corpus_chunk, tie_tolerance)
    from filters.consistency_kernels import fused_own_document_ranks

    tolerance = default_tie_tolerance(documents.dtype) if tie_tolerance is None else tie_tolerance
    own = (queries.float() * documents.float()).sum(dim=1)
    ranks, best_other = fused_own_document_ranks(queries, documents, own, tolerance)
    return OwnDocumentRanks(ranks, own, best_other)


def blockwise_own_document_ranks(
    queries: torch.Tensor,
    documents: torch.Tensor,
    query_batch: int,
    corpus_chunk: int = DEFAULT_CORPUS_CHUNK,
    tie_tolerance: float | None = None,
) -> OwnDocumentRanks:
    """``own_document_ranks`` with torch ops on any device: each query_batch x corpus_chunk block of scores is
    made (in the inputs' dtype, as a matrix product gives it) and counted in turn."""
    if queries.dtype != documents.dtype:
        queries = queries.to(documents.dtype)
    tolerance = default_tie_tolerance(documents.dtype) if tie_tolerance is None else tie_tolerance
    n = queries.shape[0]
    own = (queries.float() * documents.float()).sum(dim=1)
    ranks = torch.zeros(n, dtype=torch.int64, device=queries.device)
    best_other = torch.full((n,), -math.inf, dtype=torch.float32, device=queries.device)
    for q_start in range(0, n, query_batch):
        batch = queries[q_start : q_start + query_batch]
        rows = torch.arange(q_start, q_start + len(batch), device=queries.device)
        own_batch = own[q_start : q_start + len(batch), None]
        for c_start in range(0, n, corpus_chunk):
            block = (batch @ documents[c_start : c_start + corpus_chunk].T).float()
            # The pair's own document is no competitor, whatever rounding says (empty when no overlap).
            block.diagonal(q_start - c_start).fill_(-math.inf)
            above = torch.count_nonzero(block > own_batch + tolerance, dim=1)
            at_least = torch.count_nonzero(block >= own_batch - tolerance, dim=1)
            ranks[q_start : q_start + len(batch)] += above
            best_other[q_start : q_start + len(batch)] = torch.maximum(best_other[q_start : q_start + len(batch)], block.max(dim=1).values)
            tied_rows = (at_least > above).nonzero().squeeze(1)
            if len(tied_rows):  # rare: count the ties that come earlier in the chunk
                sub = block[tied_rows]
                sub_own = own_batch[tied_rows]
                cols = torch.arange(c_start, c_start + block.shape[1], device=queries.device)
                tied_earlier = (sub >= sub_own - tolerance) & (sub <= sub_own + tolerance) & (cols[None, :] < rows[tied_rows, None])
                ranks[q_start + tied_rows] += torch.count_nonzero(tied_earlier, dim=1)
    return OwnDocumentRanks(ranks, own, best_other)


class ConsistencyScorer(RecordFilter):
    """Scores one chunk per ``check_batch`` call: embeds its queries and documents, ranks each pair's own
    document among the chunk's documents, keeps rank < k (or, with ``margin``, an own score within the
    margin of the best other document's)."""

    stage: ClassVar[str] = "consistency"

    def __init__(self, config: ConsistencyConfig, teacher: Teacher | None = None) -> None:
        self.config = config
        self.teacher = teacher

    def setup(self) -> None:
        if self.teacher is None:
            self.teacher = get_teacher(self.config.teacher)

    def check(self, record: PairRecord) -> str | None:
        """A chunk of one: the own document is the only one, so the pair is kept (and its score recorded)."""
        return self.check_batch([record])[0]

    def check_batch(self, records: list[PairRecord]) -> list[str | None]:
        """Verdicts in input order (None = keep, else the drop reason) for ``records`` as one chunk;
        sets meta consistency_rank / consistency_score."""
        self.setup()
        assert self.teacher is not None
        order = sorted(range(len(records)), key=lambda i: records[i]["id"])
        chunk = [records[i] for i in order]
        queries = self.teacher.encode_queries([r["query"] for r in chunk])
        documents = self.teacher.encode_documents([r["document"] for r in chunk])
        found = own_document_ranks(queries, documents, self.config.search_batch)
        gaps = (found.best_other - found.own).tolist()
        margin = -math.inf if self.config.margin is None else self.config.margin
        verdicts: list[str | None] = [None] * len(records)
        for position, (rank, score, gap) in enumerate(zip(found.ranks.tolist(), found.own.tolist(), gaps, strict=True)):
            record = chunk[position]
            record["meta"]["consistency_rank"] = rank
            record["meta"]["consistency_score"] = score
            verdicts[order[position]] = None if rank < self.config.k or gap <= margin else INCONSISTENT
        return verdicts
