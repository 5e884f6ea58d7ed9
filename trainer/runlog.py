"""The run's metrics log (``metrics.jsonl``: one JSON object per training step and per evaluation) and its plots."""
from __future__ import annotations

import json
import os
from typing import Any

METRICS = "metrics.jsonl"
LOSS_PLOT = "loss.png"
EVAL_PLOT = "metrics.png"
EVAL_METRICS = ("ndcg@10", "recall@10", "mrr@10")


def read_metrics(run_dir: str) -> list[dict[str, Any]]:
    """Every complete line of the log (a line cut short by a kill is left out)."""
    path = os.path.join(run_dir, METRICS)
    rows: list[dict[str, Any]] = []
    if not os.path.exists(path):
        return rows
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue
    return rows


class MetricsLog:
    """Appends rows to ``metrics.jsonl``; on resume, first drops the rows after the checkpoint's step."""

    def __init__(self, run_dir: str, resume_step: int | None) -> None:
        self.path = os.path.join(run_dir, METRICS)
        kept = [] if resume_step is None else [r for r in read_metrics(run_dir) if r.get("step", 0) <= resume_step]
        with open(self.path, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(r, sort_keys=True) + "\n" for r in kept)

    def write(self, row: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row, sort_keys=True) + "\n")


def save_plots(run_dir: str) -> list[str]:
    """loss.png (training loss and its moving average per step) and metrics.png (each evaluation set's metrics)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_metrics(run_dir)
    train_rows = [r for r in rows if "loss" in r]
    eval_rows = [r for r in rows if "eval" in r]
    written = []
    if train_rows:
        steps = [r["step"] for r in train_rows]
        losses = [r["loss"] for r in train_rows]
        smoothed, average = [], losses[0]
        for value in losses:
            average = 0.95 * average + 0.05 * value
            smoothed.append(average)
        fig, ax = plt.subplots(figsize=(8, 4.5))
        ax.plot(steps, losses, alpha=0.35, label="loss")
        ax.plot(steps, smoothed, label="moving average")
        ax.set_xlabel("step")
        ax.set_ylabel("InfoNCE loss")
        ax.legend()
        fig.tight_layout()
        fig.savefig(os.path.join(run_dir, LOSS_PLOT), dpi=100)
        plt.close(fig)
        written.append(LOSS_PLOT)
    if eval_rows:
        names = sorted({r["eval"] for r in eval_rows})
        fig, axes = plt.subplots(1, len(EVAL_METRICS), figsize=(5 * len(EVAL_METRICS), 4.5))
        for ax, metric in zip(axes, EVAL_METRICS, strict=True):
            for name in names:
                points = [(r["step"], r[metric]) for r in eval_rows if r["eval"] == name]
                ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=name)
            ax.set_xlabel("step")
            ax.set_title(metric)
        axes[0].legend(fontsize="small")
        fig.tight_layout()
        fig.savefig(os.path.join(run_dir, EVAL_PLOT), dpi=100)
        plt.close(fig)
        written.append(EVAL_PLOT)
    return written
