"""pairmill's build side by side with Hugging Face datatrove on the same generated input, in one run.

    .venv/bin/python benchmarks/build_vs_datatrove.py --records 50000 --workers 1 2

The peer venv, outside the repo (datatrove must not share pairmill's venv), made once with:

    python3.11 -m venv /work/peer-venv && /work/peer-venv/bin/pip install 'datatrove[processing]==0.10.1' spacy==3.8.18 orjson==3.13.0

spaCy is datatrove's English word tokenizer (MinhashDedupSignature refuses to start without it; its blank
``en`` tokenizer needs no download) and orjson is what JsonlReader/JsonlWriter need; neither comes with the
``processing`` extra. datatrove's fastText binding there is fasttext-numpy2-wheel 0.9.2 (under NumPy 2.4),
whose single and batch predict both return probabilities, so the stock FT176LID works once it is pointed
at pairmill's filters/data/lid.176.ftz instead of downloading lid.176.bin (benchmarks/datatrove_peer.py):
both systems judge with the same model file.

The corpus is benchmarks/build_throughput.py's (``write_corpus``, seed 0), written once under
WORK/<records>-<per-file>/corpus; ``--per-file`` (default 10,000) is smaller than that script's 50,000
because datatrove shares work out by input file, so a single file would leave its second worker idle. For
each ``--workers`` value, pairmill builds it with ``build_throughput.build_into`` (clean, language, exact
dedup on the pair, MinHash near dedup, all at their defaults) and datatrove runs the same steps in the
peer venv, its settings taken from pairmill's defaults: clean's length bounds, the language filter's
languages and threshold on the document, exact dedup on the pair's matching form, MinHash on the
document's 5-word shingles with pairmill's derived LSH bands and rows as datatrove's buckets and
hashes per bucket. Each run is a subprocess; the table gives its wall seconds (interpreter start
included), input records per second, the peak of the summed RSS of it and all its descendants (sampled
every 0.2 s from /proc; pages shared between forked workers count once per process), the records kept,
the CPU seconds of the tree and the 1-minute load average as it ended (a run slowed by other work on the
machine shows as wall well above CPU / workers, and a load above its workers); then the records kept after
each step, the Jaccard of the kept id sets and the ratios.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.build_throughput import write_corpus
from filters.language import default_model_path
from filters.minhash import lsh_parameters
from schemas.recipe import CleanConfig, LanguageConfig, MinHashConfig
from storage.builds import iter_jsonl_zst

ROOT = Path(__file__).resolve().parents[1]
PEER_SCRIPT = ROOT / "benchmarks" / "datatrove_peer.py"
DEFAULT_PEER_PYTHON = "/work/peer-venv/bin/python"
PEER_INSTALL = ("python3.11 -m venv /work/peer-venv && "
                "/work/peer-venv/bin/pip install 'datatrove[processing]==0.10.1' spacy==3.8.18 orjson==3.13.0")
SYSTEMS = ("pairmill", "datatrove")
STAGES = ("read", "clean", "language", "exact_dedup", "near_dedup")
DATASET = "bench"  # build_throughput's dataset: pairmill's ids are "bench/<row id>"
PAGE = os.sysconf("SC_PAGE_SIZE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MIB = 1 << 20

# Runs in a subprocess of pairmill's venv: the build, then one JSON line with the funnel's kept counts.
PAIRMILL_ENTRY = """
import json, sys
from pathlib import Path
from benchmarks.build_throughput import build_into
report = build_into(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]))
entry = report["datasets"]["bench"]
print(json.dumps({"kept": {s["stage"]: s["kept"] for s in entry["stages"]}, "seconds": entry.get("stage_seconds", {})}))
"""


class PeerError(Exception):
    """The peer venv is missing or has no datatrove."""


@dataclass
class Sampled:
    """A finished subprocess: exit status, wall seconds, the peak RSS of its process tree and the tree's CPU seconds."""

    returncode: int
    wall: float
    peak_rss: int  # bytes
    cpu: float  # user + system seconds over the tree, as sampled


