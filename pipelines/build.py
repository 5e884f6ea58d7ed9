"""``pairmill build``: the curation pipeline, read top to bottom.

For each recipe source: read (records + rejected rows) -> clean -> language -> exact dedup -> near
dedup -> decontaminate -> consistency -> shards. Every stage returns what it kept and what it dropped with a reason;
rejected rows go to ``OUT/_rejected/<dataset>``, dropped ones (all or a sample per reason) to
``OUT/_dropped/<dataset>``, and the counters of every stage make the funnel in ``OUT/report.json``.
"""
from __future__ import annotations

import contextlib
import ctypes
import functools
import gc
import sys
import time
from collections.abc import Callable
from typing import Any

import apache_beam as beam

from embedding.names import check_model
from filters.clean import CleanFilter
from filters.decontaminate import DecontaminateFilter, build_index, index_folder
from filters.language import LanguageFilter, check_binding
from pipelines.consistency import ConsistencyFilter
from pipelines.exact_dedup import ExactDedup
from pipelines.funnel import build_funnel, read_counters
from pipelines.near_dedup import NearDedup
from pipelines.options import make_pipeline, pipeline_options
from pipelines.packed import shuffled_bytes
from pipelines.shards import WriteDataset, WriteShards, dropped_key, dropped_order, rejected_key, rejected_order
from pipelines.sources import SOURCES
from pipelines.sources.base import Source, match_paths
from pipelines.stages import ApplyFilter
from pipelines.stats import CollectStats, stage_seconds
from schemas.config import ConfigError
from schemas.manifest import objective, pairmill_version
from schemas.recipe import FiltersConfig, Recipe, SourceSpec, recipe_as_dict
from schemas.stages import CLEAN, CONSISTENCY, CURATION_STAGES, DECONTAMINATE, EXACT_DEDUP, LANGUAGE, NEAR_DEDUP, READ, WRITE
from storage.builds import (
    dataset_folder,
    dataset_paths,
    existing_manifest,
    read_saved_funnel,
    side_folder,
    withhold,
    write_funnel,
)
from storage.cache import check_remote
from storage.files import delete

StageMaker = Callable[[str, FiltersConfig, str], beam.PTransform | None]


def _clean(dataset: str, filters: FiltersConfig, output: str) -> beam.PTransform | None:
    return ApplyFilter(dataset, functools.partial(CleanFilter, filters.clean), batch_size=1024) if filters.clean is not None else None


def _language(dataset: str, filters: FiltersConfig, output: str) -> beam.PTransform | None:
    if filters.language is None:
        return None
    return ApplyFilter(dataset, functools.partial(LanguageFilter, filters.language), filters.language.batch_size)


def _exact_dedup(dataset: str, filters: FiltersConfig, output: str) -> beam.PTransform | None:
    return ExactDedup(dataset, filters.dedup.exact) if filters.dedup is not None and filters.dedup.exact != "none" else None


def _near_dedup(dataset: str, filters: FiltersConfig, output: str) -> beam.PTransform | None:
    if filters.dedup is None or filters.dedup.near is None:
        return None
    try:
        return NearDedup(dataset, filters.dedup.near)
    except ValueError as err:  # bands x rows that do not fit num_perm
        raise ConfigError(f"filters.dedup.near: {err}") from None


def _decontaminate(dataset: str, filters: FiltersConfig, output: str) -> beam.PTransform | None:
    if filters.decontaminate is None:
        return None
    make = functools.partial(DecontaminateFilter, filters.decontaminate, index_folder(output, filters.decontaminate))
    return ApplyFilter(dataset, make, batch_size=1024)


def _consistency(dataset: str, filters: FiltersConfig, output: str) -> beam.PTransform | None:
    return ConsistencyFilter(dataset, filters.consistency) if filters.consistency is not None else None


# How each curation stage is made from the recipe's filters (None: not enabled); the order is CURATION_STAGES'.
STAGE_MAKERS: dict[str, StageMaker] = {
    CLEAN: _clean,
    LANGUAGE: _language,
    EXACT_DEDUP: _exact_dedup,
    NEAR_DEDUP: _near_dedup,
    DECONTAMINATE: _decontaminate,
    CONSISTENCY: _consistency,
}


def curation_stages(dataset: str, filters: FiltersConfig, output: str) -> list[tuple[str, beam.PTransform]]:
    """The enabled filters of the recipe, in pipeline order, as Beam stages for one dataset written under ``output``."""
    return [(name, stage) for name in CURATION_STAGES if (stage := STAGE_MAKERS[name](dataset, filters, output)) is not None]


