"""Soak check of the local multi-process runner: the same build, repeated, must give the same shards.

    .venv/bin/python benchmarks/soak_multiworker.py                      # 10 runs of 200,000 records, 2 workers
    .venv/bin/python benchmarks/soak_multiworker.py --runs 5 --records 50000 --workers 2

Generates the build_throughput corpus once (same generator and recipe: clean, language, exact and near
dedup), builds it once with ``--reference-workers`` (default 1) as the reference, then ``--runs`` times
with ``--workers`` worker processes on FnApiRunner, the local default runner. Every run's output is
reduced to, per dataset, the sha256 of its decompressed records in shard order, each shard's sha256 and
record count, and its funnel (the books, less timings); each run is compared with the first run and
with the reference. One line per run (wall seconds, records written, books balanced, identical to the
first run and to the reference), then, for any difference, the count of missing and extra ids (and of
ids whose record changed) with the input files (and row ranges) they came from, and which funnel
figures differ. It also notes a run during which pairmill's source files changed (the suspected cause
of an earlier loss, BENCHMARKS.md section 5). Exits 1 on any difference or unbalanced books, else 0.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zstandard

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("text", "schemas", "storage", "embedding", "filters", "mining", "trainer", "report", "demo", "pipelines")
FUNNEL_TIMINGS = ("stage_seconds", "shuffled_bytes")  # funnel entries that may differ between identical runs


@dataclass
class Dataset:
    """One dataset of a build's output, reduced to what two runs must agree on."""

    digest: str  # sha256 of the decompressed records of all shards, in shard order
    shards: list[tuple[str, str, int]]  # (file name, sha256 of its decompressed bytes, records)
    funnel: dict[str, Any] | None  # OUT/_funnel/<dataset>.json less timings; None when missing
    records: dict[str, tuple[str, str, int]] = field(repr=False)  # id -> (sha256 of the record line, input file, row)

    @property
    def written(self) -> int:
        return sum(count for _, _, count in self.shards)

    @property
    def balanced(self) -> bool:
        return bool(self.funnel and self.funnel.get("balanced"))


Snapshot = dict[str, Dataset]  # by dataset name


