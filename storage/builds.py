"""A build's output folder on any Beam filesystem: its layout, manifests, shards, funnel and stats files.

``OUT/<dataset>/`` holds ``shard-NNNNN.jsonl.zst`` files (one JSON object per line, zstd-compressed),
``counts.json`` and, written last, ``manifest.json``; a dataset whose books did not balance keeps its
manifest as ``manifest.unbalanced.json`` (withheld). Beside the datasets: ``OUT/_rejected/<dataset>``,
``OUT/_dropped/<dataset>``, ``OUT/_stats/<dataset>.json`` and ``OUT/_funnel/<dataset>.json``.

Readers check, while streaming, that each shard's bytes hash to the manifest's sha256 and hold the
manifest's record count, so a tampered or truncated shard is detected by ``verify``, ``inspect``, the
trainer and the ``shards`` reader alike.
"""
from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, BinaryIO, Literal, cast

import zstandard

from schemas.config import ConfigError
from schemas.manifest import COUNTS, MANIFEST, SHARD_FILE, WITHHELD_MANIFEST, Manifest, ManifestError, ShardInfo
from schemas.record import PairRecord, RecordError, validate_record
from storage.files import exists, join, match, open_read, read_json, read_text, rename, split, write_json

SideKind = Literal["rejected", "dropped", "stats", "funnel"]


class ShardError(ValueError):
    """A shard that does not match its manifest; the message names the file and what differs."""


# ---- layout ----------------------------------------------------------------------------------

def dataset_folder(output: str, dataset: str) -> str:
    return join(output, dataset)


def manifest_path(folder: str) -> str:
    return join(folder, MANIFEST)


def side_folder(output: str, kind: SideKind, dataset: str) -> str:
    """``OUT/_rejected/<dataset>``, ``OUT/_dropped/<dataset>`` (and the stem of the ``_stats`` and ``_funnel`` files)."""
    return join(join(output, f"_{kind}"), dataset)


def stats_path(output: str, dataset: str) -> str:
    """``OUT/_stats/<dataset>.json``."""
    return side_folder(output, "stats", dataset) + ".json"


def funnel_path(output: str, dataset: str) -> str:
    """``OUT/_funnel/<dataset>.json``."""
    return side_folder(output, "funnel", dataset) + ".json"


def dataset_paths(output: str, dataset: str) -> list[str]:
    """Everything a build of ``dataset`` writes under ``output``, its manifest first."""
    folder = dataset_folder(output, dataset)
    return [manifest_path(folder), folder, side_folder(output, "rejected", dataset), side_folder(output, "dropped", dataset),
            funnel_path(output, dataset), stats_path(output, dataset)]


# ---- manifests -------------------------------------------------------------------------------

def read_manifest_file(path: str) -> Manifest:
    """The manifest at ``path``; a missing or invalid one is a ManifestError naming the path."""
    try:
        text = read_text(path)
    except FileNotFoundError:
        raise ManifestError(f"{path}: no manifest (the dataset folder is missing or its build did not finish)") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ManifestError(f"{path}: unreadable ({err})") from None
    return Manifest.from_json(text, path)


def read_manifest(folder: str) -> Manifest:
    """A finished dataset's manifest; a withheld, missing or invalid one is a ManifestError naming the path."""
    path = manifest_path(folder)
    if exists(join(folder, WITHHELD_MANIFEST)):
        raise ManifestError(f"{path}: withheld: the build's books did not balance (records were lost), see its report")
    if not exists(path):
        raise ManifestError(f"{path}: no manifest (the dataset folder is missing or its build did not finish)")
    return read_manifest_file(path)


def existing_manifest(folder: str) -> Manifest | None:
    """The folder's ``manifest.json``, or None where there is none (not built, unfinished or withheld)."""
    path = manifest_path(folder)
    return read_manifest_file(path) if exists(path) else None


def withheld_manifest(folder: str) -> Manifest | None:
    """The manifest a build withheld (``manifest.unbalanced.json``), or None."""
    path = join(folder, WITHHELD_MANIFEST)
    return read_manifest_file(path) if exists(path) else None


def withhold(folder: str) -> None:
    """Rename the manifest of a dataset whose books do not balance, so that verify, the trainer and a
    rerun treat the folder as unfinished rather than as a good dataset."""
    path = manifest_path(folder)
    if exists(path):
        rename(path, join(folder, WITHHELD_MANIFEST))


def find_datasets(path: str) -> list[str]:
    """A dataset folder itself, or every dataset folder directly under an output folder (finished or not)."""
    if exists(manifest_path(path)):
        return [path]
    # Folders are what their files name: a folder holding no file is no dataset on any filesystem.
    found = sorted({folder for folder, _ in map(split, match(join(path, "*", "*"))) if not split(folder)[1].startswith("_")})
    if found:
        return found
    if not exists(path):
        raise ConfigError(f"{path}: no such folder")
    raise ConfigError(f"{path}: neither a dataset folder (no {MANIFEST}) nor an output folder with datasets")


