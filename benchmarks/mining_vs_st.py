"""Hard-negative mining: pairmill against sentence_transformers.util.mine_hard_negatives, same teacher, same pairs.

Both sides mine the real pairs of ../shared/realdata (Quora duplicates, Amazon Fashion, AG News) with the
default offline teacher and equivalent settings: range_max, relative_margin, num_negatives, top
sampling, rows with too few negatives dropped (sentence-transformers' ``n-tuple`` output). Each side runs
in its own subprocess so peak memory (ru_maxrss) is measured fairly; the time is from records in memory to
negatives out (sentence-transformers' Dataset construction included). The parent compares the negatives
of every distinct (query, document) row and explains each difference.

    .venv/bin/python benchmarks/mining_vs_st.py                 # all ~11.5k rows
    .venv/bin/python benchmarks/mining_vs_st.py --rows 2000     # quicker
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from mining_realdata import REALDATA, load_sources

from embedding.models import get_teacher
from mining.negatives import mine_hard_negatives
from schemas.recipe import MiningConfig, TeacherConfig
from schemas.record import PairRecord
from text.forms import matching_form

ST_BATCH_SIZE = 256  # TeacherConfig's default batch size; sentence-transformers' own default is 32
MARGIN_BOUNDARY = 1e-4


def load_rows(root: Path, rows: int | None) -> list[PairRecord]:
    """The three sources interleaved (so a prefix holds all of them)."""
    sources = list(load_sources(root).values())
    mixed = [records[i] for i in range(max(len(s) for s in sources)) for records in sources if i < len(records)]
    return mixed[:rows] if rows else mixed


def st_search_depth(records: list[PairRecord], range_max: int) -> int:
    """What sentence-transformers really searches: range_max + the most rows any exact query text has.

    Its first ``num_negatives`` surviving candidates come from that depth, so pairmill gets it as its
    window (pairmill's range_max counts ranks without the query's positives and never looks further)."""
    return range_max + max(Counter(r["query"] for r in records).values())


def row_key(query: str, document: str) -> str:
    return json.dumps([query, document])


def run_pairmill(records: list[PairRecord], config: MiningConfig) -> dict[str, Any]:
    teacher = get_teacher(TeacherConfig())
    result = mine_hard_negatives(records, None, teacher, config)
    rows: dict[str, Any] = {row_key(d["record"]["query"], d["record"]["document"]): None for d in result.dropped}
    for record in result.kept:
        rows[row_key(record["query"], record["document"])] = {
            "negatives": record["negatives"],
            "scores": record["meta"]["negative_scores"],
            "positive_score": record["meta"]["positive_score"],
        }
    return rows


def run_st(records: list[PairRecord], config: MiningConfig) -> dict[str, Any]:
    from datasets import Dataset
    from sentence_transformers.util import mine_hard_negatives as st_mine_hard_negatives

    teacher = get_teacher(TeacherConfig())
    dataset = Dataset.from_dict({"query": [r["query"] for r in records], "document": [r["document"] for r in records]})
    mined = st_mine_hard_negatives(
        dataset,
        teacher.model,
        range_max=config.range_max,
        relative_margin=config.relative_margin,
        num_negatives=config.num_negatives,
        sampling_strategy="top",
        output_format="n-tuple",
        output_scores=True,
        batch_size=ST_BATCH_SIZE,
        verbose=False,
    )
    rows: dict[str, Any] = {row_key(r["query"], r["document"]): None for r in records}
    for row in mined:
        negatives = [row[f"negative_{i}"] for i in range(1, config.num_negatives + 1)]
        rows[row_key(row["query"], row["document"])] = {"negatives": negatives, "scores": row["scores"][1:], "positive_score": row["scores"][0]}
    return rows


RUNNERS = {"pairmill": run_pairmill, "st": run_st}


def child(side: str, root: Path, rows: int | None, config: MiningConfig, out: Path) -> None:
    import psutil

    records = load_rows(root, rows)
    get_teacher(TeacherConfig())
    RUNNERS[side](records[:50], config)  # warm-up: imports and lazy initialisation, not measured
    baseline_mb = psutil.Process().memory_info().rss / 2**20
    start = time.perf_counter()
    mined = RUNNERS[side](records, config)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out.write_text(json.dumps({"seconds": seconds, "peak_rss_mb": peak_mb, "baseline_rss_mb": baseline_mb, "rows": mined}))


def explain(key: str, ours: Any, theirs: Any, records: list[PairRecord], threshold_of: dict[str, float]) -> str:
    """The first rule that accounts for a row whose negatives differ."""
    query, _ = json.loads(key)
    group = matching_form(query)
    variants = {r["query"] for r in records if matching_form(r["query"]) == group}
    positives = {matching_form(r["document"]) for r in records if matching_form(r["query"]) == group}
    st_negatives = [matching_form(n) for n in (theirs or {}).get("negatives", [])]
    if len(variants) > 1:
        return "query has case/punctuation/space variants: pairmill groups them as one query, sentence-transformers does not"
    if group in st_negatives:
        return "sentence-transformers picked the query's own text as a negative (pairmill skips it)"
    if positives & set(st_negatives):
        return "sentence-transformers picked a case/punctuation/space variant of a positive (pairmill compares texts in their matching form)"
    if len(set(st_negatives)) < len(st_negatives):
        return "sentence-transformers picked the same text twice up to case/punctuation/space (pairmill skips repeats)"
    differing = []
    for side in (ours, theirs):
        if side:
            other = theirs if side is ours else ours
            other_negatives = set(other["negatives"]) if other else set()
            differing += [s for n, s in zip(side["negatives"], side["scores"], strict=True) if n not in other_negatives]
    if any(abs(s - threshold_of[group]) < MARGIN_BOUNDARY for s in differing):
        return "a candidate within 1e-4 of the margin threshold (float rounding: cosine vs dot product)"
    if ours is None or theirs is None:
        return "window: a survivor between rank range_max and range_max + this query's positives (pairmill looks there, sentence-transformers not)"
    spellings: defaultdict[str, set[str]] = defaultdict(set)
    for record in records:
        spellings[matching_form(record["document"])].add(record["document"])
    if any(len(spellings[matching_form(n)]) > 1 for side in (ours, theirs) for n in side["negatives"]):
        return ("a negative the corpus holds in several spellings: pairmill searches one text per matching form "
                "(the smallest), sentence-transformers every spelling, and the spellings score differently")
    return "unexplained"


def compare(records: list[PairRecord], ours: dict[str, Any], theirs: dict[str, Any]) -> tuple[float, Counter, list[str]]:
    """Share of distinct rows whose negatives (or drop) agree exactly, and the reasons for the others."""
    positive_scores: dict[str, list[float]] = defaultdict(list)
    for key, row in ours.items():
        if row:
            positive_scores[matching_form(json.loads(key)[0])].append(row["positive_score"])
    threshold_of = defaultdict(lambda: float("nan"), {g: min(s) - abs(min(s)) * 0.05 for g, s in positive_scores.items()})
    keys = sorted(set(ours) | set(theirs))
    reasons: Counter[str] = Counter()
    examples: list[str] = []
    for key in keys:
        mine, st = ours.get(key), theirs.get(key)
        if (mine and mine["negatives"]) == (st and st["negatives"]):
            continue
        reason = explain(key, mine, st, records, threshold_of)
        reasons[reason] += 1
        if reason == "unexplained" and len(examples) < 5:
            examples.append(key)
    agreement = 1 - sum(reasons.values()) / len(keys)
    return agreement, reasons, examples


def compare_small(root: Path, rows: int) -> float:
    """Both miners in this process on the first ``rows`` rows; the agreement (for the test suite)."""
    records = load_rows(root, rows)
    config = MiningConfig()
    equivalent = dataclasses.replace(config, range_max=st_search_depth(records, config.range_max))
    agreement, reasons, _ = compare(records, run_pairmill(records, equivalent), run_st(records, config))
    print(dict(reasons))
    return agreement


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=None, help="first N rows (default: all)")
    parser.add_argument("--range-max", type=int, default=100)
    parser.add_argument("--num-negatives", type=int, default=7)
    parser.add_argument("--relative-margin", type=float, default=0.05)
    parser.add_argument("--repeat", type=int, default=3, help="alternating runs per side; the fastest counts (the machine is shared)")
    parser.add_argument("--realdata", type=Path, default=REALDATA)
    parser.add_argument("--child", choices=sorted(RUNNERS), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    config = dataclasses.replace(
        MiningConfig(), range_max=args.range_max, num_negatives=args.num_negatives, relative_margin=args.relative_margin, sampling="top", too_few="drop"
    )
    if args.child:
        child(args.child, args.realdata, args.rows, config, args.out)
        return

    records = load_rows(args.realdata, args.rows)
    pairmill_range_max = st_search_depth(records, args.range_max)
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for _ in range(args.repeat):
            for side in ("pairmill", "st"):
                out = Path(scratch) / f"{side}.json"
                range_max = pairmill_range_max if side == "pairmill" else args.range_max
                command = [sys.executable, __file__, "--child", side, "--out", str(out), "--realdata", str(args.realdata),
                           "--range-max", str(range_max), "--num-negatives", str(args.num_negatives),
                           "--relative-margin", str(args.relative_margin)] + (["--rows", str(args.rows)] if args.rows else [])
                subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                run = json.loads(out.read_text())
                if side not in results or run["seconds"] < results[side]["seconds"]:
                    results[side] = run
    agreement, reasons, examples = compare(records, results["pairmill"]["rows"], results["st"]["rows"])
    ours, theirs = results["pairmill"], results["st"]
    print(f"rows {len(records)}  distinct (query, document) rows {len(set(ours['rows']) | set(theirs['rows']))}")
    print(f"settings: relative_margin={args.relative_margin} num_negatives={args.num_negatives} sampling=top too_few=drop; "
          f"sentence-transformers range_max={args.range_max} (searches {pairmill_range_max} deep), pairmill range_max={pairmill_range_max}")
    print(f"{'':12} {'seconds':>9} {'peak RSS MB':>12} {'RSS before MB':>14} {'rows with negatives':>20}")
    for side in ("pairmill", "st"):
        r = results[side]
        print(f"{side:12} {r['seconds']:9.2f} {r['peak_rss_mb']:12.0f} {r['baseline_rss_mb']:14.0f} {sum(v is not None for v in r['rows'].values()):20}")
    print(f"speed-up (sentence-transformers time / pairmill time): {theirs['seconds'] / ours['seconds']:.2f}x")
    print(f"peak memory above baseline: pairmill {ours['peak_rss_mb'] - ours['baseline_rss_mb']:.0f} MB, "
          f"sentence-transformers {theirs['peak_rss_mb'] - theirs['baseline_rss_mb']:.0f} MB")
    print(f"rows whose negatives agree exactly: {agreement:.2%}")
    for reason, count in reasons.most_common():
        print(f"  {count:6}  {reason}")
    for key in examples:
        print("  unexplained:", key[:160])


if __name__ == "__main__":
    main()
