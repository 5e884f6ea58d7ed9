"""A local folder mirrored to a folder on any Beam filesystem: the trainer's run folder when its output is
``gs://...``.

Training writes checkpoints, the metrics log and plots to a local folder (torch and sentence-transformers
save to local paths, and a checkpoint is renamed into place atomically on a local disk); ``Mirror.push``
uploads what changed since the last push and removes remote files that are gone locally (pruned
checkpoints), so after every checkpoint the remote folder holds the run as far as that checkpoint.
Files whose name is in ``last`` (a checkpoint's ``checkpoint.json``, which lists the sha256 of every other
file of the checkpoint) are uploaded after the rest, so an interrupted push leaves a checkpoint that a
resume rejects, never one that looks whole. ``Mirror.pull`` makes the local folder a copy of the remote
one (for ``--resume`` on another machine).

The local folder is ``<cache>/runs/<hash of the remote path>`` (``storage.cache.cache_root``).
"""
from __future__ import annotations

import hashlib
import os
import shutil

from apache_beam.io.filesystems import FileSystems

from storage.cache import cache_root
from storage.files import copy_from_local, copy_to_local, files_under, join, reported


def local_run_folder(remote: str) -> str:
    """The local working copy of the remote run folder ``remote``."""
    return os.path.join(cache_root(), "runs", hashlib.sha256(remote.rstrip("/").encode()).hexdigest()[:16])


def _local_files(folder: str) -> dict[str, tuple[int, int]]:
    """Relative path -> (size, mtime in ns) of every file under a local folder."""
    found: dict[str, tuple[int, int]] = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            stat = os.stat(path)
            found[os.path.relpath(path, folder).replace(os.sep, "/")] = (stat.st_size, stat.st_mtime_ns)
    return found


class Mirror:
    """The local folder ``local`` kept in step with the remote folder ``remote``."""

    def __init__(self, local: str, remote: str, last: tuple[str, ...] = ()) -> None:
        self.local = local
        self.remote = remote.rstrip("/")
        self.last = last
        self.pushed: dict[str, tuple[int, int]] = {}

    def remote_files(self) -> dict[str, int]:
        """Relative path -> size of every file under the remote folder."""
        return files_under(self.remote)

    def pull(self) -> int:
        """Replace the local folder with a copy of the remote one; the number of files copied."""
        shutil.rmtree(self.local, ignore_errors=True)
        os.makedirs(self.local, exist_ok=True)
        remote = self.remote_files()
        for relative in remote:
            path = os.path.join(self.local, *relative.split("/"))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            copy_to_local(join(self.remote, relative), path)
        self.pushed = _local_files(self.local)
        return len(remote)

    def push(self) -> int:
        """Upload the files that changed since the last push, then delete remote files no longer local."""
        now = _local_files(self.local)
        changed = sorted((r for r, seen in now.items() if self.pushed.get(r) != seen), key=lambda r: (r.rsplit("/", 1)[-1] in self.last, r))
        for relative in changed:
            copy_from_local(os.path.join(self.local, *relative.split("/")), join(self.remote, relative))
        gone = [join(self.remote, r) for r in self.remote_files() if r not in now]
        if gone:
            with reported(self.remote):
                FileSystems.delete(gone)
        self.pushed = now
        return len(changed)
