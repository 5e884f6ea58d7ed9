"""Quora Question Pairs: ``quora_duplicate_questions.tsv`` (tab-separated, quoted like CSV) and Kaggle's
``train.csv`` (comma, quoted). Both have the header ``id qid1 qid2 question1 question2 is_duplicate``;
rows with ``is_duplicate`` 1 become question1 -> question2 pairs keyed by ``id``, the rest are skipped.
"""
from __future__ import annotations

from typing import Any

from pipelines.sources.base import Parsed, Skip
from pipelines.sources.generic import CsvSource
from schemas.record import new_record, rejected

COLUMNS = ("id", "question1", "question2", "is_duplicate")


class QuoraSource(CsvSource):
    """The CSV reader (quotes, multi-line cells, positions) with Quora's own row rule."""

    def map_row(self, row: Any, path: str, position: int, raw: str) -> Parsed:
        missing = next((c for c in COLUMNS if c not in row), None)
        if missing:
            return rejected(self.dataset, path, position, f"missing_field:{missing}", raw)
        label = row["is_duplicate"].strip()
        if label == "0":
            return Skip("not_duplicate")
        if label != "1":
            return rejected(self.dataset, path, position, "bad_is_duplicate", raw)
        key = row["id"].strip()
        if not key:
            return rejected(self.dataset, path, position, "missing_field:id", raw)
        query, document = row["question1"].strip(), row["question2"].strip()
        if not query or not document:
            return Skip("empty_question")
        return new_record(self.dataset, key, query, document, file=path, row=position)
