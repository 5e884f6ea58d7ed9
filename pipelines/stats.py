"""Exact distributions of a dataset, computed inside the build, and the run time of each stage.

``CollectStats`` summarises the records that reach the write stage (group ``kept``) and the records
each stage dropped (groups ``dropped:<stage>``) into ``OUT/_stats/<dataset>.json``: query and
document length in characters, detected languages and language scores, consistency rank and score,
and mined positive and hardest-negative scores. The histogram buckets are fixed in advance, so the
partial summaries of any number of workers add up to the exact totals; no worker holds records.

``stage_seconds`` reads the time the runner measured in every transform (FnApiRunner reports it as
monitoring metrics) and adds it up per build step.
"""
from __future__ import annotations

import math
from bisect import bisect_right
from typing import Any, Iterable

import apache_beam as beam

from schemas.record import PairRecord
from storage.builds import stats_path
from storage.files import write_json

KEPT = "kept"

# Lengths: 0, then four buckets per doubling up to 2**20 characters.
LENGTH_EDGES = [0, *sorted({round(2 ** (i / 4)) for i in range(81)})]
# Ranks: one bucket per rank below 10, then one per doubling.
RANK_EDGES = [*range(11), *(2**i for i in range(4, 21))]
PROBABILITY_EDGES = [round(i / 50, 2) for i in range(51)]
COSINE_EDGES = [round(-1 + i / 50, 2) for i in range(101)]

# Each histogram's bucket i counts values in [edges[i], edges[i + 1]); values outside the range are
# counted in the first or last bucket.
HISTOGRAM_EDGES: dict[str, list[float]] = {
    "query_chars": LENGTH_EDGES,
    "document_chars": LENGTH_EDGES,
    "lang_score": PROBABILITY_EDGES,
    "consistency_rank": RANK_EDGES,
    "consistency_score": COSINE_EDGES,
    "positive_score": COSINE_EDGES,
    "hardest_negative_score": COSINE_EDGES,
}

Summary = dict[str, Any]  # {"records": n, "lang": {code: n}, "histograms": {name: [count per bucket]}}


def record_values(record: PairRecord) -> list[float | None]:
    """The record's value for each histogram, in ``HISTOGRAM_EDGES`` order (None where it has none)."""
    meta = record["meta"]
    negatives = meta.get("negative_scores")
    return [
        len(record["query"]),
        len(record["document"]),
        meta.get("lang_score"),
        meta.get("consistency_rank"),
        meta.get("consistency_score"),
        meta.get("positive_score"),
        max(negatives) if negatives else None,
    ]


def bucket_of(edges: list[float], value: float) -> int:
    return min(max(bisect_right(edges, value) - 1, 0), len(edges) - 2)


def empty_summary() -> Summary:
    return {"records": 0, "lang": {}, "histograms": {name: [0] * (len(edges) - 1) for name, edges in HISTOGRAM_EDGES.items()}}


def add_record(summary: Summary, record: PairRecord) -> None:
    summary["records"] += 1
    lang = record["meta"].get("lang")
    if lang is not None:
        summary["lang"][lang] = summary["lang"].get(lang, 0) + 1
    histograms = summary["histograms"]
    for (name, edges), value in zip(HISTOGRAM_EDGES.items(), record_values(record)):
        if value is not None and math.isfinite(value):
            histograms[name][bucket_of(edges, value)] += 1


def add_summaries(summaries: Iterable[Summary]) -> Summary:
    """The summary of the union of the summarised records."""
    total = empty_summary()
    for summary in summaries:
        total["records"] += summary["records"]
        for lang, n in summary["lang"].items():
            total["lang"][lang] = total["lang"].get(lang, 0) + n
        for name, counts in summary["histograms"].items():
            total["histograms"][name] = [a + b for a, b in zip(total["histograms"][name], counts)]
    return total


class SummarizeFn(beam.CombineFn):
    """(group, record) -> {group: summary}; accumulators are small fixed-size histograms."""

    def create_accumulator(self) -> dict[str, Summary]:
        return {}

    def add_input(self, accumulator: dict[str, Summary], element: tuple[str, PairRecord]) -> dict[str, Summary]:
        group, record = element
        summary = accumulator.get(group)
        if summary is None:
            summary = accumulator[group] = empty_summary()
        add_record(summary, record)
        return accumulator

    def merge_accumulators(self, accumulators: Iterable[dict[str, Summary]]) -> dict[str, Summary]:
        by_group: dict[str, list[Summary]] = {}
        for accumulator in accumulators:
            for group, summary in accumulator.items():
                by_group.setdefault(group, []).append(summary)
        return {group: add_summaries(summaries) for group, summaries in by_group.items()}

    def extract_output(self, accumulator: dict[str, Summary]) -> dict[str, Summary]:
        return accumulator


def summarize(grouped_records: Iterable[tuple[str, PairRecord]]) -> dict[str, Summary]:
    """(group, record) pairs -> one summary per group, in one process (for a sample read back from shards)."""
    fn = SummarizeFn()
    accumulator = fn.create_accumulator()
    for item in grouped_records:
        accumulator = fn.add_input(accumulator, item)
    return fn.extract_output(accumulator)


def cluster_size_label(size: int) -> str:
    """A near-duplicate cluster size as a funnel figure name: exact up to 8, then one bucket per doubling ("9-16")."""
    if size <= 8:
        return str(size)
    upper = 1 << (size - 1).bit_length()
    return f"{upper // 2 + 1}-{upper}"


def cluster_size_order(label: str) -> int:
    return int(label.split("-", 1)[0])


def stats_document(dataset: str, groups: dict[str, Summary]) -> dict[str, Any]:
    return {"dataset": dataset, "edges": HISTOGRAM_EDGES, "groups": dict(sorted(groups.items()))}


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
        grouped = [kept | "group kept" >> beam.Map(lambda record: (KEPT, record))]
        grouped += [items | f"group dropped {i}" >> beam.Map(dropped_group) for i, items in enumerate(dropped)]
        return (
            grouped
            | "all groups" >> beam.Flatten()
            | "summarize" >> beam.CombineGlobally(SummarizeFn())
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
