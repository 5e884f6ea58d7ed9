"""Retrieval evaluation: nDCG@10, recall@10 and MRR@10 on the held-out split and on BEIR-format folders
(and nDCG@10 at each Matryoshka dimension).

The held-out split of a dataset is its records whose id hashes into ``held_out_fraction``
(``text.hashing.in_fraction``: independent of order and seed); the training stream skips them. Its queries are searched against the
documents of the same held-out records; equal texts are merged, so a query whose document text appears in
several records has that one document as relevant.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from schemas.config import ConfigError
from storage.builds import iter_records
from storage.files import exists, join, open_text, split
from storage.texts import BEIR_CORPUS, BEIR_FOLDER, BEIR_QUERIES, beir_rows, beir_text
from text.hashing import in_fraction
from trainer.config import BeirSet
from trainer.data import TrainingSet
from trainer.model import Encoder

K = 10


@dataclass
class RetrievalSet:
    """Queries, a corpus and graded relevance (``qrels[query index] = {corpus index: grade}``), texts prefixed."""

    name: str
    queries: list[str]
    corpus: list[str]
    qrels: list[dict[int, int]]


def held_out_set(training_set: TrainingSet, fraction: float, max_queries: int) -> RetrievalSet:
    """The first ``max_queries`` distinct held-out queries of a dataset (in shard order) and their documents."""
    prefixes = training_set.prefixes
    query_index: dict[str, int] = {}
    corpus_index: dict[str, int] = {}
    qrels: list[dict[int, int]] = []
    for record in iter_records(training_set.path):
        if not in_fraction(record["id"], fraction):
            continue
        query = query_index.get(record["query"])
        if query is None:
            if len(query_index) == max_queries:
                break
            query = query_index[record["query"]] = len(query_index)
            qrels.append({})
        document = corpus_index.setdefault(record["document"], len(corpus_index))
        qrels[query][document] = 1
    return RetrievalSet(
        name=f"heldout/{training_set.name}",
        queries=[prefixes.query + text for text in query_index],
        corpus=[prefixes.document + text for text in corpus_index],
        qrels=qrels,
    )


def load_beir(spec: BeirSet) -> RetrievalSet:
    """A BEIR folder: corpus.jsonl (_id, title, text), queries.jsonl (_id, text), qrels/<split>.tsv."""
    corpus_rows = list(beir_rows(spec.path, BEIR_CORPUS))
    query_rows = list(beir_rows(spec.path, BEIR_QUERIES))
    corpus_index = {str(row["_id"]): i for i, row in enumerate(corpus_rows)}
    query_text = {str(row["_id"]): beir_text(row) for row in query_rows}
    qrels_path = join(spec.path, "qrels", f"{spec.split}.tsv")
    judged: dict[str, dict[int, int]] = {}
    if not exists(qrels_path):
        raise ConfigError(f"{qrels_path}: missing ({BEIR_FOLDER})")
    with open_text(qrels_path) as f:
        for number, line in enumerate(f, 1):
            fields = line.rstrip("\n").split("\t")
            if (number == 1 and fields[0] == "query-id") or not line.strip():
                continue
            if len(fields) != 3:
                raise ConfigError(f"{qrels_path}:{number}: expected query-id, corpus-id and score separated by tabs")
            query_id, corpus_id, score = fields
            if query_id not in query_text:
                raise ConfigError(f"{qrels_path}:{number}: query id {query_id!r} is not in queries.jsonl")
            if corpus_id not in corpus_index:
                raise ConfigError(f"{qrels_path}:{number}: corpus id {corpus_id!r} is not in corpus.jsonl")
            try:
                grade = int(score)
            except ValueError:
                raise ConfigError(f"{qrels_path}:{number}: score {score!r} is not an integer") from None
            if grade > 0:
                judged.setdefault(query_id, {})[corpus_index[corpus_id]] = grade
    if not judged:
        raise ConfigError(f"{qrels_path}: no query has a relevant document")
    documents = [beir_text(row) for row in corpus_rows]
    return RetrievalSet(
        name=f"beir/{split(spec.path)[1]}",
        queries=[spec.query_prefix + query_text[q] for q in judged],
        corpus=[spec.document_prefix + text for text in documents],
        qrels=list(judged.values()),
    )


def retrieval_metrics(query_embeddings: torch.Tensor, corpus_embeddings: torch.Tensor, qrels: list[dict[int, int]], batch_size: int = 1024) -> dict[str, float]:
    """nDCG@10 (graded gains), recall@10 and MRR@10, averaged over queries; embeddings are L2-normalised."""
    k = min(K, corpus_embeddings.shape[0])
    ndcg = recall = mrr = 0.0
    for start in range(0, query_embeddings.shape[0], batch_size):
        scores = query_embeddings[start : start + batch_size] @ corpus_embeddings.T
        top = torch.topk(scores, k, dim=1).indices.tolist()
        for relevant, ranking in zip(qrels[start : start + batch_size], top, strict=True):
            gains = [relevant.get(doc, 0) for doc in ranking]
            dcg = sum((2**g - 1) / math.log2(rank + 2) for rank, g in enumerate(gains))
            ideal = sorted(relevant.values(), reverse=True)[:K]
            ndcg += dcg / sum((2**g - 1) / math.log2(rank + 2) for rank, g in enumerate(ideal))
            recall += sum(1 for g in gains if g > 0) / len(relevant)
            mrr += next((1.0 / (rank + 1) for rank, g in enumerate(gains) if g > 0), 0.0)
    n = len(qrels)
    return {"ndcg@10": ndcg / n, "recall@10": recall / n, "mrr@10": mrr / n}


def evaluate(
    encoder: Encoder, retrieval_set: RetrievalSet, max_query_tokens: int, max_document_tokens: int, batch_size: int, dims: Sequence[int] = ()
) -> dict[str, float]:
    """The metrics of the full embeddings, and ``ndcg@10_dimD`` of their first D dimensions (re-normalised) for each of ``dims``."""
    queries = encoder.encode(retrieval_set.queries, max_query_tokens, batch_size)
    corpus = encoder.encode(retrieval_set.corpus, max_document_tokens, batch_size)
    scores = retrieval_metrics(queries, corpus, retrieval_set.qrels)
    for dim in dims:
        truncated = retrieval_metrics(F.normalize(queries[:, :dim], dim=1), F.normalize(corpus[:, :dim], dim=1), retrieval_set.qrels)
        scores[f"ndcg@10_dim{dim}"] = truncated["ndcg@10"]
    return scores