# ---- funnel and stats files ------------------------------------------------------------------

def write_funnel(output: str, dataset: str, entry: dict[str, Any]) -> None:
    write_json(funnel_path(output, dataset), entry)


def read_saved_funnel(output: str, dataset: str) -> dict[str, Any]:
    """The funnel an earlier build kept for ``dataset`` (a balanced empty one with a note where there is none)."""
    path = funnel_path(output, dataset)
    if not exists(path):
        return {"stages": [], "read": 0, "written": 0, "dropped": 0, "rejected": 0, "balanced": True, "note": "funnel of the earlier build not found"}
    saved: dict[str, Any] = read_json(path)
    return saved


def read_stats(output: str, dataset: str) -> dict[str, Any] | None:
    """The dataset's ``OUT/_stats`` file, or None when the build wrote none."""
    path = stats_path(output, dataset)
    if not exists(path):
        return None
    stats: dict[str, Any] = read_json(path)
    return stats


# ---- shards ----------------------------------------------------------------------------------

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
    with zstandard.ZstdCompressor(level=level).stream_writer(cast(IO[bytes], hashing), closefd=False) as compressor:
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
    """Every JSON value of a .jsonl.zst file, in order (no checks)."""
    with open_read(path) as raw:
        yield from iter_jsonl_zst_stream(raw)


def iter_jsonl_zst_stream(raw: BinaryIO) -> Iterator[Any]:
    """Every JSON value of an open .jsonl.zst stream, in order (no checks)."""
    for line in io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)):
        yield json.loads(line)


def iter_shard(folder: str, shard: ShardInfo, validate: bool = False) -> Iterator[PairRecord]:
    """Stream one shard's records, then check its size, sha256 and record count against the manifest."""
    path = join(folder, shard.file)
    if not exists(path):
        raise ShardError(f"{path}: shard listed in the manifest is missing")
    with open_read(path) as raw:
        yield from iter_shard_stream(raw, path, shard, validate)


def iter_shard_stream(raw: BinaryIO, path: str, shard: ShardInfo, validate: bool = False) -> Iterator[PairRecord]:
    """``iter_shard`` over an already open stream; ``path`` is for messages."""
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


def read_verified_shard(path: str, shard: ShardInfo) -> Iterator[PairRecord]:
    """A shard's records, after its size and sha256 were checked against the manifest: never half a shard."""
    digest, size = hashlib.sha256(), 0
    with open_read(path) as raw:
        while chunk := raw.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    check_shard_bytes(path, shard, size, digest.hexdigest())
    with open_read(path) as raw:
        yield from iter_shard_stream(raw, path, shard, validate=True)


def list_shards(manifest_file: str) -> Iterator[tuple[str, str, ShardInfo]]:
    """(manifest path, shard path, shard entry) for every shard a manifest lists."""
    manifest = read_manifest_file(manifest_file)
    folder = split(manifest_file)[0]
    for shard in manifest.shards:
        yield manifest_file, join(folder, shard.file), shard


def iter_records(folder: str, validate: bool = False) -> Iterator[PairRecord]:
    """Stream every record of a dataset folder, shard by shard, checking each shard against the manifest."""
    manifest = read_manifest(folder)
    for shard in manifest.shards:
        yield from iter_shard(folder, shard, validate=validate)


# ---- verify ----------------------------------------------------------------------------------

@dataclass
class VerifyResult:
    dataset_dir: str
    records: int = 0
    shards: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_dataset(folder: str) -> VerifyResult:
    """Re-check everything a manifest promises: files, sizes, sha256, record counts, schema, counts.json."""
    result = VerifyResult(folder)
    try:
        manifest = read_manifest(folder)
    except ManifestError as err:
        result.problems.append(str(err))
        return result
    listed = {s.file for s in manifest.shards}
    on_disk = (split(path) for path in match(join(folder, "*")))
    stray = sorted(join(folder, name) for _, name in on_disk if SHARD_FILE.match(name) and name not in listed)
    result.problems += [f"{path}: shard file not listed in the manifest" for path in stray]
    for shard in manifest.shards:
        try:
            for record in iter_shard(folder, shard, validate=True):
                if record["dataset"] != manifest.dataset:
                    raise ShardError(f"{join(folder, shard.file)}: record {record['id']!r} belongs to dataset {record['dataset']!r}")
                result.records += 1
            result.shards += 1
        except ShardError as err:
            result.problems.append(str(err))
    counts_path = join(folder, COUNTS)
    try:
        if read_json(counts_path) != json.loads(manifest.counts_json()):
            result.problems.append(f"{counts_path}: does not match the manifest")
    except (OSError, ValueError) as err:
        result.problems.append(f"{counts_path}: unreadable ({err})")
    return result
