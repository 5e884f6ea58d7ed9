"""Text cleaning and length rules, and the exact-duplicate key.

Cleaning rewrites both sides of a pair (HTML entities, Unicode normalisation, control characters,
whitespace) and then drops pairs that are empty, too short, too long or identical.
"""
from __future__ import annotations

import hashlib
import html
import re
import unicodedata

from filters.base import RecordFilter
from schemas.recipe import CleanConfig
from schemas.record import PairRecord

# Control and format characters except tab and newline (zero-width joiners, BOMs, NULs, ...).
_INVISIBLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\u2060-\u2064\ufeff]")
_SPACES = re.compile(r"[^\S\n]+")
_SPACED_NEWLINES = re.compile(r" *\n *")
_BLANK_LINES = re.compile(r"\n{3,}")
_NOT_WORD = re.compile(r"[\W_]+")


def clean_text(text: str, config: CleanConfig) -> str:
    """Entities unescaped, normalised, invisible characters removed, spaces folded, paragraphs kept."""
    if config.unescape_html and "&" in text:
        text = html.unescape(text)
    if config.normalization != "none":
        text = unicodedata.normalize(config.normalization, text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _INVISIBLE.sub("", text)
    text = _SPACES.sub(" ", text)
    text = _SPACED_NEWLINES.sub("\n", text)
    text = _BLANK_LINES.sub("\n\n", text)
    return text.strip()


def matching_form(text: str) -> str:
    """Lowercase with punctuation and whitespace folded: texts equal in this form are duplicates."""
    return _NOT_WORD.sub(" ", text.lower()).strip()


def exact_key(record: PairRecord, field: str) -> str:
    """sha1 of the matching form of the query, the document, or both (the exact-dedup grouping key)."""
    if field == "pair":
        text = matching_form(record["query"]) + "\x1f" + matching_form(record["document"])
    else:
        text = matching_form(record[field])  # type: ignore[literal-required]
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class CleanFilter(RecordFilter):
    stage = "clean"

    def __init__(self, config: CleanConfig) -> None:
        self.config = config

    def check(self, record: PairRecord) -> str | None:
        config = self.config
        limits = {
            "query": (config.min_query_chars, config.max_query_chars),
            "document": (config.min_document_chars, config.max_document_chars),
        }
        for side, (shortest, longest) in limits.items():
            text = clean_text(record[side], config)  # type: ignore[literal-required]
            if not text:
                return f"empty_{side}"
            if len(text) < shortest:
                return f"{side}_too_short"
            if len(text) > longest:
                if config.too_long == "drop":
                    return f"{side}_too_long"
                text = text[:longest].rstrip()
            record[side] = text  # type: ignore[literal-required]
        if config.drop_identical and matching_form(record["query"]) == matching_form(record["document"]):
            return "query_equals_document"
        return None
