"""The ``OUT/_stats/<dataset>.json`` document: fixed-bucket histograms of records, and how summaries add up.

A summary counts the records of one group (``kept``, or ``dropped:<stage>``): query and document
length in characters, detected languages and language scores, consistency rank and score, and mined
positive and hardest-negative scores. The histogram buckets are fixed in advance, so the partial
summaries of any number of workers add up to the exact totals.
"""
from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable
from typing import Any

from schemas.record import PairRecord

KEPT = "kept"

# Lengths: 0, then four buckets per doubling up to 2**20 characters.
LENGTH_EDGES: list[float] = [0, *sorted({round(2 ** (i / 4)) for i in range(81)})]
# Ranks: one bucket per rank below 10, then one per doubling.
RANK_EDGES: list[float] = [*range(11), *(2**i for i in range(4, 21))]
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
    for (name, edges), value in zip(HISTOGRAM_EDGES.items(), record_values(record), strict=True):
        if value is not None and math.isfinite(value):
            histograms[name][bucket_of(edges, value)] += 1


def add_to_group(summaries: dict[str, Summary], group: str, record: PairRecord) -> None:
    """Count ``record`` in the summary of ``group``, starting one when the group is new."""
    summary = summaries.get(group)
    if summary is None:
        summary = summaries[group] = empty_summary()
    add_record(summary, record)


def add_summaries(summaries: Iterable[Summary]) -> Summary:
    """The summary of the union of the summarised records."""
    total = empty_summary()
    for summary in summaries:
        total["records"] += summary["records"]
        for lang, n in summary["lang"].items():
            total["lang"][lang] = total["lang"].get(lang, 0) + n
        for name, counts in summary["histograms"].items():
            total["histograms"][name] = [a + b for a, b in zip(total["histograms"][name], counts, strict=True)]
    return total


def summarize(grouped_records: Iterable[tuple[str, PairRecord]]) -> dict[str, Summary]:
    """(group, record) pairs -> one summary per group, in one process (for a sample read back from shards)."""
    summaries: dict[str, Summary] = {}
    for group, record in grouped_records:
        add_to_group(summaries, group, record)
    return summaries


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
