"""Amazon review files of the demo corpus: McAuley 2018 JSON lines (gzip, as published) and the 2023 format."""
from __future__ import annotations

import gzip
import io
import random
from dataclasses import dataclass
from typing import Any

from demo.formats.common import Written, epoch, jsonl, utc
from demo.tables import FIRST_NAMES, LAST_NAMES, REVIEW_BAD, REVIEW_GOOD, REVIEW_TITLE_BAD, REVIEW_TITLE_GOOD, TOPICS, Topic
from demo.text import TextWriter, near_duplicate
from demo.truth import LANGUAGES, View, plan

FILE_2018 = "amazon/reviews_2018.json.gz"
FILE_2023 = "amazon/reviews_2023.jsonl"


@dataclass(eq=False)
class _Review:
    asin: str
    reviewer: str
    stamp: int
    rating: int
    title: str
    paragraphs: list[str]
    name: str
    joiner: str  # the 2023 files separate some paragraphs with <br /> tags

    @property
    def key(self) -> str:
        return f"{self.asin}/{self.reviewer}/{self.stamp}"

    @property
    def text(self) -> str:
        return self.joiner.join(self.paragraphs)


def _token(rng: random.Random, size: int, alphabet: str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") -> str:
    return "".join(rng.choice(alphabet) for _ in range(size))


def _reviews(rng: random.Random, n: int, file: str, new_format: bool) -> tuple[list[_Review], View]:
    """Reviews of product topics: the title and text of a review are about the same product."""
    w = TextWriter(rng)
    products = {topic.name: ["B0" + _token(rng, 8) for _ in range(3)] for topic in TOPICS["products"]}
    reviewers = [("AE" + _token(rng, 26)) if new_format else ("A" + _token(rng, rng.choice((12, 13))))
                 for _ in range(n // 2)]
    years = (2019, 2024) if new_format else (2010, 2019)
    view = View(file, "amazon_reviews", "title_text")
    keys: set[str] = set()

    def review(asin: str, title: str, paragraphs: list[str], rating: int, reviewer: str | None = None,
               joiner: str | None = None) -> _Review:
        while True:
            seconds = int(rng.uniform(epoch(years[0]), epoch(years[1])))
            stamp = seconds * 1000 + rng.randint(0, 999) if new_format else seconds - seconds % 86400
            made = _Review(asin, reviewer or rng.choice(reviewers), stamp, rating, title, paragraphs,
                           f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)[0]}.",
                           joiner or ("<br /><br />" if new_format and rng.random() < 0.3 else " "))
            if made.key not in keys:
                keys.add(made.key)
                return made

    def english(topic: Topic, rating: int, count: int, specific_title: bool = False) -> tuple[str, list[str]]:
        good = rating >= 4 or (rating == 3 and rng.random() < 0.5)
        titles = REVIEW_TITLE_GOOD if good else REVIEW_TITLE_BAD
        slots = w.slots(topic)
        title = w.sentence(rng.choice([t for t in titles if "{" in t] if specific_title else titles), slots)
        body = w.sentences(REVIEW_GOOD if good else REVIEW_BAD, topic, count, slots)
        return title, w.paragraphs(body)

    reviews, copies = [], []
    langs = iter(LANGUAGES * n)
    for kind in plan(rng, n):
        topic = rng.choice(TOPICS["products"])
        asin, rating = rng.choice(products[topic.name]), rng.choices((1, 2, 3, 4, 5), (6, 5, 9, 20, 60))[0]
        if kind == "non_english":
            lang = next(langs)
            made = review(asin, w.foreign(lang, "short"), w.paragraphs(w.foreign_statements(lang, rng.randint(2, 4))), rating)
            view.plant("non_english", made, lang)
        elif kind == "mismatched":
            other = rng.choice([x for x in TOPICS["products"] if x is not topic])
            title, _ = english(topic, rating, 1, specific_title=True)
            made = review(asin, title, english(other, rating, rng.randint(2, 5))[1], rating)
            view.plant("mismatched", made, {"query_topic": topic.name, "document_topic": other.name})
        else:
            made = review(asin, *english(topic, rating, rng.randint(9, 11) if kind == "near_source" else
                                         rng.randint(2, 5)), rating)
            if kind != "clean":
                copies.append((kind, made, topic))
        reviews.append(made)
    for kind, original, topic in copies:
        if kind == "exact_source":
            asin = rng.choice([a for a in products[topic.name] if a != original.asin])
            copy = review(asin, original.title, original.paragraphs, original.rating, original.reviewer, original.joiner)
            view.plant("exact_duplicates", copy, original)
        else:
            copy = review(original.asin, original.title, near_duplicate(rng, original.paragraphs), original.rating)
            view.near(copy, original, copy.text, original.text)
        reviews.append(copy)
    view.pairs = len(reviews)
    return reviews, view


def generate_2018(rng: random.Random, n: int) -> Written:
    """McAuley 2018 rows (as in the 5-core files, sorted by product, gzip), a few repeated under another style."""
    reviews, view = _reviews(rng, n, FILE_2018, new_format=False)
    styles = [{"Color:": " Black"}, {"Color:": " Navy Blue"}, {"Size:": " Medium"}, {"Size:": " 10 M US", "Color:": " Grey"}]
    repeats = rng.sample([r for r in reviews if not any(r is item for _, item, _ in view.entries)], max(1, n // 50))
    view.notes = {"repeated_keys": {r.key: 2 for r in repeats},
                  "repeated_keys_note": "the same review under another product style: one id, two rows"}
    rows = []
    for r in sorted(reviews + repeats, key=lambda r: (r.asin, r.stamp)):
        day = utc(r.stamp)
        row: dict[str, Any] = {"overall": float(r.rating)}
        if rng.random() < 0.15:
            row["vote"] = str(rng.randint(2, 60))
        row |= {"verified": rng.random() < 0.85, "reviewTime": f"{day:%m} {day.day}, {day.year}",
                "reviewerID": r.reviewer, "asin": r.asin}
        if rng.random() < 0.7:
            row["style"] = rng.choice(styles)
        row |= {"reviewerName": r.name, "reviewText": r.text, "summary": r.title,
                "unixReviewTime": r.stamp}
        rows.append(row)
    view.pairs = len(rows)
    return {FILE_2018: (_gzip(jsonl(rows, ensure_ascii=True)), len(rows))}, {view.file: view.as_json(lambda r: r.key)}


def generate_2023(rng: random.Random, n: int) -> Written:
    """Amazon Reviews 2023 rows (JSON lines, in time order)."""
    reviews, view = _reviews(rng, n, FILE_2023, new_format=True)
    rows = []
    for r in sorted(reviews, key=lambda r: r.stamp):
        rows.append({"rating": float(r.rating), "title": r.title, "text": r.text, "images": [],
                     "asin": r.asin, "parent_asin": r.asin, "user_id": r.reviewer, "timestamp": r.stamp,
                     "helpful_vote": rng.choice((0, 0, 0, 1, 2, 5, 14)), "verified_purchase": rng.random() < 0.9})
    return {FILE_2023: (jsonl(rows), len(rows))}, {view.file: view.as_json(lambda r: r.key)}


def _gzip(data: bytes) -> bytes:
    """``data`` gzipped with no name and no time in the header, so the same data gives the same bytes."""
    packed = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=packed, mtime=0) as out:
        out.write(data)
    return packed.getvalue()
