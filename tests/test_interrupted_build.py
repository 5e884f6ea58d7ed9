"""A build killed mid-write never leaves a folder that verify accepts unless it is complete and correct;
rerunning the same command completes it, equal to an uninterrupted build.

The kills are timed by what the build has written (polling the output folder), not by the clock, so
they land mid-write on a loaded machine too: the first kill comes as the first shard file appears, the
others at the first finished dataset and after a few more shards. The test asserts that kills did
leave unfinished folders (shard or temporary files, no manifest), so it cannot pass by killing too
early or too late.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import zstandard

from storage.builds import verify_dataset
from tests.helpers import write_recipe

DATASETS = ["alpha", "beta", "gamma"]
MANIFEST = "manifest.json"

pytestmark = pytest.mark.slow


def corpus_recipe(folder: Path) -> str:
    sources = []
    for d, dataset in enumerate(DATASETS):
        path = folder / f"{dataset}.jsonl"
        path.write_text("".join(
            json.dumps({"id": i, "q": f"{dataset} question {i} about brewing", "d": f"{dataset} answer {i % 900} with detail"}) + "\n"
            for i in range(3000 + 500 * d)
        ))
        sources.append({"dataset": dataset, "kind": "jsonl", "paths": [str(path)], "fields": {"query": "q", "document": "d", "id": "id"}})
    return write_recipe(folder, {"output": str(folder / "out"), "sources": sources,
                                 "filters": {"clean": {}, "dedup": {"exact": "document"}}, "shards": {"records_per_shard": 400}})


def pairmill(*args: str) -> list[str]:
    return [sys.executable, "-m", "pipelines.cli", *args]


def shard_contents(folder: Path) -> dict[str, bytes]:
    return {p.name: zstandard.ZstdDecompressor().stream_reader(p.open("rb")).read() for p in sorted(folder.glob("shard-*.jsonl.zst"))}


def written_files(output: Path) -> dict[str, list[str]]:
    """Each dataset folder's file names so far (shards, temporary files, manifest)."""
    return {d: sorted(p.name for p in (output / d).iterdir()) for d in DATASETS if (output / d).is_dir()}


def unfinished(output: Path) -> list[str]:
    """Dataset folders with shard or temporary files but no manifest: a write the kill interrupted."""
    return [d for d, names in written_files(output).items()
            if MANIFEST not in names and any(n.startswith("shard-") or n.endswith(".tmp") for n in names)]


def first_shard(output: Path) -> bool:
    return bool(unfinished(output))


def first_finished_dataset(output: Path) -> bool:
    return any(MANIFEST in names for names in written_files(output).values())


def some_shards(output: Path) -> bool:
    return sum(n.startswith("shard-") for names in written_files(output).values() for n in names) >= 6 and bool(unfinished(output))


KILL_WHEN = [first_shard, first_finished_dataset, some_shards]


def kill_when(command: list[str], output: Path, moment: Callable[[Path], bool], limit_s: float = 300.0) -> bool:
    """Start the build and SIGKILL its process group as soon as ``moment`` holds; False if it finished first."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + limit_s
    try:
        while process.poll() is None and time.monotonic() < deadline:
            if moment(output):
                os.killpg(process.pid, signal.SIGKILL)
                return True
            time.sleep(0.002)
        return False
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_killed_builds_are_never_accepted_and_reruns_complete(tmp_path: Path) -> None:
    recipe = corpus_recipe(tmp_path)
    subprocess.run(pairmill("build", recipe, "--output", str(tmp_path / "reference")), check=True, capture_output=True)
    expected = {d: shard_contents(tmp_path / "reference" / d) for d in DATASETS}

    interrupted = []
    for run, moment in enumerate(KILL_WHEN):
        output = tmp_path / f"run{run}"
        command = pairmill("build", recipe, "--output", str(output))
        assert kill_when(command, output, moment), f"run {run}: the build finished before {moment.__name__}"
        left = unfinished(output)
        interrupted += [f"run {run}: {d}" for d in left]
        for dataset in DATASETS:
            if verify_dataset(str(output / dataset)).ok:
                assert dataset not in left, f"run {run}: unfinished {dataset} accepted"
                assert shard_contents(output / dataset) == expected[dataset], f"run {run}: {dataset} accepted but differs"
        rerun = subprocess.run(command, check=False, capture_output=True, text=True)
        assert rerun.returncode == 0, rerun.stderr[-2000:]
        for dataset in DATASETS:
            assert verify_dataset(str(output / dataset)).ok
            assert shard_contents(output / dataset) == expected[dataset]
    assert interrupted, "no kill landed mid-write: every run left only finished or empty dataset folders"
