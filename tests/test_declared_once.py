"""Stage order and reader kinds are declared once (schemas/stages.py, schemas/sources.py); the rest derives from them."""
from __future__ import annotations

from pipelines.build import STAGE_MAKERS, curation_stages
from pipelines.funnel import build_funnel
from pipelines.sources import READERS, SOURCES
from schemas.recipe import parse_recipe
from schemas.sources import SOURCE_OPTIONS
from schemas.stages import CURATION_STAGES, STAGE_ORDER


def test_every_curation_stage_has_one_maker_and_runs_in_the_declared_order() -> None:
    assert list(STAGE_MAKERS) == list(CURATION_STAGES)
    recipe = parse_recipe(
        {"output": "out", "sources": [{"dataset": "d", "kind": "jsonl", "paths": ["x"], "fields": {"query": "q", "document": "d"}}],
         "filters": {"clean": {}, "dedup": {"exact": "pair", "near": {}}}},
        "recipe.yaml",
    )
    names = [name for name, _ in curation_stages("d", recipe.filters, recipe.output)]
    assert names == [stage for stage in STAGE_ORDER if stage in names]


def test_the_funnel_lists_stages_in_the_declared_order() -> None:
    counters = {f"d|{stage}|in": 1 for stage in reversed(STAGE_ORDER)}
    assert [s["stage"] for s in build_funnel(counters, ["d"])["d"]["stages"]] == list(STAGE_ORDER)


def test_every_reader_kind_has_its_reader() -> None:
    assert list(SOURCES) == list(SOURCE_OPTIONS)
    assert all(SOURCES[kind] is READERS[options] for kind, options in SOURCE_OPTIONS.items())
