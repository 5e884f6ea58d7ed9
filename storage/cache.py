"""Models on any Beam filesystem, used from this machine's disk: ``local_copy(path)`` copies a remote file or
folder (a teacher or student model folder, a fastText model file) once into a local cache and returns the
local path; a local path comes back unchanged.

A copy is keyed by the remote path and the checksum of every file in it, so a model replaced under the same
path is copied again, and an unchanged one is copied once per machine: every process (each Beam worker
process, each rank) finds the finished copy on disk, and within a process a path is looked up once. A copy
is made in a temporary folder and renamed into place, so a process never uses half a model, and when two
processes copy the same model at once the first rename wins.

The cache is ``$PAIRMILL_CACHE``, else ``$XDG_CACHE_HOME/pairmill``, else ``~/.cache/pairmill``; its models
are under ``models/``. A missing object, a missing bucket or missing credentials is one line naming the path.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading

from storage.files import StorageError, checksum, copy_to_local, exists, files_under, is_local, join, split

CACHE_VARIABLE = "PAIRMILL_CACHE"

_COPIES: dict[str, str] = {}
_LOCK = threading.Lock()


def cache_root() -> str:
    """The local folder that holds pairmill's copies of remote files."""
    explicit = os.environ.get(CACHE_VARIABLE)
    if explicit:
        return explicit
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "pairmill")


def _remote_files(path: str) -> dict[str, str]:
    """Relative name -> remote path of the file at ``path``, or of every file under the folder ``path``; a
    missing object, folder or bucket is a one-line StorageError naming ``path``."""
    try:
        if exists(path):
            return {"": path}
        files = {relative: join(path.rstrip("/"), relative) for relative in sorted(files_under(path))}
    except FileNotFoundError:
        files = {}
    if not files:
        raise StorageError(f"{path}: not found (no such file or folder, or no such bucket)")
    return files


def check_remote(path: str, where: str) -> None:
    """The launcher's check of a model path before a pipeline starts: a remote file or folder with nothing
    there (or that cannot be listed) is a one-line StorageError naming ``where`` and ``path``; local paths
    are left to the loader."""
    if is_local(path):
        return
    try:
        _remote_files(path)
    except StorageError as err:
        raise StorageError(f"{where}: {err}") from None


def local_copy(path: str) -> str:
    """A local path holding the file or folder at ``path``: ``path`` itself where it is local, else a cached copy."""
    if is_local(path):
        return path[len("file://"):] if path.startswith("file://") else path
    with _LOCK:
        copied = _COPIES.get(path)
        if copied is not None and os.path.exists(copied):
            return copied
        files = _remote_files(path)
        try:
            fingerprint = json.dumps([path, [(name, checksum(remote)) for name, remote in sorted(files.items())]])
        except FileNotFoundError as err:  # removed since it was listed
            raise StorageError(str(err)) from None
        key = hashlib.sha256(path.encode()).hexdigest()[:12] + "-" + hashlib.sha256(fingerprint.encode()).hexdigest()[:16]
        models = os.path.join(cache_root(), "models")
        entry = os.path.join(models, key)
        name = split(path)[1] or "model"
        target = os.path.join(entry, name)
        if not os.path.exists(target):
            _copy_into(models, entry, name, files)
        _COPIES[path] = target
        return target


def _copy_into(models: str, entry: str, name: str, files: dict[str, str]) -> None:
    os.makedirs(models, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".copy-", dir=models)
    try:
        for relative, remote in files.items():
            local = os.path.join(staging, name, relative) if relative else os.path.join(staging, name)
            os.makedirs(os.path.dirname(local), exist_ok=True)
            try:
                copy_to_local(remote, local)
            except FileNotFoundError as err:
                raise StorageError(str(err)) from None
        try:
            os.rename(staging, entry)
        except OSError:
            if not os.path.exists(os.path.join(entry, name)):  # not another process's finished copy
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
