"""News articles as summary -> article and title -> body pairs; ``mode`` names the dataset's layout.

- ``cnn_dailymail``: ``highlights`` -> ``article``, keyed by ``id``; JSON lines, or the CSV export
  ``id,article,highlights`` (any file ending .csv/.tsv, compressed or not).
- ``xsum``: ``summary`` -> ``document``, keyed by ``id``; JSON lines or CSV the same way.
- ``ag_news``: CSV ``label,title,description``, with or without a header line (a first line whose
  label is not a number is the header); keyed ``<file name>:<line>``. AG News' own escapes (``\\`` for a
  line break, ``#36;`` for ``&#36;``) are undone.
- ``cc_news``: JSON lines ``title``, ``text``, ``url``; keyed by ``url``, else ``<file name>:<line>``.
"""
from __future__ import annotations

import dataclasses
import posixpath
import re
from collections.abc import Iterator
from typing import Any, BinaryIO, NamedTuple

from pipelines.sources.base import Parsed, Skip
from pipelines.sources.generic import CsvSource, JsonlSource
from schemas.record import new_record, rejected

AG_NEWS_COLUMNS = ["label", "title", "description"]
_AG_BARE_ENTITY = re.compile(r"(?<![&\w])#(\d{2,5});")
_COMPRESSION = (".gz", ".bz2", ".zst", ".zstd", ".xz")


class NewsLayout(NamedTuple):
    query: str
    document: str
    key: str | None  # the field holding the natural key; None: <file name>:<line>


LAYOUTS = {
    "cnn_dailymail": NewsLayout("highlights", "article", "id"),
    "xsum": NewsLayout("summary", "document", "id"),
    "ag_news": NewsLayout("title", "description", None),
    "cc_news": NewsLayout("title", "text", "url"),
}


def undo_ag_news_escapes(text: str) -> str:
    return _AG_BARE_ENTITY.sub(lambda m: chr(int(m.group(1))), text.replace("\\", " "))


def is_csv_path(path: str) -> bool:
    name = path.lower()
    for suffix in _COMPRESSION:
        name = name.removesuffix(suffix)
    return name.endswith((".csv", ".tsv"))


class NewsSource(JsonlSource, CsvSource):
    """JSON lines or CSV rows (the generic readers' parsing and positions) with each layout's rules."""

    def __init__(self, spec: Any, paths: list[str]) -> None:
        super().__init__(spec, paths)
        self.layout = LAYOUTS[self.options.mode]
        if self.options.mode == "ag_news" and self.options.columns is None:
            self.options = dataclasses.replace(self.options, columns=AG_NEWS_COLUMNS)

    def parse(self, path: str, stream: BinaryIO) -> Iterator[Parsed]:
        if self.options.mode == "ag_news" or is_csv_path(path):
            return CsvSource.parse(self, path, stream)
        return JsonlSource.parse(self, path, stream)

    def map_row(self, row: Any, path: str, position: int, raw: str) -> Parsed:
        if not isinstance(row, dict):
            return rejected(self.dataset, path, position, "not_an_object", raw)
        mode, layout = self.options.mode, self.layout
        if mode == "ag_news" and position == 1 and not str(row.get("label", "")).strip().isdigit():
            return Skip("header_line")
        texts = []
        for field in (layout.query, layout.document):
            value = row.get(field)
            if not isinstance(value, str):
                return rejected(self.dataset, path, position, f"missing_field:{field}", raw)
            value = undo_ag_news_escapes(value) if mode == "ag_news" else value
            if not value.strip():
                return Skip(f"empty_{field}")
            texts.append(value.strip())
        key = row.get(layout.key) if layout.key else None
        if mode in ("cnn_dailymail", "xsum") and (key is None or key == "" or isinstance(key, (dict, list, bool))):
            return rejected(self.dataset, path, position, f"missing_field:{layout.key}", raw)
        if key is None or key == "":
            key = f"{self.file_names.get(path, posixpath.basename(path))}:{position}"
        return new_record(self.dataset, str(key), texts[0], texts[1], file=path, row=position)
