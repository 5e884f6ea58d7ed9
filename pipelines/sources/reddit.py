"""Reddit from Pushshift JSON lines: submission title -> self text, or post -> its top comment.

Without ``comments``, each submission with a real self text (not empty, ``[deleted]`` or
``[removed]``) becomes title -> selftext, keyed by its ``id``. With ``comments``, each submission
(title, plus its self text when there is one) is paired with its highest-scored direct reply
(``parent_id == link_id == t3_<id>``; deleted, removed, stickied and AutoModerator comments do not
count), keyed ``<submission id>/<comment id>``: a Beam join by submission id. As in the Stack
Exchange joins, submissions and comments are uncounted Parts; each submission is counted once at
the join (``in`` + ``kept``, or ``skipped:no_usable_comment``).
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypedDict

import apache_beam as beam

from pipelines.funnel import Funnel
from pipelines.sources.base import Parsed, Part, Skip, SourceOutput, is_rejected, match_paths, parse_files
from pipelines.sources.generic import JsonlSource
from schemas.record import RejectedRow, new_record, rejected

GONE = {"[deleted]": "deleted", "[removed]": "removed"}
BOT_AUTHORS = {"AutoModerator"}


class Submission(TypedDict):
    """The checked fields of a submission row (``selftext`` is as read: the callers check it)."""

    id: str
    title: str
    selftext: Any
    score: float
    file: str
    row: int


def _score(row: dict[str, Any]) -> float:
    value = row.get("score")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def text_problem(text: Any, what: str) -> str | None:
    """Why a body cannot be used (``empty_selftext``, ``deleted_comment``, ...), or None."""
    if not isinstance(text, str) or not text.strip():
        return f"empty_{what}"
    gone = GONE.get(text.strip())
    return f"{gone}_{what}" if gone else None


class RedditSource(JsonlSource):
    def read(self, pipeline: beam.Pipeline) -> SourceOutput:
        if not self.options.comments:
            return parse_files(pipeline, self.dataset, self.parse, self.paths, "read submissions")
        d = self.dataset
        comment_paths = match_paths(self.options.comments, f"source {d!r}: comments")
        posts, bad_posts = parse_files(pipeline, d, SubmissionParts(self.spec, self.paths).parse, self.paths, "read submissions")
        comments, bad_comments = parse_files(pipeline, d, CommentParts(self.spec, comment_paths).parse, comment_paths, "read comments")
        records = (
            {"post": posts, "comment": comments}
            | f"{d}: join comments to posts" >> beam.CoGroupByKey()
            | f"{d}: pick top comments" >> beam.ParDo(PickTopCommentFn(d))
        )
        return SourceOutput(records=records, rejected=(bad_posts, bad_comments) | f"{d}: rejected rows" >> beam.Flatten())

    def submission(self, row: Any, path: str, position: int, raw: str) -> Submission | RejectedRow | Skip:
        """The checked fields of a submission row, or the rejected row / skip it is."""
        if not isinstance(row, dict):
            return rejected(self.dataset, path, position, "not_an_object", raw)
        post_id, title = row.get("id"), row.get("title")
        if not isinstance(post_id, str) or not post_id:
            return rejected(self.dataset, path, position, "missing_field:id", raw)
        if not isinstance(title, str):
            return rejected(self.dataset, path, position, "missing_field:title", raw)
        if not title.strip():
            return Skip("empty_title")
        return {"id": post_id, "title": title.strip(), "selftext": row.get("selftext"), "score": _score(row), "file": path, "row": position}

    def map_row(self, row: Any, path: str, position: int, raw: str) -> Parsed:
        post = self.submission(row, path, position, raw)
        if isinstance(post, Skip) or is_rejected(post):
            return post
        problem = text_problem(post["selftext"], "selftext")
        if problem:
            return Skip(problem)
        return new_record(
            self.dataset, post["id"], post["title"], post["selftext"].strip(), file=path, row=position, source_score=post["score"]
        )


class SubmissionParts(RedditSource):
    """Submissions as Parts keyed by id, for the join with comments."""

    def map_row(self, row: Any, path: str, position: int, raw: str) -> Any:
        post = self.submission(row, path, position, raw)
        if isinstance(post, Skip) or is_rejected(post):
            return post
        if not text_problem(post["selftext"], "selftext"):
            post["title"] = f"{post['title']}\n\n{post['selftext'].strip()}"
        return Part(post["id"], {"query": post["title"], "file": path, "row": position})


class CommentParts(JsonlSource):
    """Direct replies to a submission as Parts keyed by the submission id; other comments are skipped."""

    def map_row(self, row: Any, path: str, position: int, raw: str) -> Any:
        if not isinstance(row, dict):
            return rejected(self.dataset, path, position, "not_an_object", raw)
        comment_id, link_id, parent_id = row.get("id"), row.get("link_id"), row.get("parent_id")
        for name, value in (("id", comment_id), ("link_id", link_id), ("parent_id", parent_id)):
            if not isinstance(value, str) or not value:
                return rejected(self.dataset, path, position, f"missing_field:{name}", raw)
        assert isinstance(link_id, str)  # checked in the loop above
        if parent_id != link_id or not link_id.startswith("t3_"):
            return Skip("nested_reply")
        if row.get("stickied") is True or row.get("author") in BOT_AUTHORS:
            return Skip("moderator_comment")
        problem = text_problem(row.get("body"), "comment")
        if problem:
            return Skip(problem)
        return Part(link_id[3:], {"id": comment_id, "body": row["body"].strip(), "score": _score(row), "row": position})


class PickTopCommentFn(beam.DoFn):
    """(submission id, posts and direct replies) -> post -> highest-scored reply."""

    def __init__(self, dataset: str) -> None:
        self.dataset = dataset
        self.funnel = Funnel()

    def process(self, element: tuple[str, dict[str, list[Any]]]) -> Iterator[Any]:
        post_id, joined = element
        posts, comments = list(joined["post"]), list(joined["comment"])
        if not posts:
            self.funnel.count(self.dataset, "read", "skipped:comment_without_submission", len(comments))
            return
        if not comments:
            self.funnel.count(self.dataset, "read", "skipped:no_usable_comment")
            return
        post = posts[0]
        top = min(comments, key=lambda c: (-c["score"], c["id"]))
        self.funnel.count(self.dataset, "read", "in")
        self.funnel.count(self.dataset, "read", "kept")
        yield new_record(
            self.dataset, f"{post_id}/{top['id']}", post["query"], top["body"], file=post["file"], row=post["row"], source_score=top["score"]
        )
