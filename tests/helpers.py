"""Small builders shared by tests: recipes on disk, dataset folders, reading shards back, running a reader."""
from __future__ import annotations

import glob
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

import apache_beam as beam
import yaml

from pipelines.funnel import counter_values
from schemas.manifest import Manifest, objective
from schemas.record import encode_record
from storage.builds import iter_jsonl_zst, iter_records, write_shard

# In-process single worker: fast for tests; the multi-process default is tested on its own.
FAST_RUNNER = ["--runner=FnApiRunner"]


def write_recipe(folder: Path, recipe: dict[str, Any]) -> str:
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return str(path)


def write_jsonl(path: Path, rows: Iterable[Any]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def dataset_records(folder: str) -> list[dict[str, Any]]:
    return list(iter_records(folder))


def side_rows(output: Path, kind: str, dataset: str) -> list[dict[str, Any]]:
    """Rows of OUT/_rejected/<dataset> or OUT/_dropped/<dataset>."""
    folder = output / f"_{kind}" / dataset
    if not folder.is_dir():
        return []
    return [row for name in sorted(os.listdir(folder)) for row in iter_jsonl_zst(str(folder / name))]


def write_dataset(folder: Path, dataset: str, records: list[dict[str, Any]], per_shard: int = 1000, kind: str = "paired") -> Path:
    """A dataset folder as a build writes it (shards, counts.json, manifest.json), for reader tests."""
    folder.mkdir(parents=True, exist_ok=True)
    shards = []
    for index, start in enumerate(range(0, max(len(records), 1), per_shard)):
        chunk = records[start : start + per_shard]
        if not chunk:
            break
        name = f"shard-{index:05d}.jsonl.zst"
        with open(folder / name, "wb") as sink:
            shards.append(write_shard(sink, (encode_record(r) for r in chunk), name, level=3))
    manifest = Manifest(dataset=dataset, objective=objective(kind), prefixes={"query": "", "document": ""},
                        records=len(records), shards=shards, recipe_hash="test", pairmill_version="test")
    (folder / "counts.json").write_text(manifest.counts_json())
    (folder / "manifest.json").write_text(manifest.to_json())
    return folder


class SourceRun(NamedTuple):
    records: list[dict[str, Any]]
    rejected: list[dict[str, Any]]
    counters: dict[str, int]


def run_source(source: Any, tmp_path: Path) -> SourceRun:
    """Run ``source.read`` on the in-process FnApiRunner; its records, rejected rows and pairmill counters."""
    out = tmp_path / "run"
    with beam.Pipeline(runner="FnApiRunner") as pipeline:
        read = source.read(pipeline)
        read.records | "records json" >> beam.Map(json.dumps) | "write records" >> beam.io.WriteToText(str(out / "records"))
        read.rejected | "rejected json" >> beam.Map(json.dumps) | "write rejected" >> beam.io.WriteToText(str(out / "rejected"))
    counters = counter_values(pipeline.result)

    def rows(prefix: str) -> list[dict[str, Any]]:
        return [json.loads(line) for name in sorted(glob.glob(str(out / prefix) + "*")) for line in open(name)]

    return SourceRun(rows("records"), rows("rejected"), counters)