def format_plan(recipe: Recipe) -> str:
    """What a build of this recipe would do, read from the recipe alone (no data is listed or read)."""
    def stages(filters: FiltersConfig) -> str:
        return " -> ".join([READ, *(name for name, _ in curation_stages("plan", filters, recipe.output)), WRITE])

    lines = [f"recipe {recipe.path} -> {recipe.output}", f"stages: {stages(recipe.filters)}"]
    lines += [f"  {spec.dataset} (its own filters): {stages(spec.filters)}" for spec in recipe.sources if spec.filters != recipe.filters]
    lines.append("")
    lines.append(f"{'dataset':<36} {'kind':<15} {'expected':>12}  paths")
    expected_total = 0
    for spec in recipe.sources:
        expected = f"{spec.expected_records:,}" if spec.expected_records is not None else "-"
        expected_total += spec.expected_records or 0
        lines.append(f"{spec.dataset:<36} {spec.kind:<15} {expected:>12}  {', '.join(spec.paths)}")
    lines.append(f"{len(recipe.sources)} sources, {expected_total:,} expected records after filtering (where the recipe states them)")
    return "\n".join(lines)


def open_sources(recipe: Recipe) -> list[Source]:
    """Each recipe source with its files listed now, on the driver, so a path that matches nothing stops the build."""
    return [
        SOURCES[spec.kind](spec, match_paths(spec.paths, f"{recipe.path}: sources[{i}].paths"))
        for i, spec in enumerate(recipe.sources)
    ]


def manifest_fields(recipe: Recipe, spec: SourceSpec) -> dict[str, Any]:
    prefixes = spec.prefixes
    return {
        "objective": objective(spec.objective),
        "prefixes": {"query": prefixes.query, "document": prefixes.document} if prefixes else {"query": "", "document": ""},
        "recipe_hash": recipe.dataset_fingerprint(spec.dataset),
        "pairmill_version": pairmill_version(),
    }


def add_dataset(pipeline: beam.Pipeline, recipe: Recipe, source: Source) -> None:
    """One dataset's branch of the graph, from its files to its shard folder."""
    dataset = source.dataset
    read = source.read(pipeline)
    records, dropped = read.records, []
    for name, stage in curation_stages(dataset, source.spec.filters, recipe.output):
        result = records | f"{dataset}: {name}" >> stage
        records = result.kept
        dropped.append(result.dropped)
    (records, *dropped) | f"{dataset}: stats" >> CollectStats(dataset, recipe.output)

    shards = recipe.shards
    records | f"{dataset}: write" >> WriteDataset(
        dataset, dataset_folder(recipe.output, dataset), shards.records_per_shard, shards.zstd_level, shards.parquet,
        manifest_fields(recipe, source.spec),
    )
    read.rejected | f"{dataset}: write rejected" >> WriteShards(
        side_folder(recipe.output, "rejected", dataset), "rejected", shards.records_per_shard, shards.zstd_level,
        key=rejected_key, sort_key=rejected_order, dataset=dataset,
    )
    if shards.write_dropped == "none" or not dropped:
        return
    all_dropped = dropped | f"{dataset}: dropped" >> beam.Flatten()
    if shards.write_dropped == "sample":
        all_dropped = (
            all_dropped
            | f"{dataset}: key by reason" >> beam.Map(lambda item: ((item["stage"], item["reason"]), item))
            | f"{dataset}: sample per reason" >> beam.combiners.Sample.FixedSizePerKey(shards.dropped_sample_size)
            | f"{dataset}: unpack sample" >> beam.FlatMap(lambda keyed: keyed[1])
        )
    all_dropped | f"{dataset}: write dropped" >> WriteShards(
        side_folder(recipe.output, "dropped", dataset), "dropped", shards.records_per_shard, shards.zstd_level,
        key=dropped_key, sort_key=dropped_order, dataset=dataset,
    )


def prepare_output(recipe: Recipe, overwrite: bool, datasets: list[str], fingerprint: Callable[[str], str]) -> list[str]:
    """The datasets to build now. A complete dataset built from the same recipe parts (``fingerprint``)
    is kept, so a rerun after an interruption finishes the rest; one from other recipe parts is
    refused without ``overwrite``. What an unfinished build left behind is cleared."""
    to_build = []
    for dataset in datasets:
        folder = dataset_folder(recipe.output, dataset)
        if not overwrite:
            built = existing_manifest(folder)
            if built is not None:
                if built.recipe_hash == fingerprint(dataset):
                    continue
                raise ConfigError(f"{folder} already holds a complete build from a different recipe; pass --overwrite to replace it")
        # The manifest goes first, so an interrupted overwrite never leaves a folder that looks complete.
        for path in dataset_paths(recipe.output, dataset):
            delete(path)
        to_build.append(dataset)
    return to_build


