"""report.html and report.json: every section for a real build, plots for every kind of statistic, and a
headless Chromium that loads the page (skipped where Debian's chromium is not installed)."""
from __future__ import annotations

import base64
import html
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pipelines.cli import main
from pipelines.stats import write_stats
from report.collect import passed_stage
from report.html import write_report
from schemas.record import new_record
from schemas.stats import KEPT, summarize
from storage.builds import read_manifest, stats_path
from tests.helpers import FAST_RUNNER, write_dataset, write_recipe

SECTION_IDS = ["funnel", "distributions", "examples", "datasheet", "shards", "run"]
LONG_DOCUMENT = "Rinse the kettle with a citric acid solution and repeat it. " * 60
CHROMIUM = shutil.which("chromium")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small build (clean and exact dedup) with drops, rejects, HTML-looking text and a long dropped document."""
    folder = tmp_path_factory.mktemp("report")
    rows = [json.dumps({"id": i, "title": f"How do I descale kettle number {i}?", "text": f"Boil vinegar in kettle {i}, then rinse twice."}) for i in range(30)]
    rows += [
        # id 107: its record lands in the first shard (text.hashing.bucket of the id) among the kept examples shown.
        json.dumps({"id": 107, "title": "Why is <script>alert(1)</script> on my kettle?", "text": "It is a sticker & glue."}),
        json.dumps({"id": 101, "title": "How do I descale a long kettle?", "text": LONG_DOCUMENT}),
        json.dumps({"id": 102, "title": "How do I descale kettle number 3?", "text": "Boil vinegar in kettle 3, then rinse twice."}),
        json.dumps({"id": 103, "title": "How do I descale kettle number 4?", "text": "Boil vinegar in kettle 4, then rinse twice."}),
        json.dumps({"id": 104, "title": "Empty answer", "text": "  "}),
        json.dumps({"id": 106, "title": "How do I descale a long kettle?", "text": LONG_DOCUMENT}),
        "{not json at all",
        json.dumps({"id": 105, "text": "no title"}),
    ]
    (folder / "pairs.jsonl").write_text("\n".join(rows) + "\n")
    recipe = write_recipe(folder, {
        "output": str(folder / "out"),
        "sources": [
            {"dataset": "kettles", "kind": "jsonl", "paths": [str(folder / "pairs.jsonl")], "fields": {"query": "title", "document": "text", "id": "id"}},
        ],
        "filters": {"clean": {}, "dedup": {"exact": "pair"}},
        "shards": {"records_per_shard": 8},
    })
    assert main(["build", recipe, *FAST_RUNNER]) == 0
    return folder / "out"


def sections_of(page: str) -> dict[str, str]:
    """Each <section id=...>'s html."""
    return dict(re.findall(r"<section id='([a-z]+)'>(.*?)</section>", page, flags=re.S))


def test_report_of_a_build_has_every_section_with_its_content(built: Path) -> None:
    page = (built / "report.html").read_text(encoding="utf-8")
    sections = sections_of(page)
    assert list(sections) == SECTION_IDS

    funnel = sections["funnel"]
    assert "read 38, written 32, dropped 4, rejected 2: books balanced" in funnel
    assert "exact_duplicate</td><td class='n'>3</td>" in funnel and "empty_document</td><td class='n'>1</td>" in funnel
    assert "invalid_json" in funnel and "missing_field:title" in funnel and "alt='kettles funnel'" in funnel

    distributions = sections["distributions"]
    assert "alt='kettles: query length (characters), document length (characters)'" in distributions
    assert "exact_dedup: 3 of 35 records removed" in distributions

    examples = sections["examples"]
    assert "Why is &lt;script&gt;alert(1)&lt;/script&gt; on my kettle?" in examples and "<script>" not in page
    assert f"({len(LONG_DOCUMENT.strip()):,} characters)" in examples and LONG_DOCUMENT not in examples
    assert "<h5>exact_dedup: exact_duplicate</h5>" in examples and "kettles/3" in examples and "kettles/106" in examples
    assert "<h5>clean: empty_document</h5>" in examples
    assert "{not json at all" in examples and "missing_field:title" in examples

    assert "kettles</h3><p class='note'>not checked against any evaluation set" in sections["datasheet"]

    manifest = read_manifest(str(built / "kettles"))
    assert len(manifest.shards) > 1
    for shard in manifest.shards:
        assert shard.file in sections["shards"] and shard.sha256 in sections["shards"] and f"{shard.bytes:,}" in sections["shards"]

    run = sections["run"]
    assert "records_per_shard: 8" in run and "apache-beam" in run and "Time per step" in run
    assert "books counted with</td><td>committed counter values (a retried bundle counts once)" in run
    assert re.search(r"kettles</td><td>clean</td><td class='n'>\d", run)


