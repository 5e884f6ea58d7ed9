"""Top-k inner-product search over normalised embeddings: exact by chunked matrix products, or a FAISS index.

Exact search never holds a full query x corpus score matrix: each (query batch, corpus chunk) block is
reduced to its top k at once and merged into a running top k, so memory is query_batch x corpus_chunk
scores whatever the corpus size. It runs where the tensors are (GPU embeddings are searched on the GPU) in
their dtype (fp16/bf16 allowed); scores come back as float32 and indices as int64, best first, equal
scores ordered by index.

Partitioned corpora (Beam): search each partition, add the partition's offset to its indices, and
``merge_topk`` the partial lists per query.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np
import torch

if TYPE_CHECKING:
    from embedding.models import Teacher

DEFAULT_QUERY_BATCH = 4096
DEFAULT_CORPUS_CHUNK = 16384
# A GPU's blocks are four times wider: fewer, larger launches (4096 x 65536 scores are 1 GiB in float32).
GPU_CORPUS_CHUNK = 65536
FAISS_HNSW_NEIGHBOURS = 32

TopK = tuple[torch.Tensor, torch.Tensor]


def as_tensor(embeddings: np.ndarray | torch.Tensor) -> torch.Tensor:
    return embeddings if isinstance(embeddings, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(embeddings))


def order_best_first(scores: torch.Tensor, indices: torch.Tensor) -> TopK:
    """Sort each row by score, highest first; equal scores by ascending index, so results are deterministic."""
    scores, by_score = torch.sort(scores, dim=1, descending=True)
    indices = indices.gather(1, by_score)
    tied = (scores[:, 1:] == scores[:, :-1]).any(dim=1).nonzero().squeeze(1)
    if len(tied):  # rare: only rows with equal scores pay for the two stable sorts
        tied_scores, tied_indices = scores[tied], indices[tied]
        by_index = torch.argsort(tied_indices, dim=1, stable=True)
        tied_scores, tied_indices = tied_scores.gather(1, by_index), tied_indices.gather(1, by_index)
        by_score = torch.argsort(tied_scores, dim=1, descending=True, stable=True)
        scores[tied], indices[tied] = tied_scores.gather(1, by_score), tied_indices.gather(1, by_score)
    return scores, indices


def _block_topk(block: torch.Tensor, k: int) -> TopK:
    """torch.topk of each row, except that among scores equal to the k-th the lowest columns win
    (torch.topk picks among them arbitrarily), so the result does not depend on chunking."""
    if k == block.shape[1]:
        return block, torch.arange(k, device=block.device).expand_as(block).clone()
    scores, positions = torch.topk(block, k + 1, dim=1, sorted=True)
    # Only a row whose (k+1)-th score equals its k-th can have a tie across the cut.
    rows = (scores[:, k] == scores[:, k - 1]).nonzero().squeeze(1)
    scores, positions = scores[:, :k].contiguous(), positions[:, :k].contiguous()
    if len(rows):
        sub, sub_kth = block[rows], scores[rows, k - 1 : k]
        above, tied = sub > sub_kth, sub == sub_kth
        take = above | (tied & (tied.cumsum(dim=1) <= k - above.sum(dim=1, keepdim=True)))
        sub_positions = take.nonzero()[:, 1].view(len(rows), k)
        positions[rows], scores[rows] = sub_positions, sub.gather(1, sub_positions)
    return scores, positions


def _keep_top(scores: torch.Tensor, indices: torch.Tensor, k: int) -> TopK:
    scores, indices = order_best_first(scores, indices)
    return scores[:, :k], indices[:, :k]


def corpus_chunk_for(device: torch.device) -> int:
    """Corpus rows per block of scores on ``device``."""
    return GPU_CORPUS_CHUNK if device.type == "cuda" else DEFAULT_CORPUS_CHUNK


def topk_search(
    queries: np.ndarray | torch.Tensor,
    corpus: np.ndarray | torch.Tensor,
    k: int,
    query_batch: int = DEFAULT_QUERY_BATCH,
    corpus_chunk: int | None = None,
) -> TopK:
    """Exact top-``k`` corpus rows per query by inner product: (scores float32, indices int64), each
    ``len(queries) x min(k, len(corpus))`` on the queries' device; ``corpus_chunk`` corpus rows per block
    (default ``corpus_chunk_for`` the device)."""
    queries, corpus = as_tensor(queries), as_tensor(corpus)
    corpus_chunk = corpus_chunk or corpus_chunk_for(corpus.device)
    if queries.dtype != corpus.dtype:
        queries = queries.to(corpus.dtype)
    k = min(k, corpus.shape[0])
    all_scores = torch.empty((queries.shape[0], k), dtype=torch.float32, device=queries.device)
    all_indices = torch.empty((queries.shape[0], k), dtype=torch.int64, device=queries.device)
    for q_start in range(0, queries.shape[0], query_batch):
        batch = queries[q_start : q_start + query_batch]
        best: TopK | None = None
        for c_start in range(0, corpus.shape[0], corpus_chunk):
            block = batch @ corpus[c_start : c_start + corpus_chunk].T
            scores, positions = _block_topk(block, min(k, block.shape[1]))
            partial = (scores.float(), positions + c_start)
            if best is not None:
                partial = _keep_top(torch.cat([best[0], partial[0]], 1), torch.cat([best[1], partial[1]], 1), k)
            best = partial
        if best is not None:
            scores, indices = order_best_first(*best)
            all_scores[q_start : q_start + len(batch)] = scores
            all_indices[q_start : q_start + len(batch)] = indices
    return all_scores, all_indices


def merge_topk(partials: Sequence[TopK], k: int) -> TopK:
    """Merge per-partition top-k lists of the same queries (indices already global) into one top ``k``."""
    scores = torch.cat([as_tensor(s).float() for s, _ in partials], dim=1)
    indices = torch.cat([as_tensor(i).long() for _, i in partials], dim=1)
    return _keep_top(scores, indices, k)


class CorpusIndex(Protocol):
    def search(self, queries: np.ndarray | torch.Tensor, k: int) -> TopK:
        """Top ``k`` (scores float32, indices int64) per query, best first."""


class ExactIndex:
    """Exact chunked search over an in-memory corpus (CPU or GPU tensor)."""

    def __init__(self, corpus: np.ndarray | torch.Tensor, query_batch: int = DEFAULT_QUERY_BATCH, corpus_chunk: int | None = None) -> None:
        self.corpus = as_tensor(corpus)
        self.query_batch = query_batch
        self.corpus_chunk = corpus_chunk

    def search(self, queries: np.ndarray | torch.Tensor, k: int) -> TopK:
        return topk_search(queries, self.corpus, k, self.query_batch, self.corpus_chunk)


class FaissIndex:
    """Approximate search with a FAISS HNSW graph (inner product) for corpora too large for exact search."""

    def __init__(self, corpus: np.ndarray | torch.Tensor, ef_search: int = 256) -> None:
        import faiss

        vectors = as_tensor(corpus).float().cpu().numpy()
        self.index = faiss.IndexHNSWFlat(vectors.shape[1], FAISS_HNSW_NEIGHBOURS, faiss.METRIC_INNER_PRODUCT)
        self.index.add(vectors)
        self.ef_search = ef_search

    def search(self, queries: np.ndarray | torch.Tensor, k: int) -> TopK:
        k = min(k, self.index.ntotal)
        self.index.hnsw.efSearch = max(self.ef_search, k)
        scores, indices = self.index.search(as_tensor(queries).float().cpu().numpy(), k)
        return order_best_first(torch.from_numpy(scores), torch.from_numpy(indices).long())


def build_index(
    corpus: np.ndarray | torch.Tensor,
    kind: Literal["exact", "faiss"] = "exact",
    query_batch: int = DEFAULT_QUERY_BATCH,
    corpus_chunk: int | None = None,
) -> CorpusIndex:
    if kind == "faiss":
        return FaissIndex(corpus)
    return ExactIndex(corpus, query_batch, corpus_chunk)


def texts_digest(texts: Sequence[str]) -> str:
    """sha256 over the texts and their boundaries (so ["ab", "c"] and ["a", "bc"] differ)."""
    digest = hashlib.sha256()
    for text in texts:
        data = text.encode("utf-8")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def cached_document_embeddings(teacher: Teacher, texts: Sequence[str], cache_dir: str | None) -> torch.Tensor:
    """``teacher.encode_documents(texts)``, stored in and reused from ``cache_dir`` (float32 .npy files
    named by teacher fingerprint, document prefix and sha256 of the texts); no cache when ``cache_dir`` is None."""
    if cache_dir is None:
        return teacher.encode_documents(texts)
    key = hashlib.sha256(f"{teacher.fingerprint}\0{teacher.config.document_prefix}\0{texts_digest(texts)}".encode()).hexdigest()
    path = Path(cache_dir) / f"documents-{key[:32]}.npy"
    if path.is_file():
        return torch.from_numpy(np.load(path)).to(device=teacher.device, dtype=teacher.dtype)
    embeddings = teacher.encode_documents(texts)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as tmp:
        np.save(tmp, embeddings.float().cpu().numpy())
    os.replace(tmp.name, path)  # atomic: a concurrent reader never sees half a file
    return embeddings
