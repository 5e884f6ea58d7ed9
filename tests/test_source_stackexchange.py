"""The Stack Exchange reader: dump rows, the three pairing modes (Beam joins), .7z archives read as streams."""
from __future__ import annotations

import base64
import bz2
import io
import random
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import py7zr
import pytest

from pipelines.funnel import build_funnel
from pipelines.sources.base import Skip, is_rejected
from pipelines.sources.stackexchange import (
    StackExchangeSource,
    open_dump_table,
    sibling_post_links,
    site_name,
)
from schemas.recipe import parse_source
from storage.archive7z import SevenZipMemberStream
from tests.helpers import run_source


def make_source(paths: list[str], **options: Any) -> StackExchangeSource:
    spec = parse_source({"dataset": "se", "kind": "stackexchange", "paths": paths, **options}, "test")
    return StackExchangeSource(spec, paths)


def row(**attrs: Any) -> str:
    return "  <row " + " ".join(f"{k}={quoteattr(str(v), {chr(10): '&#xA;'})}" for k, v in attrs.items()) + " />"


def dump(root: str, rows: list[str]) -> bytes:
    return ("\ufeff<?xml version=\"1.0\" encoding=\"utf-8\"?>\n" + f"<{root}>\n" + "\n".join(rows) + f"\n</{root}>\n").encode()


POSTS = [
    row(Id=1, PostTypeId=1, AcceptedAnswerId=3, Score=5, Title="How do I store beans?",
        Body="<p>Whole beans &amp; air.</p>\n<pre><code>keep &lt;cool&gt;\n  dry\n</code></pre>"),
    row(Id=2, PostTypeId=2, ParentId=1, Score=9, Body="<p>Best answer by score</p>"),
    row(Id=3, PostTypeId=2, ParentId=1, Score=0, Body="<p>Accepted answer</p>"),
    row(Id=4, PostTypeId=1, Score=1, Title="Grind size?", Body="<p>Which grind?</p>"),
    row(Id=5, PostTypeId=2, ParentId=4, Score=0, Body="<p>Low</p>"),
    row(Id=6, PostTypeId=2, ParentId=4, Score=3, Body="<p>Medium fine</p>"),
    row(Id=7, PostTypeId=2, ParentId=4, Score=3, Body="<p>Later tie</p>"),
    row(Id=8, PostTypeId=1, Score=0, Title="Unanswered?", Body="<p>Nobody knows.</p>"),
    row(Id=9, PostTypeId=2, ParentId=8, Score=0, Body="<p>Zero score</p>"),
    '  <row Id="10" PostTypeId="1" Title="broken <row',
    row(Id=11, PostTypeId=5, Body="<p>tag wiki</p>"),
    row(Id=12, PostTypeId=4, Body="excerpt"),
    row(Id=13, PostTypeId=1, Score=2, Title="Duplicate of 1", Body="<p>Beans storage again</p>"),
]
POST_LINKS = [
    row(Id=1, PostId=13, RelatedPostId=1, LinkTypeId=3),
    row(Id=2, PostId=4, RelatedPostId=1, LinkTypeId=1),
    row(Id=3, PostId=13, RelatedPostId=99, LinkTypeId=3),
    row(Id=4, PostId=98, RelatedPostId=1, LinkTypeId=3),
]


