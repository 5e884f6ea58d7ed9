"""The demo's recipe: one source of every real-format kind over the generated corpus, with every filter on."""
from __future__ import annotations

from pathlib import Path
from typing import Any

# Each demo dataset: its recipe source, and the ground-truth entries (generator views) it is built from.
DEMO_SOURCES: list[tuple[dict[str, Any], list[str]]] = [
    ({"dataset": "se_title_body", "kind": "stackexchange", "paths": ["stackexchange/*/Posts.xml"], "mode": "title_body"},
     ["stackexchange/cooking/Posts.xml#title_body", "stackexchange/bicycles/Posts.xml#title_body"]),
    ({"dataset": "se_question_answer", "kind": "stackexchange", "paths": ["stackexchange/*/Posts.xml"], "mode": "question_answer"},
     ["stackexchange/cooking/Posts.xml#question_answer", "stackexchange/bicycles/Posts.xml#question_answer"]),
    ({"dataset": "se_duplicates", "kind": "stackexchange", "paths": ["stackexchange/*/Posts.xml"], "mode": "duplicate_questions"},
     ["stackexchange/cooking/PostLinks.xml#duplicate_questions", "stackexchange/bicycles/PostLinks.xml#duplicate_questions"]),
    ({"dataset": "quora", "kind": "quora", "paths": ["quora/quora_duplicate_questions.tsv"]},
     ["quora/quora_duplicate_questions.tsv"]),
    ({"dataset": "amazon_reviews", "kind": "amazon_reviews", "paths": ["amazon/reviews_2018.json.gz", "amazon/reviews_2023.jsonl"]},
     ["amazon/reviews_2018.json.gz", "amazon/reviews_2023.jsonl"]),
    ({"dataset": "cnn_dailymail", "kind": "news", "paths": ["news/cnn_dailymail.jsonl"], "mode": "cnn_dailymail"},
     ["news/cnn_dailymail.jsonl"]),
    ({"dataset": "reddit_title_body", "kind": "reddit", "paths": ["reddit/submissions.jsonl"]},
     ["reddit/submissions.jsonl#title_body"]),
    ({"dataset": "reddit_post_comment", "kind": "reddit", "paths": ["reddit/submissions.jsonl"], "comments": ["reddit/comments.jsonl"]},
     ["reddit/comments.jsonl#post_comment"]),
]
MINED_DATASET = "se_question_answer"
RETRIEVAL_PREFIXES = {"query": "search_query: ", "document": "search_document: "}


def demo_recipe(corpus: Path, output: Path) -> dict[str, Any]:
    """The demo's recipe: every source kind, every filter on, dropped records all written (for scoring)."""
    sources = []
    for source, _ in DEMO_SOURCES:
        source = {**source, "paths": [str(corpus / p) for p in source["paths"]], "prefixes": dict(RETRIEVAL_PREFIXES)}
        if "comments" in source:
            source["comments"] = [str(corpus / p) for p in source["comments"]]
        sources.append(source)
    return {
        "output": str(output),
        "sources": sources,
        "filters": {
            "clean": {"min_query_chars": 3, "min_document_chars": 10},
            "language": {"fields": "document"},
            "dedup": {"exact": "pair", "near": {"field": "document", "threshold": 0.8, "verify": True}},
            # The static teacher keeps the demo to seconds on a laptop; recipes for real sources keep the default (minilm).
            "consistency": {"teacher": {"model": "default"}, "k": 25, "chunk_size": 200},
        },
        "mining": {"datasets": [MINED_DATASET], "num_negatives": 3, "range_max": 30, "too_few": "keep"},
        "shards": {"records_per_shard": 200, "write_dropped": "all"},
    }
