"""The overview of a build's funnel: per dataset the records read, the share kept and the stage that removed most.

Computed from the funnel entries of report.json alone (no output folder, no matplotlib), so the page and
the console print the same figures. A stage *removes* the records it drops plus the input rows it rejects;
skipped input rows (tag wikis, answers in title_body mode) are not records and remove nothing. A warning
names every stage that removes more than half of the records that reached it (``in``), which includes
every stage that removes more than half of the records read. ``metrics_text`` says which of the
runner's counter values (committed or attempted) the books of the datasets were counted with.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

WARN_SHARE = 0.5
# Which of the runner's values a funnel's counters are (report.json ``metrics``, per run and per dataset):
# committed values count the work the runner kept, so a retried bundle counts once; attempted values count
# every try, and are used only where the runner keeps no committed ones.
COMMITTED = "committed"
ATTEMPTED = "attempted"
METRICS_MEANING = {
    COMMITTED: "committed counter values (a retried bundle counts once)",
    ATTEMPTED: "attempted counter values, the runner keeps no committed ones (a retried bundle counts again)",
}


@dataclass
class StageLoss:
    """What one stage of a dataset removed, of the records that reached it."""

    stage: str
    removed: int
    reached: int
    top_reason: str  # the reason that removed most (``rejected:<reason>`` for rejected rows)


@dataclass
class DatasetOverview:
    """One dataset of the overview."""

    name: str
    read: int
    written: int
    added: int  # rows a stage added (labeled-pair mining turns one row into 1 + negatives rows)
    most: StageLoss | None  # the stage that removed most; None: no stage removed anything
    warnings: list[StageLoss]  # every stage that removed more than WARN_SHARE of the records that reached it


def stage_loss(stage: dict[str, Any]) -> StageLoss:
    """The records a funnel stage dropped or rejected, with the reason that accounts for most of them."""
    reasons = {**stage["dropped"], **{f"rejected:{r}": n for r, n in stage["rejected"].items()}}
    top = max(sorted(reasons), key=lambda r: reasons[r]) if reasons else ""
    return StageLoss(stage["stage"], sum(reasons.values()), stage["in"], top)


def dataset_overview(name: str, entry: dict[str, Any]) -> DatasetOverview:
    """The overview of one dataset's funnel entry."""
    losses = [loss for loss in map(stage_loss, entry["stages"]) if loss.removed]
    most = max(losses, key=lambda loss: loss.removed) if losses else None
    warnings = [loss for loss in losses if loss.removed > WARN_SHARE * loss.reached]
    return DatasetOverview(name, entry["read"], entry["written"], entry.get("added", 0), most, warnings)


def overview(datasets: dict[str, Any]) -> list[DatasetOverview]:
    """The overview of every dataset of a funnel (report.json's ``datasets``), in its order."""
    return [dataset_overview(name, entry) for name, entry in datasets.items()]


def percent(part: int, whole: int, decimals: int = 1) -> str:
    """``part`` as a percentage of ``whole``; a dash when ``whole`` is 0."""
    return f"{100 * part / whole:.{decimals}f}%" if whole else "-"


def kept_text(row: DatasetOverview) -> str:
    """Records written of the records read plus the rows added, as a percentage; a dash when there were none."""
    return percent(row.written, row.read + row.added)


def loss_text(loss: StageLoss) -> str:
    """``consistency 5,400 of 6,000 (90.0%), mostly inconsistent``."""
    return f"{loss.stage} {loss.removed:,} of {loss.reached:,} ({percent(loss.removed, loss.reached)}), mostly {loss.top_reason}"


def warning_text(name: str, loss: StageLoss) -> str:
    """One warning line: which stage removed more than half of a dataset's records that reached it."""
    share = percent(loss.removed, loss.reached)
    return f"{name}: {loss.stage} removed {loss.removed:,} of the {loss.reached:,} records that reached it ({share}), mostly {loss.top_reason}"


def format_overview(datasets: dict[str, Any]) -> str:
    """The overview as a few plain-text lines: a total, one line per dataset, then the warnings."""
    rows = overview(datasets)
    read, written, added = (sum(getattr(r, key) for r in rows) for key in ("read", "written", "added"))
    width = max([len(r.name) for r in rows] + [7])
    lines = [f"overview: {len(rows)} datasets, {read:,} records read, {written:,} written ({percent(written, read + added)} kept)"]
    for r in rows:
        most = "nothing removed" if r.most is None else "most removed by " + loss_text(r.most)
        lines.append(f"  {r.name:<{width}} read {r.read:>10,}  written {r.written:>10,} ({kept_text(r):>6})  {most}")
    lines += [f"WARNING {warning_text(r.name, loss)}" for r in rows for loss in r.warnings]
    return "\n".join(lines)


def metrics_meaning(kind: str | None) -> str:
    """What a funnel entry's ``metrics`` value means; ``not recorded`` for a funnel saved without one."""
    return METRICS_MEANING.get(kind or "", "not recorded")


def metrics_text(datasets: dict[str, Any]) -> str:
    """Which counter values the datasets' books were counted with; per dataset where they differ."""
    kinds = {name: entry.get("metrics") for name, entry in datasets.items()}
    if len(set(kinds.values())) <= 1:
        return metrics_meaning(next(iter(kinds.values()), None))
    return "; ".join(f"{name}: {metrics_meaning(kind)}" for name, kind in kinds.items())
