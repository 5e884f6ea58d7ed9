"""Shard files in plain Python (no Beam): write one shard, stream records back, verify a dataset folder.

A shard is ``shard-NNNNN.jsonl.zst``: one JSON object per line, zstd-compressed. Readers check, while
streaming, that each shard's bytes hash to the manifest's sha256 and hold the manifest's record count,
so a tampered or truncated shard is detected by ``verify``, ``inspect`` and the trainer alike.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Iterable, Iterator

import zstandard

from schemas.config import ConfigError
from schemas.manifest import COUNTS, MANIFEST, WITHHELD_MANIFEST, Manifest, ManifestError, ShardInfo
from schemas.record import PairRecord, RecordError, validate_record

SHARD_FILE = re.compile(r"^shard-\d{5}\.jsonl\.zst$")


class ShardError(ValueError):
    """A shard that does not match its manifest; the message names the file and what differs."""


def encode_record(record: Any) -> bytes:
    """One JSON line, keys sorted, so that equal records give equal bytes."""
    return json.dumps(record, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8") + b"\n"


class _HashingWriter(io.RawIOBase):
    """Counts and hashes the compressed bytes on their way to the real file."""

    def __init__(self, sink: BinaryIO) -> None:
        self.sink = sink
        self.sha256 = hashlib.sha256()
        self.bytes = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.sha256.update(data)
        self.bytes += len(data)
        self.sink.write(data)
        return len(data)


def write_shard(sink: BinaryIO, lines: Iterable[bytes], file_name: str, level: int) -> ShardInfo:
    """Compress ``lines`` into ``sink`` and return the shard's manifest entry."""
    hashing = _HashingWriter(sink)
    count = 0
    with zstandard.ZstdCompressor(level=level).stream_writer(hashing, closefd=False) as compressor:
        for line in lines:
            compressor.write(line)
            count += 1
    return ShardInfo(file=file_name, records=count, bytes=hashing.bytes, sha256=hashing.sha256.hexdigest())


class _HashingReader(io.RawIOBase):
    def __init__(self, source: BinaryIO) -> None:
        self.source = source
        self.sha256 = hashlib.sha256()
        self.bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.source.read(len(buffer))
        self.sha256.update(data)
        self.bytes += len(data)
        buffer[: len(data)] = data
        return len(data)


def iter_jsonl_zst(path: str) -> Iterator[Any]:
    """Every JSON value of a local .jsonl.zst file, in order (no checks)."""
    with open(path, "rb") as raw:
        yield from iter_jsonl_zst_stream(raw)


def iter_jsonl_zst_stream(raw: BinaryIO) -> Iterator[Any]:
    """Every JSON value of an open .jsonl.zst stream (any filesystem), in order (no checks)."""
    for line in io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)):
        yield json.loads(line)


def read_manifest(dataset_dir: str) -> Manifest:
    path = os.path.join(dataset_dir, MANIFEST)
    if os.path.exists(os.path.join(dataset_dir, WITHHELD_MANIFEST)):
        raise ManifestError(f"{path}: withheld: the build's books did not balance (records were lost), see its report")
    if not os.path.exists(path):
        raise ManifestError(f"{path}: no manifest (the dataset folder is missing or its build did not finish)")
    with open(path, encoding="utf-8") as f:
        return Manifest.from_json(f.read(), path)


def iter_shard(dataset_dir: str, shard: ShardInfo, validate: bool = False) -> Iterator[PairRecord]:
    """Stream one shard's records, then check its size, sha256 and record count against the manifest."""
    path = os.path.join(dataset_dir, shard.file)
    if not os.path.exists(path):
        raise ShardError(f"{path}: shard listed in the manifest is missing")
    with open(path, "rb") as raw:
        yield from iter_shard_stream(raw, path, shard, validate)


def iter_shard_stream(raw: BinaryIO, path: str, shard: ShardInfo, validate: bool = False) -> Iterator[PairRecord]:
    """``iter_shard`` over an already open stream (any filesystem); ``path`` is for messages."""
    count = 0
    hashing = _HashingReader(raw)
    stream = io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(io.BufferedReader(hashing), read_across_frames=True))
    try:
        for line in stream:
            count += 1
            try:
                record = json.loads(line)
                if validate:
                    validate_record(record)
            except (ValueError, RecordError) as err:
                raise ShardError(f"{path}: record {count}: {err}") from None
            yield record
        hashing.readall()  # hash any bytes after the last frame
    except zstandard.ZstdError as err:
        raise ShardError(f"{path}: corrupt zstd data after record {count} ({err})") from None
    check_shard_bytes(path, shard, hashing.bytes, hashing.sha256.hexdigest())
    if count != shard.records:
        raise ShardError(f"{path}: {count} records, manifest says {shard.records}")


def check_shard_bytes(path: str, shard: ShardInfo, size: int, sha256: str) -> None:
    if size != shard.bytes:
        raise ShardError(f"{path}: {size} bytes, manifest says {shard.bytes}")
    if sha256 != shard.sha256:
        raise ShardError(f"{path}: sha256 does not match the manifest (the file was changed)")


def iter_records(dataset_dir: str, validate: bool = False) -> Iterator[PairRecord]:
    """Stream every record of a dataset folder, shard by shard, checking each shard against the manifest."""
    manifest = read_manifest(dataset_dir)
    for shard in manifest.shards:
        yield from iter_shard(dataset_dir, shard, validate=validate)


def find_datasets(path: str) -> list[str]:
    """A dataset folder itself, or every folder with a manifest directly under an output folder."""
    if os.path.exists(os.path.join(path, MANIFEST)):
        return [path]
    if not os.path.isdir(path):
        raise ConfigError(f"{path}: no such folder")
    found = sorted(
        os.path.join(path, name)
        for name in os.listdir(path)
        if not name.startswith("_") and os.path.isdir(os.path.join(path, name))
    )
    if not found:
        raise ConfigError(f"{path}: neither a dataset folder (no {MANIFEST}) nor an output folder with datasets")
    return found


@dataclass
class VerifyResult:
    dataset_dir: str
    records: int = 0
    shards: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_dataset(dataset_dir: str) -> VerifyResult:
    """Re-check everything a manifest promises: files, sizes, sha256, record counts, schema, counts.json."""
    result = VerifyResult(dataset_dir)
    try:
        manifest = read_manifest(dataset_dir)
    except ManifestError as err:
        result.problems.append(str(err))
        return result
    listed = {s.file for s in manifest.shards}
    stray = sorted(n for n in os.listdir(dataset_dir) if SHARD_FILE.match(n) and n not in listed)
    result.problems += [f"{os.path.join(dataset_dir, n)}: shard file not listed in the manifest" for n in stray]
    for shard in manifest.shards:
        try:
            for record in iter_shard(dataset_dir, shard, validate=True):
                if record["dataset"] != manifest.dataset:
                    raise ShardError(f"{os.path.join(dataset_dir, shard.file)}: record {record['id']!r} belongs to dataset {record['dataset']!r}")
                result.records += 1
            result.shards += 1
        except ShardError as err:
            result.problems.append(str(err))
    counts_path = os.path.join(dataset_dir, COUNTS)
    try:
        with open(counts_path, encoding="utf-8") as f:
            counts = json.load(f)
        if counts != json.loads(manifest.counts_json()):
            result.problems.append(f"{counts_path}: does not match the manifest")
    except (OSError, ValueError) as err:
        result.problems.append(f"{counts_path}: unreadable ({err})")
    return result
