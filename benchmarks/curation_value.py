"""Does curation train a better embedder? Build one real-format input raw and curated, train a student on each, score on BEIR.

The input is the real-format samples in ../shared/realdata (Stack Exchange coffee and french_meta, Quora
duplicates, Amazon 2018 Fashion and 2014 Musical Instruments reviews, AG News), plus the formats that are
missing there (CNN/DailyMail, Reddit) from pairmill's demo generator. Every variant is one `pairmill
build` of the same sources with another `filters` block (raw = readers only; each filter alone; the
curated default recipe), and each build trains the same student with several seeds. Every trained
model is scored on the external BEIR folder ../shared/realdata/beir/msmarco_subset (qrels without a
header line), which no training source is drawn from. Printed per variant: pairs kept, nDCG@10 mean and
spread (max - min) over seeds, and the difference from raw. The ``contaminated`` variants add pairs drawn from the
BEIR set itself (10% of the raw pairs, query and relevant passage): how much such leakage moves the score,
and whether decontamination against the BEIR folder takes the change away (BENCHMARKS.md section 11).

    .venv/bin/python benchmarks/curation_value.py                       # default size, both students
    .venv/bin/python benchmarks/curation_value.py --students default --variants raw curated
    .venv/bin/python benchmarks/curation_value.py --scale 3 --seeds 0 1 2 3 4
    .venv/bin/python benchmarks/curation_value.py --variants raw contaminated contaminated_decontaminated
"""
from __future__ import annotations

import argparse
import copy
import json
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from demo.corpus import generate_demo_corpus  # noqa: E402
from storage.builds import find_datasets, read_manifest  # noqa: E402
from trainer.runlog import read_metrics  # noqa: E402
from trainer.train import run_training  # noqa: E402

REALDATA = ROOT.parent / "shared" / "realdata"
BEIR = REALDATA / "beir" / "msmarco_subset"
PREFIXES = {"query": "search_query: ", "document": "search_document: "}


@dataclass(frozen=True)
class Student:
    """How one student is trained at scale 1 (steps grow with --scale)."""

    model: str
    steps: int
    batch_size: int
    lr: float
    max_query_tokens: int
    max_document_tokens: int


STUDENTS = {
    "default": Student("default", steps=150, batch_size=64, lr=0.003, max_query_tokens=32, max_document_tokens=128),
    "minilm": Student("minilm", steps=30, batch_size=32, lr=5e-5, max_query_tokens=32, max_document_tokens=128),
}

# Each filter as the default recipe turns it on: every block with its defaults, near dedup on too.
CLEAN: dict[str, Any] = {}
LANGUAGE: dict[str, Any] = {}
DEDUP: dict[str, Any] = {"near": {}}
CONSISTENCY: dict[str, Any] = {}  # teacher minilm, k 2, chunks of 1M pairs
CONSISTENCY_STATIC: dict[str, Any] = {"teacher": {"model": "default"}}

# Variant name -> the recipe's filters block (every other recipe part is the same for all variants).
VARIANTS: dict[str, dict[str, Any]] = {
    "raw": {},
    "clean": {"clean": CLEAN},
    "language": {"language": LANGUAGE},
    "dedup": {"dedup": DEDUP},
    "consistency_static": {"consistency": CONSISTENCY_STATIC},
    "consistency_minilm": {"consistency": CONSISTENCY},
    "clean_language_dedup": {"clean": CLEAN, "language": LANGUAGE, "dedup": DEDUP},
    "curated_static_teacher": {"clean": CLEAN, "language": LANGUAGE, "dedup": DEDUP, "consistency": CONSISTENCY_STATIC},
    "curated": {"clean": CLEAN, "language": LANGUAGE, "dedup": DEDUP, "consistency": CONSISTENCY},  # the default recipe
    "curated_k5": {"clean": CLEAN, "language": LANGUAGE, "dedup": DEDUP, "consistency": {**CONSISTENCY, "k": 5}},
    "curated_margin": {"clean": CLEAN, "language": LANGUAGE, "dedup": DEDUP, "consistency": {**CONSISTENCY, "margin": 0.05}},
    "curated_language_pair": {"clean": CLEAN, "language": {"fields": "pair"}, "dedup": DEDUP, "consistency": CONSISTENCY},
    # Leakage: the raw sources plus pairs drawn from the evaluation set itself (``leaked_source``), as they come,
    # and with decontamination against that set.
    "contaminated": {},
    "contaminated_decontaminated": {"decontaminate": {"against": [{"path": str(BEIR)}]}},
}
CONTAMINATED = ("contaminated", "contaminated_decontaminated")
# The leaked pairs' share of the raw pairs.
LEAKED_SHARE = 0.1
# What fits in 30 minutes on 2 CPU cores: one MiniLM-teacher build, the transformer student on raw and curated only.
DEFAULT_VARIANTS = {
    "default": ["raw", "clean", "language", "dedup", "consistency_static", "curated_static_teacher", "curated"],
    "minilm": ["raw", "curated"],
}


