"""The report's plots: matplotlib figures of collected figures, each returned as an <img> with an embedded PNG."""
from __future__ import annotations

import base64
import html
import io
import itertools
import math
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from schemas.stats import Summary, cluster_size_order

TOP_LANGUAGES = 12
KEPT_COLOR, DROPPED_COLOR = "#3b75af", "#d1495b"

Series = list[tuple[str, list[int], str]]  # (label, count per bucket, color)


def png(figure: Figure, alt: str) -> str:
    """The figure as an <img> with an embedded PNG."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f"<img alt='{html.escape(alt, quote=True)}' src='data:image/png;base64,{data}'>"


def new_figure(columns: int, height: float = 3.0) -> tuple[Figure, list[Axes]]:
    figure = Figure(figsize=(5.2 * columns, height), layout="constrained")
    axes = figure.subplots(1, columns, squeeze=False)[0]
    return figure, list(axes)


def funnel_chart(dataset: str, entry: dict[str, Any]) -> str:
    """Records after each stage of a dataset's funnel entry."""
    labels = ["rows read", *(f"after {s['stage']}" for s in entry["stages"])]
    values = [entry["read"], *(s["kept"] for s in entry["stages"])]
    figure = Figure(figsize=(8, 0.45 * len(labels) + 0.9), layout="constrained")
    ax = figure.subplots()
    bars = ax.barh(labels, values, color=KEPT_COLOR)
    ax.bar_label(bars, labels=[f"{v:,}" for v in values], padding=3, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, max([*values, 1]) * 1.15)
    ax.set_xlabel("records")
    ax.set_title(f"{dataset}: records after each stage", fontsize=10)
    return png(figure, f"{dataset} funnel")


def histogram_axes(ax: Axes, edges: list[float], series: Series, title: str, log_x: bool = False) -> None:
    """Each series as the share of its own records per bucket, so small and large groups compare."""
    nonzero = [i for _, counts, _ in series for i, n in enumerate(counts) if n]
    low, high = min(nonzero), max(nonzero) + 1
    shown_edges = [max(e, 0.5) for e in edges] if log_x else edges
    for label, counts, color in series:
        total = sum(counts)
        if total:
            ax.stairs([100 * n / total for n in counts], shown_edges, label=f"{label} (n={total:,})", color=color, fill=len(series) == 1, alpha=0.9)
    if log_x:
        ax.set_xscale("log")
        # At least two decades around the data, so there are tick labels to read.
        middle = math.sqrt(shown_edges[low] * shown_edges[high])
        ax.set_xlim(max(0.5, min(shown_edges[low], middle / 10)), max(shown_edges[high], middle * 10))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    else:
        ax.set_xlim(shown_edges[low], shown_edges[high])
    ax.set_ylabel("% of group")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)


def bucket_labels(edges: list[float]) -> list[str]:
    return [str(int(a)) if b - a == 1 else f"{int(a)}-{int(b) - 1}" for a, b in itertools.pairwise(edges)]


def grouped_bars(ax: Axes, labels: list[str], series: Series, title: str, ylabel: str) -> None:
    width = 0.8 / len(series)
    for i, (name, values, color) in enumerate(series):
        positions = [x + (i - (len(series) - 1) / 2) * width for x in range(len(labels))]
        ax.bar(positions, values, width=width, label=f"{name} (n={sum(values):,})", color=color)
    ax.set_xticks(range(len(labels)), labels, rotation=45 if len(labels) > 8 else 0, fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)


def kept_and_dropped(kept: Summary, dropped: Summary) -> list[tuple[Summary, str, str]]:
    return [(kept, "kept", KEPT_COLOR), (dropped, "dropped", DROPPED_COLOR)]


def histogram_series(kept: Summary, dropped: Summary, name: str) -> Series:
    """The kept and dropped counts of one histogram, leaving out an empty group."""
    return [(label, s["histograms"][name], color) for s, label, color in kept_and_dropped(kept, dropped) if sum(s["histograms"][name])]


def lengths_chart(dataset: str, edges: dict[str, list[float]], kept: Summary, dropped: Summary) -> str:
    names = [("query_chars", "query length (characters)"), ("document_chars", "document length (characters)")]
    figure, axes = new_figure(len(names))
    for ax, (name, title) in zip(axes, names, strict=True):
        histogram_axes(ax, edges[name], histogram_series(kept, dropped, name), title, log_x=True)
    return png(figure, f"{dataset}: {', '.join(title for _, title in names)}")


def language_chart(dataset: str, edges: dict[str, list[float]], kept: Summary, dropped: Summary) -> str:
    figure, (languages_ax, score_ax) = new_figure(2, height=3.2)
    totals = {lang: kept["lang"].get(lang, 0) + dropped["lang"].get(lang, 0) for lang in {**kept["lang"], **dropped["lang"]}}
    top = sorted(totals, key=lambda lang: (-totals[lang], lang))[:TOP_LANGUAGES]
    series = [(label, [s["lang"].get(lang, 0) for lang in top], color) for s, label, color in kept_and_dropped(kept, dropped) if s["records"]]
    grouped_bars(languages_ax, top, series, f"detected languages (top {len(top)})", "records")
    histogram_axes(score_ax, edges["lang_score"], histogram_series(kept, dropped, "lang_score"), "language score")
    return png(figure, f"{dataset}: languages and language scores")


def consistency_chart(dataset: str, edges: dict[str, list[float]], kept: Summary, dropped: Summary) -> str:
    figure, (rank_ax, score_ax) = new_figure(2, height=3.2)
    groups = [(label, s["histograms"]["consistency_rank"], color) for s, label, color in kept_and_dropped(kept, dropped)]
    last = max((i for _, counts, _ in groups for i, n in enumerate(counts) if n), default=0) + 1
    grouped_bars(rank_ax, bucket_labels(edges["consistency_rank"])[:last], [(label, counts[:last], color) for label, counts, color in groups if sum(counts)],
                 "rank of the own document (0 = best)", "records")
    histogram_axes(score_ax, edges["consistency_score"], histogram_series(kept, dropped, "consistency_score"), "teacher score of the own document")
    return png(figure, f"{dataset}: consistency rank and score")


def mined_scores_chart(dataset: str, edges: dict[str, list[float]], summary: Summary) -> str:
    figure, (ax,) = new_figure(1, height=3.2)
    series = [
        ("positive", summary["histograms"]["positive_score"], KEPT_COLOR),
        ("hardest negative", summary["histograms"]["hardest_negative_score"], DROPPED_COLOR),
    ]
    histogram_axes(ax, edges["positive_score"], [s for s in series if sum(s[1])], "teacher score: positive vs hardest negative")
    return png(figure, f"{dataset}: positive vs hardest negative scores")


def cluster_chart(dataset: str, sizes: dict[str, int]) -> str:
    """Near-duplicate clusters per size label ("2", "9-16", ...)."""
    labels = sorted(sizes, key=cluster_size_order)
    figure, (ax,) = new_figure(1)
    grouped_bars(ax, labels, [("clusters", [sizes[label] for label in labels], KEPT_COLOR)], "near-duplicate cluster sizes (records per cluster)", "clusters")
    return png(figure, f"{dataset}: near-duplicate cluster sizes")
