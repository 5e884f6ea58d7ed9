"""A build's output folder read into plain data for the report: no plotting, no HTML.

``collect`` gathers what the page shows for the funnel of a build: per dataset its ``OUT/_stats``
distributions (the summaries each chart plots), its manifest, the first written records, and a few
dropped and rejected rows per reason; per mined dataset its positive and hardest-negative scores;
and the versions of the packages on this machine. Everything is read through Beam FileSystems, so
an output on gs:// or s3:// gets the same report.
"""
from __future__ import annotations

import platform
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from importlib import metadata
from itertools import islice
from typing import Any

from report.datasheet import datasheet
from schemas.manifest import Manifest
from schemas.record import DroppedRecord, PairRecord, RejectedRow
from schemas.stats import HISTOGRAM_EDGES, KEPT, Summary, add_summaries, empty_summary, summarize
from storage.builds import existing_manifest, iter_jsonl_zst, read_stats, side_folder
from storage.files import exists, join, match, read_json, write_json, write_text

KEPT_EXAMPLES = 3
EXAMPLES_PER_REASON = 3
# Dropped and rejected rows are sorted by reason inside each file, so the first rows of the first
# files hold examples of every reason; this bounds the reading when a build writes all of them.
MAX_SCANNED_ROWS = 100_000
MINED_SAMPLE = 5_000
VERSIONED = [
    "pairmill", "apache-beam", "torch", "sentence-transformers", "datasketch", "fasttext-numpy2",
    "wordllama", "numpy", "pyarrow", "zstandard", "matplotlib",
]


@dataclass
class Written:
    """A dataset folder as written: its manifest (None when there is none) and its first records."""

    folder: str
    manifest: Manifest | None
    first_records: list[PairRecord]


@dataclass
class Distributions:
    """The summaries a dataset's charts plot: each pair is (kept, dropped) for that view."""

    edges: dict[str, list[float]]
    lengths: tuple[Summary, Summary]  # records written; records any stage dropped
    language: tuple[Summary, Summary]  # records that passed the language stage; records it dropped
    consistency: tuple[Summary, Summary]  # the same for the consistency stage


@dataclass
class DatasetFigures:
    """One dataset of the build's funnel, with what its output folder holds."""

    name: str
    entry: dict[str, Any]  # the dataset's funnel entry in the report
    written: Written
    distributions: Distributions | None  # None: the build wrote no OUT/_stats file
    dropped: dict[tuple[str, str], list[DroppedRecord]] | None  # (stage, reason) -> rows; None: nothing dropped
    dropped_missing: list[tuple[str, str]]  # (stage, reason) of the funnel with no dropped rows written
    rejected: dict[str, list[RejectedRow]] | None  # reason -> rows; None: nothing rejected
    datasheet: dict[str, Any]  # report/datasheet.py


@dataclass
class MinedFigures:
    """A mined dataset: its records and the summary of its positive and hardest-negative scores."""

    name: str
    written: Written
    edges: dict[str, list[float]]
    scores: Summary | None  # None: neither an OUT/_stats file nor a manifest
    scores_from: str  # "all records", or which records of the shards were sampled


@dataclass
class Collected:
    """Everything report.json and report.html show, read from the output folder."""

    output: str
    report: dict[str, Any]
    stats: dict[str, dict[str, Any] | None]
    versions: dict[str, str]
    datasets: list[DatasetFigures]
    mined: list[MinedFigures]


# ---- the output folder ------------------------------------------------------------------------

def matching_files(folder: str, pattern: str) -> list[str]:
    return sorted(match(join(folder, pattern)))


def rows_of(paths: list[str]) -> Iterator[Any]:
    for path in paths:
        yield from iter_jsonl_zst(path)


def dataset_records(folder: str, manifest: Manifest) -> Iterator[Any]:
    return rows_of([join(folder, shard.file) for shard in manifest.shards])


def read_report(output: str) -> dict[str, Any] | None:
    """The report.json of an earlier build in ``output``, or None."""
    path = join(output, "report.json")
    return read_json(path) if exists(path) else None


def write_report_files(output: str, document: dict[str, Any], page: str) -> dict[str, str]:
    """Write ``OUT/report.json`` and ``OUT/report.html``; return their paths."""
    paths = {"json": join(output, "report.json"), "html": join(output, "report.html")}
    write_json(paths["json"], document, indent=2, sort_keys=True)
    write_text(paths["html"], page)
    return paths


# ---- figures ----------------------------------------------------------------------------------

def examples_per_key(rows: Iterable[Any], key: Callable[[Any], Any], wanted: set[Any], per_key: int) -> dict[Any, list[Any]]:
    """Up to ``per_key`` rows for every key met, reading until each ``wanted`` key has them."""
    found: dict[Any, list[Any]] = {}
    missing = set(wanted)
    for row in islice(rows, MAX_SCANNED_ROWS):
        k = key(row)
        examples = found.setdefault(k, [])
        if len(examples) < per_key:
            examples.append(row)
            if len(examples) == per_key:
                missing.discard(k)
                if not missing:
                    break
    return found


