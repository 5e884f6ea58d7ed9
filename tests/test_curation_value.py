"""benchmarks/curation_value.py at a tiny size, so that it cannot rot: two variants built and trained, the table printed."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import curation_value  # noqa: E402

pytestmark = pytest.mark.skipif(not curation_value.BEIR.exists(), reason="needs ../shared/realdata (the BEIR msmarco_subset folder)")


def test_summary_marks_gains_beyond_both_spreads() -> None:
    results = {"untrained": {"s": 0.5}, "kept": {"raw": {"a": 10}, "x": {"a": 6}, "y": {"a": 8}},
               "students": {"s": {"raw": [0.50, 0.51], "x": [0.53, 0.54], "y": [0.51, 0.53]}}}
    rows = {line.split(" | ")[0].lstrip("| "): line for line in curation_value.summary_table(results).splitlines() if line.startswith("| ")}
    assert rows["x"].endswith("| +0.0300 | yes |") and "| 6 |" in rows["x"]
    assert rows["y"].endswith("| +0.0150 | no |")  # within y's own spread (0.02), though beyond raw's (0.01)
    assert rows["raw"].endswith("|  |  |")


@pytest.mark.slow
def test_tiny_run_builds_trains_and_scores(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = curation_value.main(["--work", str(tmp_path), "--scale", "0.05", "--students", "default", "--variants", "raw", "dedup",
                                   "--seeds", "0", "1"])
    raw, dedup = results["kept"]["raw"], results["kept"]["dedup"]
    assert set(raw) == set(dedup) and sum(dedup.values()) < sum(raw.values())  # Amazon's repeated reviews go
    scores = results["students"]["default"]
    assert len(scores["raw"]) == len(scores["dedup"]) == 2 and all(0 < s <= 1 for s in scores["raw"] + scores["dedup"])
    assert 0 < results["untrained"]["default"] <= 1
    printed = capsys.readouterr().out
    assert "| dedup |" in printed and (tmp_path / "results.json").exists()
