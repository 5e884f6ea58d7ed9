"""Packed shuffles: what crosses a GroupByKey travels as compressed batches, not one element per record.

FnApiRunner, the local default, holds every shuffle in its own process as decoded Python values and
does that decoding on one core; Dataflow charges a shuffle by its bytes. So every record-carrying
grouping (exact dedup, the near-dedup verdict join, consistency chunks, the shard writers) sends each
partition one zstd-compressed batch of ``<key>\\t<item>`` JSON lines per flush: the runner holds one
bytes value per batch instead of a dict per record, and the receiving side can sort or group by the
keys without decoding the items. Items are JSON-native (records, rejected rows, dropped records) and
encoded as shard lines are (``schemas.record.encode_record``: sorted keys, so the bytes are deterministic).

``PackFn`` sends each partition's batch on when it holds ``FLUSH_BYTES`` of lines in all and at the end
of every bundle, and counts the compressed bytes it sent per dataset and shuffle (a stage's name, with
``/part`` where a stage has several): ``shuffled_bytes`` reads them from a finished run (each funnel
entry's ``shuffled_bytes``). They are measurements, like stage
seconds, not books: they vary a little with bundle boundaries.
"""
from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import apache_beam as beam
import zstandard
from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.transforms.window import GlobalWindows

from pipelines.funnel import committed_value
from schemas.record import encode_record
from text.hashing import bucket

Packed = tuple[int, bytes]  # (entries, zstd-compressed entry lines)
Partitioned = tuple[int, Packed]

# The partitions of a grouping by key or id: enough that one partition of a large source fits a worker;
# the groups of a small source are just small.
PARTITIONS = 1024
FLUSH_BYTES = 16 << 20  # lines a PackFn holds, over all partitions, before sending them on
ZSTD_LEVEL = 1  # the cheapest level: these bytes live for one shuffle
SHUFFLE_NAMESPACE = "pairmill.shuffled_bytes"  # counters "<dataset>|<stage>"


