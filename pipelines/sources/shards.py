"""The ``shards`` kind: datasets pairmill built, read back as a source, so a build can run in stages
(CPU filters in one job, the GPU consistency filter in another) or re-score a corpus with another teacher.

``paths`` name ``manifest.json`` files (globs allowed, e.g. ``out/stage1/*/manifest.json``). Every
shard's size and sha256 are checked before any of its records are used: a shard that does not match
its manifest is one rejected row, never half a shard. Ids keep their natural key under the new
dataset name, and ``meta`` (language scores, provenance) is kept.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import apache_beam as beam

from pipelines.funnel import Funnel
from pipelines.sources.base import REJECTED, Source, SourceOutput
from schemas.config import ConfigError
from schemas.manifest import MANIFEST, ShardInfo
from schemas.record import rejected
from storage.builds import ShardError, list_shards, read_verified_shard


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


class ShardsSource(Source):
    def read(self, pipeline: beam.Pipeline) -> SourceOutput:
        for path in self.paths:
            if not path.endswith(MANIFEST):
                raise ConfigError(f"{path}: the shards kind reads dataset folders through their manifest.json")
        outputs = (
            pipeline
            | f"{self.dataset}: list manifests" >> beam.Create(self.paths)
            | f"{self.dataset}: list shards" >> beam.FlatMap(list_shards)
            | f"{self.dataset}: spread shards" >> beam.Reshuffle()
            | f"{self.dataset}: read shards" >> beam.ParDo(ReadShardFn(self.dataset)).with_outputs(REJECTED, main="records")
        )
        return SourceOutput(records=outputs.records, rejected=outputs[REJECTED])
