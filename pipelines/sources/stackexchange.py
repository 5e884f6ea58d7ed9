"""Stack Exchange data dumps: Posts.xml (and PostLinks.xml) as title/body, question/answer and duplicate pairs.

The dumps write one ``<row .../>`` element per line, so each line is parsed on its own: a malformed row
is one rejected row at its line number, never a dead file. ``paths`` are Posts files (plain or
compressed, one folder per site) or a site's ``.7z`` dump archive, read as a stream (storage/archive7z.py:
nothing is unpacked to disk).

Modes:
- ``title_body``: each question's title -> its body, one file at a time.
- ``question_answer``: title + body -> the accepted answer, else the best answer scoring at least
  ``min_answer_score``; answers meet their question in a Beam join by (site, question id).
- ``duplicate_questions``: PostLinks rows with LinkTypeId 3 -> the two questions' title + body, two
  Beam joins (the duplicate's side, then the original's side).

Accounting for the joins: questions, answers and links are parsed into ``Part`` items that are not
counted; each candidate pair (a question, a duplicate link) is counted once where the join decides it:
``in`` + ``kept`` when it becomes a record, ``skipped:<reason>`` when it cannot (no usable answer, a
linked post missing from the dump). Rows that cannot be parsed are ``in`` + ``rejected`` at the parse.
"""
from __future__ import annotations

import posixpath
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, BinaryIO, Literal, NamedTuple

import apache_beam as beam

from filters.html_text import html_to_text
from pipelines.funnel import Funnel
from pipelines.sources.base import (
    FileSource,
    Parsed,
    Part,
    Skip,
    SourceOutput,
    match_paths,
    parse_files,
)
from schemas.config import ConfigError
from schemas.record import new_record, rejected
from storage.archive7z import MissingArchiveMember, open_member
from storage.files import exists

POSTS_MEMBER = "Posts.xml"
POST_LINKS_MEMBER = "PostLinks.xml"
DUPLICATE_LINK_TYPE = "3"

POST_TYPES = {
    "2": "answer",
    "3": "orphaned_tag_wiki",
    "4": "tag_wiki_excerpt",
    "5": "tag_wiki",
    "6": "moderator_nomination",
    "7": "wiki_placeholder",
    "8": "privilege_wiki",
}
LINK_TYPES = {"1": "linked_post"}
# Lines of the dump that hold no row: the XML declaration and the root element's tags.
_FRAME_PREFIXES = (b"<?xml", b"<posts", b"</posts", b"<postlinks", b"</postlinks")
_BOM = b"\xef\xbb\xbf"


# ---------------------------------------------------------------------------------------------
# Site names and files


def site_name(path: str) -> str:
    """``coffee`` for ``.../coffee/Posts.xml.gz``, ``coffee.stackexchange.com.7z`` and ``stackoverflow.com-Posts.7z``-style names."""
    base = posixpath.basename(path.replace("\\", "/"))
    if base.lower().endswith(".7z"):
        name = base[: -len(".7z")]
        for table in ("-Posts", "-PostLinks"):
            if name.endswith(table):
                name = name[: -len(table)]
    else:
        name = posixpath.basename(posixpath.dirname(path.replace("\\", "/")))
    return name[: -len(".stackexchange.com")] if name.endswith(".stackexchange.com") else name


def sibling_post_links(posts_path: str) -> str:
    """Where a Posts file's PostLinks file lies: the same .7z site archive, Stack Overflow's -PostLinks.7z, or beside it."""
    folder, base = posixpath.split(posts_path)
    if base.lower().endswith(".7z"):
        return posixpath.join(folder, base.replace("-Posts.7z", "-PostLinks.7z")) if base.endswith("-Posts.7z") else posts_path
    stem, dot, suffix = base.partition(".")
    return posixpath.join(folder, "PostLinks" + dot + suffix) if stem == "Posts" else posixpath.join(folder, "PostLinks.xml")


# ---------------------------------------------------------------------------------------------
# Tables: a plain (or compressed) file, or a member of a .7z site archive


@contextmanager
def open_dump_table(path: str, stream: BinaryIO, member: str) -> Iterator[BinaryIO]:
    """The table's lines: the stream itself, or the member of a .7z site archive streamed out of it."""
    if not path.lower().endswith(".7z"):
        yield stream
        return
    with open_member(stream, member) as lines:
        yield lines


# ---------------------------------------------------------------------------------------------
# Rows


class DumpRow(NamedTuple):
    line: int
    attrs: dict[str, str]
    raw: bytes


@dataclass(frozen=True)
class BadRow:
    position: int | str
    reason: str
    raw: bytes


