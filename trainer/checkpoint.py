"""Checkpoints: written atomically, verified on load, the newest sound one wins.

A checkpoint is ``RUN/checkpoints/step-NNNNNNNN/`` holding ``model/`` (sentence-transformers format),
``state.pt`` (step, optimizer, scheduler, temperature, RNG states, data position) and, written last,
``checkpoint.json`` with the sha256 of every file. It is built in a temporary folder and renamed into
place, so a kill leaves either the whole checkpoint or none; a checkpoint whose files do not match their
hashes (a damaged disk, a hand edit) is skipped with a warning in favour of the previous one.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

log = logging.getLogger("pairmill.trainer")

CHECKPOINTS = "checkpoints"
MODEL = "model"
STATE = "state.pt"
MARKER = "checkpoint.json"
PREFIX = "step-"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used; the message says what is wrong."""


@dataclass
class Checkpoint:
    path: str
    step: int
    state: dict[str, Any]

    @property
    def model_path(self) -> str:
        return os.path.join(self.path, MODEL)


def _file_digest(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
        os.fsync(f.fileno())
    return digest.hexdigest()


def _files(folder: str) -> list[str]:
    return sorted(
        os.path.relpath(os.path.join(root, name), folder)
        for root, _, names in os.walk(folder)
        for name in names
        if os.path.relpath(os.path.join(root, name), folder) != MARKER
    )


def _step_folders(run_dir: str) -> list[tuple[int, str]]:
    """(step, path) of every finished checkpoint folder, oldest first."""
    folder = os.path.join(run_dir, CHECKPOINTS)
    if not os.path.isdir(folder):
        return []
    found = []
    for name in os.listdir(folder):
        if name.startswith(PREFIX) and name[len(PREFIX):].isdigit():
            found.append((int(name[len(PREFIX):]), os.path.join(folder, name)))
    return sorted(found)


def has_checkpoints(run_dir: str) -> bool:
    return bool(_step_folders(run_dir))


def write_checkpoint(run_dir: str, step: int, save_model: Callable[[str], None], state: dict[str, Any], keep: int) -> str:
    """Write the checkpoint of ``step`` atomically, then delete all but the ``keep`` newest."""
    folder = os.path.join(run_dir, CHECKPOINTS)
    final = os.path.join(folder, f"{PREFIX}{step:08d}")
    temporary = os.path.join(folder, f".tmp-{PREFIX}{step:08d}")
    shutil.rmtree(temporary, ignore_errors=True)
    os.makedirs(temporary)
    save_model(os.path.join(temporary, MODEL))
    torch.save(state, os.path.join(temporary, STATE))
    files = {name: _file_digest(os.path.join(temporary, name)) for name in _files(temporary)}
    with open(os.path.join(temporary, MARKER), "w", encoding="utf-8") as f:
        json.dump({"step": step, "files": files}, f, indent=2, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    if os.path.exists(final):  # the same step written again after a resume
        shutil.rmtree(final)
    os.rename(temporary, final)
    for _, old in _step_folders(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _open_checkpoint(path: str) -> Checkpoint:
    marker = os.path.join(path, MARKER)
    try:
        with open(marker, encoding="utf-8") as f:
            listed = json.load(f)
        step, files = int(listed["step"]), dict(listed["files"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise CheckpointError(f"{marker} is missing or unreadable ({err})") from None
    for name, expected in sorted(files.items()):
        file_path = os.path.join(path, name)
        if not os.path.isfile(file_path):
            raise CheckpointError(f"{file_path} is missing")
        if _file_digest(file_path) != expected:
            raise CheckpointError(f"{file_path} does not match its sha256 in {MARKER}")
    if STATE not in files:
        raise CheckpointError(f"{marker} lists no {STATE}")
    try:
        state = torch.load(os.path.join(path, STATE), map_location="cpu", weights_only=False)
    except Exception as err:
        raise CheckpointError(f"{os.path.join(path, STATE)} cannot be read ({err})") from None
    return Checkpoint(path=path, step=step, state=state)


def load_latest_checkpoint(run_dir: str) -> Checkpoint | None:
    """The newest checkpoint whose files match their hashes; damaged newer ones are skipped with a warning."""
    for _, path in reversed(_step_folders(run_dir)):
        try:
            return _open_checkpoint(path)
        except CheckpointError as err:
            log.warning("checkpoint %s is damaged (%s); falling back to the previous checkpoint", path, err)
    return None
