"""``pairmill build``: the curation pipeline, read top to bottom.

For each recipe source: read (records + rejected rows) -> clean -> language -> exact dedup -> near
dedup -> consistency -> shards. Every stage returns what it kept and what it dropped with a reason;
rejected rows go to ``OUT/_rejected/<dataset>``, dropped ones (all or a sample per reason) to
``OUT/_dropped/<dataset>``, and the counters of every stage make the funnel in ``OUT/report.json``.
"""
from __future__ import annotations

import functools
import json
import time
from typing import Any, Callable

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from filters.clean import CleanFilter
from filters.language import LanguageFilter
from pipelines.consistency import ConsistencyFilter
from pipelines.exact_dedup import ExactDedup
from pipelines.funnel import build_funnel, counter_values
from pipelines.near_dedup import NearDedup
from pipelines.options import make_pipeline, pipeline_options
from pipelines.shards import (
    WriteDataset,
    WriteShards,
    dropped_key,
    dropped_order,
    join,
    rejected_key,
    rejected_order,
    side_folder,
    write_atomically,
)
from pipelines.sources import SOURCES
from pipelines.sources.base import Source, match_paths
from pipelines.stages import ApplyFilter
from pipelines.stats import CollectStats, stage_seconds
from report.collect import stats_path
from schemas.config import ConfigError
from schemas.manifest import MANIFEST, WITHHELD_MANIFEST, Manifest, objective, pairmill_version
from schemas.recipe import FiltersConfig, Recipe, SourceSpec, recipe_as_dict

def curation_stages(dataset: str, filters: FiltersConfig) -> list[tuple[str, beam.PTransform]]:
    """The enabled filters of the recipe, in pipeline order, as Beam stages for one dataset."""
    stages: list[tuple[str, beam.PTransform]] = []
    if filters.clean is not None:
        stages.append(("clean", ApplyFilter(dataset, functools.partial(CleanFilter, filters.clean), batch_size=1024)))
    if filters.language is not None:
        stages.append(("language", ApplyFilter(dataset, functools.partial(LanguageFilter, filters.language), filters.language.batch_size)))
    if filters.dedup is not None and filters.dedup.exact != "none":
        stages.append(("exact_dedup", ExactDedup(dataset, filters.dedup.exact)))
    if filters.dedup is not None and filters.dedup.near is not None:
        try:
            stages.append(("near_dedup", NearDedup(dataset, filters.dedup.near)))
        except ValueError as err:  # bands x rows that do not fit num_perm
            raise ConfigError(f"filters.dedup.near: {err}") from None
    if filters.consistency is not None:
        stages.append(("consistency", ConsistencyFilter(dataset, filters.consistency)))
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
        "recipe_hash": recipe.dataset_fingerprint(spec.dataset),
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
    (records, *dropped) | f"{dataset}: stats" >> CollectStats(dataset, recipe.output)

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


def prepare_output(recipe: Recipe, overwrite: bool, datasets: list[str] | None = None,
                   fingerprint: Callable[[str], str] | None = None) -> list[str]:
    """The datasets to build now (default: the recipe's). A complete dataset built from the same
    recipe parts (``fingerprint``) is kept, so a rerun after an interruption finishes the rest; one
    from other recipe parts is refused without ``overwrite``. What an unfinished build left behind is
    cleared."""
    fingerprint = fingerprint or recipe.dataset_fingerprint
    to_build = []
    for dataset in datasets or recipe.datasets:
        folder = join(recipe.output, dataset)
        manifest_path = join(folder, MANIFEST)
        if FileSystems.exists(manifest_path) and not overwrite:
            with FileSystems.open(manifest_path) as f:
                built_from = Manifest.from_json(f.read().decode(), manifest_path).recipe_hash
            if built_from == fingerprint(dataset):
                continue
            raise ConfigError(f"{folder} already holds a complete build from a different recipe; pass --overwrite to replace it")
        # The manifest goes first, so an interrupted overwrite never leaves a folder that looks complete.
        stale = [side_folder(recipe.output, "rejected", dataset), side_folder(recipe.output, "dropped", dataset), funnel_path(recipe.output, dataset), stats_path(recipe.output, dataset)]
        for path in [manifest_path, folder, *stale]:
            if FileSystems.exists(path):
                FileSystems.delete([path])
        to_build.append(dataset)
    return to_build


def run_build(recipe: Recipe, beam_args: list[str], overwrite: bool = False) -> dict[str, Any]:
    """Run the build pipeline and return the funnel report (``OUT/report.json``).

    Each dataset's funnel is also kept in ``OUT/_funnel/<dataset>.json``, so the report of a rerun
    that skips complete datasets still shows theirs.
    """
    sources = open_sources(recipe)
    pipeline_options(beam_args)  # unknown flags stop here, before the output folder is touched
    to_build = prepare_output(recipe, overwrite)
    started = time.time()
    funnel: dict[str, Any] = {}
    if to_build:
        pipeline = make_pipeline(beam_args)
        for source in sources:
            if source.dataset in to_build:
                add_dataset(pipeline, recipe, source)
        result = pipeline.run()
        result.wait_until_finish()
        funnel = build_funnel(counter_values(result), to_build)
        seconds = stage_seconds(result, to_build)
        for dataset, entry in funnel.items():
            entry["stage_seconds"] = seconds.get(dataset, {})
            write_atomically(funnel_path(recipe.output, dataset), lambda s, e=entry: s.write(json.dumps(e).encode()))
            if not entry["balanced"]:
                withhold(join(recipe.output, dataset))
    for dataset in recipe.datasets:
        if dataset not in to_build:
            funnel[dataset] = {**read_saved_funnel(recipe.output, dataset), "from_earlier_build": True}
    return {
        "command": "build",
        "recipe": recipe.path,
        "recipe_hash": recipe.fingerprint(),
        "recipe_resolved": recipe_as_dict(recipe),
        "output": recipe.output,
        "pairmill_version": pairmill_version(),
        "seconds": round(time.time() - started, 2),
        "datasets": {d: funnel[d] for d in recipe.datasets},
        "balanced": all(entry["balanced"] for entry in funnel.values()),
    }


def withhold(folder: str) -> None:
    """A dataset whose books do not balance lost or invented records: take its manifest away, so that
    verify, the trainer and a rerun treat the folder as unfinished rather than as a good dataset."""
    manifest = join(folder, MANIFEST)
    if FileSystems.exists(manifest):
        FileSystems.rename([manifest], [join(folder, WITHHELD_MANIFEST)])


def funnel_path(output: str, dataset: str) -> str:
    return side_folder(output, "funnel", dataset) + ".json"


def read_saved_funnel(output: str, dataset: str) -> dict[str, Any]:
    path = funnel_path(output, dataset)
    if not FileSystems.exists(path):
        return {"stages": [], "read": 0, "written": 0, "dropped": 0, "rejected": 0, "balanced": True, "note": "funnel of the earlier build not found"}
    with FileSystems.open(path) as f:
        return json.loads(f.read())
