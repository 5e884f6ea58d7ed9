"""``OUT/report.json`` and ``OUT/report.html``: the funnel of a build, for machines and for people."""
from __future__ import annotations

import html
import json
from typing import Any

from apache_beam.io.filesystems import FileSystems

from pipelines.shards import join, write_atomically


def funnel_table_html(dataset: str, entry: dict[str, Any]) -> str:
    rows = []
    for stage in entry["stages"]:
        losses = [f"{r}: {n}" for r, n in sorted(stage["dropped"].items())]
        losses += [f"rejected {r}: {n}" for r, n in sorted(stage["rejected"].items())]
        losses += [f"skipped {r}: {n}" for r, n in sorted(stage["skipped"].items())]
        rows.append(
            f"<tr><td>{html.escape(stage['stage'])}</td><td>{stage['in']}</td><td>{stage['kept']}</td>"
            f"<td>{html.escape(', '.join(losses))}</td></tr>"
        )
    books = "balanced" if entry["balanced"] else "NOT balanced"
    return (
        f"<section class='dataset'><h2>{html.escape(dataset)}</h2>"
        f"<p>read {entry['read']}, written {entry['written']}, dropped {entry['dropped']}, rejected {entry['rejected']}: books {books}</p>"
        "<table><tr><th>stage</th><th>in</th><th>kept</th><th>dropped, rejected and skipped by reason</th></tr>"
        + "".join(rows)
        + "</table></section>"
    )


def render_html(report: dict[str, Any]) -> str:
    sections = "".join(funnel_table_html(d, e) for d, e in report["datasets"].items())
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>pairmill report</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}</style></head><body>"
        f"<h1>pairmill {html.escape(report['command'])} report</h1>"
        f"<p>recipe {html.escape(report['recipe'])} (sha256 {report['recipe_hash'][:12]}), pairmill {html.escape(report['pairmill_version'])}, "
        f"{report['seconds']} s</p>{sections}</body></html>"
    )


def write_report(output: str, report: dict[str, Any]) -> dict[str, str]:
    paths = {"json": join(output, "report.json"), "html": join(output, "report.html")}
    write_atomically(paths["json"], lambda s: s.write(json.dumps(report, indent=2, sort_keys=True).encode()))
    write_atomically(paths["html"], lambda s: s.write(render_html(report).encode()))
    return paths


def read_report(output: str) -> dict[str, Any]:
    with FileSystems.open(join(output, "report.json")) as f:
        return json.loads(f.read())
