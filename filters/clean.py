"""Text cleaning and length rules, and the exact-duplicate key.

Cleaning rewrites both sides of a pair into ``text.forms.clean_form`` (HTML entities, Unicode normalisation,
control characters, whitespace) and then drops pairs that are empty, too short, too long or identical.
"""
from __future__ import annotations

import hashlib
from typing import Literal

from filters.base import RecordFilter
from schemas.recipe import CleanConfig
from schemas.record import PairRecord
from text.forms import clean_form, matching_form


def exact_key(record: PairRecord, field: str) -> str:
    """sha1 of the matching form of the query, the document, or both (the exact-dedup grouping key)."""
    if field == "pair":
        text = matching_form(record["query"]) + "\x1f" + matching_form(record["document"])
    elif field == "query":
        text = matching_form(record["query"])
    elif field == "document":
        text = matching_form(record["document"])
    else:
        raise KeyError(field)  # as indexing the record by an unknown field would
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class CleanFilter(RecordFilter):
    stage = "clean"

    def __init__(self, config: CleanConfig) -> None:
        self.config = config

    def check(self, record: PairRecord) -> str | None:
        config = self.config
        limits: dict[Literal["query", "document"], tuple[int, int]] = {
            "query": (config.min_query_chars, config.max_query_chars),
            "document": (config.min_document_chars, config.max_document_chars),
        }
        for side, (shortest, longest) in limits.items():
            text = clean_form(record[side], config.unescape_html, config.normalization)
            if not text:
                return f"empty_{side}"
            if len(text) < shortest:
                return f"{side}_too_short"
            if len(text) > longest:
                if config.too_long == "drop":
                    return f"{side}_too_long"
                text = text[:longest].rstrip()
            record[side] = text
        if config.drop_identical and matching_form(record["query"]) == matching_form(record["document"]):
            return "query_equals_document"
        return None
