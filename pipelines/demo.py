"""``pairmill demo``: everything, offline, on a generated corpus whose planted faults are known.

Generates a sample corpus in the published formats (pipelines/demo_corpus.py), builds it with every
filter on, mines hard negatives for one dataset, trains the default student briefly, writes the
report, and scores the filters against the corpus's own ground truth.
"""
from __future__ import annotations

import os
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from pipelines.demo_corpus import generate_demo_corpus
from schemas.recipe import load_recipe
from storage.builds import find_datasets, iter_jsonl_zst, iter_records, read_manifest

# Each demo dataset: its recipe source, and the ground-truth entries (generator views) it is built from.
DEMO_SOURCES: list[tuple[dict[str, Any], list[str]]] = [
    ({"dataset": "se_title_body", "kind": "stackexchange", "paths": ["stackexchange/*/Posts.xml"], "mode": "title_body"},
     ["stackexchange/cooking/Posts.xml#title_body", "stackexchange/bicycles/Posts.xml#title_body"]),
    ({"dataset": "se_question_answer", "kind": "stackexchange", "paths": ["stackexchange/*/Posts.xml"], "mode": "question_answer"},
     ["stackexchange/cooking/Posts.xml#question_answer", "stackexchange/bicycles/Posts.xml#question_answer"]),
    ({"dataset": "se_duplicates", "kind": "stackexchange", "paths": ["stackexchange/*/Posts.xml"], "mode": "duplicate_questions"},
     ["stackexchange/cooking/PostLinks.xml#duplicate_questions", "stackexchange/bicycles/PostLinks.xml#duplicate_questions"]),
    ({"dataset": "quora", "kind": "quora", "paths": ["quora/quora_duplicate_questions.tsv"]},
     ["quora/quora_duplicate_questions.tsv"]),
    ({"dataset": "amazon_reviews", "kind": "amazon_reviews", "paths": ["amazon/reviews_2018.json.gz", "amazon/reviews_2023.jsonl"]},
     ["amazon/reviews_2018.json.gz", "amazon/reviews_2023.jsonl"]),
    ({"dataset": "cnn_dailymail", "kind": "news", "paths": ["news/cnn_dailymail.jsonl"], "mode": "cnn_dailymail"},
     ["news/cnn_dailymail.jsonl"]),
    ({"dataset": "reddit_title_body", "kind": "reddit", "paths": ["reddit/submissions.jsonl"]},
     ["reddit/submissions.jsonl#title_body"]),
    ({"dataset": "reddit_post_comment", "kind": "reddit", "paths": ["reddit/submissions.jsonl"], "comments": ["reddit/comments.jsonl"]},
     ["reddit/comments.jsonl#post_comment"]),
]
MINED_DATASET = "se_question_answer"
DEDUP_STAGES = ("exact_dedup", "near_dedup")
RETRIEVAL_PREFIXES = {"query": "search_query: ", "document": "search_document: "}


def demo_recipe(corpus: Path, output: Path) -> dict[str, Any]:
    """The demo's recipe: every source kind, every filter on, dropped records all written (for scoring)."""
    sources = []
    for source, _ in DEMO_SOURCES:
        source = {**source, "paths": [str(corpus / p) for p in source["paths"]], "prefixes": dict(RETRIEVAL_PREFIXES)}
        if "comments" in source:
            source["comments"] = [str(corpus / p) for p in source["comments"]]
        sources.append(source)
    return {
        "output": str(output),
        "sources": sources,
        "filters": {
            "clean": {"min_query_chars": 3, "min_document_chars": 10},
            "language": {"fields": "document"},
            "dedup": {"exact": "pair", "near": {"field": "document", "threshold": 0.8, "verify": True, "max_rounds": 8}},
            "consistency": {"k": 25, "chunk_size": 200},
        },
        "mining": {"datasets": [MINED_DATASET], "num_negatives": 3, "range_max": 30, "too_few": "keep"},
        "shards": {"records_per_shard": 200, "write_dropped": "all"},
    }


def record_fates(output: Path, dataset: str) -> dict[str, str]:
    """Every record id of a built dataset -> 'kept' or the stage that dropped it."""
    fates = {record["id"]: "kept" for record in iter_records(str(output / dataset))}
    dropped_folder = output / "_dropped" / dataset
    if dropped_folder.is_dir():
        for name in sorted(os.listdir(dropped_folder)):
            for item in iter_jsonl_zst(str(dropped_folder / name)):
                fates[item["record"]["id"]] = item["stage"]
    return fates