def write_site(folder: Path, posts_name: str = "Posts.xml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    data = dump("posts", POSTS)
    (folder / posts_name).write_bytes(bz2.compress(data) if posts_name.endswith(".bz2") else data)
    (folder / posts_name.replace("Posts", "PostLinks")).write_bytes(
        bz2.compress(dump("postlinks", POST_LINKS)) if posts_name.endswith(".bz2") else dump("postlinks", POST_LINKS)
    )
    return folder / posts_name


def test_site_names_and_post_links_beside_posts() -> None:
    assert site_name("/d/coffee/Posts.xml.gz") == "coffee"
    assert site_name("gs://b/coffee.stackexchange.com.7z") == "coffee"
    assert site_name("/d/stackoverflow.com-Posts.7z") == "stackoverflow.com"
    assert site_name("/d/french.meta.stackexchange.com/Posts.xml") == "french.meta"
    assert sibling_post_links("/d/coffee/Posts.xml.bz2") == "/d/coffee/PostLinks.xml.bz2"
    assert sibling_post_links("/d/coffee.stackexchange.com.7z") == "/d/coffee.stackexchange.com.7z"
    assert sibling_post_links("/d/stackoverflow.com-Posts.7z") == "/d/stackoverflow.com-PostLinks.7z"


def test_title_body_parse_rows_one_by_one(tmp_path: Path) -> None:
    path = str(write_site(tmp_path / "coffee"))
    source = make_source([path])
    items = list(source.parse(path, io.BytesIO(Path(path).read_bytes())))
    records = [i for i in items if isinstance(i, dict) and not is_rejected(i)]
    assert [r["id"] for r in records] == ["se/coffee/1", "se/coffee/4", "se/coffee/8", "se/coffee/13"]
    first = records[0]
    assert first["query"] == "How do I store beans?"
    assert first["document"] == "Whole beans & air.\n\nkeep <cool>\n  dry"
    assert first["meta"] == {"file": path, "row": 3, "source_score": 5.0}
    (bad,) = [i for i in items if is_rejected(i)]
    assert (bad["position"], bad["reason"]) == ("12", "malformed_xml_row") and bad["raw"].startswith('<row Id="10"')
    skips = Counter(i.reason for i in items if isinstance(i, Skip))
    assert skips == {"answer": 6, "tag_wiki": 1, "tag_wiki_excerpt": 1}


def test_question_answer_join_and_counts(tmp_path: Path) -> None:
    path = str(write_site(tmp_path / "coffee", "Posts.xml.bz2"))
    run = run_source(make_source([path], mode="question_answer", min_answer_score=1), tmp_path)
    pairs = {r["id"]: (r["query"], r["document"], r["meta"]["source_score"]) for r in run.records}
    assert pairs == {
        "se/coffee/1": ("How do I store beans?\n\nWhole beans & air.\n\nkeep <cool>\n  dry", "Accepted answer", 0.0),
        "se/coffee/4": ("Grind size?\n\nWhich grind?", "Medium fine", 3.0),
    }
    assert [(r["position"], r["reason"]) for r in run.rejected] == [("12", "malformed_xml_row")]
    c = run.counters
    assert c["se|read|in"] == 3 and c["se|read|kept"] == 2 and c["se|read|rejected:malformed_xml_row"] == 1
    assert c["se|read|skipped:no_usable_answer"] == 2  # questions 8 (only a zero-score answer) and 13 (none)
    assert build_funnel(c, ["se"])["se"]["read"] == len(run.records) + len(run.rejected)


def test_duplicate_questions_two_joins(tmp_path: Path) -> None:
    path = str(write_site(tmp_path / "coffee"))
    run = run_source(make_source([path], mode="duplicate_questions"), tmp_path)
    (record,) = run.records
    assert record["id"] == "se/coffee/13-1"
    assert record["query"] == "Duplicate of 1\n\nBeans storage again"
    assert record["document"].startswith("How do I store beans?\n\nWhole beans & air.")
    assert record["meta"]["file"].endswith("PostLinks.xml") and record["meta"]["row"] == 3
    c = run.counters
    assert c["se|read|in"] == 2 and c["se|read|kept"] == 1  # the pair, and the malformed Posts row
    assert c["se|read|skipped:original_post_missing"] == 1 and c["se|read|skipped:duplicate_post_missing"] == 1
    assert c["se|read|skipped:linked_post"] == 1


def test_missing_post_links_is_a_config_error(tmp_path: Path) -> None:
    folder = tmp_path / "coffee"
    folder.mkdir()
    (folder / "Posts.xml").write_bytes(dump("posts", POSTS))
    with pytest.raises(ValueError, match=r"PostLinks\.xml .*does not exist"):
        make_source([str(folder / "Posts.xml")], mode="duplicate_questions").post_links_paths()


def write_7z(path: Path, members: dict[str, bytes]) -> Path:
    with py7zr.SevenZipFile(path, "w", filters=[{"id": py7zr.FILTER_LZMA2, "preset": 1}]) as archive:
        for name, data in members.items():
            archive.writestr(data, name)
    return path


def test_7z_member_streams_whole_and_stops_early(tmp_path: Path) -> None:
    # Random text barely compresses, so py7zr hands it over in several chunks (one per MiB read).
    data = b"".join(base64.b64encode(random.Random(i).randbytes(600)) + b"\n" for i in range(3000))
    archive_path = write_7z(tmp_path / "big.7z", {"Users.xml": b"<users />\n", "Posts.xml": data})
    with open(archive_path, "rb") as stream, py7zr.SevenZipFile(stream) as archive:
        member = SevenZipMemberStream(archive, "Posts.xml", max_chunks=1)
        assert member.read() == data
        member.close()
    with open(archive_path, "rb") as stream, open_dump_table(str(archive_path), stream, "Posts.xml") as lines:
        assert next(iter(lines)) == data.split(b"\n")[0] + b"\n"  # closing early stops the blocked extracting thread


def test_7z_site_archive_all_modes(tmp_path: Path) -> None:
    archive = write_7z(
        tmp_path / "coffee.stackexchange.com.7z",
        {"Badges.xml": b"<badges />\n", "PostLinks.xml": dump("postlinks", POST_LINKS), "Posts.xml": dump("posts", POSTS)},
    )
    qa = run_source(make_source([str(archive)], mode="question_answer"), tmp_path / "qa")
    assert sorted(r["id"] for r in qa.records) == ["se/coffee/1", "se/coffee/4"]
    dup = run_source(make_source([str(archive)], mode="duplicate_questions"), tmp_path / "dup")
    assert [r["id"] for r in dup.records] == ["se/coffee/13-1"]


def test_7z_without_posts_and_corrupt_archive_are_rejected(tmp_path: Path) -> None:
    no_posts = write_7z(tmp_path / "a.7z", {"Users.xml": b"<users />\n"})
    corrupt = tmp_path / "b.7z"
    good = write_7z(tmp_path / "good.7z", {"Posts.xml": dump("posts", POSTS) * 3})
    corrupt.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    run = run_source(make_source([str(no_posts), str(corrupt)]), tmp_path)
    reasons = sorted((Path(r["file"]).name, r["reason"]) for r in run.rejected)
    assert reasons == [("a.7z", "missing_archive_member"), ("b.7z", "truncated_or_corrupt_file")]
    assert run.records == []


def real_questions(path: Path) -> dict[str, dict[str, str]]:
    return {e.get("Id"): dict(e.attrib) for _, e in ET.iterparse(path) if e.tag == "row" and e.get("PostTypeId") == "1"}


@pytest.mark.realdata
def test_real_coffee_title_body_and_accepted_answers(realdata: Path, tmp_path: Path) -> None:
    path = realdata / "stackexchange" / "coffee" / "Posts.xml"
    questions = real_questions(path)
    answers = {e.get("Id"): dict(e.attrib) for _, e in ET.iterparse(path) if e.tag == "row" and e.get("PostTypeId") == "2"}
    source = make_source([str(path)])
    items = list(source.parse(str(path), io.BytesIO(path.read_bytes())))
    records = [i for i in items if isinstance(i, dict)]
    assert len(records) == len(questions) == 225
    assert Counter(i.reason for i in items if isinstance(i, Skip)) == {"answer": 327, "tag_wiki": 20, "tag_wiki_excerpt": 20}
    assert records[0]["id"] == "se/coffee/1" and records[0]["query"] == "How should I store whole bean coffee?"
    assert records[0]["document"].startswith("I just got a pound of microroasted, local coffee and am curious what the optimal way")

    # min_answer_score high enough that only accepted answers make pairs.
    run = run_source(make_source([str(path)], mode="question_answer", min_answer_score=10_000), tmp_path)
    with_accepted = {q for q, attrs in questions.items() if attrs.get("AcceptedAnswerId") in answers}
    assert {r["id"] for r in run.records} == {f"se/coffee/{q}" for q in with_accepted}
    assert len(run.records) == 105
    by_id = {r["id"]: r for r in run.records}
    assert by_id["se/coffee/1"]["document"].startswith("In a cool, dark, dry, place and whenever possible vacuum sealed.\n\n")
    assert run.counters["se|read|skipped:no_usable_answer"] == 225 - 105

    # With the default minimum (1), questions without an accepted answer take their best answer scoring >= 1.
    run = run_source(make_source([str(path)], mode="question_answer"), tmp_path / "fallback")
    best_scoring = {q for q in questions if q not in with_accepted and any(a["ParentId"] == q and int(a["Score"]) >= 1 for a in answers.values())}
    assert {r["id"] for r in run.records} == {f"se/coffee/{q}" for q in with_accepted | best_scoring}
    assert len(run.records) == 105 + 103


@pytest.mark.realdata
def test_real_french_meta_duplicates(realdata: Path, tmp_path: Path) -> None:
    folder = realdata / "stackexchange" / "french_meta"
    questions = real_questions(folder / "Posts.xml")
    links = [e.attrib for _, e in ET.iterparse(folder / "PostLinks.xml") if e.tag == "row" and e.get("LinkTypeId") == "3"]
    expected = {
        f"se/french_meta/{link['PostId']}-{link['RelatedPostId']}" for link in links if link["PostId"] in questions and link["RelatedPostId"] in questions
    }
    run = run_source(make_source([str(folder / "Posts.xml")], mode="duplicate_questions"), tmp_path)
    assert {r["id"] for r in run.records} == expected and len(expected) == 6
    pair = next(r for r in run.records if r["id"] == "se/french_meta/297-2")
    assert pair["document"].startswith(questions["2"]["Title"])
    assert pair["query"].startswith(questions["297"]["Title"])
