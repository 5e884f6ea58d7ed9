"""The demo corpus: each file parses in its published format, and the ground truth matches what the files hold."""
from __future__ import annotations

import csv
import gzip
import hashlib
import io
import itertools
import json
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

import pytest

from demo.corpus import generate_demo_corpus
from demo.formats.stackexchange import write_posts_xml
from demo.text import NEAR_JACCARD, document_words, shingle_jaccard

PLANTED = ("exact_duplicates", "near_duplicates", "non_english", "mismatched")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("demo")
    return folder, generate_demo_corpus(folder, seed=3, scale=0.5)


def xml_rows(path: Path) -> list[dict[str, str]]:
    rows = []
    for _, element in ET.iterparse(path):
        if element.tag == "row":
            rows.append(dict(element.attrib))
    return rows


def json_lines(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


def stackexchange_views(folder: Path, site: str) -> dict[str, dict[str, tuple[str, str]]]:
    posts = {row["Id"]: row for row in xml_rows(folder / "Posts.xml")}
    answers = defaultdict(list)
    for row in posts.values():
        if row["PostTypeId"] == "2":
            answers[row["ParentId"]].append(row)
    questions = {i: row for i, row in posts.items() if row["PostTypeId"] == "1"}
    title_body = {f"{site}/{i}": (q["Title"], q["Body"]) for i, q in questions.items()}
    question_answer = {}
    for i, q in questions.items():
        scored = [a for a in answers[i] if int(a["Score"]) >= 1]
        best = max(scored, key=lambda a: int(a["Score"]), default=None)
        best = posts[q["AcceptedAnswerId"]] if "AcceptedAnswerId" in q else best
        if best:
            question_answer[f"{site}/{i}"] = (q["Title"] + " " + q["Body"], best["Body"])
    duplicates = {}
    for link in xml_rows(folder / "PostLinks.xml"):
        a, b = questions.get(link["PostId"]), questions.get(link["RelatedPostId"])
        if link["LinkTypeId"] == "3" and a and b:
            duplicates[f"{site}/{a['Id']}-{b['Id']}"] = (a["Title"] + " " + a["Body"], b["Title"] + " " + b["Body"])
    base = f"stackexchange/{site}/"
    return {base + "Posts.xml#title_body": title_body, base + "Posts.xml#question_answer": question_answer,
            base + "PostLinks.xml#duplicate_questions": duplicates}


def reddit_views(folder: Path) -> dict[str, dict[str, tuple[str, str]]]:
    submissions = {s["id"]: s for s in json_lines(folder / "submissions.jsonl")}
    title_body = {i: (s["title"], s["selftext"]) for i, s in submissions.items()
                  if s["selftext"] not in ("", "[deleted]", "[removed]")}
    top: dict[str, dict] = {}
    for c in json_lines(folder / "comments.jsonl"):
        if c["parent_id"] == c["link_id"] and c["body"] not in ("[deleted]", "[removed]"):
            sid = c["link_id"][3:]
            if sid not in top or c["score"] > top[sid]["score"]:
                top[sid] = c
    post_comment = {f"{sid}/{c['id']}": (submissions[sid]["title"], c["body"]) for sid, c in top.items()}
    return {"reddit/submissions.jsonl#title_body": title_body, "reddit/comments.jsonl#post_comment": post_comment}


def all_views(root: Path) -> dict[str, dict[str, tuple[str, str]]]:
    """Every source view as natural key -> (query, document), read with the standard library only."""
    views = {**stackexchange_views(root / "stackexchange/cooking", "cooking"),
             **stackexchange_views(root / "stackexchange/bicycles", "bicycles"), **reddit_views(root / "reddit")}
    with open(root / "quora/quora_duplicate_questions.tsv", encoding="utf-8", newline="") as tsv:
        views["quora/quora_duplicate_questions.tsv"] = {
            row["id"]: (row["question1"], row["question2"]) for row in csv.DictReader(tsv, dialect="excel-tab")
            if row["is_duplicate"] == "1"}
    views["amazon/reviews_2018.json.gz"] = {
        f"{r['asin']}/{r['reviewerID']}/{r['unixReviewTime']}": (r["summary"], r["reviewText"])
        for r in json_lines(root / "amazon/reviews_2018.json.gz")}
    views["amazon/reviews_2023.jsonl"] = {f"{r['asin']}/{r['user_id']}/{r['timestamp']}": (r["title"], r["text"])
                                          for r in json_lines(root / "amazon/reviews_2023.jsonl")}
    views["news/cnn_dailymail.jsonl"] = {r["id"]: (r["highlights"], r["article"])
                                         for r in json_lines(root / "news/cnn_dailymail.jsonl")}
    return views


def test_files_parse_in_their_published_formats(corpus):
    root, truth = corpus
    posts = root / "stackexchange/cooking/Posts.xml"
    assert posts.read_bytes().startswith(b'\xef\xbb\xbf<?xml version="1.0" encoding="utf-8"?>\n<posts>\n  <row Id="')
    assert ET.parse(posts).getroot().tag == "posts"
    assert ET.parse(root / "stackexchange/cooking/PostLinks.xml").getroot().tag == "postlinks"
    types = {row["PostTypeId"] for row in xml_rows(posts)}
    assert types == {"1", "2", "4", "5"}
    with open(root / "quora/quora_duplicate_questions.tsv", encoding="utf-8", newline="") as tsv:
        rows = list(csv.reader(tsv, dialect="excel-tab"))
    assert rows[0] == ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"]
    assert {len(row) for row in rows} == {6} and {row[5] for row in rows[1:]} == {"0", "1"}
    review = json_lines(root / "amazon/reviews_2018.json.gz")[0]
    assert {"overall", "verified", "reviewTime", "reviewerID", "asin", "reviewerName", "reviewText", "summary",
            "unixReviewTime"} <= review.keys()
    assert set(json_lines(root / "amazon/reviews_2023.jsonl")[0]) == {
        "rating", "title", "text", "images", "asin", "parent_asin", "user_id", "timestamp", "helpful_vote",
        "verified_purchase"}
    article = json_lines(root / "news/cnn_dailymail.jsonl")[0]
    assert set(article) == {"article", "highlights", "id"} and len(article["id"]) == 40
    submissions = json_lines(root / "reddit/submissions.jsonl")
    assert {"[deleted]", "[removed]", ""} <= {s["selftext"] for s in submissions}
    comments = json_lines(root / "reddit/comments.jsonl")
    ids = {s["id"] for s in submissions} | {c["id"] for c in comments}
    assert all(c["link_id"][3:] in ids and c["parent_id"][3:] in ids for c in comments)
    assert {c["parent_id"][:3] for c in comments} == {"t1_", "t3_"}
    for file in truth["files"]:
        assert (root / file).is_file(), file
    assert json.loads((root / "ground_truth.json").read_text(encoding="utf-8")) == truth


def test_pair_counts_and_planted_keys_match_the_files(corpus):
    root, truth = corpus
    views = all_views(root)
    assert set(views) == set(truth["sources"])
    for name, view in truth["sources"].items():
        records = views[name]
        repeats = sum(n - 1 for n in view.get("repeated_keys", {}).values())
        assert view["pairs"] == len(records) + repeats, name
        planted = [key for category in PLANTED for key in view[category]]
        assert len(planted) == len(set(planted)), f"{name}: an item is planted twice"
        assert set(planted) <= set(records), name
        originals = list(view["exact_duplicates"].values()) + [v["original"] for v in view["near_duplicates"].values()]
        assert set(originals) <= set(records) - set(planted), name
        for key, original in view["exact_duplicates"].items():
            assert records[key] == records[original], key
        assert len(set(records.values())) == len(records) - len(view["exact_duplicates"]), f"{name}: unplanted copies"
        for key, lang in view["non_english"].items():
            assert lang in ("fr", "de", "es")
            assert not {"the", "and", "with"} & set(document_words(" ".join(records[key]))), key
    assert all(truth["sources"][name]["exact_duplicates"] for name in truth["sources"] if "#" not in name)


def test_near_duplicates_have_the_planted_jaccard(corpus):
    root, truth = corpus
    views = all_views(root)
    low, high = NEAR_JACCARD
    checked = 0
    for name, view in truth["sources"].items():
        for key, planted in view["near_duplicates"].items():
            document, original = views[name][key][1], views[name][planted["original"]][1]
            assert len(document_words(original)) >= 60, key
            similarity = shingle_jaccard(document, original)
            assert low <= similarity <= high and similarity == pytest.approx(planted["jaccard"], abs=1e-4), key
            checked += 1
    assert checked >= 10


def test_unplanted_documents_are_not_near_duplicates(corpus):
    """Shared template text must not make two ordinary documents look alike to MinHash dedup (thresholds ~0.7-0.85)."""
    root, truth = corpus
    views = all_views(root)
    for name, view in truth["sources"].items():
        if name.startswith("quora/"):
            continue  # a Quora question recurs across rows by design, as in the real file
        planted = {key for category in PLANTED for key in view[category]}
        shingles = []
        for key, (_, document) in views[name].items():
            words = document_words(document)
            if key not in planted:
                shingles.append({tuple(words[i:i + 5]) for i in range(max(1, len(words) - 4))})
        worst = max(len(a & b) / len(a | b) for a, b in itertools.combinations(shingles, 2))
        assert worst < 0.6, name


def digest(folder: Path) -> dict[str, str]:
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}


