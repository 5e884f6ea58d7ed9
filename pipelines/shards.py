"""The shard sink: records -> ``shard-NNNNN.jsonl.zst`` files, then ``counts.json`` and ``manifest.json`` last.

Shards are deterministic: the number of shards follows from the dataset's size, a record's shard from
a hash of its id, and records inside a shard are sorted by id, so two builds of the same input give
identical files whatever the bundle boundaries or worker order. Each file is written under a
temporary name and renamed, and the manifest only after every shard, so an interrupted build never
leaves a folder that looks complete.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.funnel import Funnel
from pipelines.packed import GroupIntoBuckets, Packed, decode_item, entry_lines, split_entry
from schemas.manifest import COUNTS, MANIFEST, SHARD_PATTERN, Manifest, ShardInfo
from schemas.record import record_id, records_to_table
from schemas.stages import WRITE
from storage.builds import write_shard
from storage.files import join, write_atomically, write_bytes, write_text


def shard_name(prefix: str, index: int) -> str:
    return SHARD_PATTERN.format(index=index).replace("shard", prefix, 1)


class WriteShardFn(beam.DoFn):
    """Writes one shard from its packed entries, sorted by ``sort_key`` (None: by the entry keys, the ids);
    with ``unique_ids``, also drops repeated ids and counts the write stage."""

    def __init__(self, folder: str, prefix: str, level: int, sort_key: Callable[[Any], Any] | None, dataset: str,
                 unique_ids: bool, parquet: bool) -> None:
        self.folder = folder
        self.prefix = prefix
        self.level = level
        self.sort_key = sort_key
        self.dataset = dataset
        self.unique_ids = unique_ids
        self.parquet = parquet
        self.funnel = Funnel()

    def process(self, element: tuple[int, Iterable[Packed]]) -> Iterator[ShardInfo]:
        index, batches = element
        items = [split_entry(line) for line in entry_lines(batches)]
        sort_key = self.sort_key
        # The item's bytes break ties, so equal keys come out in the same order on every run.
        ordered = sorted(items) if sort_key is None else sorted(items, key=lambda entry: (sort_key(decode_item(entry[1])), entry[1]))
        if self.unique_ids:
            ordered = list(self._unique_ids(ordered))
        name = shard_name(self.prefix, index)
        info = write_atomically(
            join(self.folder, name),
            lambda stream: write_shard(stream, (item for _, item in ordered), name, self.level),
        )
        if self.parquet:
            buffer = pa.BufferOutputStream()
            pq.write_table(records_to_table([decode_item(item) for _, item in ordered]), buffer, compression="zstd")
            data = buffer.getvalue().to_pybytes()
            write_bytes(join(self.folder, name.replace(".jsonl.zst", ".parquet")), data)
        yield info

    def _unique_ids(self, records: list[tuple[str, bytes]]) -> Iterator[tuple[str, bytes]]:
        previous = None
        for identifier, item in records:
            self.funnel.count(self.dataset, WRITE, "in")
            if identifier == previous:
                self.funnel.count(self.dataset, WRITE, "dropped:duplicate_id")
                continue
            previous = identifier
            self.funnel.count(self.dataset, WRITE, "kept")
            yield identifier, item


class WriteShards(beam.PTransform):
    """Items -> about ``per_shard`` items per file in ``folder``, an item's file from a hash of ``key(item)``;
    outputs each file's ``ShardInfo``. The items cross the shuffle packed; ``dataset`` is whose books count them."""

    def __init__(self, folder: str, prefix: str, per_shard: int, level: int, key: Callable[[Any], str],
                 sort_key: Callable[[Any], Any] | None, dataset: str, unique_ids: bool = False, parquet: bool = False) -> None:
        super().__init__()
        self.per_shard = per_shard
        self.key = key
        self.dataset = dataset
        self.shuffle_name = WRITE if prefix == "shard" else f"{WRITE}/{prefix}"
        self.write_fn = WriteShardFn(folder, prefix, level, sort_key, dataset, unique_ids, parquet)

    def expand(self, items: beam.PCollection) -> beam.PCollection:
        per_shard = self.per_shard
        return (
            items
            | "assign shard" >> GroupIntoBuckets(self.dataset, self.shuffle_name, self.key, lambda total: max(1, math.ceil(total / per_shard)))
            | "write shard" >> beam.ParDo(self.write_fn)
        )


class WriteManifestFn(beam.DoFn):
    def __init__(self, folder: str, manifest_fields: dict[str, Any]) -> None:
        self.folder = folder
        self.manifest_fields = manifest_fields

    def process(self, shards: list[ShardInfo]) -> Iterator[Manifest]:
        shards = sorted(shards, key=lambda s: s.file)
        fields = dict(self.manifest_fields)
        parquet = [s.file.replace(".jsonl.zst", ".parquet") for s in shards] if fields.pop("parquet") else []
        manifest = Manifest(records=sum(s.records for s in shards), shards=shards, parquet=parquet, **fields)
        write_text(join(self.folder, COUNTS), manifest.counts_json())
        write_text(join(self.folder, MANIFEST), manifest.to_json())
        yield manifest


class WriteDataset(beam.PTransform):
    """A dataset's records -> its folder: shards, then counts.json, then manifest.json."""

    def __init__(self, dataset: str, folder: str, records_per_shard: int, zstd_level: int, parquet: bool, manifest_fields: dict[str, Any]) -> None:
        super().__init__()
        self.dataset = dataset
        self.folder = folder
        self.records_per_shard = records_per_shard
        self.zstd_level = zstd_level
        self.parquet = parquet
        self.manifest_fields = {"dataset": dataset, "parquet": parquet, **manifest_fields}

    def expand(self, records: beam.PCollection) -> beam.PCollection:
        return (
            records
            | "shards" >> WriteShards(self.folder, "shard", self.records_per_shard, self.zstd_level,
                                      key=record_id, sort_key=None, dataset=self.dataset, unique_ids=True, parquet=self.parquet)
            | "collect shards" >> beam.combiners.ToList()
            | "manifest" >> beam.ParDo(WriteManifestFn(self.folder, dict(self.manifest_fields)))
        )


def rejected_order(row: dict[str, Any]) -> tuple[str, str, str]:
    return (row["file"], row["position"].zfill(20), row["reason"])


def rejected_key(row: dict[str, Any]) -> str:
    return f"{row['file']}:{row['position']}"


def dropped_order(item: dict[str, Any]) -> tuple[str, str, str]:
    return (item["stage"], item["reason"], item["record"]["id"])


def dropped_key(item: dict[str, Any]) -> str:
    return item["record"]["id"]
