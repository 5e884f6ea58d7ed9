"""A build killed at random points never leaves a folder that verify accepts unless it is complete and
correct; rerunning the same command completes it, equal to an uninterrupted build."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import zstandard

from storage.builds import verify_dataset
from tests.helpers import write_recipe

DATASETS = ["alpha", "beta", "gamma"]


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


def test_killed_builds_are_never_accepted_and_reruns_complete(tmp_path: Path) -> None:
    recipe = corpus_recipe(tmp_path)
    started = time.time()
    subprocess.run(pairmill("build", recipe, "--output", str(tmp_path / "reference")), check=True, capture_output=True)
    full_run = time.time() - started
    expected = {d: shard_contents(tmp_path / "reference" / d) for d in DATASETS}

    rng = random.Random(7)
    for seed in range(3):
        output = tmp_path / f"run{seed}"
        command = pairmill("build", recipe, "--output", str(output))
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(rng.uniform(0.3, full_run))
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        for dataset in DATASETS:
            if verify_dataset(str(output / dataset)).ok:
                assert shard_contents(output / dataset) == expected[dataset], f"seed {seed}: {dataset} accepted but differs"
        rerun = subprocess.run(command, capture_output=True, text=True)
        assert rerun.returncode == 0, rerun.stderr[-2000:]
        for dataset in DATASETS:
            assert verify_dataset(str(output / dataset)).ok
            assert shard_contents(output / dataset) == expected[dataset]
