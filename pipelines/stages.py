"""How a filter becomes a Beam stage: every stage returns the records it kept and the ones it dropped.

``ApplyFilter`` runs any ``filters.base.RecordFilter`` over batches (one model load per worker in
``setup``) and counts in/kept/dropped-by-reason under the filter's stage name. Grouping stages
(dedup, consistency) are their own PTransforms but return the same ``StageOutput``.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import apache_beam as beam

from filters.base import RecordFilter
from pipelines.funnel import Funnel
from schemas.record import PairRecord, dropped

DROPPED = "dropped"


class StageOutput(NamedTuple):
    """A NamedTuple, so Beam accepts it as a composite transform's output."""

    kept: beam.PCollection  # PairRecord
    dropped: beam.PCollection  # DroppedRecord


def counted_verdict(funnel: Funnel, dataset: str, stage: str, record: PairRecord, reason: str | None) -> Any:
    """The record for a stage's kept output, or its DroppedRecord for the dropped output; counted either way."""
    if reason is None:
        funnel.count(dataset, stage, "kept")
        return record
    funnel.count(dataset, stage, f"dropped:{reason}")
    return beam.pvalue.TaggedOutput(DROPPED, dropped(record, stage, reason))


class FilterBatchFn(beam.DoFn):
    def __init__(self, dataset: str, make_filter: Callable[[], RecordFilter]) -> None:
        self.dataset = dataset
        self.make_filter = make_filter
        self.funnel = Funnel()

    def setup(self) -> None:
        self.filter = self.make_filter()
        self.filter.setup()

    def process(self, batch: list[PairRecord]) -> Iterator[Any]:
        stage = self.filter.stage
        # Filters rewrite text and meta in place; Beam elements must not be mutated, so work on copies.
        batch = [{**record, "meta": record["meta"].copy()} for record in batch]
        verdicts = self.filter.check_batch(batch)
        self.funnel.count(self.dataset, stage, "in", len(batch))
        for record, reason in zip(batch, verdicts, strict=True):
            yield counted_verdict(self.funnel, self.dataset, stage, record, reason)


class ApplyFilter(beam.PTransform):
    """Run a per-record filter in batches; ``make_filter`` is called once per worker (models load there)."""

    def __init__(self, dataset: str, make_filter: Callable[[], RecordFilter], batch_size: int) -> None:
        super().__init__()
        self.dataset = dataset
        self.make_filter = make_filter
        self.batch_size = batch_size

    def expand(self, records: beam.PCollection) -> StageOutput:
        outputs = (
            records
            | "batch" >> beam.BatchElements(min_batch_size=1, max_batch_size=self.batch_size)
            | "check" >> beam.ParDo(FilterBatchFn(self.dataset, self.make_filter)).with_outputs(DROPPED, main="kept")
        )
        return StageOutput(kept=outputs.kept, dropped=outputs[DROPPED])
