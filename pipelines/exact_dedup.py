"""Exact deduplication by grouping keys (as TFDS's C4 does): records whose normalised text is equal
share a key; the record with the smallest id survives, the others are dropped as exact_duplicate."""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam

from filters.clean import exact_key
from pipelines.funnel import Funnel
from pipelines.stages import DROPPED, StageOutput, counted_verdict
from schemas.record import PairRecord
from schemas.stages import EXACT_DEDUP

STAGE = EXACT_DEDUP


class KeepSmallestIdFn(beam.DoFn):
    """One pass over a key's group: the smallest id so far is held, every other record is dropped."""

    def __init__(self, dataset: str) -> None:
        self.dataset = dataset
        self.funnel = Funnel()

    def process(self, element: tuple[str, Iterable[PairRecord]]) -> Iterator[Any]:
        _, records = element
        best: PairRecord | None = None
        for record in records:
            self.funnel.count(self.dataset, STAGE, "in")
            if best is None:
                best = record
                continue
            loser, best = (best, record) if record["id"] < best["id"] else (record, best)
            yield counted_verdict(self.funnel, self.dataset, STAGE, loser, "exact_duplicate")
        if best is not None:
            yield counted_verdict(self.funnel, self.dataset, STAGE, best, None)


class ExactDedup(beam.PTransform):
    def __init__(self, dataset: str, field: str) -> None:
        super().__init__()
        self.dataset = dataset
        self.field = field

    def expand(self, records: beam.PCollection) -> StageOutput:
        field = self.field
        outputs = (
            records
            | "key" >> beam.Map(lambda record: (exact_key(record, field), record))
            | "group" >> beam.GroupByKey()
            | "keep one" >> beam.ParDo(KeepSmallestIdFn(self.dataset)).with_outputs(DROPPED, main="kept")
        )
        return StageOutput(kept=outputs.kept, dropped=outputs[DROPPED])