def versions() -> dict[str, str]:
    """Versions of Python and of the packages a build depends on, on the machine writing the report."""
    found = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def passed_stage(groups: dict[str, Summary], stage_order: list[str], stage: str) -> Summary:
    """Records that passed ``stage``: the kept ones plus those dropped by any later stage."""
    later = stage_order[stage_order.index(stage) + 1 :] if stage in stage_order else []
    return add_summaries([groups.get(KEPT, empty_summary()), *(groups[f"dropped:{s}"] for s in later if f"dropped:{s}" in groups)])


def distributions(entry: dict[str, Any], stats: dict[str, Any]) -> Distributions:
    groups = stats["groups"]
    order = [s["stage"] for s in entry["stages"]]
    dropped_all = add_summaries(v for k, v in groups.items() if k.startswith("dropped:"))
    return Distributions(
        edges=stats["edges"],
        lengths=(groups.get(KEPT, empty_summary()), dropped_all),
        language=(passed_stage(groups, order, "language"), groups.get("dropped:language", empty_summary())),
        consistency=(passed_stage(groups, order, "consistency"), groups.get("dropped:consistency", empty_summary())),
    )


def written(folder: str, records: int = KEPT_EXAMPLES) -> Written:
    """The dataset folder's manifest and its first ``records`` records."""
    manifest = existing_manifest(folder)
    first = [] if manifest is None else list(islice(dataset_records(folder, manifest), records))
    return Written(folder, manifest, first)


def dropped_examples(output: str, dataset: str, entry: dict[str, Any]) -> tuple[dict[tuple[str, str], list[DroppedRecord]] | None, list[tuple[str, str]]]:
    """A few dropped rows per (stage, reason) of the funnel, and the pairs with none written."""
    wanted = {(s["stage"], reason) for s in entry["stages"] for reason in s["dropped"]}
    if not wanted:
        return None, []
    files = matching_files(side_folder(output, "dropped", dataset), "dropped-*.jsonl.zst")
    found = examples_per_key(rows_of(files), lambda row: (row["stage"], row["reason"]), wanted, EXAMPLES_PER_REASON)
    return found, sorted(wanted - set(found))


def rejected_examples(output: str, dataset: str, entry: dict[str, Any]) -> dict[str, list[RejectedRow]] | None:
    """A few rejected input rows per reason of the funnel."""
    wanted = {reason for s in entry["stages"] for reason in s["rejected"]}
    if not wanted:
        return None
    files = matching_files(side_folder(output, "rejected", dataset), "rejected-*.jsonl.zst")
    return examples_per_key(rows_of(files), lambda row: row["reason"], wanted, EXAMPLES_PER_REASON)


def dataset_figures(output: str, dataset: str, entry: dict[str, Any], stats: dict[str, Any] | None, checked: dict[str, Any] | None) -> DatasetFigures:
    """``checked``: what the build checked the dataset against (report.json's ``decontamination``), None if nothing."""
    dropped, dropped_missing = dropped_examples(output, dataset, entry)
    return DatasetFigures(
        name=dataset,
        entry=entry,
        written=written(join(output, dataset)),
        distributions=None if stats is None else distributions(entry, stats),
        dropped=dropped,
        dropped_missing=dropped_missing,
        rejected=rejected_examples(output, dataset, entry),
        datasheet=datasheet(checked, entry, dropped),
    )


def mined_figures(output: str, dataset: str, stats: dict[str, Any] | None) -> MinedFigures:
    """A mined dataset's scores: exact from its OUT/_stats file, else from a sample of its shards."""
    if stats is not None:
        return MinedFigures(dataset, written(join(output, dataset)), stats["edges"], stats["groups"].get(KEPT, empty_summary()), "all records")
    sample = written(join(output, dataset), MINED_SAMPLE)
    shown = Written(sample.folder, sample.manifest, sample.first_records[:KEPT_EXAMPLES])
    if sample.manifest is None:
        return MinedFigures(dataset, shown, HISTOGRAM_EDGES, None, "")
    summary = summarize((KEPT, r) for r in sample.first_records).get(KEPT, empty_summary())
    where = f"the first {min(MINED_SAMPLE, sample.manifest.records):,} of {sample.manifest.records:,} records"
    return MinedFigures(dataset, shown, HISTOGRAM_EDGES, summary, where)


def collect(output: str, report: dict[str, Any]) -> Collected:
    """What the report of ``report`` (a build's funnel) shows, read from ``output``."""
    stats = {dataset: read_stats(output, dataset) for dataset in report["datasets"]}
    mined = report.get("mined") or []
    return Collected(
        output=output,
        report=report,
        stats=stats,
        versions=versions(),
        datasets=[dataset_figures(output, d, e, stats[d], report.get("decontamination", {}).get(d)) for d, e in report["datasets"].items()],
        mined=[mined_figures(output, name, stats[name] if name in stats else read_stats(output, name)) for name in mined],
    )


def merge_mined(report: dict[str, Any] | None, mined: dict[str, Any]) -> dict[str, Any]:
    """The build's report with the mined datasets added (a report of its own when there was no build report)."""
    if report is None:
        return {**mined, "recipe_hash": "", "pairmill_version": "", "recipe_resolved": {}}
    datasets = {**report["datasets"], **mined["datasets"]}
    return {**report, "datasets": datasets, "mined": sorted(set(report.get("mined", [])) | set(mined["mined"])),
            "balanced": all(e["balanced"] for e in datasets.values())}