def encode_key(key: Any) -> bytes:
    return json.dumps(key, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def entry_line(key: Any, item: Any) -> bytes:
    """One entry: the key's JSON, a tab (JSON escapes any tab inside a string), the item's shard line."""
    return encode_key(key) + b"\t" + encode_record(item)


def pack(lines: list[bytes]) -> Packed:
    return len(lines), zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(b"".join(lines))


def entry_lines(batches: Iterable[Packed]) -> Iterator[bytes]:
    """Every entry line of the batches, each ending in a newline."""
    decompressor = zstandard.ZstdDecompressor()
    for _, data in batches:
        yield from io.BytesIO(decompressor.decompress(data))


def split_entry(line: bytes) -> tuple[Any, bytes]:
    """An entry line -> (its key, its item's shard line)."""
    key, _, item = line.partition(b"\t")
    return json.loads(key), item


def decode_item(item: bytes) -> Any:
    return json.loads(item)


def entries(batches: Iterable[Packed]) -> Iterator[tuple[Any, Any]]:
    """Every (key, item) of the batches, items decoded."""
    for line in entry_lines(batches):
        key, item = split_entry(line)
        yield key, decode_item(item)


class ShuffledBytes:
    """The bytes one shuffle of one dataset carries, as a Beam counter (created on first use)."""

    def __init__(self, dataset: str, stage: str) -> None:
        self.name = f"{dataset}|{stage}"
        self.counter: Any = None

    def add(self, size: int) -> None:
        if self.counter is None:
            self.counter = Metrics.counter(SHUFFLE_NAMESPACE, self.name)
        self.counter.inc(size)


def shuffled_bytes(result: Any, datasets: list[str]) -> dict[str, dict[str, int]]:
    """{dataset: {shuffle: bytes}} a finished run sent through packed shuffles (committed values where kept)."""
    found: dict[str, dict[str, int]] = {dataset: {} for dataset in datasets}
    for metric in result.metrics().query(MetricsFilter().with_namespace(SHUFFLE_NAMESPACE))["counters"]:
        dataset, _, stage = metric.key.metric.name.partition("|")
        value = committed_value(metric)
        if dataset in found:
            found[dataset][stage] = found[dataset].get(stage, 0) + int((value if value is not None else metric.attempted) or 0)
    return found


class Packer:
    """Entry lines held per partition until ``FLUSH_BYTES``; ``flush`` gives the batches and counts their
    bytes under ``stage`` (not where ``stage`` is None: batches that wait for a count but cross no shuffle)."""

    def __init__(self, dataset: str, stage: str | None) -> None:
        self.counter = None if stage is None else ShuffledBytes(dataset, stage)
        self.clear()

    def clear(self) -> None:
        self.lines: dict[int, list[bytes]] = {}
        self.size = 0

    def add(self, partition: int, line: bytes) -> bool:
        """Hold a line; True when the held lines should be flushed."""
        self.lines.setdefault(partition, []).append(line)
        self.size += len(line)
        return self.size >= FLUSH_BYTES

    def flush(self) -> Iterator[Partitioned]:
        held = self.lines
        self.clear()
        for partition, lines in held.items():
            batch = pack(lines)
            if self.counter is not None:
                self.counter.add(len(batch[1]))
            yield partition, batch


class PackFn(beam.DoFn):
    """Items -> (partition, Packed) for every partition the bundle met; ``entry(item)`` gives an item's (partition, key)."""

    def __init__(self, dataset: str, stage: str | None, entry: Callable[[Any], tuple[int, Any]]) -> None:
        self.packer = Packer(dataset, stage)
        self.entry = entry

    def start_bundle(self) -> None:
        self.packer.clear()

    def process(self, item: Any) -> Iterator[Partitioned]:
        partition, key = self.entry(item)
        if self.packer.add(partition, entry_line(key, item)):
            yield from self.packer.flush()

    def finish_bundle(self) -> Iterator[Any]:
        for element in self.packer.flush():
            yield GlobalWindows.windowed_value(element)


def pack_into(dataset: str, stage: str | None, entry: Callable[[Any], tuple[int, Any]]) -> beam.ParDo:
    return beam.ParDo(PackFn(dataset, stage, entry))


class GroupIntoBuckets(beam.PTransform):
    """Items -> (bucket, its Packed batches), where an item's bucket is ``bucket(key(item), buckets(total))``
    and ``total`` is the number of items; the key goes with each entry.

    The items wait for the count packed (not one element each); the count is the batches' entries.
    """

    def __init__(self, dataset: str, stage: str, key: Callable[[Any], str], buckets: Callable[[int], int]) -> None:
        super().__init__()
        self.dataset = dataset
        self.stage = stage
        self.key = key
        self.buckets = buckets

    def expand(self, items: beam.PCollection) -> beam.PCollection:
        key, buckets = self.key, self.buckets
        packed = items | "pack" >> pack_into(self.dataset, None, lambda item: (0, key(item)))
        total = packed | "entries" >> beam.Map(lambda element: element[1][0]) | "total" >> beam.CombineGlobally(sum)
        return (
            packed
            | "into buckets" >> beam.ParDo(RebucketFn(self.dataset, self.stage, buckets), total=beam.pvalue.AsSingleton(total))
            | "group buckets" >> beam.GroupByKey()
        )


class RebucketFn(beam.DoFn):
    """A Packed batch -> (bucket, Packed) per bucket its entries fall in, once the total is known."""

    def __init__(self, dataset: str, stage: str, buckets: Callable[[int], int]) -> None:
        self.packer = Packer(dataset, stage)
        self.buckets = buckets

    def process(self, element: Partitioned, total: int) -> Iterator[Partitioned]:
        count = self.buckets(total)
        for line in entry_lines([element[1]]):
            key, _ = split_entry(line)
            self.packer.add(bucket(key, count), line)
        yield from self.packer.flush()
