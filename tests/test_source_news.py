"""The news reader: CNN/DailyMail (JSON lines and CSV), XSum, AG News with and without a header, CC-News."""
from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import pytest

from pipelines.sources.base import Skip, is_rejected
from pipelines.sources.news import NewsSource
from schemas.recipe import parse_source
from storage.compressed import open_input


def parse(path: Path, mode: str, **options) -> list:
    spec = parse_source({"dataset": "news", "kind": "news", "paths": [str(path)], "mode": mode, **options}, "test")
    with open_input(str(path)) as stream:
        return list(NewsSource(spec, [str(path)]).parse(str(path), stream))


def records(items: list) -> list:
    return [i for i in items if isinstance(i, dict) and not is_rejected(i)]


def pairs(items: list) -> list:
    return [(r["id"], r["query"], r["document"]) for r in records(items)]


def test_cnn_dailymail_json_lines_and_csv_export(tmp_path: Path) -> None:
    rows = [
        {"article": "LONDON (CNN) -- The article body.", "highlights": "First highlight .\nSecond highlight .",
         "id": "0001d1afc246a7964130f43ae940af6bc6c57f01"},
        {"article": "Body without an id.", "highlights": "Lost."},
        {"article": "", "highlights": "No article", "id": "x"},
    ]
    path = tmp_path / "train.jsonl.gz"
    path.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode()))
    items = parse(path, "cnn_dailymail")
    assert pairs(items) == [("news/0001d1afc246a7964130f43ae940af6bc6c57f01", "First highlight .\nSecond highlight .", "LONDON (CNN) -- The article body.")]
    assert [(r["position"], r["reason"]) for r in items if is_rejected(r)] == [("2", "missing_field:id")]
    assert [i.reason for i in items if isinstance(i, Skip)] == ["empty_article"]

    csv_path = tmp_path / "test.csv"
    csv_path.write_text(
        'id,article,highlights\n92c514c9,"By . Associated Press . PUBLISHED: . 14:11 EST, 25 October 2013 .",'
        '"Bishop John Folda, of North Dakota, is taking time off .\nHe contracted the infection ."\n'
    )
    assert pairs(parse(csv_path, "cnn_dailymail")) == [
        ("news/92c514c9", "Bishop John Folda, of North Dakota, is taking time off .\nHe contracted the infection .",
         "By . Associated Press . PUBLISHED: . 14:11 EST, 25 October 2013 .")
    ]


def test_xsum(tmp_path: Path) -> None:
    path = tmp_path / "xsum.jsonl"
    path.write_text(json.dumps({"document": "The full text of the article.", "summary": "A one-sentence summary.", "id": "29750031"}) + "\n")
    assert pairs(parse(path, "xsum")) == [("news/29750031", "A one-sentence summary.", "The full text of the article.")]


def test_ag_news_with_and_without_header(tmp_path: Path) -> None:
    body = '3,Wall St. Bears Claw Back Into the Black (Reuters),"Reuters - Short-sellers, Wall Street\'s dwindling\\band of ultra-cynics,  #36;10 million."\n'
    with_header = tmp_path / "test.csv"
    with_header.write_text("label,title,description\n" + body)
    items = parse(with_header, "ag_news")
    assert pairs(items) == [
        ("news/test.csv:2", "Wall St. Bears Claw Back Into the Black (Reuters)",
         "Reuters - Short-sellers, Wall Street's dwindling band of ultra-cynics,  $10 million.")
    ]
    assert [i.reason for i in items if isinstance(i, Skip)] == ["header_line"]
    original = tmp_path / "train.csv"
    original.write_text(body.replace("3,", '"3",', 1) + '"1","only two"\n')
    items = parse(original, "ag_news")
    assert [r["id"] for r in records(items)] == ["news/train.csv:1"]
    assert [(r["position"], r["reason"]) for r in items if is_rejected(r)] == [("2", "wrong_column_count")]


def test_cc_news_keys_by_url_else_line(tmp_path: Path) -> None:
    path = tmp_path / "cc_news.jsonl"
    rows = [
        {"title": "Storm hits coast", "text": "Heavy rain fell.", "url": "https://example.com/storm", "domain": "example.com"},
        {"title": "No url", "text": "Body."},
        {"title": "", "text": "Untitled."},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    items = parse(path, "cc_news")
    assert pairs(items) == [("news/https://example.com/storm", "Storm hits coast", "Heavy rain fell."), ("news/cc_news.jsonl:2", "No url", "Body.")]
    assert [i.reason for i in items if isinstance(i, Skip)] == ["empty_title"]


@pytest.mark.realdata
def test_real_ag_news_test_split(realdata: Path) -> None:
    items = parse(realdata / "news" / "ag_news_test.csv", "ag_news")
    got = records(items)
    assert len(got) == 7600 and not [i for i in items if is_rejected(i)]
    assert Counter(i.reason for i in items if isinstance(i, Skip)) == {"header_line": 1}
    first = got[0]
    assert (first["id"], first["query"]) == ("news/ag_news_test.csv:2", "Fears for T N pension after talks")
    assert first["document"] == (
        "Unions representing workers at Turner   Newall say they are 'disappointed' after talks with stricken parent firm Federal Mogul."
    )
    assert got[1]["document"].startswith("SPACE.com - TORONTO, Canada -- A second team of rocketeers competing for the  $10 million Ansari X Prize")
    assert got[2]["id"] == "news/ag_news_test.csv:4" and got[2]["query"] == "Ky. Company Wins Grant to Study Peptides (AP)"