def score_against_truth(output: Path, truth: dict[str, Any]) -> dict[str, dict[str, int]]:
    """How many planted faults the filters caught, and how many clean records they kept."""
    caught: dict[str, Counter] = {kind: Counter() for kind in ("exact_duplicates", "near_duplicates", "non_english", "mismatched", "clean")}
    for source, views in DEMO_SOURCES:
        dataset = source["dataset"]
        fates = record_fates(output, dataset)
        for view in views:
            planted = truth["sources"][view]
            faulty: set[str] = set()
            for kind in ("exact_duplicates", "near_duplicates"):
                for key, original in planted[kind].items():
                    original = original["original"] if isinstance(original, dict) else original
                    pair = [fates.get(f"{dataset}/{key}"), fates.get(f"{dataset}/{original}")]
                    caught[kind]["planted"] += 1
                    # Caught: one copy removed as a duplicate and the other not (whatever later stages did to it).
                    caught[kind]["caught"] += sum(f in DEDUP_STAGES for f in pair) == 1
                    faulty.update((key, original))
            for kind, stage in (("non_english", "language"), ("mismatched", "consistency")):
                for key in planted[kind]:
                    caught[kind]["planted"] += 1
                    caught[kind]["caught"] += fates.get(f"{dataset}/{key}") == stage
                    faulty.add(key)
            clean = [fate for record_id, fate in fates.items() if record_id.split("/", 1)[1] not in faulty]
            caught["clean"]["planted"] += len(clean)
            caught["clean"]["caught"] += clean.count("kept")
    return {kind: dict(counts) for kind, counts in caught.items()}


def format_truth(scores: dict[str, dict[str, int]]) -> str:
    names = {
        "exact_duplicates": "planted exact duplicates removed",
        "near_duplicates": "planted near duplicates removed",
        "non_english": "planted non-English records dropped by the language filter",
        "mismatched": "planted mismatched pairs dropped by the consistency filter",
        "clean": "clean records kept",
    }
    return "\n".join(f"  {names[k]:<58} {v.get('caught', 0):>5} / {v.get('planted', 0)}" for k, v in scores.items())


def run_demo(output: str, seed: int, scale: float, train_steps: int) -> int:
    from pipelines.build import run_build
    from pipelines.mine import run_mine
    from pipelines.funnel import format_funnel
    from pipelines.report import merge_mined, write_report

    started = time.time()
    out = Path(output).resolve()
    if out.exists():
        shutil.rmtree(out)  # the demo's folder is its own: every run starts clean
    corpus = out / "corpus"
    print(f"generating the demo corpus in {corpus} ...", flush=True)
    truth = generate_demo_corpus(corpus, seed=seed, scale=scale)
    recipe_path = out / "recipe.yaml"
    recipe_path.write_text(yaml.safe_dump(demo_recipe(corpus, out / "built"), sort_keys=False))
    recipe = load_recipe(str(recipe_path))

    print("building every source with every filter on ...", flush=True)
    report = run_build(recipe, [])
    print(format_funnel(report["datasets"]))
    scores = score_against_truth(out / "built", truth)
    report["demo"] = {"ground_truth": scores, "seed": seed, "scale": scale}

    print(f"\nmining hard negatives for {MINED_DATASET} ...", flush=True)
    mined = run_mine(recipe, [])
    print(format_funnel(mined["datasets"]))
    report = merge_mined(report, mined)

    print(f"\ntraining the default student for {train_steps} steps ...", flush=True)
    run_dir = train_student(out, recipe.output, train_steps)
    report["demo"]["training"] = {"run": run_dir, **evaluation_before_after(run_dir)}
    paths = write_report(recipe.output, report)

    print("\nagainst the corpus's ground truth:")
    print(format_truth(scores))
    training = report["demo"]["training"]
    print(f"\nheld-out nDCG@10 of the student: {training['before']:.4f} untrained -> {training['after']:.4f} after {train_steps} steps")
    print(f"\ncorpus:   {corpus}\nrecipe:   {recipe_path}\ndatasets: {recipe.output}\nmodel:    {run_dir}/model  (SentenceTransformer(path) loads it)")
    print(f"report:   {paths['html']}  ({paths['json']})")
    print(f"demo finished in {time.time() - started:.0f} s")
    return 0 if report["balanced"] else 1


TRAIN_BATCH = 32


def train_student(out: Path, datasets: str, steps: int) -> str:
    """Train on every built dataset big enough to fill batches (each batch comes from one dataset)."""
    from trainer.train import run_training

    folders = [folder for folder in find_datasets(datasets) if read_manifest(folder).records >= 2 * TRAIN_BATCH]
    config = {
        "output": str(out / "run"),
        "datasets": folders,
        "data": {"held_out_fraction": 0.1, "num_negatives": 3},
        "optimizer": {"lr": 0.003, "warmup_steps": max(1, steps // 10)},
        "training": {"steps": steps, "batch_size": TRAIN_BATCH, "checkpoint_every": steps},
        "evaluation": {"every": steps, "max_queries": 300},
    }
    path = out / "train.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return run_training(str(path))


def evaluation_before_after(run_dir: str) -> dict[str, float]:
    """Mean held-out nDCG@10 over the evaluation sets, at the first and the last evaluation."""
    from trainer.runlog import read_metrics

    rows = [r for r in read_metrics(run_dir) if "eval" in r]
    first, last = min(r["step"] for r in rows), max(r["step"] for r in rows)

    def mean_at(step: int) -> float:
        values = [r["ndcg@10"] for r in rows if r["step"] == step]
        return sum(values) / len(values)

    return {"before": mean_at(first), "after": mean_at(last)}


def add_demo_arguments(parser: Any) -> None:
    parser.add_argument("--output", default="out/demo", help="folder for the corpus, datasets, model and report (replaced on every run; default out/demo)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated corpus (default 0)")
    parser.add_argument("--scale", type=float, default=1.0, help="corpus size multiplier (default 1.0: about 4,000 pairs)")
    parser.add_argument("--train-steps", type=int, default=60, help="training steps for the demo student (default 60)")


