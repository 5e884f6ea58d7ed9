"""Packed shuffles: entries survive packing byte for byte, flushes split nothing away, buckets follow the count."""
from __future__ import annotations

import math
from typing import Any

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from pipelines import packed
from pipelines.packed import GroupIntoBuckets, entries, entry_line, entry_lines, pack, pack_into, shuffled_bytes, split_entry
from schemas.record import encode_record
from text.hashing import bucket

AWKWARD_KEYS: list[Any] = ["plain", "tab\there", "new\nline", "ünï\u2028code", ["a", "b\t"], 7, None]


def test_entries_round_trip_and_items_keep_their_shard_line() -> None:
    items = [{"id": f"d/{i}", "text": value if isinstance(value, str) else str(value), "score": 0.1 * i, "nested": [i, {"x": None}]}
             for i, value in enumerate(AWKWARD_KEYS)]
    lines = [entry_line(key, item) for key, item in zip(AWKWARD_KEYS, items, strict=True)]
    batch = pack(lines)
    assert batch[0] == len(items)
    assert list(entry_lines([batch, pack([])])) == lines
    for line, key, item in zip(entry_lines([batch]), AWKWARD_KEYS, items, strict=True):
        got_key, got_item = split_entry(line)
        assert got_key == key and got_item == encode_record(item)
    assert [item for _, item in entries([batch])] == items


def check_batches(lists: list[list[tuple[int, int, list[int]]]]) -> None:
    """Runs in the pipeline (the matcher is pickled): several flushes, every item once, in its partition."""
    (batches,) = lists
    assert len(batches) > 3, batches  # several flushes, not one batch per partition
    assert sorted(key for _, _, keys in batches for key in keys) == list(range(300))
    assert all(key % 3 == partition for partition, _, keys in batches for key in keys)
    assert sum(count for _, count, _ in batches) == 300


def test_pack_fn_flushes_when_full_and_loses_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(packed, "FLUSH_BYTES", 5_000)  # read in the worker: FnApiRunner's default runs in this process
    pipeline = beam.Pipeline(runner="FnApiRunner")
    batches = (
        pipeline
        | beam.Create([{"n": n, "text": "x" * 200} for n in range(300)])
        | pack_into("d", "exact_dedup", lambda item: (item["n"] % 3, item["n"]))
        | beam.Map(lambda element: (element[0], element[1][0], [split_entry(line)[0] for line in entry_lines([element[1]])]))
    )
    assert_that(batches | beam.combiners.ToList(), check_batches)
    result = pipeline.run()
    result.wait_until_finish()
    assert shuffled_bytes(result, ["d"])["d"]["exact_dedup"] > 0


def test_group_into_buckets_follows_the_total() -> None:
    items = [{"id": f"d/{n}"} for n in range(250)]
    buckets = 250 // 40 + 1
    pipeline = beam.Pipeline(runner="FnApiRunner")
    grouped = (
        pipeline
        | beam.Create(items)
        | GroupIntoBuckets("d", "write", lambda item: item["id"], lambda total: total // 40 + 1)
        | beam.FlatMap(lambda element: [(element[0], key) for key, _ in entries(element[1])])
    )
    assert_that(grouped, equal_to([(bucket(item["id"], buckets), item["id"]) for item in items]))
    pipeline.run().wait_until_finish()


def test_group_into_buckets_of_nothing_is_nothing() -> None:
    pipeline = beam.Pipeline(runner="FnApiRunner")
    grouped = pipeline | beam.Create([]) | GroupIntoBuckets("d", "write", str, lambda total: max(1, math.ceil(total / 10)))
    assert_that(grouped, equal_to([]))
    pipeline.run().wait_until_finish()
