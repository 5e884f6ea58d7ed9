"""The pair/triplet record: a pyarrow schema, a light typed dict, and validation that names the bad field.

Records travel through the pipelines and shard files as plain dicts (JSON-native, cheap to pickle);
``PairRecord`` gives them a type, ``RECORD_SCHEMA`` is the same contract for Parquet and for checks.
"""
from __future__ import annotations

import json
from typing import Any, TypedDict, cast

import pyarrow as pa

META_FIELDS: dict[str, pa.DataType] = {
    "file": pa.string(),
    "row": pa.int64(),
    "source_score": pa.float64(),
    "lang": pa.string(),
    "lang_score": pa.float32(),
    "consistency_rank": pa.int32(),
    "consistency_score": pa.float32(),
    "positive_score": pa.float32(),
    "negative_scores": pa.list_(pa.float32()),
    "label": pa.int32(),
}

RECORD_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("dataset", pa.string(), nullable=False),
        pa.field("query", pa.string(), nullable=False),
        pa.field("document", pa.string(), nullable=False),
        pa.field("negatives", pa.list_(pa.string()), nullable=False),
        pa.field("meta", pa.struct([pa.field(k, t) for k, t in META_FIELDS.items()])),
    ]
)

REJECTED_SCHEMA = pa.schema(
    [
        pa.field("dataset", pa.string(), nullable=False),
        pa.field("file", pa.string(), nullable=False),
        pa.field("position", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("raw", pa.string(), nullable=False),
    ]
)


class RecordMeta(TypedDict, total=False):
    file: str
    row: int
    source_score: float
    lang: str
    lang_score: float
    consistency_rank: int
    consistency_score: float
    positive_score: float
    negative_scores: list[float]
    label: int


class PairRecord(TypedDict):
    id: str
    dataset: str
    query: str
    document: str
    negatives: list[str]
    meta: RecordMeta


class RejectedRow(TypedDict):
    """Input that could not be turned into a record, kept with where it was and why."""

    dataset: str
    file: str
    position: str
    reason: str
    raw: str


class DroppedRecord(TypedDict):
    """A record a filter dropped, with the stage and the reason (written to OUT/_dropped when asked)."""

    stage: str
    reason: str
    record: PairRecord


def dropped(record: PairRecord, stage: str, reason: str) -> DroppedRecord:
    return {"stage": stage, "reason": reason, "record": record}


def record_id(record: PairRecord) -> str:
    return record["id"]


def encode_record(record: Any) -> bytes:
    """One JSON line of a shard file, keys sorted, so that equal records give equal bytes."""
    return json.dumps(record, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8") + b"\n"


class RecordError(ValueError):
    """A record that does not match the schema; the message names the field."""


def new_record(
    dataset: str,
    natural_key: str,
    query: str,
    document: str,
    file: str,
    row: int,
    **meta: Any,
) -> PairRecord:
    """A fresh pair record whose id is ``<dataset>/<natural key>``."""
    # The keyword arguments are RecordMeta keys by contract (validate_record checks them against META_FIELDS).
    record_meta = cast(RecordMeta, {"file": file, "row": row, **meta})
    return {
        "id": f"{dataset}/{natural_key}",
        "dataset": dataset,
        "query": query,
        "document": document,
        "negatives": [],
        "meta": record_meta,
    }


def rejected(dataset: str, file: str, position: str | int, reason: str, raw: str | bytes = "") -> RejectedRow:
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="backslashreplace")
    return {"dataset": dataset, "file": file, "position": str(position), "reason": reason, "raw": raw}


_PY_TYPES: dict[pa.DataType, tuple[type, ...]] = {
    pa.string(): (str,),
    pa.int64(): (int,),
    pa.int32(): (int,),
    pa.float64(): (float, int),
    pa.float32(): (float, int),
}


def _check_value(name: str, value: Any, arrow_type: pa.DataType) -> None:
    if pa.types.is_list(arrow_type):
        if not isinstance(value, list):
            raise RecordError(f"field {name!r} must be a list, got {type(value).__name__}")
        for i, item in enumerate(value):
            _check_value(f"{name}[{i}]", item, arrow_type.value_type)
        return
    expected = _PY_TYPES[arrow_type]
    if isinstance(value, bool) or not isinstance(value, expected):
        raise RecordError(f"field {name!r} must be {arrow_type}, got {type(value).__name__} {value!r:.60}")


def validate_record(record: Any) -> PairRecord:
    """Return the record unchanged if it matches ``RECORD_SCHEMA``; raise ``RecordError`` naming the field."""
    if not isinstance(record, dict):
        raise RecordError(f"a record must be a JSON object, got {type(record).__name__}")
    for field in RECORD_SCHEMA:
        if field.name not in record:
            raise RecordError(f"missing field {field.name!r}")
    extra = set(record) - set(RECORD_SCHEMA.names)
    if extra:
        raise RecordError(f"unknown field {sorted(extra)[0]!r}")
    for name in ("id", "dataset", "query", "document"):
        _check_value(name, record[name], pa.string())
    if not record["id"].startswith(record["dataset"] + "/"):
        raise RecordError(f"field 'id' must start with the dataset name {record['dataset']!r}/, got {record['id']!r}")
    _check_value("negatives", record["negatives"], pa.list_(pa.string()))
    meta = record["meta"]
    if not isinstance(meta, dict):
        raise RecordError(f"field 'meta' must be an object, got {type(meta).__name__}")
    for key, value in meta.items():
        if key not in META_FIELDS:
            raise RecordError(f"unknown field 'meta.{key}'")
        if value is not None:
            _check_value(f"meta.{key}", value, META_FIELDS[key])
    # Every field was checked above: the dict is a PairRecord.
    return cast(PairRecord, record)


def records_to_table(records: list[PairRecord]) -> pa.Table:
    """Records as an Arrow table in ``RECORD_SCHEMA`` (missing meta keys become nulls)."""
    rows = [{**r, "meta": {k: r["meta"].get(k) for k in META_FIELDS}} for r in records]
    return pa.Table.from_pylist(rows, schema=RECORD_SCHEMA)
