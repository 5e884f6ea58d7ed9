"""``pairmill demo``: everything, offline, on a generated corpus whose planted faults are known.

Generates a sample corpus in the published formats (demo/corpus.py), builds it with every filter on,
mines hard negatives for one dataset, trains the default student briefly, writes the report, and scores
the filters against the corpus's own ground truth (demo/truth.py).
"""
from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import yaml

from demo.recipe import MINED_DATASET, demo_recipe


def run_demo(output: str, seed: int, scale: float, train_steps: int) -> int:
    """Write the corpus, build, mine, train, report and print the scores; exit code 1 if the books do not balance."""
    from demo.corpus import generate_demo_corpus
    from demo.training import evaluation_before_after, train_student
    from demo.truth import format_truth, score_against_truth
    from pipelines.build import run_build
    from pipelines.funnel import format_funnel
    from pipelines.mine import run_mine
    from report.collect import merge_mined
    from report.html import write_report
    from report.overview import format_overview
    from storage.configs import load_recipe  # storage/ imports Beam: not while the parser is built

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
    print(format_overview(report["datasets"]))
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


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``pairmill demo`` options."""
    parser.add_argument("--output", default="out/demo", help="folder for the corpus, datasets, model and report (replaced on every run; default out/demo)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated corpus (default 0)")
    parser.add_argument("--scale", type=float, default=1.0, help="corpus size multiplier (default 1.0: about 4,000 pairs)")
    parser.add_argument("--train-steps", type=int, default=60, help="training steps for the demo student (default 60)")
