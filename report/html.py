"""``OUT/report.html``: one self-contained page of a build's collected figures, and ``write_report``.

The page works offline: the plots are PNGs embedded as data URIs (report/charts.py), and it loads
nothing else and runs no script. It opens with an overview (id ``overview``, report/overview.py):
per dataset the records read, the share kept and the stage that removed most, with a warning for
every stage that removed more than half of what reached it. Its sections (ids ``funnel``,
``distributions``, ``examples``, ``datasheet``, ``shards``, ``run``) show the funnel of every dataset, the
distributions the build measured (``OUT/_stats``), a few kept, dropped and rejected rows per reason, the
decontamination datasheet (report/datasheet.py), every shard with its checksum, and the recipe, versions and time of the run and which counter values
(committed or attempted) its books used. Every text from the output folder is escaped.
"""
from __future__ import annotations

import html
import json
from collections.abc import Mapping
from typing import Any

import yaml

from report.charts import cluster_chart, consistency_chart, funnel_chart, language_chart, lengths_chart, mined_scores_chart
from report.collect import KEPT_EXAMPLES, Collected, DatasetFigures, MinedFigures, Written, collect, write_report_files
from report.overview import DatasetOverview, kept_text, loss_text, metrics_text, overview, percent, warning_text
from schemas.record import PairRecord
from schemas.stages import DEDUP_STAGES, NEAR_DEDUP
from schemas.stats import Summary

TEXT_CHARS = 400
LOSS_SHARES = (
    "share: dropped and rejected records of the records that entered the stage; skipped input rows, which are not records, "
    "of the rows the stage saw (its records and the rows it skipped)"
)
SECTIONS = [
    ("funnel", "Funnel"),
    ("distributions", "Distributions"),
    ("examples", "Examples"),
    ("datasheet", "Decontamination datasheet"),
    ("shards", "Shards"),
    ("run", "Recipe, versions and run time"),
]

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


def has_values(summaries: list[Summary], name: str) -> bool:
    return any(sum(s["histograms"][name]) for s in summaries)


# ---- sections ---------------------------------------------------------------------------------

def most_cell(row: DatasetOverview) -> str:
    """The stage that removed most, in red when it removed more than half of what reached it."""
    if row.most is None:
        return "nothing removed"
    return f"<td class='bad'>{esc(loss_text(row.most))}</td>" if row.most in row.warnings else esc(loss_text(row.most))


def overview_html(report: dict[str, Any]) -> str:
    """Every dataset's records read, share kept and the stage that removed most; a warning per stage removing more than half."""
    rows = overview(report["datasets"])
    cells = [[esc(r.name), number(r.read), number(r.written), f"<td class='n'>{kept_text(r)}</td>", most_cell(r)] for r in rows]
    parts = ["<h2>Overview</h2>", table(["dataset", "read", "written", "kept", "removed most (of the records that reached it)"], cells)]
    if any(r.added for r in rows):
        parts.append(note("kept: records written of the records read plus the rows mining added"))
    parts += [f"<p class='bad'>⚠ warning: {esc(warning_text(r.name, loss))}</p>" for r in rows for loss in r.warnings]
    return f"<div id='overview'>{''.join(parts)}</div>"


def loss_shares(stage: dict[str, Any], outcome: str) -> list[tuple[str, int, str, str]]:
    """(reason, count, share, what it is a share of) for one outcome of a funnel stage, each share at most 100%."""
    if outcome == "skipped":
        seen = stage["in"] + sum(stage["skipped"].values())
        return [(r, n, percent(n, seen, 2), f"{seen:,} rows seen") for r, n in sorted(stage["skipped"].items())]
    return [(r, n, percent(n, stage["in"], 2), f"{stage['in']:,} records in") for r, n in sorted(stage[outcome].items())]


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
        loss_rows = [
            [esc(s["stage"]), outcome, esc(reason), number(n), f"<td class='n'>{share}</td>", esc(of)]
            for s in entry["stages"]
            for outcome in ("dropped", "rejected", "skipped")
            for reason, n, share, of in loss_shares(s, outcome)
        ]
        parts.append("<h4>Losses by reason</h4>")
        headings = ["stage", "outcome", "reason", "count", "share", "of"]
        parts.append(table(headings, loss_rows) + note(LOSS_SHARES) if loss_rows else note("nothing was dropped, rejected or skipped"))
        info_rows = [[esc(s["stage"]), esc(name), number(n)] for s in entry["stages"] for name, n in sorted(s["info"].items())]
        if info_rows:
            parts.append("<h4>Stage figures</h4>" + table(["stage", "figure", "value"], info_rows))
    return "".join(parts)


