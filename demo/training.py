"""The demo's training step: the default student, briefly, on the built datasets, and its nDCG before and after."""
from __future__ import annotations

from pathlib import Path

import yaml

from storage.builds import find_datasets, read_manifest
from trainer.runlog import read_metrics
from trainer.train import run_training

TRAIN_BATCH = 32


def train_student(out: Path, datasets: str, steps: int) -> str:
    """Train on every built dataset big enough to fill batches (each batch comes from one dataset)."""
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
    rows = [r for r in read_metrics(run_dir) if "eval" in r]
    first, last = min(r["step"] for r in rows), max(r["step"] for r in rows)

    def mean_at(step: int) -> float:
        values: list[float] = [r["ndcg@10"] for r in rows if r["step"] == step]
        return sum(values) / len(values)

    return {"before": mean_at(first), "after": mean_at(last)}
