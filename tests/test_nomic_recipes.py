"""The Nomic recipes: they validate, hold Nomic's 29 + 10 sets with its prefixes and counts, and dry-run without data."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from apache_beam.io.filesystems import FileSystems

from pipelines.cli import main
from schemas.recipe import Recipe
from schemas.record import new_record
from storage.configs import load_recipe
from tests.helpers import FAST_RUNNER, dataset_records, write_dataset, write_recipe

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
UNSUPERVISED = str(RECIPES / "nomic_unsupervised.yaml")
FINETUNE = str(RECIPES / "nomic_finetune.yaml")

# The set names of contrastors' configs/data/contrastive_pretrain.yaml, in its order.
NOMIC_UNSUPERVISED_SETS = [
    "reddit_title_body", "amazon_reviews", "paq", "s2orc_citation_titles", "s2orc_title_abstract",
    "s2orc_abstract_citation", "s2orc_abstract_body", "wikianswers", "wikipedia", "gooaq", "codesearch",
    "yahoo_title_answer", "agnews", "amazonqa", "yahoo_qa", "yahoo_title_question", "ccnews", "npr", "eli5",
    "cnn", "stackexchange_duplicate_questions", "stackexchange_title_body", "stackexchange_body_body",
    "sentence_compression", "wikihow", "altlex", "quora", "simplewiki", "squad",
]
NOMIC_PREFIXES = {"search_query: ", "search_document: ", "classification: ", "clustering: "}


def expected_total(recipe: Recipe) -> int:
    return sum(spec.expected_records for spec in recipe.sources)


@pytest.mark.parametrize("path", [UNSUPERVISED, FINETUNE])
def test_every_source_is_complete(path: str) -> None:
    recipe = load_recipe(path)
    assert len({spec.dataset for spec in recipe.sources}) == len(recipe.sources)
    for spec in recipe.sources:
        assert spec.expected_records and spec.expected_records > 0, spec.dataset
        assert spec.url and spec.url.startswith(("http://", "https://")), spec.dataset
        assert spec.prefixes is not None and {spec.prefixes.query, spec.prefixes.document} <= NOMIC_PREFIXES, spec.dataset
        assert all(p.startswith("gs://YOUR_BUCKET/raw/") for p in spec.paths), spec.dataset


def test_unsupervised_recipe_is_nomics_29_sets() -> None:
    recipe = load_recipe(UNSUPERVISED)
    assert recipe.datasets == NOMIC_UNSUPERVISED_SETS
    # The split sizes of nomic-ai/nomic-embed-unsupervised-data sum to 238,998,494; the report rounds to 235M.
    assert expected_total(recipe) == 238_998_494
    assert abs(expected_total(recipe) - 235_000_000) / 235_000_000 < 0.02


@pytest.mark.parametrize("path", [UNSUPERVISED, FINETUNE])
def test_the_commented_decontaminate_block_is_a_valid_one(path: str, tmp_path: Path) -> None:
    text = Path(path).read_text(encoding="utf-8")
    block = re.search(r"^  # decontaminate:\n(?:  #   .*\n)+", text, flags=re.M)
    assert block, "the recipe holds a commented decontaminate block"
    uncommented = text.replace(block.group(), block.group().replace("  # ", "  "))
    (tmp_path / "recipe.yaml").write_text(uncommented, encoding="utf-8")
    config = load_recipe(str(tmp_path / "recipe.yaml")).filters.decontaminate
    assert config is not None and all(source.path.startswith("gs://YOUR_BUCKET/beir/") for source in config.against)
    assert set(config.queries_only) <= set(config.names) and "quora" in config.names


def test_unsupervised_filters_are_nomics() -> None:
    filters = load_recipe(UNSUPERVISED).filters
    assert filters.clean is not None
    assert filters.language is not None and filters.language.languages == ["en"]
    assert filters.dedup is not None and filters.dedup.exact == "pair" and filters.dedup.near is not None
    consistency = filters.consistency
    assert consistency is not None
    assert (consistency.teacher.model, consistency.k, consistency.chunk_size) == ("thenlper/gte-base", 2, 1_000_000)


def test_finetune_recipe_mines_seven_gte_base_negatives() -> None:
    recipe = load_recipe(FINETUNE)
    assert len(recipe.sources) == 10
    assert expected_total(recipe) == 1_695_819
    mining = recipe.mining
    assert mining is not None
    assert (mining.teacher.model, mining.num_negatives, mining.range_min, mining.range_max) == ("thenlper/gte-base", 7, 0, 20)
    assert mining.relative_margin is None and mining.absolute_margin is None and mining.too_few == "pad"


@pytest.mark.parametrize("path", [UNSUPERVISED, FINETUNE])
def test_dry_run_prints_the_plan_without_touching_data(path: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    def no_data_access(*args, **kwargs):
        raise AssertionError(f"dry run touched the filesystem: {args}")

    read_file = FileSystems.open

    def only_the_recipe(name, *args, **kwargs):  # the recipe itself is read through storage/ like any file
        if name != path:
            raise AssertionError(f"dry run touched the filesystem: {name}")
        return read_file(name, *args, **kwargs)

    monkeypatch.setattr(FileSystems, "match", no_data_access)
    monkeypatch.setattr(FileSystems, "open", only_the_recipe)
    monkeypatch.setattr(FileSystems, "create", no_data_access)
    recipe = load_recipe(path)

    assert main(["build", path, "--dry-run"]) == 0

    out = capsys.readouterr().out
    assert f"{len(recipe.sources)} sources, {expected_total(recipe):,} expected records" in out
    for spec in recipe.sources:
        assert f"{spec.expected_records:,}" in out and spec.dataset in out


def test_stage_two_recipe_reads_a_builds_shards(tmp_path: Path) -> None:
    """docs/scale.md's GPU stage: a shards source over stage 1's manifest gets every pair back, ids and meta kept."""
    stage1 = [new_record("qa", str(i), f"question number {i}", f"answer text {i}", file="raw.jsonl", row=i, lang="en") for i in range(5)]
    write_dataset(tmp_path / "stage1" / "qa", "qa", stage1)
    recipe = write_recipe(tmp_path, {
        "output": str(tmp_path / "stage2"),
        "sources": [{"dataset": "qa", "kind": "shards", "paths": [str(tmp_path / "stage1" / "qa" / "manifest.json")]}],
    })

    assert main(["build", recipe, *FAST_RUNNER]) == 0

    stage2 = {r["id"]: r for r in dataset_records(str(tmp_path / "stage2" / "qa"))}
    assert stage2 == {r["id"]: r for r in stage1}