def dump_rows(lines: BinaryIO) -> Iterator[DumpRow | BadRow]:
    """Every ``<row .../>`` line with its number and attributes; a line that is not a well-formed row is a BadRow."""
    for line_number, line in enumerate(lines, start=1):
        text = line.strip()
        if line_number == 1 and text.startswith(_BOM):
            text = text[len(_BOM) :]
        if not text or text.startswith(_FRAME_PREFIXES):
            continue
        if not text.startswith(b"<row"):
            yield BadRow(line_number, "not_a_row", text)
            continue
        try:
            text.decode("utf-8")
        except UnicodeDecodeError:
            yield BadRow(line_number, "invalid_utf8", text)
            continue
        try:
            element = ET.fromstring(text)
        except ET.ParseError:
            yield BadRow(line_number, "malformed_xml_row", text)
            continue
        yield DumpRow(line_number, element.attrib, text)


# ---------------------------------------------------------------------------------------------
# The source


def _question_text(question: dict[str, Any]) -> str:
    body = html_to_text(question["html"])
    return f"{question['title']}\n\n{body}" if body else question["title"]


class StackExchangeSource(FileSource):
    def read(self, pipeline: beam.Pipeline) -> SourceOutput:
        mode = self.options.mode
        if mode == "title_body":
            return parse_files(pipeline, self.dataset, self.parse, self.paths, "read posts")
        if mode == "question_answer":
            return self._question_answer(pipeline)
        return self._duplicate_questions(pipeline)

    def _table_items(self, path: str, stream: BinaryIO, member: str, item: Callable[[str, str, DumpRow], Part | Parsed]) -> Iterator[Part | Parsed]:
        """One item per row of one dump table (Posts or PostLinks) of one site, made by ``item(site, path,
        row)``; bad lines as rejected rows."""
        site = site_name(path)
        try:
            with open_dump_table(path, stream, member) as lines:
                for row in dump_rows(lines):
                    yield item(site, path, row) if isinstance(row, DumpRow) else rejected(self.dataset, path, row.position, row.reason, row.raw)
        except MissingArchiveMember as err:
            yield rejected(self.dataset, path, member, "missing_archive_member", str(err))

    def _posts(self, path: str, stream: BinaryIO, with_answers: bool) -> Iterator[Part | Parsed]:
        """Question Parts keyed (site, Id) and, when asked, answer Parts keyed (site, ParentId).

        Bodies stay HTML here: the joins turn into text only the posts that make a pair, after the
        shuffle, so the one worker streaming a large dump does the least work per row.
        """
        return self._table_items(path, stream, POSTS_MEMBER, partial(self._post, with_answers=with_answers))

    def _post(self, site: str, path: str, row: DumpRow, with_answers: bool) -> Part | Parsed:
        line, attrs, raw = row
        post_id, post_type = attrs.get("Id", ""), attrs.get("PostTypeId", "")
        if not post_id.isdigit() or not post_type.isdigit():
            return rejected(self.dataset, path, line, "missing_id_or_post_type", raw)
        if post_type == "1":
            if "Title" not in attrs:
                return rejected(self.dataset, path, line, "question_without_title", raw)
            question = {
                "id": post_id,
                "title": attrs["Title"].strip(),
                "html": attrs.get("Body", ""),
                "score": _score(attrs),
                "accepted": attrs.get("AcceptedAnswerId"),
                "file": path,
                "row": line,
            }
            return Part((site, post_id), question)
        if post_type == "2" and with_answers:
            parent = attrs.get("ParentId", "")
            if not parent.isdigit():
                return rejected(self.dataset, path, line, "answer_without_parent", raw)
            return Part((site, parent), {"id": post_id, "html": attrs.get("Body", ""), "score": _score(attrs), "row": line})
        return Skip(POST_TYPES.get(post_type, f"post_type_{post_type}"))

    def parse(self, path: str, stream: BinaryIO) -> Iterator[Parsed]:
        """title_body: each question becomes title -> body."""
        site = site_name(path)
        for item in self._posts(path, stream, with_answers=False):
            if not isinstance(item, Part):
                yield item
                continue
            q = item.value
            body = html_to_text(q["html"])
            if not body:
                yield Skip("empty_body")
            else:
                yield new_record(self.dataset, f"{site}/{q['id']}", q["title"], body, file=path, row=q["row"], source_score=q["score"])

    def _question_answer(self, pipeline: beam.Pipeline) -> SourceOutput:
        parts, bad = parse_files(pipeline, self.dataset, partial(self._posts, with_answers=True), self.paths, "read posts")
        records = (
            parts
            | f"{self.dataset}: group answers by question" >> beam.GroupByKey()
            | f"{self.dataset}: pick answers" >> beam.ParDo(PickAnswerFn(self.dataset, self.options.min_answer_score))
        )
        return SourceOutput(records=records, rejected=bad)

    def _links(self, path: str, stream: BinaryIO) -> Iterator[Part | Parsed]:
        """Duplicate links as Parts keyed (site, PostId) holding the RelatedPostId."""
        return self._table_items(path, stream, POST_LINKS_MEMBER, self._link)

    def _link(self, site: str, path: str, row: DumpRow) -> Part | Parsed:
        line, attrs, raw = row
        post, related, link_type = attrs.get("PostId", ""), attrs.get("RelatedPostId", ""), attrs.get("LinkTypeId", "")
        if not (post.isdigit() and related.isdigit() and link_type.isdigit()):
            return rejected(self.dataset, path, line, "missing_post_link_field", raw)
        if link_type != DUPLICATE_LINK_TYPE:
            return Skip(LINK_TYPES.get(link_type, f"link_type_{link_type}"))
        return Part((site, post), {"related": related, "file": path, "row": line})

    def post_links_paths(self) -> list[str]:
        where = f"source {self.dataset!r}: post_links"
        if self.options.post_links:
            return match_paths(self.options.post_links, where)
        paths = sorted({sibling_post_links(p) for p in self.paths})
        for path in paths:
            if not exists(path):
                raise ConfigError(f"{where}: {path} (beside the Posts file) does not exist; name the PostLinks files in post_links")
        return paths

    def _duplicate_questions(self, pipeline: beam.Pipeline) -> SourceOutput:
        d = self.dataset
        questions, bad_posts = parse_files(pipeline, d, partial(self._posts, with_answers=False), self.paths, "read posts")
        links, bad_links = parse_files(pipeline, d, self._links, self.post_links_paths(), "read post links")
        halves = (
            {"post": questions, "link": links}
            | f"{d}: join duplicates" >> beam.CoGroupByKey()
            | f"{d}: duplicate side" >> beam.ParDo(LinkSideFn(d, "duplicate"))
        )
        records = (
            {"post": questions, "link": halves}
            | f"{d}: join originals" >> beam.CoGroupByKey()
            | f"{d}: original side" >> beam.ParDo(LinkSideFn(d, "original"))
        )
        rejected_rows = (bad_posts, bad_links) | f"{d}: rejected rows" >> beam.Flatten()
        return SourceOutput(records=records, rejected=rejected_rows)


