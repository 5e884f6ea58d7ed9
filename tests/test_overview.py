"""The report's overview (records read, share kept, the stage that removed most, warnings past one half) on the
page and the console, and losses by reason whose shares never exceed 100%, even where a reader skips more
input rows than it reads records."""
from __future__ import annotations

import io
import json
import re
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import pytest

from pipelines.cli import main
from report.overview import dataset_overview, format_overview, kept_text
from tests.helpers import FAST_RUNNER, write_jsonl, write_recipe


def post(**attrs: Any) -> str:
    return "  <row " + " ".join(f"{k}={quoteattr(str(v))}" for k, v in attrs.items()) + " />\n"


def write_posts(folder: Path) -> Path:
    """A Posts.xml of 5 questions (4 of them the same pair) with 2 answers each and a tag wiki."""
    folder.mkdir(parents=True)
    rows = []
    for q in range(5):
        title, body = ("How do I store beans?", "<p>Whole beans in air.</p>") if q < 4 else ("Grind size?", "<p>Which grind for espresso?</p>")
        rows.append(post(Id=10 * q + 1, PostTypeId=1, Score=1, Title=title, Body=body))
        rows += [post(Id=10 * q + a, PostTypeId=2, ParentId=10 * q + 1, Score=1, Body=f"<p>Answer {a}</p>") for a in (2, 3)]
    rows.append(post(Id=99, PostTypeId=5, Body="<p>tag wiki</p>"))
    path = folder / "Posts.xml"
    path.write_text('\ufeff<?xml version="1.0" encoding="utf-8"?>\n<posts>\n' + "".join(rows) + "</posts>\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A build of two datasets: Stack Exchange title_body, where exact dedup removes 3 of 5, and a JSON Lines
    source losing less than half; with what the build printed."""
    folder = tmp_path_factory.mktemp("overview")
    posts = write_posts(folder / "cooking")
    rows = [{"id": i, "title": f"Kettle question {i}?", "text": f"Kettle answer number {i}."} for i in range(8)]
    rows += [{"id": 100 + i, "title": f"Kettle question {i}?", "text": f"Kettle answer number {i}."} for i in (1, 2)]
    rows += [{"id": 103, "title": "Empty", "text": " "}, "{bad"]
    pairs = write_jsonl(folder / "pairs.jsonl", rows)
    recipe = write_recipe(folder, {
        "output": str(folder / "out"),
        "sources": [
            {"dataset": "se", "kind": "stackexchange", "paths": [str(posts)], "mode": "title_body"},
            {"dataset": "kettles", "kind": "jsonl", "paths": [str(pairs)], "fields": {"query": "title", "document": "text", "id": "id"}},
        ],
        "filters": {"clean": {}, "dedup": {"exact": "pair"}},
    })
    printed = io.StringIO()
    with redirect_stdout(printed):
        assert main(["build", recipe, *FAST_RUNNER]) == 0
    return folder / "out", printed.getvalue()


def overview_of(page: str) -> str:
    found = re.search(r"<div id='overview'>(.*?)</div>", page, flags=re.S)
    assert found is not None
    return found.group(1)


def test_the_page_opens_with_the_overview_of_every_dataset(built: tuple[Path, str]) -> None:
    output, _ = built
    page = (output / "report.html").read_text(encoding="utf-8")
    assert page.index("<div id='overview'>") < page.index("<section id=")
    shown = overview_of(page)
    assert ("<td>se</td><td class='n'>5</td><td class='n'>2</td><td class='n'>40.0%</td>"
            "<td class='bad'>exact_dedup 3 of 5 (60.0%), mostly exact_duplicate</td>") in shown
    # kettles: 12 rows, 1 rejected (read), 1 dropped by clean, 2 exact duplicates: 8 written.
    assert ("<td>kettles</td><td class='n'>12</td><td class='n'>8</td><td class='n'>66.7%</td>"
            "<td>exact_dedup 2 of 10 (20.0%), mostly exact_duplicate</td>") in shown
    warnings = re.findall(r"<p class='bad'>(.*?)</p>", shown)
    assert warnings == ["⚠ warning: se: exact_dedup removed 3 of the 5 records that reached it (60.0%), mostly exact_duplicate"]


def test_the_console_prints_the_overview_after_the_funnel(built: tuple[Path, str]) -> None:
    _, printed = built
    lines = printed.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("overview:"))
    assert any("books balanced" in line for line in lines[:start])
    assert lines[start] == "overview: 2 datasets, 17 records read, 10 written (58.8% kept)"
    assert re.fullmatch(r"  se +read +5  written +2 \( 40\.0%\)  most removed by exact_dedup 3 of 5 \(60\.0%\), mostly exact_duplicate", lines[start + 1])
    assert lines[start + 2].startswith("  kettles ") and "most removed by exact_dedup 2 of 10 (20.0%)" in lines[start + 2]
    assert [line for line in lines if line.startswith("WARNING")] == [
        "WARNING se: exact_dedup removed 3 of the 5 records that reached it (60.0%), mostly exact_duplicate"
    ]


def test_no_share_of_losses_by_reason_exceeds_all(built: tuple[Path, str]) -> None:
    output, _ = built
    report = json.loads((output / "report.json").read_text())
    read_stage = report["datasets"]["se"]["stages"][0]
    assert read_stage["skipped"] == {"answer": 10, "tag_wiki": 1} and read_stage["in"] == 5  # more rows skipped than records read
    page = (output / "report.html").read_text(encoding="utf-8")
    funnel = re.search(r"<section id='funnel'>(.*?)</section>", page, flags=re.S)
    assert funnel is not None
    assert "skipped</td><td>answer</td><td class='n'>10</td><td class='n'>62.50%</td><td>16 rows seen</td>" in funnel.group(1)
    assert "dropped</td><td>exact_duplicate</td><td class='n'>3</td><td class='n'>60.00%</td><td>5 records in</td>" in funnel.group(1)
    shares = [float(n) for n in re.findall(r"([0-9.]+)%", re.sub(r"<style>.*?</style>", "", page, flags=re.S))]
    assert shares and max(shares) <= 100


def entry(deduplicated: int, inconsistent: int) -> dict[str, Any]:
    """A funnel entry of 100 records read: exact dedup removes ``deduplicated``, then consistency ``inconsistent``."""
    def stage(name: str, n_in: int, dropped: dict[str, int]) -> dict[str, Any]:
        return {"stage": name, "in": n_in, "kept": n_in - sum(dropped.values()), "dropped": dropped, "rejected": {}, "skipped": {}, "info": {}}
    written = 100 - deduplicated - inconsistent
    stages = [stage("read", 100, {}), stage("exact_dedup", 100, {"exact_duplicate": deduplicated}),
              stage("consistency", 100 - deduplicated, {"inconsistent": inconsistent}), stage("write", written, {})]
    return {"stages": stages, "read": 100, "written": written, "dropped": 100 - written, "rejected": 0, "added": 0, "balanced": True}


def test_a_warning_exactly_when_a_stage_removes_more_than_half_of_what_reached_it() -> None:
    assert dataset_overview("a", entry(50, 25)).warnings == []  # each removes exactly half
    warned = dataset_overview("a", entry(40, 31))
    assert [(w.stage, w.removed, w.reached) for w in warned.warnings] == [("consistency", 31, 60)]
    assert warned.most is not None and warned.most.stage == "exact_dedup"  # removed most (40), yet not more than half
    assert [w.stage for w in dataset_overview("a", entry(51, 25)).warnings] == ["exact_dedup", "consistency"]
    assert dataset_overview("a", entry(0, 0)).most is None
    assert "WARNING a: consistency removed 31 of the 60 records that reached it (51.7%), mostly inconsistent" in format_overview({"a": entry(40, 31)})
    assert "WARNING" not in format_overview({"a": entry(50, 25)})


def test_the_overview_of_a_dataset_from_an_earlier_build_or_with_rows_added() -> None:
    earlier = {"read": 4, "written": 4, "dropped": 0, "rejected": 0, "balanced": True, "stages": [], "from_earlier_build": True}
    row = dataset_overview("old", earlier)
    assert (row.read, row.written, kept_text(row), row.most, row.warnings) == (4, 4, "100.0%", None, [])
    mined = {"read": 10, "written": 30, "dropped": 0, "rejected": 0, "added": 20, "balanced": True, "stages": []}
    assert kept_text(dataset_overview("m", mined)) == "100.0%"
    assert kept_text(dataset_overview("empty", {**earlier, "read": 0, "written": 0})) == "-"
