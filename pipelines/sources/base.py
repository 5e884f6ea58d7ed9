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

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple

import apache_beam as beam

from pipelines.funnel import Funnel
from schemas.config import ConfigError
from schemas.recipe import SourceSpec
from schemas.record import PairRecord, RejectedRow, rejected
from storage.compressed import STREAM_ERRORS, open_input
from storage.files import match

if TYPE_CHECKING:
    from typing_extensions import TypeIs  # in typing from Python 3.13

REJECTED = "rejected"


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
