"""The mine pipeline: partitioned search gives the same negatives as the in-memory miner."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from embedding.models import get_teacher
from mining.negatives import mine_hard_negatives
from pipelines.cli import main
from schemas.record import new_record
from storage.builds import iter_records, verify_dataset
from storage.configs import load_recipe
from tests.helpers import FAST_RUNNER, write_dataset, write_recipe

TOPICS = {
    "espresso": ("How do I pull a better espresso shot {i}?", "Grind finer and tamp evenly; a 25 second shot of espresso number {i} tastes sweeter."),
    "tyres": ("What pressure should bike tyres have for ride {i}?", "Road tyres at 80 psi suit ride {i}; wider tyres want less pressure on rough roads."),
    "sourdough": ("Why is my sourdough loaf {i} dense?", "Loaf {i} needs a stronger starter and a longer bulk ferment before shaping the dough."),
    "headphones": ("Are these headphones {i} good for running?", "Headphones {i} stay in during runs, the sound is clear and the battery lasts all week."),
}


def built(tmp_path: Path, extra: tuple[dict, ...] = ()) -> list[dict]:
    records = []
    for topic, (query, document) in TOPICS.items():
        for i in range(12):
            records.append(new_record("qa", f"{topic}-{i}", query.format(i=i), document.format(i=i), file="f", row=i))
    # Two rows share a query: both documents are its positives and must never come back as negatives.
    records.append(new_record("qa", "espresso-dup", TOPICS["espresso"][0].format(i=3), "A second good answer about espresso shot 3.", file="f", row=99))
    records.extend(extra)
    write_dataset(tmp_path / "out" / "qa", "qa", records)
    return records


def mine_recipe(tmp_path: Path, **mining) -> str:
    return write_recipe(tmp_path, {
        "output": str(tmp_path / "out"),
        "sources": [{"dataset": "qa", "kind": "jsonl", "paths": ["unused.jsonl"], "fields": {"query": "q", "document": "d"}}],
        "mining": {"num_negatives": 3, "range_max": 20, "relative_margin": 0.05, "query_batch": 8, **mining},
    })


@pytest.mark.parametrize("partitions", [1, 3])
def test_partitioned_mining_equals_in_memory_mining(tmp_path: Path, partitions: int) -> None:
    records = built(tmp_path)
    recipe_path = mine_recipe(tmp_path, partitions=partitions)
    assert main(["mine", recipe_path, *FAST_RUNNER]) == 0
    folder = tmp_path / "out" / "qa_mined"
    assert verify_dataset(str(folder)).ok
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["objective"]["type"] == "triplet"
    mined = {r["id"].split("/", 1)[1]: r for r in iter_records(str(folder))}

    recipe = load_recipe(recipe_path)
    expected = mine_hard_negatives(records, None, get_teacher(recipe.mining.teacher), recipe.mining)
    expected_by_key = {r["id"].split("/", 1)[1]: r for r in expected.kept}
    assert set(mined) == set(expected_by_key)
    for key, record in mined.items():
        assert record["negatives"] == expected_by_key[key]["negatives"], key
        assert record["meta"]["negative_scores"] == pytest.approx(expected_by_key[key]["meta"]["negative_scores"], abs=1e-5)
        assert record["meta"]["positive_score"] == pytest.approx(expected_by_key[key]["meta"]["positive_score"], abs=1e-5)
    positives = {records[3]["document"], "A second good answer about espresso shot 3."}
    assert not positives & set(mined["espresso-3"]["negatives"]) and not positives & set(mined["espresso-dup"]["negatives"])

    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["datasets"]["qa_mined"]["balanced"] and report["mined"] == ["qa_mined"]


def test_a_punctuation_variant_of_a_positive_is_no_negative(tmp_path: Path) -> None:
    positive = TOPICS["espresso"][1].format(i=3)
    variant = "Grind finer, and tamp evenly: a 25-second shot of espresso number 3 tastes sweeter!"
    records = built(tmp_path, (new_record("qa", "variant", "Any tips for espresso shot 3?", variant, file="f", row=100),))
    recipe_path = mine_recipe(tmp_path, relative_margin=None)
    assert main(["mine", recipe_path, *FAST_RUNNER]) == 0
    mined = {r["id"].split("/", 1)[1]: r for r in iter_records(str(tmp_path / "out" / "qa_mined"))}
    for key in ("espresso-3", "espresso-dup", "variant"):
        assert not {positive, variant} & set(mined[key]["negatives"]), key

    recipe = load_recipe(recipe_path)
    expected = mine_hard_negatives(records, None, get_teacher(recipe.mining.teacher), recipe.mining)
    assert {r["id"].split("/", 1)[1]: r["negatives"] for r in expected.kept} == {key: r["negatives"] for key, r in mined.items()}


def test_too_few_negatives_are_dropped_and_counted(tmp_path: Path) -> None:
    built(tmp_path)
    assert main(["mine", mine_recipe(tmp_path, num_negatives=60, too_few="drop"), *FAST_RUNNER]) == 0
    entry = json.loads((tmp_path / "out" / "report.json").read_text())["datasets"]["qa_mined"]
    mine = next(s for s in entry["stages"] if s["stage"] == "mine")
    assert mine["dropped"] == {"too_few_negatives": 49} and entry["written"] == 0 and entry["balanced"]


def test_labeled_pairs_and_a_missing_build(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["mine", mine_recipe(tmp_path), *FAST_RUNNER]) == 2
    assert "run `pairmill build" in capsys.readouterr().err
    built(tmp_path)
    assert main(["mine", mine_recipe(tmp_path, format="labeled-pair"), *FAST_RUNNER]) == 0
    rows = list(iter_records(str(tmp_path / "out" / "qa_mined")))
    assert len(rows) == 49 * 4 and sum(r["meta"]["label"] for r in rows) == 49
    entry = json.loads((tmp_path / "out" / "report.json").read_text())["datasets"]["qa_mined"]
    assert entry["balanced"] and entry["added"] == 49 * 3