@dataclass
class Run:
    """One system at one worker count, as the table and ``--json`` give it."""

    system: str
    workers: int
    wall: float
    records_per_s: float
    peak_rss_mib: float
    cpu: float
    load: float  # the machine's 1-minute load average as the run ended: above the run's workers, something else ran too
    kept: int
    stage_kept: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # datatrove: per executor run; pairmill: worker-s per stage


class TreeSample(NamedTuple):
    """One look at a process tree: its summed RSS, and each member's own CPU ticks so far by (pid, start time)."""

    rss: int  # bytes
    cpu_ticks: dict[tuple[int, int], int]


def sample_tree(root: int) -> TreeSample:
    """``root`` and every descendant alive now, from /proc/<pid>/stat."""
    children: dict[int, list[int]] = {}
    stats: dict[int, list[bytes]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:  # exited since the listing
            continue
        fields = stat[stat.rindex(b")") + 2 :].split()  # from field 3 (state) on; the name before may hold spaces
        stats[int(entry)] = fields
        children.setdefault(int(fields[1]), []).append(int(entry))
    rss, ticks, pending = 0, {}, [root]
    while pending:
        pid = pending.pop()
        pending.extend(children.get(pid, []))
        if pid in stats:
            fields = stats[pid]
            rss += int(fields[21]) * PAGE  # field 24, rss in pages
            ticks[pid, int(fields[19])] = int(fields[11]) + int(fields[12])  # fields 22 (start time), 14 and 15 (utime, stime)
    return TreeSample(rss, ticks)


def run_sampled(command: Sequence[str], stdout: Path, stderr: Path, env: dict[str, str] | None = None, interval: float = 0.2) -> Sampled:
    """Run ``command`` (output to the two files), sampling its process tree every ``interval`` seconds.

    CPU seconds are each member's last sampled own time, so up to ``interval`` of each process's end is missed;
    wait4's figure would miss whole workers instead, those whose parents never wait for them (forkserver pools).
    """
    with stdout.open("wb") as out, stderr.open("wb") as err:
        started = time.monotonic()
        process = subprocess.Popen(command, stdout=out, stderr=err, env=env, cwd=ROOT)
        peak, ticks = 0, {}
        while process.poll() is None:
            sample = sample_tree(process.pid)
            peak = max(peak, sample.rss)
            ticks.update(sample.cpu_ticks)
            time.sleep(interval)
        return Sampled(process.returncode, time.monotonic() - started, peak, sum(ticks.values()) / CLOCK_TICKS)


def check_peer(python: str) -> str:
    """datatrove's version in the peer venv; a one-line PeerError saying how to make the venv when it is unusable."""
    if not os.access(python, os.X_OK):
        raise PeerError(f"peer python {python} is missing; make it with: {PEER_INSTALL}")
    probe = subprocess.run([python, "-c", "import importlib.metadata as m, datatrove; print(m.version('datatrove'))"],
                           capture_output=True, text=True, env=peer_env())
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["no output"])[-1]
        raise PeerError(f"peer python {python} cannot import datatrove ({last}); make the venv with: {PEER_INSTALL}")
    return probe.stdout.strip()


def peer_env() -> dict[str, str]:
    """The environment less PYTHONPATH, so the peer cannot import pairmill."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def peer_settings() -> list[str]:
    """datatrove_peer.py's settings, from pairmill's defaults for the benchmark recipe's filters."""
    clean, language, near = CleanConfig(), LanguageConfig(), MinHashConfig()
    bands, rows = lsh_parameters(near.threshold, near.num_perm, near.bands, near.rows, near.verify)
    return ["--model", language.model or default_model_path(), "--languages", *language.languages, "--threshold", str(language.threshold),
            "--query-chars", str(clean.min_query_chars), str(clean.max_query_chars),
            "--document-chars", str(clean.min_document_chars), str(clean.max_document_chars),
            "--ngram", str(near.ngram), "--bands", str(bands), "--rows", str(rows)]


