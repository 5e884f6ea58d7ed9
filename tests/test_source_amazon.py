"""The Amazon reviews reader: 2014/2018 and 2023 layouts row by row, rating and length rules, .gz input."""
from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import pytest

from pipelines.sources.amazon_reviews import AmazonReviewsSource
from pipelines.sources.base import Skip, is_rejected
from schemas.recipe import parse_source
from storage.compressed import open_input


def parse(path: Path, **options) -> list:
    spec = parse_source({"dataset": "amz", "kind": "amazon_reviews", "paths": [str(path)], **options}, "test")
    with open_input(str(path)) as stream:
        return list(AmazonReviewsSource(spec, [str(path)]).parse(str(path), stream))


def records(items: list) -> list:
    return [i for i in items if isinstance(i, dict) and not is_rejected(i)]


ROWS = [
    {"reviewerID": "A2IBPI20UZIR0U", "asin": "1384719342", "helpful": [3, 4], "reviewText": "Filters out the pop sounds.",
     "overall": 5.0, "summary": "good", "unixReviewTime": 1393545600},
    {"overall": 2.0, "vote": "1,204", "reviewerID": "ALJ66O1Y6SLHA", "asin": "B000K2PJ4K", "reviewText": "Too small for my feet.",
     "summary": "Runs small", "unixReviewTime": 1441324800, "style": {"Size:": " 9"}},
    {"rating": 4.0, "title": "Sturdy", "text": "Held up well.<br />Would buy again.", "asin": "B01", "parent_asin": "B00",
     "user_id": "AGBFYI2DDIKXC5Y4FARTYDTQBMFQ", "timestamp": 1588687728923, "helpful_vote": 2, "images": []},
    {"overall": 5.0, "reviewerID": "X", "asin": "Y", "summary": "Five Stars", "unixReviewTime": 1},
    {"rating": 5.0, "title": "", "text": "No title here", "asin": "B02", "user_id": "U", "timestamp": 2},
    {"overall": 4.0, "asin": "Y", "summary": "s", "reviewText": "t", "unixReviewTime": 1},
    {"stars": 3, "comment": "neither layout"},
]


def write_rows(path: Path, rows: list, extra: str = "") -> Path:
    text = "".join(json.dumps(r) + "\n" for r in rows) + extra
    path.write_bytes(gzip.compress(text.encode()) if path.suffix == ".gz" else text.encode())
    return path


def test_both_layouts_keys_scores_and_skips(tmp_path: Path) -> None:
    items = parse(write_rows(tmp_path / "reviews.json.gz", ROWS, "{not json\n"))
    got = [(r["id"], r["query"], r["document"], r["meta"].get("source_score")) for r in records(items)]
    assert got == [
        ("amz/1384719342/A2IBPI20UZIR0U/1393545600", "good", "Filters out the pop sounds.", 3.0),
        ("amz/B000K2PJ4K/ALJ66O1Y6SLHA/1441324800", "Runs small", "Too small for my feet.", 1204.0),
        ("amz/B01/AGBFYI2DDIKXC5Y4FARTYDTQBMFQ/1588687728923", "Sturdy", "Held up well.\nWould buy again.", 2.0),
    ]
    bad = [(r["position"], r["reason"]) for r in items if is_rejected(r)]
    assert bad == [("6", "missing_field:reviewerID"), ("7", "unknown_review_layout"), ("8", "invalid_json")]
    assert Counter(i.reason for i in items if isinstance(i, Skip)) == {"empty_body": 1, "empty_title": 1}


def test_min_rating_and_min_body_chars(tmp_path: Path) -> None:
    path = write_rows(tmp_path / "reviews.jsonl", ROWS[:3])
    items = parse(path, min_rating=3, min_body_chars=25)
    assert [r["query"] for r in records(items)] == ["good", "Sturdy"]
    assert sorted(i.reason for i in items if isinstance(i, Skip)) == ["below_min_rating"]
    items = parse(path, min_body_chars=28)
    assert [r["query"] for r in records(items)] == ["Sturdy"]
    assert sorted(i.reason for i in items if isinstance(i, Skip)) == ["short_body", "short_body"]


@pytest.mark.realdata
def test_real_2018_fashion_and_2014_instruments(realdata: Path) -> None:
    fashion = realdata / "amazon_reviews" / "AMAZON_FASHION_5.json"
    rows = [json.loads(line) for line in fashion.read_text().splitlines()]
    expected = [r for r in rows if r.get("summary", "").strip() and r.get("reviewText", "").strip()]
    items = parse(fashion)
    pairs = records(items)
    assert len(pairs) == len(expected) == 3160
    assert len({r["id"] for r in pairs}) == 3049  # the same review repeated under other product styles
    assert pairs[0]["id"] == "amz/B000K2PJ4K/ALJ66O1Y6SLHA/1441324800"
    assert (pairs[0]["query"], pairs[0]["document"]) == ("Five Stars", "Great product and price!")
    assert len(records(parse(fashion, min_rating=4))) == sum(r["overall"] >= 4 for r in expected) == 2613

    instruments = records(parse(realdata / "amazon_reviews" / "Musical_Instruments_5.sample.json"))
    assert len(instruments) == 50
    assert instruments[0]["id"] == "amz/1384719342/A2IBPI20UZIR0U/1393545600" and instruments[0]["query"] == "good"
    assert instruments[1]["meta"]["source_score"] == 13.0
