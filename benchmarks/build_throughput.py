"""End-to-end build throughput on the local runner with every CPU filter on (clean, language, exact and
near dedup), one worker against two, and where the time goes per stage.

    .venv/bin/python benchmarks/build_throughput.py --records 1000000

Writes the generated corpus as gzipped JSON lines (one file per 50,000 records) once, then builds it
with ``--direct_num_workers=1`` and ``=2``; prints records/s, records/s per worker and the worker
seconds of each stage (Beam's per-transform execution time, summed over workers).
"""
from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.minhash_quality import generated_document, near_copy
from pipelines.build import run_build
from schemas.recipe import Recipe, parse_recipe

PER_FILE = 50_000


def write_corpus(folder: Path, records: int, seed: int, per_file: int = PER_FILE) -> None:
    """Question/answer-like rows of generated text; about 1 in 10 an exact or edited copy of a recent one.

    Files are ``part-NNNNN.jsonl.gz`` of ``per_file`` rows each, ids 0 to records - 1 in order. A file that
    is already there is kept (its rows are still generated, so the files after it come out the same as in
    a fresh write); each file is written under a temporary name and renamed, so an interrupted write
    leaves no partial file behind.
    """
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    recent: list[tuple[str, str]] = []
    for start in range(0, records, per_file):
        lines = []
        for i in range(start, min(start + per_file, records)):
            if recent and rng.random() < 0.1:
                query, document = rng.choice(recent)
                document = near_copy(document, rng)
            else:
                query, document = generated_document(rng, (1, 1)), generated_document(rng, (3, 8))
                recent = [*recent, (query, document)][-200:]
            lines.append(json.dumps({"id": i, "question": query, "answer": document}) + "\n")
        path = folder / f"part-{start // per_file:05d}.jsonl.gz"
        if path.exists():
            continue
        partial = path.with_name(path.name + ".partial")
        with gzip.open(partial, "wt", encoding="utf-8") as f:
            f.writelines(lines)
        partial.rename(path)


def bench_recipe(corpus: Path, output: Path) -> Recipe:
    """The benchmark's recipe: one jsonl dataset ``bench`` over ``corpus/*.jsonl.gz`` with every CPU filter on."""
    return parse_recipe({
        "output": str(output),
        "sources": [{"dataset": "bench", "kind": "jsonl", "paths": [str(corpus / "*.jsonl.gz")],
                     "fields": {"query": "question", "document": "answer", "id": "id"}}],
        "filters": {"clean": {}, "language": {}, "dedup": {"exact": "pair", "near": {}}},
        "shards": {"write_dropped": "none"},
    }, "benchmark")


def build_into(corpus: Path, output: Path, workers: int) -> dict:
    """Build ``corpus`` into ``output`` (overwriting it) on the local default runner with ``workers``
    worker processes; the build's report, with its wall seconds as ``wall``."""
    args = [f"--direct_num_workers={workers}"]  # the local default runner, multi-process
    started = time.time()
    report = run_build(bench_recipe(corpus, output), args, overwrite=True)
    report["wall"] = time.time() - started
    return report


def build(folder: Path, workers: int) -> dict:
    return build_into(folder / "corpus", folder / f"out-{workers}", workers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--work", default="/tmp/pairmill-build-bench")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    folder = Path(args.work) / str(args.records)
    write_corpus(folder / "corpus", args.records, seed=0)
    for workers in args.workers:
        report = build(folder, workers)
        entry = report["datasets"]["bench"]
        rate = args.records / report["wall"]
        print(f"\n{workers} worker(s): {report['wall']:.0f} s wall, {rate:,.0f} records/s, {rate / workers:,.0f} records/s per worker;"
              f" written {entry['written']:,}, dropped {entry['dropped']:,}, books {'balanced' if entry['balanced'] else 'NOT balanced'}")
        seconds = entry.get("stage_seconds", {})
        total = sum(seconds.values()) or 1.0
        for step, value in sorted(seconds.items(), key=lambda kv: -kv[1]):
            print(f"  {step:<28} {value:>8.1f} worker-s  {100 * value / total:>5.1f}%")


if __name__ == "__main__":
    main()