def test_same_seed_writes_identical_bytes(tmp_path):
    generate_demo_corpus(tmp_path / "a", seed=7, scale=0.2)
    generate_demo_corpus(tmp_path / "b", seed=7, scale=0.2)
    generate_demo_corpus(tmp_path / "c", seed=8, scale=0.2)
    first, second, other = (digest(tmp_path / name) for name in "abc")
    assert first == second and len(first) == 11
    assert all(first[file] != other[file] for file in first)


def test_scale_multiplies_the_counts(corpus, tmp_path):
    small = generate_demo_corpus(tmp_path, seed=3, scale=0.2)["files"]
    large = corpus[1]["files"]  # scale 0.5
    for file in small:
        assert 1.5 * small[file]["rows"] < large[file]["rows"], file
    ratio = sum(f["rows"] for f in large.values()) / sum(f["rows"] for f in small.values())
    assert 2.2 < ratio < 2.8


def test_write_posts_xml_streams_a_file_of_the_requested_size(tmp_path):
    path = tmp_path / "Posts.xml"
    written = write_posts_xml(path, 300_000, seed=1)
    assert written["bytes"] == path.stat().st_size >= 300_000
    rows = xml_rows(path)
    ids = [int(row["Id"]) for row in rows]
    assert len(rows) == written["rows"] and ids == sorted(set(ids))
    by_id = {row["Id"]: row for row in rows}
    assert all(by_id[row["ParentId"]]["PostTypeId"] == "1" for row in rows if row["PostTypeId"] == "2")
    assert io.BytesIO(path.read_bytes()).read().endswith(b"</posts>")
