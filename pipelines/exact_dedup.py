"""Exact deduplication by grouping keys (as TFDS's C4 does): records whose normalised text is equal
share a key; the record with the smallest id survives, the others are dropped as exact_duplicate.

Records cross the grouping packed (pipelines/packed.py) into ``PARTITIONS`` partitions by key, so a
worker holds one partition's keys and its surviving lines, never the whole dataset.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam

from filters.clean import exact_key
from pipelines.funnel import Funnel
from pipelines.packed import PARTITIONS, Packed, decode_item, entry_lines, pack_into, split_entry
from pipelines.stages import DROPPED, StageOutput, counted_verdict
from schemas.stages import EXACT_DEDUP
from text.hashing import bucket

STAGE = EXACT_DEDUP


class KeepSmallestIdFn(beam.DoFn):
    """One partition: per key, the line with the smallest id is held, every other record is dropped."""

    def __init__(self, dataset: str) -> None:
        self.dataset = dataset
        self.funnel = Funnel()

    def process(self, element: tuple[int, Iterable[Packed]]) -> Iterator[Any]:
        best: dict[str, tuple[str, bytes]] = {}
        for line in entry_lines(element[1]):
            (key, record_id), item = split_entry(line)
            self.funnel.count(self.dataset, STAGE, "in")
            held = best.get(key)
            if held is None:
                best[key] = (record_id, item)
                continue
            (_, loser), best[key] = (held, (record_id, item)) if (record_id, item) < held else ((record_id, item), held)
            yield counted_verdict(self.funnel, self.dataset, STAGE, decode_item(loser), "exact_duplicate")
        for _, item in best.values():
            yield counted_verdict(self.funnel, self.dataset, STAGE, decode_item(item), None)


class ExactDedup(beam.PTransform):
    def __init__(self, dataset: str, field: str) -> None:
        super().__init__()
        self.dataset = dataset
        self.field = field

    def expand(self, records: beam.PCollection) -> StageOutput:
        field = self.field

        def entry(record: Any) -> tuple[int, list[str]]:
            key = exact_key(record, field)
            return bucket(key, PARTITIONS), [key, record["id"]]

        outputs = (
            records
            | "pack by key" >> pack_into(self.dataset, STAGE, entry)
            | "group" >> beam.GroupByKey()
            | "keep one" >> beam.ParDo(KeepSmallestIdFn(self.dataset)).with_outputs(DROPPED, main="kept")
        )
        return StageOutput(kept=outputs.kept, dropped=outputs[DROPPED])