def test_report_page_loads_nothing_from_outside(built: Path) -> None:
    page = (built / "report.html").read_text(encoding="utf-8")
    sources = re.findall(r"src='([^']*)'", page)
    assert len(sources) >= 1
    for source in sources:
        assert source.startswith("data:image/png;base64,")
        assert base64.b64decode(source.split(",", 1)[1]).startswith(b"\x89PNG\r\n\x1a\n")
    assert all(link.startswith(("#", "data:")) for link in re.findall(r"href='([^']*)'", page))
    assert "<script" not in page and "url(" not in page and "@import" not in page


def test_report_json_keeps_the_funnel_and_adds_versions_and_stats(built: Path) -> None:
    report = json.loads((built / "report.json").read_text())
    assert report["datasets"]["kettles"]["written"] == 32
    assert report["versions"]["apache-beam"] and report["versions"]["python"]
    groups = report["stats"]["kettles"]["groups"]
    assert groups[KEPT]["records"] == 32
    assert groups["dropped:exact_dedup"]["records"] == 3 and groups["dropped:clean"]["records"] == 1
    assert report["datasets"]["kettles"]["stage_seconds"]["clean"] >= 0
    assert report["metrics"] == report["datasets"]["kettles"]["metrics"] == "committed"


# Collects the built folder's figures in a process where matplotlib cannot be imported, and prints them.
COLLECT_WITHOUT_MATPLOTLIB = """
import json, sys
sys.modules["matplotlib"] = None
from report.collect import collect
output = sys.argv[1]
with open(output + "/report.json") as f:
    collected = collect(output, json.load(f))
kettles = collected.datasets[0]
print(json.dumps({
    "matplotlib_imported": any(name.startswith("matplotlib.") for name in sys.modules),
    "name": kettles.name,
    "shards": len(kettles.written.manifest.shards),
    "first_records": [r["id"] for r in kettles.written.first_records],
    "kept": kettles.distributions.lengths[0]["records"],
    "dropped": kettles.distributions.lengths[1]["records"],
    "dropped_examples": {f"{stage}: {reason}": len(rows) for (stage, reason), rows in kettles.dropped.items()},
    "dropped_missing": kettles.dropped_missing,
    "rejected_examples": {reason: [row["raw"].strip() for row in rows] for reason, rows in kettles.rejected.items()},
    "versions": sorted(collected.versions),
}))
"""


def test_collecting_the_figures_needs_no_matplotlib(built: Path) -> None:
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-c", COLLECT_WITHOUT_MATPLOTLIB, str(built)], cwd=root,
                            env={"PATH": "", "PYTHONPATH": str(root)}, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads(result.stdout.splitlines()[-1])
    assert figures["matplotlib_imported"] is False and figures["name"] == "kettles" and figures["shards"] > 1
    assert len(figures["first_records"]) == 3 and all(i.startswith("kettles/") for i in figures["first_records"])
    assert figures["kept"] == 32 and figures["dropped"] == 4
    assert figures["dropped_examples"] == {"exact_dedup: exact_duplicate": 3, "clean: empty_document": 1} and figures["dropped_missing"] == []
    assert figures["rejected_examples"]["invalid_json"] == ["{not json at all"]
    assert len(figures["rejected_examples"]["missing_field:title"]) == 1
    assert "matplotlib" in figures["versions"] and "apache-beam" in figures["versions"]


def synthetic_records(dataset: str, n: int, **meta: Any) -> list[dict[str, Any]]:
    return [new_record(dataset, f"{i:03d}", f"query {i}", f"document number {i}", "f", i, **meta) for i in range(n)]


def stage(name: str, n_in: int, kept: int, dropped: dict[str, int] | None = None, info: dict[str, int] | None = None) -> dict[str, Any]:
    return {"stage": name, "in": n_in, "kept": kept, "dropped": dropped or {}, "rejected": {}, "skipped": {}, "info": info or {}}