def duplicates_html(dataset: str, entry: dict[str, Any]) -> str:
    parts = []
    by_stage = {s["stage"]: s for s in entry["stages"]}
    for stage in DEDUP_STAGES:
        if stage in by_stage:
            s = by_stage[stage]
            figures = ", ".join(f"{esc(k)} {v:,}" for k, v in sorted(s["info"].items()) if not k.startswith("cluster_size:"))
            parts.append(f"<p>{stage}: {sum(s['dropped'].values()):,} of {s['in']:,} records removed{'; ' + figures if figures else ''}</p>")
    near = by_stage.get(NEAR_DEDUP)
    if near is not None:
        sizes = {k.split(":", 1)[1]: v for k, v in near["info"].items() if k.startswith("cluster_size:")}
        clusters = near["info"].get("clusters", 0)
        if sizes:
            parts.append(cluster_chart(dataset, sizes))
        elif clusters:
            removed = sum(near["dropped"].values())
            parts.append(note(f"{clusters:,} near-duplicate clusters, {1 + removed / clusters:.2f} records per cluster on average"))
    return "<h4>Duplicates</h4>" + "".join(parts) if parts else ""


def distributions_html(figures: DatasetFigures) -> str:
    dataset, entry, shown = figures.name, figures.entry, figures.distributions
    parts = [dataset_heading(dataset)]
    if shown is None:
        return parts[0] + note("no statistics for this dataset (the build wrote no OUT/_stats file)") + duplicates_html(dataset, entry)
    if has_values(list(shown.lengths), "query_chars"):
        parts.append("<h4>Lengths</h4>")
        parts.append(lengths_chart(dataset, shown.edges, *shown.lengths))
        parts.append(note("kept: records written; dropped: records any stage dropped"))
    else:
        parts.append(note("no records"))
    if has_values(list(shown.language), "lang_score"):
        parts.append("<h4>Languages</h4>" + language_chart(dataset, shown.edges, *shown.language))
        parts.append(note("kept: records that passed the language stage; dropped: records it dropped"))
    if has_values(list(shown.consistency), "consistency_rank"):
        parts.append("<h4>Consistency</h4>" + consistency_chart(dataset, shown.edges, *shown.consistency))
        parts.append(note("kept: records that passed the consistency stage; dropped: records it dropped"))
    kept = shown.lengths[0]
    if has_values([kept], "positive_score"):
        parts.append("<h4>Mined negatives</h4>" + mined_scores_chart(dataset, shown.edges, kept))
    parts.append(duplicates_html(dataset, entry))
    return "".join(parts)


def mined_distributions_html(figures: MinedFigures) -> str:
    """A mined dataset's positive vs hardest-negative scores."""
    heading = dataset_heading(figures.name)
    if figures.scores is None:
        return heading + note(f"no manifest in {esc(figures.written.folder)}")
    if not has_values([figures.scores], "positive_score"):
        return heading + note("its records carry no positive_score")
    return heading + mined_scores_chart(figures.name, figures.edges, figures.scores) + note(f"from {figures.scores_from}")


def distributions_section(collected: Collected) -> str:
    parts = [distributions_html(figures) for figures in collected.datasets]
    if collected.mined:
        parts.append("<h3>Mined datasets</h3>")
        parts += [mined_distributions_html(figures) for figures in collected.mined]
    return "".join(parts)


def meta_text(meta: Mapping[str, Any]) -> str:
    """One ``key: value`` line per meta field, scores rounded to 4 decimals."""
    def shown(value: Any) -> Any:
        if isinstance(value, float):
            return round(value, 4)
        if isinstance(value, list):
            return [shown(v) for v in value]
        return value
    return "\n".join(f"{key}: {json.dumps(shown(value), ensure_ascii=False)}" for key, value in sorted(meta.items()))


def record_rows(records: list[PairRecord], with_negatives: bool) -> list[list[str]]:
    rows = []
    for r in records:
        row = [f"<td class='mono id'>{esc(r['id'])}</td>", text_cell(r["query"]), text_cell(r["document"])]
        if with_negatives:
            negatives = r.get("negatives") or []
            row.append(text_cell(f"{len(negatives)} negatives; first: {negatives[0]}" if negatives else "none"))
        row.append(f"<td class='mono meta'>{esc(meta_text(r.get('meta', {})))}</td>")
        rows.append(row)
    return rows


def records_table(records: list[PairRecord]) -> str:
    with_negatives = any(r.get("negatives") for r in records)
    headers = ["id", "query", "document", *(["negatives"] if with_negatives else []), "meta"]
    return table(headers, record_rows(records, with_negatives))


def kept_examples_html(written: Written) -> str:
    if written.manifest is None:
        return note(f"no manifest in {esc(written.folder)}")
    return records_table(written.first_records) if written.first_records else note("no records written")


def dropped_examples_html(figures: DatasetFigures) -> str:
    found = figures.dropped
    if found is None:
        return ""
    parts = ["<h4>Dropped, by stage and reason</h4>"]
    for stage, reason in sorted(found):
        parts.append(f"<h5>{esc(stage)}: {esc(reason)}</h5>")
        parts.append(records_table([row["record"] for row in found[(stage, reason)]]))
    if figures.dropped_missing:
        parts.append(note("no dropped rows written for " + ", ".join(f"{esc(s)}: {esc(r)}" for s, r in figures.dropped_missing)
                          + " (shards.write_dropped is none, or the stage does not write them)"))
    return "".join(parts)


