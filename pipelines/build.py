"""``pairmill build``: the curation pipeline, read top to bottom.

For each recipe source: read (records + rejected rows) -> clean -> language -> exact dedup -> near
dedup -> consistency -> shards. Every stage returns what it kept and what it dropped with a reason;
rejected rows go to ``OUT/_rejected/<dataset>``, dropped ones (all or a sample per reason) to
``OUT/_dropped/<dataset>``, and the counters of every stage make the funnel in ``OUT/report.json``.
"""
from __future__ import annotations

import functools
import time
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from filters.clean import CleanFilter
from pipelines.exact_dedup import ExactDedup
from pipelines.funnel import build_funnel, counter_values
from pipelines.options import pipeline_options
from pipelines.shards import (
    WriteDataset,
    WriteShards,
    dropped_key,
    dropped_order,
    join,
    rejected_key,
    rejected_order,
    side_folder,
)
from pipelines.sources import SOURCES
from pipelines.sources.base import Source, match_paths
from pipelines.stages import ApplyFilter
from schemas.config import ConfigError
from schemas.manifest import MANIFEST, objective, pairmill_version
from schemas.recipe import FiltersConfig, Recipe, SourceSpec, recipe_as_dict

def curation_stages(dataset: str, filters: FiltersConfig) -> list[tuple[str, beam.PTransform]]:
    """The enabled filters of the recipe, in pipeline order, as Beam stages for one dataset."""
    stages: list[tuple[str, beam.PTransform]] = []
    if filters.clean is not None:
        stages.append(("clean", ApplyFilter(dataset, functools.partial(CleanFilter, filters.clean), batch_size=1024)))
    if filters.dedup is not None and filters.dedup.exact != "none":
        stages.append(("exact_dedup", ExactDedup(dataset, filters.dedup.exact)))
    return stages


def format_plan(recipe: Recipe) -> str:
    """What a build of this recipe would do, read from the recipe alone (no data is listed or read)."""
    stages = ["read", *(name for name, _ in curation_stages("plan", recipe.filters)), "write"]
    lines = [f"recipe {recipe.path} -> {recipe.output}", f"stages: {' -> '.join(stages)}", ""]
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
        "recipe_hash": recipe.fingerprint(),
        "pairmill_version": pairmill_version(),
    }


def add_dataset(pipeline: beam.Pipeline, recipe: Recipe, source: Source) -> None:
    """One dataset's branch of the graph, from its files to its shard folder."""
    dataset = source.dataset
    read = source.read(pipeline)
    records, dropped = read.records, []
    for name, stage in curation_stages(dataset, recipe.filters):
        result = records | f"{dataset}: {name}" >> stage
        records = result.kept
        dropped.append(result.dropped)

    shards = recipe.shards
    records | f"{dataset}: write" >> WriteDataset(
        dataset, join(recipe.output, dataset), shards.records_per_shard, shards.zstd_level, shards.parquet,
        manifest_fields(recipe, source.spec),
    )
    read.rejected | f"{dataset}: write rejected" >> WriteShards(
        side_folder(recipe.output, "rejected", dataset), "rejected", shards.records_per_shard, shards.zstd_level,
        key=rejected_key, sort_key=rejected_order,
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
        key=dropped_key, sort_key=dropped_order,
    )


def prepare_output(recipe: Recipe, overwrite: bool) -> None:
    """Refuse to replace a complete build without ``overwrite``; clear what an unfinished one left behind."""
    for dataset in recipe.datasets:
        folder = join(recipe.output, dataset)
        manifest = join(folder, MANIFEST)
        if FileSystems.exists(manifest) and not overwrite:
            raise ConfigError(f"{folder} already holds a complete build; pass --overwrite to replace it")
        # The manifest goes first, so an interrupted overwrite never leaves a folder that looks complete.
        for path in [manifest, folder, side_folder(recipe.output, "rejected", dataset), side_folder(recipe.output, "dropped", dataset)]:
            if FileSystems.exists(path):
                FileSystems.delete([path])


def run_build(recipe: Recipe, beam_args: list[str], overwrite: bool = False) -> dict[str, Any]:
    """Run the build pipeline and return the funnel report (also written to OUT/report.json)."""
    sources = open_sources(recipe)
    options = pipeline_options(beam_args)
    prepare_output(recipe, overwrite)
    started = time.time()
    pipeline = beam.Pipeline(options=options)
    for source in sources:
        add_dataset(pipeline, recipe, source)
    result = pipeline.run()
    result.wait_until_finish()
    funnel = build_funnel(counter_values(result), recipe.datasets)
    return {
        "command": "build",
        "recipe": recipe.path,
        "recipe_hash": recipe.fingerprint(),
        "recipe_resolved": recipe_as_dict(recipe),
        "output": recipe.output,
        "pairmill_version": pairmill_version(),
        "seconds": round(time.time() - started, 2),
        "datasets": funnel,
        "balanced": all(entry["balanced"] for entry in funnel.values()),
    }
