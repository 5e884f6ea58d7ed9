"""Recipe validation: every mistake is one line naming the file, the key and the value."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from schemas.config import ConfigError
from schemas.recipe import recipe_as_dict
from schemas.record import RecordError, new_record, records_to_table, validate_record
from storage.configs import load_recipe

SOURCE = {"dataset": "qa", "kind": "jsonl", "paths": ["data/*.jsonl"], "fields": {"query": "q", "document": "d"}}


def load(tmp_path: Path, text: str):
    path = tmp_path / "r.yaml"
    path.write_text(text)
    return load_recipe(str(path))


def error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    message = str(info.value)
    assert "\n" not in message and str(tmp_path / "r.yaml") in message
    return message


def test_defaults_and_off_blocks(tmp_path: Path) -> None:
    recipe = load(tmp_path, "output: out\nsources:\n  - {dataset: qa, kind: jsonl, paths: a.jsonl, fields: {query: q, document: d}}\n"
                  "filters:\n  clean: {}\n  language: null\n  dedup: {near: {}}\n")
    assert recipe.sources[0].paths == ["a.jsonl"]
    assert recipe.filters.clean.min_query_chars == 2 and recipe.filters.language is None
    assert recipe.filters.dedup.exact == "pair" and recipe.filters.dedup.near.threshold == 0.8
    assert recipe.filters.consistency is None and recipe.mining is None
    assert recipe.shards.records_per_shard == 100_000
    assert recipe_as_dict(recipe)["sources"][0]["options"]["fields"]["query"] == "q"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("output: out\nsources: []\n", "sources: expected a list of at least one source"),
        ("outptu: out\n", "unknown key 'outptu'"),
        ("output: out\nsources:\n  - {dataset: qa, kind: xml, paths: [a]}\n", "sources[0].kind: unknown kind 'xml'"),
        ("output: out\nsources:\n  - {dataset: qa, kind: jsonl, paths: [a], fields: {query: q}}\n", "sources[0].fields: missing required key 'document'"),
        ("output: out\nsources:\n  - {dataset: qa, kind: jsonl, paths: [a], field: {query: q, document: d}}\n", "sources[0]: unknown key 'field'"),
        ("output: out\nsources:\n  - {dataset: 'a b', kind: jsonl, paths: [a], fields: {query: q, document: d}}\n", "sources[0].dataset: must be"),
        ("output: out\nsources:\n  - {dataset: qa, kind: jsonl, paths: [a], fields: {query: q, document: d}}\nfilters:\n  clean: {min_query_chars: many}\n",
         "filters.clean.min_query_chars: expected integer, got 'many'"),
        ("output: out\nsources:\n  - {dataset: qa, kind: jsonl, paths: [a], fields: {query: q, document: d}}\nfilters:\n  language: {threshold: 1.5}\n",
         "filters.language.threshold: must be between 0 and 1, got 1.5"),
        ("output: out\nsources:\n  - {dataset: qa, kind: jsonl, paths: [a], fields: {query: q, document: d}}\nshards: {zstd_level: 30}\n",
         "shards.zstd_level: must be between 1 and 22, got 30"),
        ("output: out\nsources:\n  - {dataset: qa, kind: jsonl, paths: [a], fields: {query: q, document: d}}\n"
         "  - {dataset: qa, kind: jsonl, paths: [b], fields: {query: q, document: d}}\n",
         "sources[1].dataset: 'qa' is used by an earlier source"),
        ("output: out\nsources: [\n", "not valid YAML"),
    ],
)
def test_mistakes_name_key_and_value(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in error(tmp_path, text)


def test_missing_recipe_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="recipe file not found"):
        load_recipe(str(tmp_path / "nope.yaml"))


def test_record_validation_names_the_field() -> None:
    record = new_record("qa", "1", "q", "d", file="f", row=1)
    assert validate_record(record) is record
    with pytest.raises(RecordError, match="'query'"):
        validate_record({**record, "query": 3})
    with pytest.raises(RecordError, match=re.escape("'meta.lang_score'")):
        validate_record({**record, "meta": {"lang_score": "high"}})
    with pytest.raises(RecordError, match="missing field 'negatives'"):
        validate_record({k: v for k, v in record.items() if k != "negatives"})
    with pytest.raises(RecordError, match="'negatives\\[1\\]'"):
        validate_record({**record, "negatives": ["a", None]})
    with pytest.raises(RecordError, match="must start with the dataset name"):
        validate_record({**record, "id": "other/1"})
    table = records_to_table([record])
    assert table.column("meta").to_pylist()[0]["row"] == 1


PER_SOURCE = """output: out
sources:
  - {dataset: qa, kind: jsonl, paths: [a], fields: {query: q, document: d}}
  - dataset: reviews
    kind: jsonl
    paths: [b]
    fields: {query: q, document: d}
    filters:
      language: null
      consistency: {k: 20, teacher: {batch_size: 8}}
      dedup: {near: {threshold: 0.9}}
filters:
  clean: {}
  language: {fields: both}
  dedup: {exact: document, near: {}}
  consistency: {teacher: {model: minilm}, margin: 0.05}
"""


def test_a_source_overrides_the_recipe_filters_key_by_key(tmp_path: Path) -> None:
    recipe = load(tmp_path, PER_SOURCE)
    qa, reviews = recipe.sources
    assert qa.filters == recipe.filters
    assert reviews.filters.clean == recipe.filters.clean and reviews.filters.language is None
    assert reviews.filters.dedup.exact == "document" and reviews.filters.dedup.near.threshold == 0.9
    consistency = reviews.filters.consistency
    assert (consistency.k, consistency.margin, consistency.teacher.model, consistency.teacher.batch_size) == (20, 0.05, "minilm", 8)
    resolved = recipe_as_dict(recipe)["sources"]
    assert "filters" not in resolved[0] and resolved[1]["filters"]["consistency"]["k"] == 20
    assert recipe.dataset_fingerprint("qa") != load(tmp_path, PER_SOURCE.replace("k: 20", "k: 21")).dataset_fingerprint("reviews")


def test_a_source_can_turn_on_a_filter_the_recipe_leaves_off(tmp_path: Path) -> None:
    source = "{dataset: qa, kind: jsonl, paths: [a], fields: {query: q, document: d}, filters: {clean: {min_query_chars: 5}}}"
    recipe = load(tmp_path, f"output: out\nsources:\n  - {source}\n")
    assert recipe.filters.clean is None and recipe.sources[0].filters.clean.min_query_chars == 5


@pytest.mark.parametrize(
    "overrides, expected",
    [
        ("{clean: {min_query_chars: many}}", "sources[0].filters.clean.min_query_chars: expected integer, got 'many'"),
        ("{cleaning: {}}", "sources[0].filters: unknown key 'cleaning'"),
        ("[clean]", "sources[0].filters: expected a mapping of filter blocks to override"),
        ("{consistency: {margin: -1}}", "sources[0].filters.consistency.margin: must be 0 or more"),
    ],
)
def test_per_source_filter_errors_name_the_source(tmp_path: Path, overrides: str, expected: str) -> None:
    text = f"output: out\nsources:\n  - {{dataset: qa, kind: jsonl, paths: [a], fields: {{query: q, document: d}}, filters: {overrides}}}\n"
    assert expected in error(tmp_path, text)
