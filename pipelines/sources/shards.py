"""The ``shards`` kind: datasets pairmill built, read back as a source, so a build can run in stages
(CPU filters in one job, the GPU consistency filter in another) or re-score a corpus with another teacher.

``paths`` name ``manifest.json`` files (globs allowed, e.g. ``out/stage1/*/manifest.json``). Every
shard's size and sha256 are checked before any of its records are used: a shard that does not match
its manifest is one rejected row, never half a shard. Ids keep their natural key under the new
dataset name, and ``meta`` (language scores, provenance) is kept.
"""
from __future__ import annotations

import hashlib
from typing import Any, Iterator

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from pipelines.funnel import Funnel
from pipelines.sources.base import REJECTED, Source, SourceOutput
from schemas.config import ConfigError
from schemas.manifest import Manifest, ShardInfo
from schemas.record import rejected
from schemas.shards import ShardError, check_shard_bytes, iter_shard_stream


def list_shards(manifest_path: str) -> Iterator[tuple[str, str, ShardInfo]]:
    with FileSystems.open(manifest_path) as f:
        manifest = Manifest.from_json(f.read().decode("utf-8"), manifest_path)
    folder = manifest_path.rsplit("/", 1)[0]
    for shard in manifest.shards:
        yield manifest_path, FileSystems.join(folder, shard.file), shard


class ReadShardFn(beam.DoFn):
    def __init__(self, dataset: str) -> None:
        self.dataset = dataset
        self.funnel = Funnel()

    def process(self, element: tuple[str, str, ShardInfo]) -> Iterator[Any]:
        _, path, shard = element
        try:
            for record in read_verified_shard(path, shard):
                natural_key = record["id"].split("/", 1)[1]
                record = {**record, "id": f"{self.dataset}/{natural_key}", "dataset": self.dataset}
                self.funnel.count(self.dataset, "read", "in")
                self.funnel.count(self.dataset, "read", "kept")
                yield record
        except (ShardError, OSError) as err:
            self.funnel.count(self.dataset, "read", "in")
            self.funnel.count(self.dataset, "read", "rejected:shard_mismatch")
            yield beam.pvalue.TaggedOutput(REJECTED, rejected(self.dataset, path, "shard", "shard_mismatch", str(err)))


def read_verified_shard(path: str, shard: ShardInfo) -> Iterator[Any]:
    """A shard's records, after its size and sha256 were checked against the manifest (any filesystem)."""
    digest, size = hashlib.sha256(), 0
    with FileSystems.open(path, compression_type="uncompressed") as raw:
        while chunk := raw.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    check_shard_bytes(path, shard, size, digest.hexdigest())
    with FileSystems.open(path, compression_type="uncompressed") as raw:
        yield from iter_shard_stream(raw, path, shard, validate=True)


class ShardsSource(Source):
    kind = "shards"

    def read(self, pipeline: beam.Pipeline) -> SourceOutput:
        for path in self.paths:
            if not path.endswith("manifest.json"):
                raise ConfigError(f"{path}: the shards kind reads dataset folders through their manifest.json")
        outputs = (
            pipeline
            | f"{self.dataset}: list manifests" >> beam.Create(self.paths)
            | f"{self.dataset}: list shards" >> beam.FlatMap(list_shards)
            | f"{self.dataset}: spread shards" >> beam.Reshuffle()
            | f"{self.dataset}: read shards" >> beam.ParDo(ReadShardFn(self.dataset)).with_outputs(REJECTED, main="records")
        )
        return SourceOutput(records=outputs.records, rejected=outputs[REJECTED])
