"""Exact chunked top-k search, partition merging, the FAISS index and the corpus embedding cache."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from embedding.search import build_index, cached_document_embeddings, merge_topk, texts_digest, topk_search


def unit_rows(n: int, dim: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def brute_force(queries: np.ndarray, corpus: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    scores = queries @ corpus.T
    order = np.lexsort((np.broadcast_to(np.arange(corpus.shape[0]), scores.shape), -scores), axis=1)[:, :k]
    return np.take_along_axis(scores, order, axis=1), order


@pytest.mark.parametrize("query_batch,corpus_chunk", [(7, 5), (64, 1000), (1, 3)])
def test_topk_search_matches_brute_force(query_batch: int, corpus_chunk: int) -> None:
    queries, corpus = unit_rows(40, 16, 0), unit_rows(53, 16, 1)
    scores, indices = topk_search(queries, corpus, 6, query_batch=query_batch, corpus_chunk=corpus_chunk)
    expected_scores, expected_indices = brute_force(queries, corpus, 6)
    assert indices.dtype == torch.int64 and scores.dtype == torch.float32
    assert np.array_equal(indices.numpy(), expected_indices)
    assert np.allclose(scores.numpy(), expected_scores, atol=1e-6)


def test_k_larger_than_corpus_returns_whole_corpus_sorted() -> None:
    scores, indices = topk_search(unit_rows(3, 8, 2), unit_rows(4, 8, 3), 10, corpus_chunk=2)
    assert indices.shape == (3, 4)
    assert sorted(indices[0].tolist()) == [0, 1, 2, 3]
    assert torch.all(scores[:, :-1] >= scores[:, 1:])


def test_equal_scores_come_in_index_order_whatever_the_chunking() -> None:
    corpus = np.repeat(unit_rows(1, 8, 4), 9, axis=0)  # nine identical documents
    query = corpus[:1].copy()
    for chunk in (2, 4, 9):
        _, indices = topk_search(query, corpus, 5, corpus_chunk=chunk)
        assert indices[0].tolist() == [0, 1, 2, 3, 4]


def test_merge_of_partition_results_equals_global_search() -> None:
    queries, corpus = unit_rows(20, 16, 5), unit_rows(90, 16, 6)
    partials = []
    for start in range(0, 90, 25):
        scores, indices = topk_search(queries, corpus[start : start + 25], 7)
        partials.append((scores, indices + start))
    merged_scores, merged_indices = merge_topk(partials, 7)
    scores, indices = topk_search(queries, corpus, 7)
    assert torch.equal(merged_indices, indices)
    assert torch.allclose(merged_scores, scores)


def test_bfloat16_embeddings_search_close_to_float32() -> None:
    queries, corpus = unit_rows(10, 32, 7), unit_rows(200, 32, 8)
    exact_scores, exact_indices = topk_search(queries, corpus, 1)
    half_scores, half_indices = topk_search(torch.from_numpy(queries).bfloat16(), torch.from_numpy(corpus).bfloat16(), 1)
    assert half_scores.dtype == torch.float32
    assert (half_indices == exact_indices).float().mean() >= 0.8
    assert torch.allclose(half_scores, exact_scores, atol=0.03)


def test_faiss_index_has_the_exact_interface_and_high_recall() -> None:
    pytest.importorskip("faiss")
    queries, corpus = unit_rows(30, 16, 9), unit_rows(400, 16, 10)
    exact = build_index(corpus, "exact").search(queries, 10)
    approximate = build_index(corpus, "faiss").search(queries, 10)
    assert approximate[1].dtype == torch.int64 and approximate[0].shape == (30, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact[1].tolist(), approximate[1].tolist(), strict=True)])
    assert recall >= 0.95


def test_texts_digest_sees_boundaries() -> None:
    assert texts_digest(["ab", "c"]) != texts_digest(["a", "bc"])
    assert texts_digest(["ab", "c"]) == texts_digest(["ab", "c"])


class CountingTeacher:
    """Stands in for a Teacher: records how often it really encodes."""

    def __init__(self, fingerprint: str) -> None:
        self.fingerprint = fingerprint
        self.config = SimpleNamespace(document_prefix="")
        self.device, self.dtype = torch.device("cpu"), torch.float32
        self.calls = 0

    def encode_documents(self, texts: list[str]) -> torch.Tensor:
        self.calls += 1
        return torch.tensor([[float(len(t)), 1.0] for t in texts])


def test_corpus_embeddings_are_cached_by_teacher_and_texts(tmp_path) -> None:
    teacher = CountingTeacher("a")
    first = cached_document_embeddings(teacher, ["x", "yy"], str(tmp_path))
    second = cached_document_embeddings(teacher, ["x", "yy"], str(tmp_path))
    assert teacher.calls == 1 and torch.equal(first, second)
    cached_document_embeddings(teacher, ["x", "zz"], str(tmp_path))
    assert teacher.calls == 2
    other = CountingTeacher("b")
    cached_document_embeddings(other, ["x", "yy"], str(tmp_path))
    assert other.calls == 1
    assert not list(tmp_path.glob("*.tmp"))