def generated_sources(folder: Path, scale: float) -> Path:
    """The demo corpus (seed 0); only its CNN/DailyMail and Reddit files are used, the formats realdata lacks."""
    if not (folder / "ground_truth.json").exists():
        generate_demo_corpus(folder, seed=0, scale=scale)
    return folder


def sources(generated: Path) -> list[dict[str, Any]]:
    """The recipe's sources: every real-format sample that makes pairs, and the generated CNN/DailyMail and Reddit."""
    se = REALDATA / "stackexchange"
    amazon = REALDATA / "amazon_reviews"
    entries = [
        {"dataset": "se_coffee_title_body", "kind": "stackexchange", "paths": [se / "coffee/Posts.xml"], "mode": "title_body"},
        {"dataset": "se_coffee_question_answer", "kind": "stackexchange", "paths": [se / "coffee/Posts.xml"], "mode": "question_answer"},
        {"dataset": "se_french_meta_title_body", "kind": "stackexchange", "paths": [se / "french_meta/Posts.xml"], "mode": "title_body"},
        {"dataset": "se_french_meta_question_answer", "kind": "stackexchange", "paths": [se / "french_meta/Posts.xml"], "mode": "question_answer"},
        {"dataset": "quora", "kind": "quora", "paths": [REALDATA / "quora/quora_duplicate_questions_first2000.tsv"]},
        {"dataset": "amazon_reviews", "kind": "amazon_reviews", "paths": [amazon / "AMAZON_FASHION_5.json", amazon / "Musical_Instruments_5.sample.json"]},
        {"dataset": "ag_news", "kind": "news", "mode": "ag_news", "paths": [REALDATA / "news/ag_news_test.csv"]},
        {"dataset": "cnn_dailymail", "kind": "news", "mode": "cnn_dailymail", "paths": [generated / "news/cnn_dailymail.jsonl"]},
        {"dataset": "reddit_title_body", "kind": "reddit", "paths": [generated / "reddit/submissions.jsonl"]},
    ]
    return [{**e, "paths": [str(p) for p in e["paths"]], "prefixes": PREFIXES} for e in entries]


def leaked_source(folder: Path, count: int, seed: int = 0) -> dict[str, Any]:
    """A source of ``count`` (query, relevant passage) pairs of the BEIR evaluation set's qrels, as JSON lines:
    what a training source that holds the evaluation set looks like."""
    import random

    from storage.texts import BEIR_CORPUS, BEIR_QUERIES, beir_rows, beir_text

    corpus = {str(row["_id"]): beir_text(row) for row in beir_rows(str(BEIR), BEIR_CORPUS)}
    queries = {str(row["_id"]): beir_text(row) for row in beir_rows(str(BEIR), BEIR_QUERIES)}
    judged = [line.split("\t")[:2] for line in (BEIR / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines() if line.strip()]
    chosen = random.Random(seed).sample(judged, min(count, len(judged)))
    path = folder / "leaked_pairs.jsonl"
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"id": f"{q}-{d}", "query": queries[q], "document": corpus[d]}) + "\n" for q, d in chosen), encoding="utf-8")
    return {"dataset": "leaked_msmarco", "kind": "jsonl", "paths": [str(path)], "fields": {"id": "id", "query": "query", "document": "document"},
            "prefixes": PREFIXES}


