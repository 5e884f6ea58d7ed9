"""What a source reader is, and the Beam read transform every file-by-file reader shares.

A ``Source`` turns the ``paths`` of one recipe entry into two PCollections: pair records and
rejected rows. Most kinds are a ``FileSource``: a plain generator ``parse(path, stream)`` that
yields records, ``RejectedRow``s and ``Skip``s for one file; this module opens the file through Beam
FileSystems (local, gs://, s3://), decompresses it by its extension, streams it, counts everything,
and turns a file that breaks off (truncated or corrupt archive, vanished file) into one rejected row
at the position where it broke. Kinds that must join files (Stack Exchange answers to questions,
Reddit comments to posts) override ``read`` and reuse ``parse_files``.
"""
from __future__ import annotations

import bz2
import gzip
import io
import lzma
import posixpath
import sys
import time
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple, cast

import apache_beam as beam
import zstandard

from pipelines.funnel import Funnel
from schemas.config import ConfigError
from schemas.recipe import SourceSpec
from schemas.record import PairRecord, RejectedRow, rejected
from storage.files import match, open_read, size

if TYPE_CHECKING:
    from typing_extensions import TypeIs  # in typing from Python 3.13

REJECTED = "rejected"

# Errors that mean the input stream itself broke off or is corrupt (not one bad row).
STREAM_ERRORS: tuple[type[BaseException], ...] = (
    EOFError,
    OSError,
    zlib.error,
    lzma.LZMAError,
    zstandard.ZstdError,
)


@dataclass(frozen=True)
class Skip:
    """An input row that is not meant to become a record (a tag-wiki post, a non-duplicate Quora row)."""

    reason: str


Parsed = PairRecord | RejectedRow | Skip


class SourceOutput(NamedTuple):
    records: beam.PCollection
    rejected: beam.PCollection


def is_rejected(item: object) -> TypeIs[RejectedRow]:
    return isinstance(item, dict) and "reason" in item and "raw" in item


class ZstdFrames(io.RawIOBase):
    """Decompresses consecutive zstd frames; input that ends inside a frame raises EOFError.

    zstandard's own stream reader ends quietly at a truncated frame, which would lose the rest of a
    file without a trace.
    """

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.frame = self._new_frame()
        self.in_frame = False
        self.pending = memoryview(b"")

    @staticmethod
    def _new_frame() -> Any:
        # Pushshift's dumps use a 2 GiB window, above zstd's default decoding limit.
        return zstandard.ZstdDecompressor(max_window_size=2**31).decompressobj()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not len(self.pending):
            data = self.raw.read(1 << 20)
            if not data:
                if self.in_frame:
                    raise EOFError("zstd data ends inside a frame (the file is truncated)")
                return 0
            self.pending = memoryview(self._decompress(data))
        count = min(len(buffer), len(self.pending))
        buffer[:count] = self.pending[:count]
        self.pending = self.pending[count:]
        return count

    def _decompress(self, data: bytes) -> bytes:
        out = []
        while data:
            out.append(self.frame.decompress(data))
            self.in_frame = True
            if not self.frame.eof:
                break
            data = self.frame.unused_data
            self.frame, self.in_frame = self._new_frame(), False
        return b"".join(out)


class ProgressReader(io.RawIOBase):
    """Passes a file's bytes through and, every few seconds, tells the terminal how far the file is read."""

    EVERY_SECONDS = 5.0

    def __init__(self, raw: BinaryIO, path: str, size: int) -> None:
        self.raw = raw
        self.name = posixpath.basename(path)
        self.size = max(size, 1)
        self.done = 0
        self.started = self.shown = time.monotonic()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self.raw.seekable()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self.raw.seek(offset, whence)

    def tell(self) -> int:
        return self.raw.tell()

    def close(self) -> None:
        self.raw.close()
        super().close()

    def readinto(self, buffer: Any) -> int:
        data = self.raw.read(len(buffer))
        buffer[: len(data)] = data
        self.done += len(data)
        now = time.monotonic()
        if now - self.shown >= self.EVERY_SECONDS:
            self.shown = now
            rate = self.done / max(now - self.started, 1e-9)
            left = (self.size - self.done) / max(rate, 1.0)
            print(f"reading {self.name}: {100 * self.done / self.size:.0f}% of {self.size / 1e6:,.0f} MB, "
                  f"{rate / 1e6:.1f} MB/s, about {left:.0f} s left", file=sys.stderr, flush=True)
        return len(data)


@contextmanager
def open_input(path: str) -> Iterator[BinaryIO]:
    """Open any Beam filesystem path as a decompressed binary stream, by extension (.gz .bz2 .zst .xz).

    In a terminal, reading a large file reports its progress; in logs (no TTY) it stays quiet.
    """
    raw = open_read(path)
    if sys.stderr.isatty():
        # A readable binary stream, but an io.RawIOBase, which typeshed does not count as a typing.BinaryIO.
        raw = cast(BinaryIO, ProgressReader(raw, path, size(path)))
    try:
        with decompressed(raw, path) as stream:
            yield stream
    finally:
        raw.close()


