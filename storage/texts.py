"""Texts of evaluation files, on any Beam filesystem: BEIR folders, JSON lines, plain lines.

A BEIR folder holds ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl`` (``_id``, ``text``) and
``qrels/<split>.tsv``; a corpus row's text is its title and text joined by a space (the trainer's evaluation
and decontamination read them alike). A line that is not what the format says is a one-line ConfigError
naming the file and the line.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Literal, TextIO

from schemas.config import ConfigError
from storage.files import exists, join, open_text

BEIR_CORPUS = "corpus.jsonl"
BEIR_QUERIES = "queries.jsonl"

TextFormat = Literal["beir", "jsonl", "lines"]


def _open(path: str, what: str) -> TextIO:
    if not exists(path):
        raise ConfigError(f"{path}: missing ({what})")
    return open_text(path)


def jsonl_rows(path: str, what: str, required: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) of every non-blank line of a JSON lines file whose objects all have ``required``;
    ``what`` says in the error what the file should be."""
    with _open(path, what) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as err:
                raise ConfigError(f"{path}:{number}: not a JSON object ({err})") from None
            if not isinstance(row, dict) or required not in row:
                raise ConfigError(f"{path}:{number}: a row needs a {required!r} field ({what})")
            yield number, row


BEIR_FOLDER = "a BEIR folder holds corpus.jsonl, queries.jsonl and qrels/<split>.tsv"


def beir_rows(folder: str, name: str) -> Iterator[dict[str, Any]]:
    """The rows of ``corpus.jsonl`` or ``queries.jsonl`` of a BEIR folder."""
    return (row for _, row in jsonl_rows(join(folder, name), BEIR_FOLDER, "_id"))


def beir_text(row: dict[str, Any]) -> str:
    """A BEIR row's text: a corpus row's title and text joined by a space, a query row's text."""
    return " ".join(str(part) for part in (row.get("title", ""), row.get("text", "")) if part)


def evaluation_texts(path: str, text_format: TextFormat, field: str, corpus: bool = True) -> Iterator[str]:
    """Every text of an evaluation source: a BEIR folder's corpus (titles included; not without ``corpus``) and
    queries, a JSON lines file's ``field``, or a text file's non-blank lines."""
    if text_format == "beir":
        for name in (BEIR_CORPUS, BEIR_QUERIES) if corpus else (BEIR_QUERIES,):
            yield from map(beir_text, beir_rows(path, name))
    elif text_format == "jsonl":
        for number, row in jsonl_rows(path, f"JSON lines with a {field!r} field", field):
            if not isinstance(row[field], str):
                raise ConfigError(f"{path}:{number}: {field!r} is not a string")
            yield row[field]
    else:
        with _open(path, "a text file, one text per line") as f:
            yield from (line.rstrip("\n") for line in f if line.strip())
