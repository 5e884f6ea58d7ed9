"""The demo's recipe covers every real-format kind, and recipes/all_kinds.yaml is that recipe."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from demo.recipe import DEMO_SOURCES, demo_recipe
from demo.truth import format_truth
from pipelines.sources import SOURCES

ROOT = Path(__file__).resolve().parents[1]


def test_all_kinds_recipe_is_the_demo_recipe() -> None:
    committed = yaml.safe_load((ROOT / "recipes" / "all_kinds.yaml").read_text())
    assert committed == demo_recipe(Path("out/demo/corpus"), Path("out/all_kinds"))


def test_demo_has_one_source_of_every_real_format_kind() -> None:
    kinds = {source["kind"] for source, _ in DEMO_SOURCES}
    assert kinds == set(SOURCES) - {"jsonl", "csv", "parquet", "shards"}


def test_truth_table_lists_each_fault() -> None:
    table = format_truth({"exact_duplicates": {"caught": 3, "planted": 4}, "clean": {"caught": 9, "planted": 10}})
    assert "planted exact duplicates removed" in table and "3 / 4" in table and "9 / 10" in table


@pytest.mark.slow
def test_a_small_demo_runs_end_to_end(tmp_path: Path, capsys) -> None:
    from pipelines.demo import run_demo

    assert run_demo(str(tmp_path / "demo"), seed=1, scale=0.25, train_steps=4) == 0
    out = capsys.readouterr().out
    for line in ("planted exact duplicates removed", "planted mismatched pairs dropped", "held-out nDCG@10", "report:"):
        assert line in out
    assert (tmp_path / "demo" / "built" / "report.html").exists()
    assert (tmp_path / "demo" / "built" / "se_question_answer_mined" / "manifest.json").exists()
    assert (tmp_path / "demo" / "run" / "model").is_dir()