def test_report_plots_languages_consistency_clusters_and_mined_scores(tmp_path: Path) -> None:
    output = str(tmp_path)
    kept = synthetic_records("synth", 40, lang="en", lang_score=0.97, consistency_rank=0, consistency_score=0.8)
    write_dataset(tmp_path / "synth", "synth", kept)
    groups = summarize(
        [(KEPT, r) for r in kept]
        + [("dropped:language", r) for r in synthetic_records("synth", 5, lang="fr", lang_score=0.9)]
        + [("dropped:near_dedup", r) for r in synthetic_records("synth", 3, lang="en", lang_score=0.95)]
        + [("dropped:consistency", r) for r in synthetic_records("synth", 6, lang="en", lang_score=0.9, consistency_rank=40, consistency_score=0.2)]
    )
    write_stats(groups, stats_path(output, "synth"), "synth")
    mined = [
        {**r, "negatives": ["a wrong document"], "meta": {**r["meta"], "positive_score": 0.8, "negative_scores": [0.5, 0.3]}}
        for r in synthetic_records("synth_mined", 12)
    ]
    write_dataset(tmp_path / "synth_mined", "synth_mined", mined, kind="triplet")
    write_dataset(tmp_path / "old", "old", synthetic_records("old", 4))
    report = {
        "command": "build", "recipe": "r.yaml", "recipe_hash": "0" * 64, "output": output, "pairmill_version": "test",
        "seconds": 1.5, "balanced": True, "mined": ["synth_mined"],
        "datasets": {
            "synth": {
                "read": 54, "written": 40, "dropped": 14, "rejected": 0, "balanced": True,
                "stages": [
                    stage("read", 54, 54), stage("language", 54, 49, {"other_language": 5}),
                    stage("near_dedup", 49, 46, {"near_duplicate": 3}, {"clusters": 2, "cluster_size:2": 1, "cluster_size:3": 1}),
                    stage("consistency", 46, 40, {"inconsistent": 6}), stage("write", 40, 40),
                ],
            },
            "old": {"read": 4, "written": 4, "dropped": 0, "rejected": 0, "balanced": True, "stages": [], "from_earlier_build": True},
        },
    }
    paths = write_report(output, report)
    sections = sections_of(Path(paths["html"]).read_text(encoding="utf-8"))
    distributions = sections["distributions"]
    for alt in ["synth: languages and language scores", "synth: consistency rank and score", "synth: near-duplicate cluster sizes",
                "synth_mined: positive vs hardest negative scores"]:
        assert f"alt='{alt}'" in distributions
    assert "from the first 12 of 12 records" in distributions
    assert "no statistics for this dataset" in distributions  # "old" has no OUT/_stats file
    assert "complete from an earlier build" in sections["funnel"]
    assert "1 negatives; first: a wrong document" in sections["examples"]
    assert "objective triplet" in sections["shards"]
    assert "time per step: not measured" in sections["run"]

    # Kept at the language stage = written + dropped by the stages after it.
    passed = passed_stage(groups, ["read", "language", "near_dedup", "consistency", "write"], "language")
    assert passed["records"] == 40 + 3 + 6 and passed["lang"] == {"en": 49}
    assert passed_stage(groups, ["read", "write"], "language")["records"] == 40


def run_chromium(page: Path, profile: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None  # the tests that call this are skipped without chromium
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
         "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )


# Injected into a copy of the page: records load errors of any element, then what the browser made of the page.
PROBE = """<script>
window.probeErrors = [];
window.addEventListener('error', e => window.probeErrors.push(e.message || 'failed to load ' + (e.target.src || e.target.href)), true);
window.addEventListener('load', () => {
  const images = [...document.images];
  const sections = [...document.querySelectorAll('section[id]')];
  const probe = document.body.dataset;
  probe.images = images.length;
  probe.decoded = images.filter(i => i.complete && i.naturalWidth > 0).length;
  probe.sections = sections.map(s => s.id).join(',');
  probe.shown = sections.filter(s => s.getBoundingClientRect().height > 50).length;
  probe.errors = JSON.stringify(window.probeErrors);
});
</script>"""


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
def test_chromium_renders_the_report_without_errors(built: Path, tmp_path: Path) -> None:
    page = (built / "report.html").read_text(encoding="utf-8")
    probed = tmp_path / "report.html"
    probed.write_text(page.replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
    result = run_chromium(probed, tmp_path / "profile")
    assert result.returncode == 0, result.stderr[-2000:]
    body = re.search(r"<body([^>]*)>", result.stdout)
    assert body is not None, result.stdout[:2000]
    probe = {k: html.unescape(v) for k, v in re.findall(r'data-([a-z]+)="([^"]*)"', body.group(1))}
    assert probe["sections"] == ",".join(SECTION_IDS) and probe["shown"] == str(len(SECTION_IDS))
    assert int(probe["images"]) >= 1 and probe["decoded"] == probe["images"]
    assert json.loads(probe["errors"]) == []
    console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []
