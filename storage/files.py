"""Paths and file IO on Beam ``FileSystems``: the same calls work on local paths, gs://, s3:// and any
other filesystem Beam has. Files are always read and written as they are (no decompression by extension).

An object store's failure (a missing object or bucket, no credentials, no permission) is one line naming
the path: a missing object is a ``FileNotFoundError``, everything else a ``StorageError`` (a
``ConfigError``: the command line prints it as a user error). Local paths raise what they always raised.
With ``STORAGE_EMULATOR_HOST`` set, ``gs://`` paths go to that endpoint without credentials
(``storage/emulator.py``).
"""
from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, BinaryIO, TextIO, TypeVar

from apache_beam.io.filesystems import FileSystems

from schemas.config import ConfigError
from storage import emulator

T = TypeVar("T")
RAW = "uncompressed"

emulator.configure()


class StorageError(ConfigError):
    """An object store refused a path (no credentials, no permission, no bucket); the message names the path."""


def is_local(path: str) -> bool:
    """True for a path on this machine's disk (no scheme, or ``file://``)."""
    return "://" not in path or path.startswith("file://")


def _causes(err: BaseException) -> Iterator[BaseException]:
    """``err`` and every exception inside it: its arguments, Beam's per-path ``exception_details``, its causes."""
    pending: list[BaseException] = [err]
    while pending:
        current = pending.pop()
        yield current
        pending += [a for a in getattr(current, "args", ()) if isinstance(a, BaseException)]
        pending += [a for a in (getattr(current, "exception_details", None) or {}).values() if isinstance(a, BaseException)]
        if current.__cause__ is not None:
            pending.append(current.__cause__)


def _status(err: BaseException) -> int | None:
    """The HTTP status behind an object store client's exception (also inside Beam's BeamIOError), if any."""
    for current in _causes(err):
        for name in ("code", "status_code"):
            value = getattr(current, name, None)
            if isinstance(value, int) and 100 <= value < 600:
                return value
        response = getattr(current, "response", None)
        value = getattr(response, "status_code", None)
        if isinstance(value, int):
            return value
        codes = [a for a in getattr(current, "args", ()) if isinstance(a, int) and 400 <= a < 600]
        if codes:
            return codes[0]
    return None


def _credentials_problem(err: BaseException) -> BaseException | None:
    """The google-auth exception inside ``err``, if any: no credentials, or ones that cannot be used (Beam's
    anonymous client, its fallback where it finds none, raises one when the store answers 401)."""
    return next((c for c in _causes(err) if type(c).__module__.startswith("google.auth")), None)


def _first_line(err: BaseException) -> str:
    """The first line of an exception's message, cut at 300 characters."""
    return (str(err).strip().splitlines() or [""])[0][:300]


DENIED = "gcloud auth application-default login, or a service account that may read and write it"


def storage_error(path: str, err: BaseException) -> OSError | StorageError:
    """``err`` from an object store as one line naming ``path``: FileNotFoundError where nothing is there."""
    status = _status(err)
    if status == 404:
        return FileNotFoundError(f"{path}: not found (no such object, or no such bucket)")
    if status in (401, 403):
        return StorageError(f"{path}: access denied (HTTP {status}): no credentials for this bucket, or no permission ({DENIED})")
    credentials = _credentials_problem(err)
    if credentials is not None:
        return StorageError(f"{path}: access denied: no usable Google credentials ({type(credentials).__name__}: {_first_line(credentials)}); {DENIED}")
    what = f"HTTP {status}" if status else type(err).__name__
    return StorageError(f"{path}: the object store failed ({what}: {_first_line(err)})")


@contextmanager
def reported(path: str) -> Iterator[None]:
    """Turn an object store's exception for ``path`` into one line naming it; local paths pass through unchanged."""
    try:
        yield
    except (FileNotFoundError, StorageError):
        raise
    except Exception as err:
        if is_local(path):
            raise
        raise storage_error(path, err) from None


def join(folder: str, *names: str) -> str:
    return FileSystems.join(folder, *names)


def split(path: str) -> tuple[str, str]:
    """(folder, name) of a path, the folder in the form it was given (Beam's local split makes it absolute)."""
    folder, _, name = path.rstrip("/").rpartition("/")
    return folder, name


def exists(path: str) -> bool:
    """True where ``path`` is a file (or a local folder); an object store's folder is a prefix, not a file."""
    with reported(path):
        return FileSystems.exists(path)


def match(pattern: str) -> list[str]:
    """The files a glob matches, sorted (``*`` stays within one folder, ``**`` crosses folders)."""
    with reported(pattern):
        (result,) = FileSystems.match([pattern])
    return sorted(m.path for m in result.metadata_list)