def _score(attrs: dict[str, str]) -> float:
    try:
        return float(attrs.get("Score", "0"))
    except ValueError:
        return 0.0


class PickAnswerFn(beam.DoFn):
    """(site, question id) with its question and answers -> title + body -> accepted or best answer."""

    def __init__(self, dataset: str, min_answer_score: int) -> None:
        self.dataset = dataset
        self.min_answer_score = min_answer_score
        self.funnel = Funnel()

    def process(self, element: tuple[tuple[str, str], Any]) -> Iterator[Any]:
        (site, question_id), posts = element
        questions = [p for p in posts if "title" in p]
        answers = [p for p in posts if "title" not in p]
        if not questions:
            self.funnel.count(self.dataset, "read", "skipped:answer_without_question", len(answers))
            return
        question = questions[0]
        # The accepted answer first, then the others scoring enough, best first; the first with text wins.
        ranked = sorted(
            (a for a in answers if a["id"] == question["accepted"] or a["score"] >= self.min_answer_score),
            key=lambda a: (a["id"] != question["accepted"], -a["score"], int(a["id"])),
        )
        answer, text = next(((a, t) for a in ranked if (t := html_to_text(a["html"]))), (None, ""))
        if answer is None:
            self.funnel.count(self.dataset, "read", "skipped:no_usable_answer")
            return
        self.funnel.count(self.dataset, "read", "in")
        self.funnel.count(self.dataset, "read", "kept")
        yield new_record(
            self.dataset,
            f"{site}/{question_id}",
            _question_text(question),
            text,
            file=question["file"],
            row=question["row"],
            source_score=answer["score"],
        )


class LinkSideFn(beam.DoFn):
    """One side of a duplicate link: (site, post id) with the post and the links that name it.

    ``duplicate`` side (keyed by PostId): each link goes on keyed by its RelatedPostId, carrying the
    duplicate's text. ``original`` side (keyed by RelatedPostId): each link becomes the record
    duplicate -> original. A link whose post is not in the dump is skipped there.
    """

    def __init__(self, dataset: str, side: Literal["duplicate", "original"]) -> None:
        self.dataset = dataset
        self.side = side
        self.funnel = Funnel()

    def process(self, element: tuple[tuple[str, str], dict[str, list[Any]]]) -> Iterator[Any]:
        (site, post_id), joined = element
        links, posts = list(joined["link"]), list(joined["post"])
        if not posts:
            self.funnel.count(self.dataset, "read", f"skipped:{self.side}_post_missing", len(links))
            return
        text = _question_text(posts[0])
        for link in links:
            if self.side == "duplicate":
                yield (site, link["related"]), {**link, "post": post_id, "text": text}
                continue
            self.funnel.count(self.dataset, "read", "in")
            self.funnel.count(self.dataset, "read", "kept")
            yield new_record(self.dataset, f"{site}/{link['post']}-{post_id}", link["text"], text, file=link["file"], row=link["row"])
