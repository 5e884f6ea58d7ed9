"""Docs that match the code: the recipe reference is regenerated from the dataclasses and compared."""
from __future__ import annotations

from pathlib import Path

from schemas.reference import reference

ROOT = Path(__file__).resolve().parents[1]


def test_recipe_reference_is_current() -> None:
    committed = (ROOT / "docs" / "recipe.md").read_text()
    assert committed == reference(), "docs/recipe.md is stale: run `python -m schemas.reference > docs/recipe.md`"


def test_readme_starts_with_the_two_commands() -> None:
    head = (ROOT / "README.md").read_text().splitlines()[:6]
    assert any(line.startswith("make demo") for line in head) and any(line.startswith("make test") for line in head)