def release_memory() -> None:
    """Give a finished run's memory back to the system before the next run: collect what it left in
    reference cycles, then ask glibc to return its freed heap (Python keeps it otherwise; not on other C libraries)."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def run_pipeline(beam_args: list[str], datasets: list[str], add: Callable[[beam.Pipeline, str], None]) -> tuple[dict[str, Any], str]:
    """One pipeline holding ``datasets``, run to the end: each dataset's funnel entry, and which counter values
    the books used. Nothing of the run is referenced after the call, so a next run does not keep its buffers alive."""
    pipeline = make_pipeline(beam_args)
    for dataset in datasets:
        add(pipeline, dataset)
    result = pipeline.run()
    result.wait_until_finish()
    counters, metrics = read_counters(result)
    seconds, shuffled = stage_seconds(result, datasets), shuffled_bytes(result, datasets)
    entries = build_funnel(counters, datasets)
    for dataset, entry in entries.items():
        entry["stage_seconds"] = seconds.get(dataset, {})
        entry["shuffled_bytes"] = shuffled[dataset]
        entry["metrics"] = metrics
    return entries, metrics


def run_datasets(recipe: Recipe, beam_args: list[str], overwrite: bool, datasets: list[str],
                 fingerprint: Callable[[str], str], add: Callable[[beam.Pipeline, str], None],
                 one_at_a_time: bool = False) -> tuple[dict[str, Any], float, str | None]:
    """What build and mine share once their inputs are checked: prepare the output folder, add each
    dataset to build to one pipeline (``add(pipeline, dataset)``), or to one pipeline each, run one after
    another, with ``one_at_a_time``; return each dataset's funnel (in ``datasets`` order), the seconds the
    runs took and which counter values their books used (``committed`` or ``attempted``, also each entry's
    ``metrics``; None when nothing was run).

    A dataset whose books do not balance is withheld. Each funnel is also kept in
    ``OUT/_funnel/<dataset>.json``, so a rerun that skips complete datasets still reports theirs, and a
    build one dataset at a time that is interrupted keeps the datasets it finished.
    """
    pipeline_options(beam_args)  # unknown flags stop here, before the output folder is touched
    to_build = prepare_output(recipe, overwrite, datasets, fingerprint)
    started = time.time()
    funnel: dict[str, Any] = {}
    metrics: str | None = None
    runs = [[dataset] for dataset in to_build] if one_at_a_time else [to_build] if to_build else []
    for i, run in enumerate(runs, 1):
        if one_at_a_time:
            print(f"pairmill: dataset {i} of {len(runs)}: {run[0]}", file=sys.stderr, flush=True)
        entries, metrics = run_pipeline(beam_args, run, add)
        if one_at_a_time:
            release_memory()
        for dataset, entry in entries.items():
            write_funnel(recipe.output, dataset, entry)
            funnel[dataset] = entry
            if not entry["balanced"]:
                withhold(dataset_folder(recipe.output, dataset))
    for dataset in datasets:
        if dataset not in to_build:
            funnel[dataset] = {**read_saved_funnel(recipe.output, dataset), "from_earlier_build": True}
    return {dataset: funnel[dataset] for dataset in datasets}, round(time.time() - started, 2), metrics


def filters_in_use(recipe: Recipe) -> dict[str, FiltersConfig]:
    """Each filters block some source runs, once, by the key that sets it (``filters`` or ``sources[i].filters``)."""
    used: dict[str, FiltersConfig] = {}
    for i, spec in enumerate(recipe.sources):
        used.setdefault("filters" if spec.filters == recipe.filters else f"sources[{i}].filters", spec.filters)
    return used


def run_build(recipe: Recipe, beam_args: list[str], overwrite: bool = False, one_at_a_time: bool = False) -> dict[str, Any]:
    """Run the build pipeline (one per dataset with ``one_at_a_time``) and return the funnel report (``OUT/report.json``)."""
    used = filters_in_use(recipe)
    for where, filters in used.items():  # a missing package or model stops here, not in every worker
        if filters.consistency is not None:
            check_model(filters.consistency.teacher.model, f"{recipe.path}: {where}.consistency.teacher.model")
        if filters.language is not None and filters.language.model is not None:
            check_remote(filters.language.model, f"{recipe.path}: {where}.language.model")
    sources = {source.dataset: source for source in open_sources(recipe)}
    if any(filters.language is not None for filters in used.values()):
        # Workers check at first use; a broken fastText binding here stops in one line, before the output is touched.
        check_binding()
    decontamination = build_indexes(recipe)
    funnel, seconds, metrics = run_datasets(recipe, beam_args, overwrite, recipe.datasets, recipe.dataset_fingerprint,
                                            lambda pipeline, dataset: add_dataset(pipeline, recipe, sources[dataset]), one_at_a_time)
    return {
        "command": "build",
        "recipe": recipe.path,
        "recipe_hash": recipe.fingerprint(),
        "recipe_resolved": recipe_as_dict(recipe),
        "output": recipe.output,
        "pairmill_version": pairmill_version(),
        "seconds": seconds,
        "metrics": metrics,
        "datasets": funnel,
        "decontamination": decontamination,
        "balanced": all(entry["balanced"] for entry in funnel.values()),
    }


def build_indexes(recipe: Recipe) -> dict[str, Any]:
    """Each decontamination index the recipe's sources use, built once (sources whose blocks agree share it);
    per dataset, what it was checked against (the datasheet's facts: sets, their paths and sizes, the options)."""
    built: dict[str, list[dict[str, Any]]] = {}
    checked: dict[str, Any] = {}
    for spec in recipe.sources:
        config = spec.filters.decontaminate
        if config is None:
            continue
        folder = index_folder(recipe.output, config)
        if folder not in built:
            built[folder] = build_index(config, folder).sets
        checked[spec.dataset] = {"index": folder, "against": built[folder], "ngram": config.ngram, "sides": config.sides,
                                 "queries_only": config.queries_only}
    return checked
