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
import zlib
from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO, ClassVar, Iterator, NamedTuple

import apache_beam as beam
import zstandard
from apache_beam.io.filesystems import FileSystems

from pipelines.funnel import Funnel
from schemas.config import ConfigError
from schemas.record import PairRecord, RejectedRow, rejected
from schemas.recipe import SourceSpec

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


def is_rejected(item: Any) -> bool:
    return isinstance(item, dict) and "reason" in item and "raw" in item


@contextmanager
def open_input(path: str) -> Iterator[BinaryIO]:
    """Open any Beam filesystem path as a decompressed binary stream, by extension (.gz .bz2 .zst .xz)."""
    raw = FileSystems.open(path, compression_type="uncompressed")
    try:
        lower = path.lower()
        if lower.endswith(".gz"):
            stream: Any = gzip.GzipFile(fileobj=raw, mode="rb")
        elif lower.endswith(".bz2"):
            stream = bz2.BZ2File(raw, mode="rb")
        elif lower.endswith(".zst") or lower.endswith(".zstd"):
            stream = io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True))
        elif lower.endswith(".xz"):
            stream = lzma.LZMAFile(raw, mode="rb")
        else:
            stream = raw
        yield stream
    finally:
        raw.close()


def match_paths(patterns: list[str], where: str) -> list[str]:
    """Expand files and globs through Beam FileSystems; a pattern that matches nothing is a user error."""
    paths: list[str] = []
    for pattern in patterns:
        try:
            (result,) = FileSystems.match([pattern])
        except Exception as err:  # Beam raises BeamIOError with the filesystem's own message
            raise ConfigError(f"{where}: cannot list {pattern!r}: {err}") from None
        files = sorted(m.path for m in result.metadata_list)
        if not files:
            raise ConfigError(f"{where}: no file matches {pattern!r}")
        paths.extend(files)
    return sorted(set(paths))


class Source(ABC):
    """A reader kind. ``read`` builds the Beam graph that yields records and rejected rows."""

    kind: ClassVar[str]

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
        return parse_files(pipeline, self, self.paths, "read")


def parse_files(pipeline: beam.Pipeline, source: FileSource, paths: list[str], label: str) -> SourceOutput:
    """Apply ``source.parse`` to every path in parallel (one file per element), counting the read stage."""
    outputs = (
        pipeline
        | f"{source.dataset}: list {label}" >> beam.Create(paths)
        | f"{source.dataset}: spread {label}" >> beam.Reshuffle()
        | f"{source.dataset}: {label}" >> beam.ParDo(ParseFileFn(source)).with_outputs(REJECTED, main="records")
    )
    return SourceOutput(records=outputs.records, rejected=outputs[REJECTED])


class ParseFileFn(beam.DoFn):
    """Streams one file through ``source.parse``; a stream that breaks off becomes one rejected row."""

    def __init__(self, source: FileSource) -> None:
        self.source = source
        self.funnel = Funnel()

    def process(self, path: str) -> Iterator[Any]:
        dataset = self.source.dataset
        last_position: Any = 0
        try:
            with open_input(path) as stream:
                for item in self.source.parse(path, stream):
                    if isinstance(item, Skip):
                        self.funnel.count(dataset, "read", f"skipped:{item.reason}")
                        continue
                    self.funnel.count(dataset, "read", "in")
                    if is_rejected(item):
                        last_position = item["position"]
                        self.funnel.count(dataset, "read", f"rejected:{item['reason']}")
                        yield beam.pvalue.TaggedOutput(REJECTED, item)
                    else:
                        last_position = item["meta"].get("row", last_position)
                        self.funnel.count(dataset, "read", "kept")
                        yield item
        except FileNotFoundError as err:
            yield from self._broken(path, "file_vanished", f"before reading ({err})")
        except STREAM_ERRORS as err:
            yield from self._broken(path, "truncated_or_corrupt_file", f"after row {last_position} ({type(err).__name__}: {err})")

    def _broken(self, path: str, reason: str, position: str) -> Iterator[Any]:
        self.funnel.count(self.source.dataset, "read", "in")
        self.funnel.count(self.source.dataset, "read", f"rejected:{reason}")
        yield beam.pvalue.TaggedOutput(REJECTED, rejected(self.source.dataset, path, position, reason))