def sizes(pattern: str) -> dict[str, int]:
    """Path -> size in bytes of every file a glob matches."""
    with reported(pattern):
        (result,) = FileSystems.match([pattern])
    return {m.path: m.size_in_bytes for m in result.metadata_list}


def files_under(folder: str) -> dict[str, int]:
    """Relative path -> size of every file under ``folder``, at any depth; where the bucket is not there, the
    FileNotFoundError names ``folder``, not the glob that lists it."""
    base = folder.rstrip("/")
    try:
        found = sizes(join(base, "**"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{folder}: not found (no such object, or no such bucket)") from None
    prefix = base + "/"
    return {p[len(prefix):]: n for p, n in found.items() if p.startswith(prefix) and not p.endswith("/")}


def size(path: str) -> int:
    """A file's size in bytes."""
    with reported(path):
        found = FileSystems.match([path])[0].metadata_list
    if not found:
        raise FileNotFoundError(f"{path}: not found")
    return found[0].size_in_bytes


def checksum(path: str) -> str:
    """The filesystem's checksum of a file (an object store's hash, a local file's size and time): it
    changes when the file does."""
    with reported(path):
        return str(FileSystems.checksum(path))


def open_read(path: str) -> BinaryIO:
    """A binary stream of the file's bytes; a missing file raises FileNotFoundError naming it."""
    with reported(path):
        return FileSystems.open(path, compression_type=RAW)


def open_text(path: str) -> TextIO:
    """The file as UTF-8 text, read line by line like a local ``open(path)``."""
    return io.TextIOWrapper(open_read(path), encoding="utf-8")


def read_bytes(path: str) -> bytes:
    with open_read(path) as f:
        return f.read()


def read_text(path: str) -> str:
    return read_bytes(path).decode("utf-8")


def read_json(path: str) -> Any:
    return json.loads(read_bytes(path))


def write_atomically(path: str, write: Callable[[BinaryIO], T]) -> T:
    """Write through ``write(stream)`` to a temporary name, then rename onto ``path``: readers never see half a
    file, nor none where one was."""
    temporary = path + ".tmp"
    with reported(path):
        stream = FileSystems.create(temporary, mime_type="application/octet-stream", compression_type=RAW)
        try:
            result = write(stream)
            stream.close()
        except BaseException:
            _abandon(stream)
            raise
        # The rename replaces ``path`` (os.rename on POSIX, copy then delete on object stores): deleting it
        # first would leave no file at all to a kill in between.
        FileSystems.rename([temporary], [path])
    return result


def _abandon(stream: BinaryIO) -> None:
    """Give up a write that failed. An object store's writer that failed to close would try to upload again
    when it is garbage collected (retrying, for minutes where the store is unreachable), so it is terminated."""
    terminate = getattr(stream, "terminate", None)
    with suppress(Exception):
        if callable(terminate):
            terminate()
        else:
            stream.close()


def write_bytes(path: str, data: bytes) -> None:
    """``data`` as the file at ``path``, written atomically."""
    write_atomically(path, lambda stream: stream.write(data))


def write_text(path: str, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str, value: Any, indent: int | None = None, sort_keys: bool = False) -> None:
    """``value`` as JSON, written atomically."""
    write_text(path, json.dumps(value, indent=indent, sort_keys=sort_keys))


def delete(path: str) -> None:
    """Remove a file or a folder with everything in it, if it exists (an object store's folder is every
    object under ``path/``)."""
    with reported(path):
        if FileSystems.exists(path):
            FileSystems.delete([path])
        if not is_local(path):
            inside = match(join(path, "**"))
            if inside:
                FileSystems.delete(inside)


def rename(source: str, destination: str) -> None:
    with reported(source):
        FileSystems.rename([source], [destination])


def copy_to_local(source: str, destination: str) -> None:
    """Copy the file ``source`` (any filesystem) to the local path ``destination``, through a temporary name."""
    temporary = f"{destination}.{os.getpid()}.tmp"
    with open_read(source) as stream, open(temporary, "wb") as out:
        while chunk := stream.read(1 << 22):
            out.write(chunk)
    os.replace(temporary, destination)


def copy_from_local(source: str, destination: str) -> None:
    """Copy the local file ``source`` to ``destination`` on any filesystem, written atomically."""
    def write(stream: BinaryIO) -> None:
        with open(source, "rb") as f:
            while chunk := f.read(1 << 22):
                stream.write(chunk)

    write_atomically(destination, write)