def decompressed_lines(path: Path) -> Iterator[bytes]:
    with path.open("rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as reader:
        pending = b""
        while chunk := reader.read(1 << 20):
            lines = (pending + chunk).split(b"\n")
            pending = lines.pop()
            for line in lines:
                yield line + b"\n"
        if pending:
            yield pending


def snapshot(output: Path) -> Snapshot:
    """Every dataset folder under a build's ``output`` (withheld ones too: their manifest is renamed, not their shards)."""
    datasets: Snapshot = {}
    for folder in sorted(p for p in output.iterdir() if p.is_dir() and not p.name.startswith("_")):
        whole = hashlib.sha256()
        shards: list[tuple[str, str, int]] = []
        records: dict[str, tuple[str, str, int]] = {}
        for shard in sorted(folder.glob("shard-*.jsonl.zst")):
            own = hashlib.sha256()
            count = 0
            for line in decompressed_lines(shard):
                whole.update(line)
                own.update(line)
                count += 1
                record = json.loads(line)
                meta = record.get("meta", {})
                records[record["id"]] = (hashlib.sha256(line).hexdigest(), str(meta.get("file", "?")), int(meta.get("row", -1)))
            shards.append((shard.name, own.hexdigest(), count))
        funnel_file = output / "_funnel" / f"{folder.name}.json"
        funnel = None
        if funnel_file.exists():
            funnel = {k: v for k, v in json.loads(funnel_file.read_text()).items() if k not in FUNNEL_TIMINGS}
        datasets[folder.name] = Dataset(whole.hexdigest(), shards, funnel, records)
    return datasets


def by_file(records: dict[str, tuple[str, str, int]], ids: set[str]) -> str:
    """``ids`` grouped by the input file they came from: ``part-00017.jsonl.gz 1,234 (rows 3-49998)``, most first."""
    rows: dict[str, list[int]] = {}
    for record_id in ids:
        _, file, row = records[record_id]
        rows.setdefault(file, []).append(row)
    parts = [f"{Path(file).name} {len(found):,} (rows {min(found)}-{max(found)})"
             for file, found in sorted(rows.items(), key=lambda kv: (-len(kv[1]), kv[0]))]
    return "; ".join(parts)


def funnel_differences(expected: dict[str, Any] | None, got: dict[str, Any] | None) -> list[str]:
    """Which funnel figures differ: the totals by name, then each stage's in/kept/dropped/... that differs."""
    if expected is None or got is None:
        return [] if expected == got else ["funnel file missing in " + ("the baseline" if expected is None else "this run")]
    found = [f"{key} {expected.get(key)} -> {got.get(key)}" for key in sorted(set(expected) | set(got))
             if key != "stages" and expected.get(key) != got.get(key)]
    stages_a = {s["stage"]: s for s in expected.get("stages", [])}
    stages_b = {s["stage"]: s for s in got.get("stages", [])}
    for stage in [*stages_a, *(s for s in stages_b if s not in stages_a)]:
        a, b = stages_a.get(stage, {}), stages_b.get(stage, {})
        for key in sorted(set(a) | set(b)):
            if key != "stage" and a.get(key) != b.get(key):
                found.append(f"{stage}.{key} {a.get(key)} -> {b.get(key)}")
    return found


def compare(expected: Snapshot, got: Snapshot) -> list[str]:
    """Every way ``got`` differs from ``expected``, one line each; empty when they are identical."""
    problems: list[str] = []
    for name in sorted(set(expected) | set(got)):
        if name not in got or name not in expected:
            problems.append(f"{name}: dataset {'missing' if name not in got else 'extra'}")
            continue
        a, b = expected[name], got[name]
        if a.digest == b.digest and a.shards == b.shards and a.funnel == b.funnel:
            continue
        missing = set(a.records) - set(b.records)
        extra = set(b.records) - set(a.records)
        changed = {i for i in set(a.records) & set(b.records) if a.records[i][0] != b.records[i][0]}
        if missing:
            problems.append(f"{name}: {len(missing):,} ids missing, from {by_file(a.records, missing)}")
        if extra:
            problems.append(f"{name}: {len(extra):,} ids extra, from {by_file(b.records, extra)}")
        if changed:
            problems.append(f"{name}: {len(changed):,} ids with a different record, from {by_file(a.records, changed)}")
        if a.digest != b.digest and not (missing or extra or changed):
            problems.append(f"{name}: same records, different order or sharding "
                            f"({len(a.shards)} -> {len(b.shards)} shards; sha256 {a.digest[:12]} -> {b.digest[:12]})")
        problems.extend(f"{name}: funnel {line}" for line in funnel_differences(a.funnel, b.funnel))
    return problems


def source_state(root: Path = ROOT) -> dict[str, tuple[int, int]]:
    """(mtime ns, size) of every pairmill source file the runner's workers import."""
    return {str(p): (p.stat().st_mtime_ns, p.stat().st_size) for package in PACKAGES for p in sorted((root / package).rglob("*.py"))}


def default_build(corpus: Path, output: Path, workers: int) -> float:
    """One build of the benchmark recipe; its wall seconds."""
    from benchmarks.build_throughput import build_into

    return float(build_into(corpus, output, workers)["wall"])


def prepare_corpus(folder: Path, records: int, per_file: int) -> Path:
    from benchmarks.build_throughput import write_corpus

    corpus = folder / "corpus"
    write_corpus(corpus, records, seed=0, per_file=per_file)
    return corpus


def yes(value: bool) -> str:
    return "yes" if value else "NO"


def summary_line(label: str, wall: float, shot: Snapshot, versus: list[tuple[str, list[str] | None]]) -> str:
    written = sum(d.written for d in shot.values())
    balanced = all(d.balanced for d in shot.values()) and bool(shot)
    same = "  ".join(f"identical to {name}: {'-' if problems is None else yes(not problems)}" for name, problems in versus)
    return f"{label:<14} wall {wall:7.1f} s  written {written:>10,}  balanced {yes(balanced):<3}  {same}".rstrip()


def main(argv: Sequence[str] | None = None, build: Callable[[Path, Path, int], float] = default_build,
         corpus_for: Callable[[Path, int, int], Path] = prepare_corpus) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10, help="multi-worker builds to compare (default 10)")
    parser.add_argument("--records", type=int, default=200_000, help="generated input rows (default 200,000)")
    parser.add_argument("--workers", type=int, default=2, help="--direct_num_workers of each run (default 2)")
    parser.add_argument("--reference-workers", type=int, default=1,
                        help="--direct_num_workers of the reference build (default 1; 0: no reference build)")
    parser.add_argument("--per-file", type=int, default=10_000, help="input rows per generated file (default 10,000)")
    parser.add_argument("--work", default="/tmp/pairmill-soak", help="corpus and outputs go under WORK/<records>-<per-file>/")
    parser.add_argument("--keep", action="store_true", help="keep every run's output (out-run-N); by default a run that matched is overwritten")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.records < 1 or args.workers < 1 or args.per_file < 1 or args.reference_workers < 0:
        parser.error("--runs, --records, --workers and --per-file must be at least 1, --reference-workers at least 0")

    folder = Path(args.work) / f"{args.records}-{args.per_file}"
    corpus = corpus_for(folder, args.records, args.per_file)
    print(f"soak: {args.runs} run(s) of {args.records:,} records at --direct_num_workers={args.workers}"
          f"{f', reference at {args.reference_workers}' if args.reference_workers else ', no reference'};"
          f" input {corpus} ({len(list(corpus.glob('*.jsonl.gz')))} files); load average {os.getloadavg()[0]:.2f}", flush=True)

    failures = 0
    reference: Snapshot | None = None
    if args.reference_workers:
        try:
            wall = build(corpus, folder / "out-reference", args.reference_workers)
        except Exception as err:  # a runner that fails is a finding of the soak, not a reason to stop without a verdict
            print(f"reference ({args.reference_workers}w): build failed: {type(err).__name__}: {err}")
            print("verdict: FAIL: the reference build failed")
            return 1
        reference = snapshot(folder / "out-reference")
        balanced = bool(reference) and all(d.balanced for d in reference.values())
        failures += not balanced
        print(summary_line(f"reference ({args.reference_workers}w)", wall, reference, []), flush=True)

    first: Snapshot | None = None
    walls: list[float] = []
    for run in range(1, args.runs + 1):
        output = folder / (f"out-run-{run}" if args.keep or run == 1 else "out-run")
        before = source_state()
        try:
            wall = build(corpus, output, args.workers)
        except Exception as err:
            print(f"run {run}/{args.runs}: build failed: {type(err).__name__}: {err}", flush=True)
            failures += 1
            continue
        walls.append(wall)
        shot = snapshot(output)
        versus: list[tuple[str, list[str] | None]] = [("run 1", None if first is None else compare(first, shot))]
        if reference is not None:
            versus.append(("reference", compare(reference, shot)))
        balanced = bool(shot) and all(d.balanced for d in shot.values())
        print(summary_line(f"run {run}/{args.runs}", wall, shot, versus), flush=True)
        for name, problems in versus:
            for line in problems or []:
                print(f"    vs {name}: {line}")
        if source_state() != before:
            print("    note: pairmill's source files changed while this run was building")
        if not balanced or any(problems for _, problems in versus):
            failures += 1
            if not args.keep and run > 1:  # keep the evidence of a differing run
                kept = folder / f"out-run-{run}-differs"
                shutil.rmtree(kept, ignore_errors=True)
                output.rename(kept)
        if first is None:
            first = shot

    mean = sum(walls) / len(walls) if walls else 0.0
    if failures:
        print(f"verdict: FAIL: {failures} of {args.runs + bool(args.reference_workers)} builds differ or do not balance"
              f" (outputs under {folder})")
        return 1
    against = " and to the reference" if reference is not None else ""
    print(f"verdict: PASS: all {args.runs} runs at {args.workers} workers identical to run 1{against}, books balanced;"
          f" mean wall {mean:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
