"""Recipes and train configs read from any Beam filesystem (schemas/ validates the text; it does no IO)."""
from __future__ import annotations

from typing import Any

from schemas.config import ConfigError, parse_yaml
from schemas.recipe import Recipe, recipe_from_yaml
from storage.files import read_bytes


def read_config_text(path: str, what: str) -> str:
    """The text of a recipe or config file; a missing or unreadable one is a ConfigError naming it."""
    try:
        return read_bytes(path).decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: {what} file not found") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: {what} file is not UTF-8 text ({err})") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: {what} file is a folder") from None


def load_yaml(path: str, what: str) -> Any:
    """A YAML file's content; a missing file or bad YAML is a ConfigError naming the file (and line)."""
    return parse_yaml(read_config_text(path, what), path, what)


def load_recipe(path: str, output: str | None = None) -> Recipe:
    """Read and validate a YAML recipe; ``output`` (the ``--output`` flag) overrides its output folder."""
    return recipe_from_yaml(read_config_text(path, "recipe"), path, output)
