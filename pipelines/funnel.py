"""The funnel: one Beam counter per (dataset, stage, outcome), and the report built from them after a run.

Counter names are ``<dataset>|<stage>|<outcome>`` in the ``pairmill`` namespace, where outcome is
``in``, ``kept``, ``dropped:<reason>``, ``rejected:<reason>``, ``skipped:<reason>`` (input rows that
are not records, such as tag-wiki posts) or ``info:<name>`` (figures such as dedup clusters).

A runner that retries bundles (Dataflow) counts a retried bundle's increments again in its *attempted*
values, and once in its *committed* ones, so the books are counted with committed values wherever the
runner keeps them for every counter, and with attempted values only where it keeps none (a mix would
not balance). FnApiRunner, pairmill's local default, retries nothing and reports each counter's one value
as both; Beam's BundleBasedDirectRunner and Dataflow's batch jobs report committed values; a portable runner's
committed values are whatever its job service keeps (None where it keeps none).
"""
from __future__ import annotations

from typing import Any

from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter

from report.overview import ATTEMPTED, COMMITTED, metrics_text
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


def committed_value(metric: Any) -> Any:
    """A MetricResult's committed value; None where the runner keeps none (None, or unsupported as in Java's getCommitted)."""
    try:
        return metric.committed
    except (AttributeError, NotImplementedError):
        return None


def read_counters(result: Any) -> tuple[dict[str, int], str]:
    """All pairmill counters of a finished pipeline result, and which values they are (COMMITTED or ATTEMPTED):
    committed where the runner has them for every counter, else attempted."""
    metrics = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]
    committed = [committed_value(metric) for metric in metrics]
    kind = COMMITTED if all(value is not None for value in committed) else ATTEMPTED
    values: dict[str, int] = {}
    for metric, value in zip(metrics, committed, strict=True):
        name = metric.key.metric.name
        values[name] = values.get(name, 0) + int((value if kind == COMMITTED else metric.attempted) or 0)
    return values, kind


def counter_values(result: Any) -> dict[str, int]:
    """All pairmill counters of a finished pipeline result (committed where the runner has them)."""
    return read_counters(result)[0]


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
    lines.append(f"books counted with {metrics_text(funnel)}")
    return "\n".join(lines)
