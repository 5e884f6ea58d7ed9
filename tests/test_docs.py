"""Docs that match the code: the recipe reference is regenerated from the dataclasses, and the README's
examples are checked against the command line and the recipe validator."""
from __future__ import annotations

import re
from pathlib import Path

import yaml

from pipelines.cli import make_parser
from pipelines.options import pipeline_options
from schemas.recipe import parse_recipe
from schemas.reference import reference

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_recipe_reference_is_current() -> None:
    committed = (ROOT / "docs" / "recipe.md").read_text()
    assert committed == reference(), "docs/recipe.md is stale: run `python -m schemas.reference > docs/recipe.md`"


def test_readme_starts_with_the_two_commands() -> None:
    head = README.splitlines()[:6]
    assert any(line.startswith("make demo") for line in head) and any(line.startswith("make test") for line in head)


def test_readme_recipe_examples_are_valid_recipes() -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", README, flags=re.S)
    assert blocks
    for block in blocks:
        parse_recipe(yaml.safe_load(block), "README.md")


def commands_in(text: str) -> list[str]:
    """Every ``pairmill ...`` command in a page's plain and ``sh`` code blocks, a command continued with ``\\`` on one line."""
    blocks: list[str] = []
    block: list[str] | None = None
    language = ""
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            if block is None:
                block, language = [], line.lstrip()[3:].strip()
            else:
                if language in ("", "sh"):
                    blocks.append("\n".join(block))
                block = None
        elif block is not None:
            block.append(line)
    joined = re.sub(r"\\\n\s*", " ", "\n".join(blocks))
    return [line.strip() for line in joined.splitlines() if line.strip().startswith("pairmill ")]


def test_readme_and_scale_commands_and_options_exist() -> None:
    parser = make_parser()
    commands = parser._subparsers._group_actions[0].choices  # argparse keeps subcommands here
    lines = commands_in(README) + commands_in((ROOT / "docs" / "scale.md").read_text())
    assert any("--runner=DataflowRunner" in line and "--setup_file=./setup.py" in line for line in lines)
    for line in lines:
        words = line.split()
        command = commands[words[1]]
        known = {option for action in command._actions for option in action.option_strings}
        for word in words[2:]:
            option = word.strip("[]").split("=")[0]
            if option.startswith("--") and option not in known:
                assert words[1] in ("build", "mine"), f"README: `{line.strip()}` names {option}, which `pairmill {words[1]}` does not have"
                pipeline_options([word])  # passed through to Beam: must be a Beam option