def build(variant: str, filters: dict[str, Any], source_entries: list[dict[str, Any]], work: Path) -> tuple[Path, dict[str, int], float]:
    """One `pairmill build` of every source with this filters block; (output folder, pairs kept per dataset, seconds)."""
    output = work / "builds" / variant
    recipe = {"output": str(output), "sources": source_entries, "filters": copy.deepcopy(filters), "shards": {"write_dropped": "none"}}
    path = work / "recipes" / f"{variant}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    started = time.time()
    if not (output / "report.json").exists():
        subprocess.run([sys.executable, "-m", "pipelines.cli", "build", str(path), "--overwrite"], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
    manifests = [read_manifest(folder) for folder in find_datasets(str(output))]
    kept = {manifest.dataset: manifest.records for manifest in manifests}
    return output, kept, time.time() - started


def train(student: Student, build_folder: Path, seed: int, scale: float, run: Path, before_training: bool) -> dict[str, float]:
    """Train ``student`` on every dataset of a build; its nDCG@10 on the BEIR folder before (when asked) and after."""
    if not (run / "model").exists():
        shutil.rmtree(run, ignore_errors=True)
        folders = [f for f in find_datasets(str(build_folder)) if read_manifest(f).records >= 2 * student.batch_size]
        steps = max(1, round(student.steps * scale))
        config = {
            "output": str(run),
            "datasets": folders,
            "data": {"held_out_fraction": 0.0, "max_query_tokens": student.max_query_tokens, "max_document_tokens": student.max_document_tokens},
            "model": {"student": student.model, "device": "cpu"},
            "optimizer": {"lr": student.lr, "warmup_steps": max(1, steps // 10), "weight_decay": 0.0},
            "training": {"steps": steps, "batch_size": student.batch_size, "seed": seed, "checkpoint_every": steps, "keep_checkpoints": 1},
            "evaluation": {"every": None, "before_training": before_training, "beir": [{"path": str(BEIR)}]},
        }
        run.parent.mkdir(parents=True, exist_ok=True)
        path = run.parent / f"{run.name}.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        run_training(str(path))
    rows = [r for r in read_metrics(str(run)) if "eval" in r]
    last = max(r["step"] for r in rows)
    scores = {"after": next(r["ndcg@10"] for r in rows if r["step"] == last)}
    if before_training:
        scores["before"] = next(r["ndcg@10"] for r in rows if r["step"] == 0)
    return scores


def summary_table(results: dict[str, Any]) -> str:
    """One Markdown table per student: pairs kept, nDCG@10 mean, spread over seeds and difference from raw, and
    whether the difference exceeds both variants' spreads (max - min over seeds)."""
    lines = []
    for name, by_variant in results["students"].items():
        untrained = results["untrained"].get(name)
        heading = f"student `{name}`" + (f" (untrained nDCG@10 {untrained:.4f})" if untrained is not None else "") + ", BEIR msmarco_subset"
        lines += ["", heading, "", "| variant | pairs kept | nDCG@10 mean | spread (max-min) | per seed | vs raw | beyond both spreads |",
                  "| --- | ---: | ---: | ---: | --- | ---: | --- |"]
        raw = by_variant.get("raw")
        for variant, scores in by_variant.items():
            mean, spread = statistics.mean(scores), max(scores) - min(scores)
            diff = beyond = ""
            if raw is not None and variant != "raw":
                gain = mean - statistics.mean(raw)
                diff, beyond = f"{gain:+.4f}", "yes" if abs(gain) > max(spread, max(raw) - min(raw)) else "no"
            kept = sum(results["kept"][variant].values())
            lines.append(f"| {variant} | {kept:,} | {mean:.4f} | {spread:.4f} | {' '.join(f'{s:.4f}' for s in scores)} | {diff} | {beyond} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/pairmill-curation-value"), help="builds and runs are kept here and reused")
    parser.add_argument("--scale", type=float, default=1.0, help="grows the generated sources and the training steps")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--students", nargs="+", choices=list(STUDENTS), default=list(STUDENTS))
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), help="default: every variant for the static student, raw and curated for MiniLM")
    args = parser.parse_args(argv)
    if not BEIR.exists():
        parser.error(f"{BEIR} is missing: this benchmark needs ../shared/realdata")
    started = time.time()
    entries = sources(generated_sources(args.work / "generated", args.scale))
    wanted = {name: args.variants or DEFAULT_VARIANTS[name] for name in args.students}
    results: dict[str, Any] = {"scale": args.scale, "seeds": args.seeds, "kept": {}, "build_seconds": {}, "untrained": {}, "students": {}}
    builds = {}
    leaked: list[dict[str, Any]] = []
    for variant in dict.fromkeys(v for names in wanted.values() for v in names):
        if variant in CONTAMINATED and not leaked:
            raw_pairs = sum(build("raw", VARIANTS["raw"], entries, args.work)[1].values())
            leaked = [leaked_source(args.work / "leaked", round(LEAKED_SHARE * raw_pairs))]
        variant_entries = entries + leaked if variant in CONTAMINATED else entries
        builds[variant], results["kept"][variant], results["build_seconds"][variant] = build(variant, VARIANTS[variant], variant_entries, args.work)
        print(f"built {variant}: {sum(results['kept'][variant].values()):,} pairs kept ({results['build_seconds'][variant]:.0f} s)", flush=True)
    for name in args.students:
        student = STUDENTS[name]
        results["students"][name] = {}
        for variant in wanted[name]:
            scores = []
            for seed in args.seeds:
                run = args.work / "runs" / f"s{args.scale:g}" / name / variant / f"seed{seed}"
                first = variant == wanted[name][0] and seed == args.seeds[0]
                t0 = time.time()
                score = train(student, builds[variant], seed, args.scale, run, before_training=first)
                if first:
                    results["untrained"][name] = score["before"]
                scores.append(score["after"])
                print(f"{name} {variant} seed {seed}: nDCG@10 {score['after']:.4f} ({time.time() - t0:.0f} s)", flush=True)
            results["students"][name][variant] = scores
    results["seconds"] = round(time.time() - started, 1)
    (args.work / "results.json").write_text(json.dumps(results, indent=1))
    print(summary_table(results))
    print(f"\n{results['seconds']:.0f} s in all; results in {args.work / 'results.json'}")
    return results


if __name__ == "__main__":
    main()
