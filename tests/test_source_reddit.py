"""The Reddit reader: submissions title -> selftext, and post -> top comment through a Beam join."""
from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

from pipelines.funnel import build_funnel
from pipelines.sources.base import Skip, is_rejected
from pipelines.sources.reddit import RedditSource
from schemas.recipe import parse_source
from tests.helpers import run_source

SUBMISSIONS = [
    {"id": "abc1", "subreddit": "Coffee", "title": "Best grinder under $100?", "selftext": "Looking for a burr grinder.", "score": 12},
    {"id": "abc2", "subreddit": "Coffee", "title": "Look at my latte art", "selftext": "", "score": 40, "url": "https://i.redd.it/x.jpg"},
    {"id": "abc3", "subreddit": "Coffee", "title": "Gone", "selftext": "[deleted]", "score": 1},
    {"id": "abc4", "subreddit": "Coffee", "title": "Moderated", "selftext": "[removed]", "score": 0},
    {"subreddit": "Coffee", "title": "No id", "selftext": "text"},
]
COMMENTS = [
    {"id": "c1", "link_id": "t3_abc1", "parent_id": "t3_abc1", "body": "The Baratza Encore.", "score": 30},
    {"id": "c2", "link_id": "t3_abc1", "parent_id": "t3_abc1", "body": "A hand grinder.", "score": 45},
    {"id": "c3", "link_id": "t3_abc1", "parent_id": "t1_c1", "body": "Nested reply with a huge score.", "score": 500},
    {"id": "c4", "link_id": "t3_abc1", "parent_id": "t3_abc1", "body": "[removed]", "score": 900},
    {"id": "c5", "link_id": "t3_abc1", "parent_id": "t3_abc1", "body": "Rules reminder.", "score": 1000, "author": "AutoModerator", "stickied": True},
    {"id": "c6", "link_id": "t3_abc2", "parent_id": "t3_abc2", "body": "Nice rosetta!", "score": 5},
    {"id": "c7", "link_id": "t3_zzz9", "parent_id": "t3_zzz9", "body": "Reply to a post not in the files.", "score": 1},
    {"id": "c8", "parent_id": "t3_abc1", "body": "no link id", "score": 1},
]


def write_lines(path: Path, rows: list) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def make_source(paths: list[str], **options) -> RedditSource:
    spec = parse_source({"dataset": "rd", "kind": "reddit", "paths": paths, **options}, "test")
    return RedditSource(spec, paths)


def test_submissions_title_to_selftext(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "RS_2019-04", SUBMISSIONS)
    items = list(make_source([path]).parse(path, io.BytesIO(Path(path).read_bytes())))
    records = [i for i in items if isinstance(i, dict) and not is_rejected(i)]
    assert [(r["id"], r["query"], r["document"], r["meta"]["source_score"]) for r in records] == [
        ("rd/abc1", "Best grinder under $100?", "Looking for a burr grinder.", 12.0)
    ]
    assert Counter(i.reason for i in items if isinstance(i, Skip)) == {"empty_selftext": 1, "deleted_selftext": 1, "removed_selftext": 1}
    assert [(r["position"], r["reason"]) for r in items if is_rejected(r)] == [("5", "missing_field:id")]


def test_post_to_top_comment_join(tmp_path: Path) -> None:
    posts = write_lines(tmp_path / "RS.jsonl", SUBMISSIONS)
    comments = write_lines(tmp_path / "RC.jsonl", COMMENTS)
    run = run_source(make_source([posts], comments=[comments]), tmp_path)
    got = sorted((r["id"], r["query"], r["document"], r["meta"]["source_score"]) for r in run.records)
    assert got == [
        ("rd/abc1/c2", "Best grinder under $100?\n\nLooking for a burr grinder.", "A hand grinder.", 45.0),
        ("rd/abc2/c6", "Look at my latte art", "Nice rosetta!", 5.0),
    ]
    assert sorted((Path(r["file"]).name, r["position"], r["reason"]) for r in run.rejected) == [
        ("RC.jsonl", "8", "missing_field:link_id"),
        ("RS.jsonl", "5", "missing_field:id"),
    ]
    c = run.counters
    assert c["rd|read|in"] == 4 and c["rd|read|kept"] == 2
    assert c["rd|read|skipped:no_usable_comment"] == 2  # abc3 and abc4: link posts without replies
    assert c["rd|read|skipped:comment_without_submission"] == 1
    assert c["rd|read|skipped:nested_reply"] == 1 and c["rd|read|skipped:removed_comment"] == 1
    assert c["rd|read|skipped:moderator_comment"] == 1
    assert build_funnel(c, ["rd"])["rd"]["read"] == len(run.records) + len(run.rejected)
