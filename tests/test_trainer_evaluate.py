"""Retrieval metrics against hand computations, BEIR folders and their errors, the held-out split."""
from __future__ import annotations

import json
import math
import os

import pytest
import torch

from schemas.config import ConfigError
from tests.test_trainer_data import make_records, write_records
from text.hashing import in_fraction
from trainer.config import BeirSet, DataConfig
from trainer.data import open_training_sets
from trainer.evaluate import held_out_set, load_beir, retrieval_metrics


def write_beir(folder: str, corpus: dict[str, str], queries: dict[str, str], qrels: list[tuple[str, str, int]]) -> str:
    os.makedirs(os.path.join(folder, "qrels"), exist_ok=True)
    with open(os.path.join(folder, "corpus.jsonl"), "w", encoding="utf-8") as f:
        f.writelines(json.dumps({"_id": k, "title": "", "text": v}) + "\n" for k, v in corpus.items())
    with open(os.path.join(folder, "queries.jsonl"), "w", encoding="utf-8") as f:
        f.writelines(json.dumps({"_id": k, "text": v}) + "\n" for k, v in queries.items())
    with open(os.path.join(folder, "qrels", "test.tsv"), "w", encoding="utf-8") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        f.writelines(f"{q}\t{d}\t{s}\n" for q, d, s in qrels)
    return folder


def _one_hot(indices: list[int], size: int) -> torch.Tensor:
    return torch.eye(size)[indices]


def test_metrics_match_hand_computation():
    # 12 documents on orthogonal axes; a query's ranking follows its weight on each axis.
    corpus = torch.eye(12)
    q0 = torch.zeros(12)
    q0[[3, 5, 7]] = torch.tensor([0.9, 0.8, 0.1])  # ranking 3, 5, 7, then the rest
    q1 = torch.zeros(12)
    q1[[11, 0]] = torch.tensor([1.0, 0.5])  # ranking 11, 0, then the rest
    queries = torch.nn.functional.normalize(torch.stack([q0, q1]), dim=1)
    qrels = [{5: 1, 7: 2, 9: 1}, {0: 1}]  # q0: grade 1 at rank 2, grade 2 at rank 3, doc 9 at a tied rank >= 4
    metrics = retrieval_metrics(queries, corpus, qrels)
    rank9 = torch.topk(queries[0] @ corpus.T, 10).indices.tolist().index(9) + 1
    dcg0 = 1 / math.log2(3) + 3 / math.log2(4) + 1 / math.log2(rank9 + 1)
    idcg0 = 3 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert metrics["ndcg@10"] == pytest.approx((dcg0 / idcg0 + 1 / math.log2(3)) / 2)
    assert metrics["recall@10"] == pytest.approx(1.0)
    assert metrics["mrr@10"] == pytest.approx((1 / 2 + 1 / 2) / 2)


def test_perfect_and_hopeless_rankings():
    corpus = torch.eye(20)
    queries = _one_hot([4, 9], 20)
    assert retrieval_metrics(queries, corpus, [{4: 1}, {9: 1}]) == {"ndcg@10": 1.0, "recall@10": 1.0, "mrr@10": 1.0}
    away = torch.nn.functional.normalize(torch.ones(2, 20) - 2 * _one_hot([15, 16], 20), dim=1)  # relevant ranked last
    far = retrieval_metrics(away, corpus, [{15: 1}, {16: 1}])
    assert far == {"ndcg@10": 0.0, "recall@10": 0.0, "mrr@10": 0.0}


def test_load_beir_reads_graded_qrels_and_prefixes(tmp_path):
    folder = write_beir(
        str(tmp_path / "scifact"),
        {"d1": "alpha", "d2": "beta", "d3": "gamma"},
        {"q1": "first", "q2": "second", "q3": "unjudged"},
        [("q1", "d1", 1), ("q1", "d3", 2), ("q2", "d2", 1), ("q2", "d1", 0)],
    )
    retrieval = load_beir(BeirSet(path=folder, query_prefix="Q: ", document_prefix="D: "))
    assert retrieval.name == "beir/scifact"
    assert retrieval.queries == ["Q: first", "Q: second"]
    assert retrieval.corpus == ["D: alpha", "D: beta", "D: gamma"]
    assert retrieval.qrels == [{0: 1, 2: 2}, {1: 1}]


def test_beir_errors_name_file_and_line(tmp_path):
    folder = write_beir(str(tmp_path / "b"), {"d1": "x"}, {"q1": "y"}, [("q1", "d9", 1)])
    with pytest.raises(ConfigError, match=r"qrels/test.tsv:2: corpus id 'd9' is not in corpus.jsonl"):
        load_beir(BeirSet(path=folder))
    with open(os.path.join(folder, "queries.jsonl"), "a", encoding="utf-8") as f:
        f.write("{not json\n")
    with pytest.raises(ConfigError, match=r"queries.jsonl:2: not a JSON object"):
        load_beir(BeirSet(path=folder))
    with pytest.raises(ConfigError, match=r"missing/corpus.jsonl: missing"):
        load_beir(BeirSet(path=str(tmp_path / "missing")))


def test_held_out_set_holds_only_held_out_records_with_their_documents(tmp_path):
    records = make_records("gooaq", 400)
    records[7]["query"] = records[3]["query"]  # a repeated query gets both documents as relevant
    path = write_records(str(tmp_path), records)
    (training_set,) = open_training_sets([path], DataConfig(held_out_fraction=0.3), 8, "t.yaml")
    retrieval = held_out_set(training_set, 0.3, max_queries=1000)
    held = [r for r in records if in_fraction(r["id"], 0.3)]
    assert len(retrieval.queries) == len({r["query"] for r in held})
    assert all(q.startswith("search_query: ") for q in retrieval.queries)
    assert sorted(retrieval.corpus) == sorted({"search_document: " + r["document"] for r in held})
    for query, relevant in zip(retrieval.queries, retrieval.qrels, strict=True):
        expected = {"search_document: " + r["document"] for r in held if "search_query: " + r["query"] == query}
        assert {retrieval.corpus[i] for i in relevant} == expected
    capped = held_out_set(training_set, 0.3, max_queries=5)
    assert len(capped.queries) == 5 and len(capped.corpus) >= 5