def rejected_examples_html(figures: DatasetFigures) -> str:
    found = figures.rejected
    if found is None:
        return ""
    rows = [
        [esc(reason), f"<td class='mono'>{esc(row['file'])}:{esc(row['position'])}</td>", f"<td class='text mono'>{esc(clip(row['raw']))}</td>"]
        for reason in sorted(found)
        for row in found[reason]
    ]
    return "<h4>Rejected input, by reason</h4>" + table(["reason", "file:position", "raw input"], rows)


def examples_section(collected: Collected) -> str:
    parts = []
    for figures in collected.datasets:
        parts.append(dataset_heading(figures.name))
        parts.append(f"<h4>Kept (the first {KEPT_EXAMPLES} of the shards)</h4>")
        parts.append(kept_examples_html(figures.written))
        parts.append(dropped_examples_html(figures))
        parts.append(rejected_examples_html(figures))
    for mined in collected.mined:
        parts.append(dataset_heading(mined.name) + kept_examples_html(mined.written))
    return "".join(parts)


def datasheet_section(collected: Collected) -> str:
    """Per dataset: the evaluation sets its pairs were checked against, the pairs that overlapped each and on which
    side, and a few of them (report/datasheet.py)."""
    parts = [note("Use it to declare the training data of a model trained on this output: see README, 'Decontamination'.")]
    for figures in collected.datasets:
        sheet = figures.datasheet
        parts.append(dataset_heading(figures.name))
        if not sheet["checked"]:
            parts.append(note("not checked against any evaluation set"))
            continue
        only = f"; queries only against {esc(', '.join(sheet['queries_only']))}" if sheet["queries_only"] else ""
        parts.append(f"<p>sides checked: {esc(sheet['sides'])}; overlap: a shared n-gram of {sheet['ngram']} words, or equal{only}</p>")
        rows = []
        for source in sheet["against"]:
            counts = sheet["overlaps"][source["name"]]
            rows.append([f"<td>{esc(source['name'])}</td>", f"<td class='mono'>{esc(source['format'])} {esc(source['path'])}</td>",
                         number(source["texts"]), number(counts["pairs"]), number(counts["query"]), number(counts["document"]), number(counts["both"])])
        parts.append(table(["set", "source", "texts", "pairs dropped", "query", "document", "both"], rows))
        for name, examples in sheet["examples"].items():
            items = "".join(f"<li><span class='mono'>{esc(e['id'])}</span> [{esc(e['side'])}] query: {esc(e['query'])} | document: {esc(e['document'])}</li>"
                            for e in examples[:3])
            parts.append(f"<h4>{esc(name)}</h4><ul>{items}</ul>")
    return "".join(parts)


def shards_html(dataset: str, written: Written) -> str:
    folder, manifest = written.folder, written.manifest
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


def shards_section(collected: Collected) -> str:
    figures: list[DatasetFigures | MinedFigures] = [*collected.datasets, *collected.mined]
    return "".join(shards_html(f.name, f.written) for f in figures)


def run_section(collected: Collected) -> str:
    report = collected.report
    parts = [
        "<h3>Run</h3>",
        table([], [
            ["command", esc(report["command"])],
            ["recipe", f"{esc(report['recipe'])} (sha256 {esc(report['recipe_hash'])})"],
            ["output", esc(collected.output)],
            ["total time", f"{report['seconds']:,} s"],
            ["books counted with", esc(metrics_text(report["datasets"]))],
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
    parts.append(table(["package", "version"], [[esc(k), esc(v)] for k, v in collected.versions.items()]))
    return "".join(parts)


def render_html(collected: Collected) -> str:
    report, output = collected.report, collected.output
    bodies = {
        "funnel": funnel_section(report),
        "distributions": distributions_section(collected),
        "examples": examples_section(collected),
        "datasheet": datasheet_section(collected),
        "shards": shards_section(collected),
        "run": run_section(collected),
    }
    nav = "".join(f"<a href='#{key}'>{title}</a>" for key, title in [("overview", "Overview"), *SECTIONS])
    sections = "".join(f"<section id='{key}'><h2>{title}</h2>{bodies[key]}</section>" for key, title in SECTIONS)
    books = "books balanced" if report["balanced"] else "<span class='bad'>books NOT balanced</span>"
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'><link rel='icon' href='data:,'>"
        f"<title>pairmill {esc(report['command'])} report</title><style>{STYLE}</style></head><body>"
        f"<h1>pairmill {esc(report['command'])} report</h1>"
        f"<p>{esc(report['recipe'])} → {esc(output)}: {len(report['datasets'])} datasets, "
        f"{sum(e['written'] for e in report['datasets'].values()):,} records written, {books}, {report['seconds']:,} s</p>"
        f"<nav>{nav}</nav>{overview_html(report)}{sections}</body></html>"
    )


def write_report(output: str, report: dict[str, Any]) -> dict[str, str]:
    """Write ``OUT/report.json`` (the report, with the measured distributions and versions) and ``OUT/report.html``."""
    collected = collect(output, report)
    document = {**report, "versions": collected.versions, "stats": collected.stats,
                "datasheets": {figures.name: figures.datasheet for figures in collected.datasets}}
    return write_report_files(output, document, render_html(collected))
