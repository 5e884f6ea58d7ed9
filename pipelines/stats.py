"""Exact distributions of a dataset, computed inside the build, and the run time of each stage.

``CollectStats`` summarises the records that reach the write stage (group ``kept``) and the records
each stage dropped (groups ``dropped:<stage>``) into ``OUT/_stats/<dataset>.json`` (the document and
its fixed-bucket histograms are schemas/stats.py), so the partial summaries of any number of workers
add up to the exact totals; no worker holds records.

``stage_seconds`` reads the time the runner measured in every transform (FnApiRunner reports it as
monitoring metrics) and adds it up per build step.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import apache_beam as beam

from schemas.record import PairRecord
from schemas.stats import KEPT, Summary, add_summaries, add_to_group, stats_document
from storage.builds import stats_path
from storage.files import write_json


class SummarizeFn(beam.CombineFn):
    """(group, record) -> {group: summary}; accumulators are small fixed-size histograms."""

    def create_accumulator(self) -> dict[str, Summary]:
        return {}

    def add_input(self, accumulator: dict[str, Summary], element: tuple[str, PairRecord]) -> dict[str, Summary]:
        group, record = element
        add_to_group(accumulator, group, record)
        return accumulator

    def merge_accumulators(self, accumulators: Iterable[dict[str, Summary]]) -> dict[str, Summary]:
        by_group: dict[str, list[Summary]] = {}
        for accumulator in accumulators:
            for group, summary in accumulator.items():
                by_group.setdefault(group, []).append(summary)
        return {group: add_summaries(summaries) for group, summaries in by_group.items()}

    def extract_output(self, accumulator: dict[str, Summary]) -> dict[str, Summary]:
        return accumulator


def merge_summaries(summaries: Iterable[dict[str, Summary]]) -> dict[str, Summary]:
    return SummarizeFn().merge_accumulators(summaries)


def write_stats(groups: dict[str, Summary], path: str, dataset: str) -> str:
    document = stats_document(dataset, groups)
    write_json(path, document)
    return path


def dropped_group(item: dict[str, Any]) -> tuple[str, PairRecord]:
    return f"dropped:{item['stage']}", item["record"]


class CollectStats(beam.PTransform):
    """``(kept records, dropped PCollection, ...)`` -> ``OUT/_stats/<dataset>.json``; outputs its path.

    The first PCollection holds the records that reach the write stage; every other one holds the
    ``DroppedRecord``s of one or more stages.
    """

    def __init__(self, dataset: str, output: str) -> None:
        super().__init__()
        self.dataset = dataset
        self.path = stats_path(output, dataset)

    def expand(self, inputs: tuple[beam.PCollection, ...]) -> beam.PCollection:
        kept, *dropped = inputs
        # Each input is summarised where it is made; only the small summaries meet (a Flatten of the
        # records themselves would hold every record in the local runner's memory).
        summaries = [kept | "group kept" >> beam.Map(lambda record: (KEPT, record)) | "summarize kept" >> beam.CombineGlobally(SummarizeFn())]
        summaries += [
            items | f"group dropped {i}" >> beam.Map(dropped_group) | f"summarize dropped {i}" >> beam.CombineGlobally(SummarizeFn())
            for i, items in enumerate(dropped)
        ]
        return (
            summaries
            | "all summaries" >> beam.Flatten()
            | "summarize" >> beam.CombineGlobally(merge_summaries)
            | "write" >> beam.Map(write_stats, self.path, self.dataset)
        )


EXECUTION_TIME = "ptransform_execution_time:total_msecs"


def stage_seconds(result: Any, datasets: list[str]) -> dict[str, dict[str, float]]:
    """{dataset: {step: seconds}}: the time workers spent in each top-level step ``"<dataset>: <step>"``.

    Sums the runner's per-transform execution time over every transform inside the step and every
    worker, so with several workers the figures add up to more than the wall-clock time. Empty for a
    runner whose result has no monitoring metrics.
    """
    monitoring_metrics = getattr(result, "monitoring_metrics", None)
    if monitoring_metrics is None:
        return {}
    msecs: dict[str, dict[str, float]] = {dataset: {} for dataset in datasets}
    for metric in monitoring_metrics().query()["counters"]:
        step = metric.key.step
        if not step or EXECUTION_TIME not in metric.key.metric.name:
            continue
        label = step.split("/", 1)[0]
        dataset, separator, name = label.partition(": ")
        if separator and dataset in msecs:
            value = metric.committed if metric.committed is not None else metric.attempted
            msecs[dataset][name] = msecs[dataset].get(name, 0) + (value or 0)
    return {dataset: {name: round(ms / 1000, 3) for name, ms in steps.items()} for dataset, steps in msecs.items()}
