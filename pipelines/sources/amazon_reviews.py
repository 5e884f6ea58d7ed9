"""Amazon reviews in McAuley's JSON lines: review title -> review text.

Two layouts, told apart row by row: 2014/2018 (``summary``, ``reviewText``, ``overall``, ``asin``,
``reviewerID``, ``unixReviewTime``; helpful votes in ``helpful`` [up, total] or ``vote``) and 2023
(``title``, ``text``, ``rating``, ``asin``, ``user_id``, ``timestamp``, ``helpful_vote``). Helpful votes
become ``meta.source_score``, so dedup's highest_score rule keeps the most helpful copy of a review.
"""
from __future__ import annotations

import re
from typing import Any, NamedTuple

from pipelines.sources.base import Parsed, Skip
from pipelines.sources.generic import JsonlSource
from schemas.record import new_record, rejected

_LINE_BREAK_TAG = re.compile(r"<br\s*/?>", re.IGNORECASE)


class ReviewLayout(NamedTuple):
    title: str
    body: str
    rating: str
    key: tuple[str, str, str]


LAYOUT_2018 = ReviewLayout("summary", "reviewText", "overall", ("asin", "reviewerID", "unixReviewTime"))
LAYOUT_2023 = ReviewLayout("title", "text", "rating", ("asin", "user_id", "timestamp"))


def review_layout(row: dict[str, Any]) -> ReviewLayout | None:
    if "reviewerID" in row or "reviewText" in row or "overall" in row:
        return LAYOUT_2018
    if "user_id" in row or "text" in row or "rating" in row:
        return LAYOUT_2023
    return None


def helpful_votes(row: dict[str, Any]) -> float | None:
    """Helpful votes in any layout: 2014 ``helpful`` [up, total], 2018 ``vote`` ("1,234"), 2023 ``helpful_vote``."""
    value = row.get("helpful_vote", row.get("vote"))
    if value is None and isinstance(row.get("helpful"), list) and row["helpful"]:
        value = row["helpful"][0]
    try:
        return float(str(value).replace(",", "")) if value is not None else None
    except ValueError:
        return None


class AmazonReviewsSource(JsonlSource):
    """The JSON lines reader (positions, bad lines) with the review rules."""

    def map_row(self, row: Any, path: str, position: int, raw: str) -> Parsed:
        if not isinstance(row, dict):
            return rejected(self.dataset, path, position, "not_an_object", raw)
        layout = review_layout(row)
        if layout is None:
            return rejected(self.dataset, path, position, "unknown_review_layout", raw)
        key_parts = [row.get(name) for name in layout.key]
        for name, value in zip(layout.key, key_parts, strict=True):
            if value is None or value == "" or isinstance(value, (dict, list, bool)):
                return rejected(self.dataset, path, position, f"missing_field:{name}", raw)
        title, body = row.get(layout.title), row.get(layout.body)
        for name, value in ((layout.title, title), (layout.body, body)):
            if value is not None and not isinstance(value, str):
                return rejected(self.dataset, path, position, f"wrong_type:{name}", raw)
        if not isinstance(title, str) or not title.strip():
            return Skip("empty_title")
        if not isinstance(body, str) or not body.strip():
            return Skip("empty_body")
        rating = row.get(layout.rating)
        if self.options.min_rating is not None:
            if isinstance(rating, bool) or not isinstance(rating, (int, float)):
                return rejected(self.dataset, path, position, f"wrong_type:{layout.rating}", raw)
            if rating < self.options.min_rating:
                return Skip("below_min_rating")
        body = _LINE_BREAK_TAG.sub("\n", body).strip()
        if len(body) < self.options.min_body_chars:
            return Skip("short_body")
        votes = helpful_votes(row)
        meta = {} if votes is None else {"source_score": votes}
        return new_record(self.dataset, "/".join(str(v) for v in key_parts), title.strip(), body, file=path, row=position, **meta)
