"""The generic kinds: any JSON lines, CSV/TSV or Parquet file with a field mapping to query and document.

Fields are named by path (``title``, ``meta.title``, ``answers.0``, or ``0`` and ``1`` for rows that are
JSON arrays, as in sentence-transformers' embedding-training-data files), so nested JSON and list
columns (PAQ's answers, WikiAnswers' paraphrase sets) map without a dedicated reader. A list of strings
becomes paragraphs; a null text becomes empty (and the clean stage drops it).
"""
from __future__ import annotations

import csv
import io
import json
import os
import posixpath
import sys
from collections.abc import Iterator
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.sources.base import FileSource, Parsed
from schemas.record import new_record, rejected
from schemas.sources import FieldMap

_MISSING = object()


def get_path(obj: Any, path: str) -> Any:
    """The value at a dotted path of dict keys and list indexes, or ``_MISSING``."""
    value = obj
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.lstrip("-").isdigit() and -len(value) <= int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def natural_file_names(paths: list[str]) -> dict[str, str]:
    """Names for ids: the base name when unique among the paths, else the path below their common folder."""
    base_names = [posixpath.basename(p.replace(os.sep, "/")) for p in paths]
    if len(set(base_names)) == len(paths):
        return dict(zip(paths, base_names, strict=True))
    common = os.path.commonpath([os.path.dirname(p) for p in paths]) if len(paths) > 1 else os.path.dirname(paths[0])
    return {p: os.path.relpath(p, common) if common else p for p in paths}


def map_fields(dataset: str, fields: FieldMap, row: Any, path: str, position: int, fallback_key: str, raw: str) -> Parsed:
    """Turn one parsed row into a record through the field mapping, or into a rejected row saying why."""
    if not isinstance(row, (dict, list)):
        return rejected(dataset, path, position, "not_an_object", raw)
    texts = {}
    for side in ("query", "document"):
        value = get_path(row, getattr(fields, side))
        if value is _MISSING:
            return rejected(dataset, path, position, f"missing_field:{getattr(fields, side)}", raw)
        if value is None:  # a null text is an empty one: the clean stage drops it with its reason
            value = ""
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            value = "\n\n".join(value)  # paragraphs, as in raw S2ORC abstracts
        if not isinstance(value, str):
            return rejected(dataset, path, position, f"wrong_type:{getattr(fields, side)}", raw)
        texts[side] = value
    key = fallback_key
    if fields.id:
        value = get_path(row, fields.id)
        if value is _MISSING or value is None or value == "":
            return rejected(dataset, path, position, f"missing_field:{fields.id}", raw)
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            return rejected(dataset, path, position, f"wrong_type:{fields.id}", raw)
        key = str(value)
    meta: dict[str, Any] = {}
    if fields.score:
        value = get_path(row, fields.score)
        try:
            meta["source_score"] = float(value)
        except (TypeError, ValueError):
            return rejected(dataset, path, position, f"wrong_type:{fields.score}", raw)
    return new_record(dataset, key, texts["query"], texts["document"], file=path, row=position, **meta)


class GenericSource(FileSource):
    """Shared by the generic kinds: natural keys fall back to ``<file name>:<row>``."""

    def __init__(self, spec: Any, paths: list[str]) -> None:
        super().__init__(spec, paths)
        self.file_names = natural_file_names(paths)

    def map_row(self, row: Any, path: str, position: int, raw: str) -> Parsed:
        key = f"{self.file_names.get(path, posixpath.basename(path))}:{position}"
        return map_fields(self.dataset, self.options.fields, row, path, position, key, raw)


class JsonlSource(GenericSource):
    def parse(self, path: str, stream: BinaryIO) -> Iterator[Parsed]:
        for line_number, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError:
                yield rejected(self.dataset, path, line_number, "invalid_utf8", line)
                continue
            try:
                row = json.loads(text)
            except ValueError:
                yield rejected(self.dataset, path, line_number, "invalid_json", text)
                continue
            if "\\u" in text and not utf8_encodable(row):
                yield rejected(self.dataset, path, line_number, "unpaired_surrogate", text)
                continue
            yield self.map_row(row, path, line_number, text)


def utf8_encodable(value: Any) -> bool:
    """False where a JSON escape of an unpaired surrogate (``\\ud800``) left a string no UTF-8 text can hold."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


csv.field_size_limit(sys.maxsize)


class CsvSource(GenericSource):
    def parse(self, path: str, stream: BinaryIO) -> Iterator[Parsed]:
        delimiter = self.options.delimiter or ("\t" if ".tsv" in path.lower() else ",")
        text = io.TextIOWrapper(stream, encoding="utf-8", errors="surrogateescape", newline="")
        reader = csv.reader(text, delimiter=delimiter, quoting=csv.QUOTE_NONE if self.options.quoting == "none" else csv.QUOTE_MINIMAL)
        header = self.options.columns
        row_start = 1
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as err:
                yield rejected(self.dataset, path, row_start, "malformed_csv_row", str(err))
                row_start = reader.line_num + 1
                continue
            position, row_start = row_start, reader.line_num + 1
            raw = delimiter.join(cells)
            if any("\udc80" <= ch <= "\udcff" for cell in cells for ch in cell):
                yield rejected(self.dataset, path, position, "invalid_utf8", raw.encode("utf-8", "surrogateescape"))
                continue
            if header is None:
                header = cells
                continue
            if not cells:
                continue
            if len(cells) != len(header):
                yield rejected(self.dataset, path, position, "wrong_column_count", raw)
                continue
            yield self.map_row(dict(zip(header, cells, strict=True)), path, position, raw)


class ParquetSource(GenericSource):
    def parse(self, path: str, stream: BinaryIO) -> Iterator[Parsed]:
        fields = self.options.fields
        columns = sorted({p.split(".")[0] for p in (fields.query, fields.document, fields.id, fields.score) if p})
        row_index = 0
        try:
            parquet = pq.ParquetFile(stream)
            missing = [c for c in columns if c not in parquet.schema_arrow.names]
            if missing:
                yield rejected(self.dataset, path, 0, f"missing_field:{missing[0]}", "")
                return
            for batch in parquet.iter_batches(batch_size=self.options.batch_rows, columns=columns):
                for row in batch.to_pylist():
                    yield self.map_row(row, path, row_index, json.dumps(row, default=str, ensure_ascii=False))
                    row_index += 1
        except (pa.ArrowException, OSError) as err:
            yield rejected(self.dataset, path, f"row {row_index}", "corrupt_parquet", f"{type(err).__name__}: {err}")
