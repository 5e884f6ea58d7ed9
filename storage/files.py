"""Paths and file IO on Beam ``FileSystems``: the same calls work on local paths, gs://, s3:// and any
other filesystem Beam has. Files are always read and written as they are (no decompression by extension).
"""
from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any, BinaryIO, TextIO, TypeVar

from apache_beam.io.filesystems import FileSystems

T = TypeVar("T")
RAW = "uncompressed"


def join(folder: str, *names: str) -> str:
    return FileSystems.join(folder, *names)


def split(path: str) -> tuple[str, str]:
    """(folder, name) of a path, the folder in the form it was given (Beam's local split makes it absolute)."""
    folder, _, name = path.rstrip("/").rpartition("/")
    return folder, name


def exists(path: str) -> bool:
    return FileSystems.exists(path)


def match(pattern: str) -> list[str]:
    """The files a glob matches, sorted (``*`` stays within one folder, ``**`` crosses folders)."""
    (result,) = FileSystems.match([pattern])
    return sorted(m.path for m in result.metadata_list)


def size(path: str) -> int:
    """A file's size in bytes."""
    return FileSystems.match([path])[0].metadata_list[0].size_in_bytes


def open_read(path: str) -> BinaryIO:
    """A binary stream of the file's bytes; a missing local file raises FileNotFoundError."""
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
    """Write through ``write(stream)`` to a temporary name, then rename onto ``path``: readers never see half a file."""
    temporary = path + ".tmp"
    stream = FileSystems.create(temporary, mime_type="application/octet-stream", compression_type=RAW)
    try:
        result = write(stream)
    finally:
        stream.close()
    if FileSystems.exists(path):
        FileSystems.delete([path])
    FileSystems.rename([temporary], [path])
    return result


def write_bytes(path: str, data: bytes) -> None:
    """``data`` as the file at ``path``, written atomically."""
    write_atomically(path, lambda stream: stream.write(data))


def write_text(path: str, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str, value: Any, indent: int | None = None, sort_keys: bool = False) -> None:
    """``value`` as JSON, written atomically."""
    write_text(path, json.dumps(value, indent=indent, sort_keys=sort_keys))


def delete(path: str) -> None:
    """Remove a file or a folder with everything in it, if it exists."""
    if FileSystems.exists(path):
        FileSystems.delete([path])


def rename(source: str, destination: str) -> None:
    FileSystems.rename([source], [destination])