def last_json(path: Path) -> dict[str, Any]:
    """The last line of a subprocess's stdout, as JSON."""
    lines = path.read_text().strip().splitlines()
    return json.loads(lines[-1]) if lines else {}


def pairmill_kept(output: Path) -> set[str]:
    """Row ids of the records in a pairmill build's OUT/bench/shard-*.jsonl.zst."""
    prefix = f"{DATASET}/"
    return {record["id"].removeprefix(prefix) for shard in sorted((output / DATASET).glob("shard-*.jsonl.zst")) for record in iter_jsonl_zst(str(shard))}


def datatrove_kept(output: Path) -> set[str]:
    """Row ids of the documents in datatrove's output folder (*.jsonl.gz)."""
    ids: set[str] = set()
    for path in sorted(output.glob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            ids.update(str(json.loads(line)["id"]) for line in f if line.strip())
    return ids


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def similarity(kept: dict[tuple[str, int], set[str]]) -> dict[str, dict[str, Any]]:
    """Kept ids compared: the two systems at each worker count, and each system across its worker counts."""
    keys = list(kept)
    pairs = [(a, b) for i, a in enumerate(keys) for b in keys[i + 1 :] if a[0] == b[0] or a[1] == b[1]]
    return {f"{a[0]} {a[1]}w vs {b[0]} {b[1]}w": {"jaccard": round(jaccard(kept[a], kept[b]), 5),
                                                  "only_first": len(kept[a] - kept[b]), "only_second": len(kept[b] - kept[a])}
            for a, b in pairs}


def run_pairmill(corpus: Path, folder: Path, workers: int, records: int) -> tuple[Run, set[str]]:
    output, logs = folder / f"pairmill-{workers}", folder / "logs"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    sampled = run_sampled([sys.executable, "-c", PAIRMILL_ENTRY, str(corpus), str(output), str(workers)],
                          logs / f"pairmill-{workers}.out", logs / f"pairmill-{workers}.err", env)
    if sampled.returncode != 0:
        raise RuntimeError(f"pairmill build with {workers} worker(s) failed (exit {sampled.returncode}); see {logs / f'pairmill-{workers}.err'}")
    summary = last_json(logs / f"pairmill-{workers}.out")
    kept = pairmill_kept(output)
    return result("pairmill", workers, sampled, records, kept, summary), kept


def run_datatrove(python: str, corpus: Path, folder: Path, workers: int, records: int) -> tuple[Run, set[str]]:
    work, logs = folder / f"datatrove-{workers}", folder / "logs"
    command = [python, str(PEER_SCRIPT), "--corpus", str(corpus), "--work", str(work), "--workers", str(workers), *peer_settings()]
    sampled = run_sampled(command, logs / f"datatrove-{workers}.out", logs / f"datatrove-{workers}.err", peer_env())
    if sampled.returncode != 0:
        raise RuntimeError(f"datatrove with {workers} worker(s) failed (exit {sampled.returncode}); see {logs / f'datatrove-{workers}.err'}")
    summary = last_json(logs / f"datatrove-{workers}.out")
    kept = datatrove_kept(work / "output")
    return result("datatrove", workers, sampled, records, kept, summary), kept


def result(system: str, workers: int, sampled: Sampled, records: int, kept: set[str], summary: dict[str, Any]) -> Run:
    return Run(system, workers, round(sampled.wall, 2), round(records / sampled.wall, 1), round(sampled.peak_rss / MIB, 1), round(sampled.cpu, 2),
               round(os.getloadavg()[0], 2), len(kept),
               {stage: summary.get("kept", {}).get(stage, 0) for stage in STAGES}, summary.get("seconds", {}))


def table(runs: list[Run]) -> str:
    lines = [f"{'system':<10} {'workers':>7} {'wall s':>8} {'records/s':>10} {'peak tree RSS MiB':>18} {'kept':>8} {'CPU s':>8} {'load':>5}"]
    lines += [f"{r.system:<10} {r.workers:>7} {r.wall:>8.1f} {r.records_per_s:>10,.0f} {r.peak_rss_mib:>18,.1f} {r.kept:>8,}"
              f" {r.cpu:>8.1f} {r.load:>5.1f}" for r in runs]
    return "\n".join(lines)


def stage_table(runs: list[Run]) -> str:
    lines = [f"{'kept after':<10} {'workers':>7} " + " ".join(f"{s:>11}" for s in STAGES)]
    lines += [f"{r.system:<10} {r.workers:>7} " + " ".join(f"{r.stage_kept.get(s, 0):>11,}" for s in STAGES) for r in runs]
    return "\n".join(lines)


def ratios(runs: list[Run]) -> dict[str, float]:
    """pairmill/datatrove records/s at each worker count, and each system's records/s against its fewest workers."""
    rate = {(r.system, r.workers): r.records_per_s for r in runs}
    found: dict[str, float] = {}
    for workers in sorted({r.workers for r in runs}):
        if ("pairmill", workers) in rate and ("datatrove", workers) in rate:
            found[f"pairmill/datatrove records/s, {workers} worker(s)"] = round(rate["pairmill", workers] / rate["datatrove", workers], 2)
    for system in SYSTEMS:
        counts = sorted(w for s, w in rate if s == system)
        for workers in counts[1:]:
            found[f"{system} {workers}-worker/{counts[0]}-worker records/s"] = round(rate[system, workers] / rate[system, counts[0]], 2)
    return found


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=200_000, help="generated input rows (default 200,000)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to run each system with (default 1 2)")
    parser.add_argument("--per-file", type=int, default=10_000, help="input rows per generated file (default 10,000)")
    parser.add_argument("--work", default="/tmp/pairmill-vs-datatrove", help="corpus, outputs and logs go under WORK/<records>-<per-file>/")
    parser.add_argument("--peer-python", default=DEFAULT_PEER_PYTHON, help=f"python of the venv with datatrove (default {DEFAULT_PEER_PYTHON})")
    parser.add_argument("--systems", nargs="+", choices=SYSTEMS, default=list(SYSTEMS), help="which sides to run (default both)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if args.records < 1 or args.per_file < 1 or min(args.workers) < 1:
        parser.error("--records, --per-file and --workers must be at least 1")

    peer_version = None
    if "datatrove" in args.systems:
        try:
            peer_version = check_peer(args.peer_python)
        except PeerError as err:
            sys.exit(f"build_vs_datatrove: {err}")
    folder = Path(args.work) / f"{args.records}-{args.per_file}"
    corpus = folder / "corpus"
    write_corpus(corpus, args.records, seed=0, per_file=args.per_file)
    shutil.rmtree(folder / "logs", ignore_errors=True)
    (folder / "logs").mkdir()
    print(f"{args.records:,} records in {len(list(corpus.glob('*.jsonl.gz')))} file(s) under {corpus}; datatrove {peer_version or '-'}", flush=True)

    runs: list[Run] = []
    kept: dict[tuple[str, int], set[str]] = {}
    for workers in args.workers:
        for system in args.systems:
            if system == "pairmill":
                run, ids = run_pairmill(corpus, folder, workers, args.records)
            else:
                run, ids = run_datatrove(args.peer_python, corpus, folder, workers, args.records)
            print(f"  {system} {workers} worker(s): {run.wall:.1f} s, peak tree RSS {run.peak_rss_mib:,.0f} MiB, kept {run.kept:,}", flush=True)
            runs.append(run)
            kept[system, workers] = ids

    similar = similarity(kept)
    found = ratios(runs)
    print("\n" + table(runs) + "\n\n" + stage_table(runs) + "\n")
    for name, sets in similar.items():
        print(f"Jaccard of kept ids, {name}: {sets['jaccard']:.5f} (only in the first {sets['only_first']:,}, only in the second {sets['only_second']:,})")
    for name, ratio in found.items():
        print(f"{name}: {ratio:.2f}x")
    results = {"records": args.records, "per_file": args.per_file, "datatrove": peer_version, "peer_settings": peer_settings(),
               "runs": [asdict(r) for r in runs], "kept_sets": similar, "ratios": found}
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