def decompressed(raw: BinaryIO, path: str) -> AbstractContextManager[Any]:
    """The decompressing stream over ``raw`` by the path's extension; leaving it closes the decompressor, not ``raw``."""
    lower = path.lower()
    if lower.endswith(".gz"):
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if lower.endswith(".bz2"):
        return bz2.BZ2File(raw, mode="rb")
    if lower.endswith(".zst") or lower.endswith(".zstd"):
        return io.BufferedReader(ZstdFrames(raw), buffer_size=1 << 20)
    if lower.endswith(".xz"):
        return lzma.LZMAFile(raw, mode="rb")
    return nullcontext(raw)


def match_paths(patterns: list[str], where: str) -> list[str]:
    """Expand files and globs through Beam FileSystems; a pattern that matches nothing is a user error."""
    paths: list[str] = []
    for pattern in patterns:
        try:
            files = match(pattern)
        except Exception as err:  # Beam raises BeamIOError with the filesystem's own message
            raise ConfigError(f"{where}: cannot list {pattern!r}: {err}") from None
        if not files:
            raise ConfigError(f"{where}: no file matches {pattern!r}")
        paths.extend(files)
    return sorted(set(paths))


class Source(ABC):
    """A reader kind (pipelines/sources/__init__.py says which). ``read`` builds the Beam graph that yields
    records and rejected rows."""

    def __init__(self, spec: SourceSpec, paths: list[str]) -> None:
        self.spec = spec
        self.dataset = spec.dataset
        self.options = spec.options
        self.paths = paths

    @abstractmethod
    def read(self, pipeline: beam.Pipeline) -> SourceOutput:
        ...


class FileSource(Source):
    """A kind whose files parse independently, one generator per file."""

    @abstractmethod
    def parse(self, path: str, stream: BinaryIO) -> Iterator[Parsed]:
        """Yield the records, rejected rows and skips of one decompressed file."""

    def read(self, pipeline: beam.Pipeline) -> SourceOutput:
        return parse_files(pipeline, self.dataset, self.parse, self.paths, "read")


class Part(NamedTuple):
    """An intermediate item of a joining reader (question, answer, link): passed on as (key, value), not counted."""

    key: Any
    value: Any


def parse_files(pipeline: beam.Pipeline, dataset: str, parse: Callable[[str, BinaryIO], Iterator[Any]], paths: list[str], label: str) -> SourceOutput:
    """Apply ``parse`` to every path in parallel (one file per element), counting the read stage.

    ``records`` holds the parsed records, or the (key, value) of ``Part`` items for a joining reader.
    """
    outputs = (
        pipeline
        | f"{dataset}: list {label}" >> beam.Create(paths)
        | f"{dataset}: spread {label}" >> beam.Reshuffle()
        | f"{dataset}: {label}" >> beam.ParDo(ParseFileFn(dataset, parse)).with_outputs(REJECTED, main="records")
    )
    return SourceOutput(records=outputs.records, rejected=outputs[REJECTED])


class ParseFileFn(beam.DoFn):
    """Streams one file through ``parse``; a stream that breaks off becomes one rejected row."""

    def __init__(self, dataset: str, parse: Callable[[str, BinaryIO], Iterator[Any]]) -> None:
        self.dataset = dataset
        self.parse = parse
        self.funnel = Funnel()

    def process(self, path: str) -> Iterator[Any]:
        last_position: Any = 0
        try:
            with open_input(path) as stream:
                for item in self.parse(path, stream):
                    if isinstance(item, Part):
                        last_position = item.value.get("row", last_position)
                        yield item.key, item.value
                    elif isinstance(item, Skip):
                        self.funnel.count(self.dataset, "read", f"skipped:{item.reason}")
                    elif is_rejected(item):
                        last_position = item["position"]
                        yield from self._rejected(item)
                    else:
                        last_position = item["meta"].get("row", last_position)
                        self.funnel.count(self.dataset, "read", "in")
                        self.funnel.count(self.dataset, "read", "kept")
                        yield item
        except FileNotFoundError as err:
            yield from self._rejected(rejected(self.dataset, path, f"before reading ({err})", "file_vanished"))
        except STREAM_ERRORS as err:
            position = f"after row {last_position} ({type(err).__name__}: {err})"
            yield from self._rejected(rejected(self.dataset, path, position, "truncated_or_corrupt_file"))

    def _rejected(self, row: RejectedRow) -> Iterator[Any]:
        self.funnel.count(self.dataset, "read", "in")
        self.funnel.count(self.dataset, "read", f"rejected:{row['reason']}")
        yield beam.pvalue.TaggedOutput(REJECTED, row)
