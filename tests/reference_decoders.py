"""Reference decoders for the fault cases: what a plain reader of each published format recovers from a file.

Written apart from pairmill's readers (stdlib, zstandard, py7zr and pyarrow only), so the fault suite can
count the good rows a damaged file still holds instead of trusting the reader under test. A compressed
stream is fed to its decoder one byte at a time and read up to the first error, so every row that was
decodable before the damage counts. A row counts when it is complete (a newline follows it, or the stream
ended cleanly), is valid UTF-8, and has both texts as non-empty strings in its format's fields.
"""
from __future__ import annotations

import bz2
import csv
import json
import lzma
import re
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import py7zr
import pyarrow.parquet as pq
import zstandard


class Row(NamedTuple):
    """One good row as the format defines it: its two texts and its line as it stands in the file."""

    query: str
    document: str
    raw: str


def _one_stream(new_decoder: Callable[[], Any]) -> Callable[[bytes], tuple[bytes, bool]]:
    """Decode concatenated streams (gzip members, zstd frames, ...) byte by byte: (bytes out, ended cleanly)."""

    def decode(data: bytes) -> tuple[bytes, bool]:
        out: list[bytes] = []
        decoder, started = new_decoder(), False
        for i in range(len(data)):
            try:
                out.append(decoder.decompress(data[i : i + 1]))
            except (OSError, EOFError, zlib.error, lzma.LZMAError, zstandard.ZstdError):
                return b"".join(out), False
            started = True
            if decoder.eof:
                if decoder.unused_data:
                    return b"".join(out), False  # nothing is fed past the end, so this cannot happen
                decoder, started = new_decoder(), False
        return b"".join(out), not started

    return decode


DECODERS: dict[str, Callable[[bytes], tuple[bytes, bool]]] = {
    ".gz": _one_stream(lambda: zlib.decompressobj(wbits=31)),
    ".bz2": _one_stream(bz2.BZ2Decompressor),
    ".zst": _one_stream(lambda: zstandard.ZstdDecompressor().decompressobj()),
    ".xz": _one_stream(lambda: lzma.LZMADecompressor(format=lzma.FORMAT_XZ)),
}


def recover_bytes(path: Path) -> tuple[bytes, bool]:
    """The decompressed bytes a file yields before it breaks off, and whether it ended cleanly."""
    data = path.read_bytes()
    if path.suffix == ".7z":
        try:
            with py7zr.SevenZipFile(path, "r") as archive:
                return archive.read(["Posts.xml"])["Posts.xml"].read(), True
        except Exception:
            return b"", False
    decode = DECODERS.get(path.suffix)
    return decode(data) if decode else (data, True)


def complete_lines(data: bytes, clean: bool) -> Iterator[str]:
    """The complete lines that decode as UTF-8 (a last line without newline counts only if the stream ended cleanly)."""
    lines = data.splitlines(keepends=True)
    if lines and not clean and not lines[-1].endswith(b"\n"):
        lines.pop()
    for line in lines:
        try:
            yield line.decode("utf-8")
        except UnicodeDecodeError:
            continue


def _texts(query: Any, document: Any, raw: str) -> list[Row]:
    if isinstance(query, str) and isinstance(document, str) and query.strip() and document.strip():
        return [Row(query.strip(), document.strip(), raw)]
    return []


def json_lines(query_field: str, document_field: str) -> Callable[[list[str]], list[Row]]:
    """JSON lines: one object per line, both fields strings."""

    def rows(lines: list[str]) -> list[Row]:
        found = []
        for line in lines:
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict):
                found += _texts(obj.get(query_field), obj.get(document_field), line)
        return found

    return rows


def delimited(delimiter: str, width: int, pick: Callable[[dict[str, str]], tuple[str, str] | None]) -> Callable[[list[str]], list[Row]]:
    """CSV/TSV (RFC 4180 quoting): a header line, then rows of exactly the header's ``width`` cells."""

    def rows(lines: list[str]) -> list[Row]:
        csv.field_size_limit(1 << 31)
        cells_of = [next(csv.reader([line], delimiter=delimiter), []) for line in lines]  # good rows: one line each
        if not cells_of or len(cells_of[0]) != width:
            return []
        header, found = cells_of[0], []
        for cells, line in zip(cells_of[1:], lines[1:], strict=True):
            texts = pick(dict(zip(header, cells, strict=True))) if len(cells) == width else None
            if texts:
                found += _texts(*texts, line)
        return found

    return rows


def stackexchange_posts(lines: list[str]) -> list[Row]:
    """Posts.xml: one ``<row .../>`` element per line; questions (PostTypeId 1) give title -> body text."""
    found = []
    for line in lines:
        if not line.strip().startswith("<row"):
            continue
        try:
            attrs = ET.fromstring(line.strip()).attrib
        except ET.ParseError:
            continue
        if attrs.get("PostTypeId") == "1":
            found += _texts(attrs.get("Title"), re.sub(r"<[^>]*>", "", attrs.get("Body", "")), line)
    return found


def _quora(row: dict[str, str]) -> tuple[str, str] | None:
    return (row["question1"], row["question2"]) if row["is_duplicate"].strip() == "1" else None


ROW_FORMATS: dict[str, Callable[[list[str]], list[Row]]] = {
    "jsonl": json_lines("q", "d"),
    "csv": delimited(",", 2, lambda row: (row["q"], row["d"])),
    "stackexchange": stackexchange_posts,
    "quora": delimited("\t", 6, _quora),
    "amazon_reviews": json_lines("summary", "reviewText"),
    "news": json_lines("highlights", "article"),
    "reddit": json_lines("title", "selftext"),
}


def parquet_rows(path: Path) -> list[Row]:
    """Parquet: every row of a readable file whose ``q`` and ``d`` columns are strings; an unreadable file yields none."""
    try:
        table = pq.read_table(path)
    except Exception:
        return []
    if not {"q", "d"} <= set(table.column_names):
        return []
    found = []
    for q, d in zip(table.column("q").to_pylist(), table.column("d").to_pylist(), strict=True):
        found += _texts(q, d, "")
    return found


def good_rows(kind: str, path: Path) -> list[Row]:
    """The good rows a reference decoder recovers from one input file of a reader kind (none if it is gone)."""
    if not path.exists():
        return []
    if kind == "parquet":
        return parquet_rows(path)
    data, clean = recover_bytes(path)
    return ROW_FORMATS[kind](list(complete_lines(data, clean)))
