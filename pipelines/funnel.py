"""The funnel: one Beam counter per (dataset, stage, outcome), and the report built from them after a run.

Counter names are ``<dataset>|<stage>|<outcome>`` in the ``pairmill`` namespace, where outcome is
``in``, ``kept``, ``dropped:<reason>``, ``rejected:<reason>``, ``skipped:<reason>`` (input rows that
are not records, such as tag-wiki posts) or ``info:<name>`` (figures such as dedup clusters).
"""
from __future__ import annotations

from typing import Any

from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter

from schemas.stages import READ, STAGE_ORDER, WRITE

NAMESPACE = "pairmill"


class Funnel:
    """Counters for one dataset, created on first use (Beam counters are cheap to increment)."""

    def __init__(self) -> None:
        self._counters: dict[str, Any] = {}

    def count(self, dataset: str, stage: str, outcome: str, n: int = 1) -> None:
        if n == 0:
            return
        name = f"{dataset}|{stage}|{outcome}"
        counter = self._counters.get(name)
        if counter is None:
            counter = self._counters[name] = Metrics.counter(NAMESPACE, name)
        counter.inc(n)


def counter_values(result: Any) -> dict[str, int]:
    """All pairmill counters of a finished pipeline result (committed where the runner has them)."""
    values: dict[str, int] = {}
    for metric in result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]:
        value = metric.committed if metric.committed is not None else metric.attempted
        values[metric.key.metric.name] = values.get(metric.key.metric.name, 0) + int(value or 0)
    return values


def build_funnel(counters: dict[str, int], datasets: list[str]) -> dict[str, Any]:
    """Per dataset: each stage's in, kept, dropped/rejected/skipped by reason; totals; whether the books balance."""
    stages: dict[str, dict[str, dict[str, Any]]] = {d: {} for d in datasets}
    for name, value in counters.items():
        dataset, stage, outcome = name.split("|", 2)
        entry = stages.setdefault(dataset, {}).setdefault(
            stage, {"in": 0, "kept": 0, "dropped": {}, "rejected": {}, "skipped": {}, "info": {}}
        )
        kind, _, reason = outcome.partition(":")
        if kind in ("in", "kept"):
            entry[kind] += value
        else:
            entry[kind][reason] = entry[kind].get(reason, 0) + value
    funnel: dict[str, Any] = {}
    for dataset, by_stage in stages.items():
        ordered = sorted(by_stage, key=lambda s: (STAGE_ORDER.index(s) if s in STAGE_ORDER else len(STAGE_ORDER), s))
        rejected = sum(sum(by_stage[s]["rejected"].values()) for s in ordered)
        dropped = sum(sum(by_stage[s]["dropped"].values()) for s in ordered)
        read = by_stage.get(READ, {}).get("in", 0)
        written = by_stage.get(WRITE, {}).get("kept", 0)
        # Rows a stage added (labeled-pair mining turns one row into 1 + negatives rows).
        added = sum(by_stage[s]["info"].get("added_rows", 0) for s in ordered)
        funnel[dataset] = {
            "stages": [{"stage": s, **by_stage[s]} for s in ordered],
            "read": read,
            "written": written,
            "dropped": dropped,
            "rejected": rejected,
            "added": added,
            "balanced": read + added == written + dropped + rejected,
        }
    return funnel


def format_funnel(funnel: dict[str, Any]) -> str:
    """The funnel as a short plain-text table: one line per dataset and stage."""
    lines = [f"{'dataset':<32} {'stage':<12} {'in':>10} {'kept':>10}  dropped / rejected by reason"]
    for dataset, entry in funnel.items():
        for stage in entry["stages"]:
            losses = [f"{r}={n}" for r, n in sorted(stage["dropped"].items())]
            losses += [f"rejected:{r}={n}" for r, n in sorted(stage["rejected"].items())]
            losses += [f"skipped:{r}={n}" for r, n in sorted(stage["skipped"].items())]
            lines.append(f"{dataset:<32} {stage['stage']:<12} {stage['in']:>10} {stage['kept']:>10}  {', '.join(losses)}")
        status = "balanced" if entry["balanced"] else "NOT BALANCED"
        lines.append(
            f"{dataset:<32} {'total':<12} read={entry['read']} written={entry['written']} "
            f"dropped={entry['dropped']} rejected={entry['rejected']}  books {status}"
        )
    return "\n".join(lines)
