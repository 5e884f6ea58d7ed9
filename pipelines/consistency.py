"""The consistency stage in Beam: split a dataset into stable chunks by id hash, score each chunk with the teacher.

records -> count (side input) -> number of chunks -> key by chunk -> GroupByKey -> sort by id -> score each
chunk as one batch (the DoFn of ``ApplyFilter``, so counting is shared) -> kept / dropped. The teacher loads
once per worker process (``get_teacher`` in ``setup``) and is shared by the worker's threads; on Dataflow,
GPU workers come from
``--dataflow_service_options=worker_accelerator=type:nvidia-l4;count:1;install-nvidia-driver`` with a
GPU machine type (``--machine_type=g2-standard-8``) and a container holding CUDA torch
(``--sdk_container_image``); one chunk is held in memory by the worker that scores it.
"""
from __future__ import annotations

from functools import partial

import apache_beam as beam

from filters.consistency import ConsistencyScorer, num_chunks
from pipelines.stages import DROPPED, FilterBatchFn, StageOutput
from schemas.recipe import ConsistencyConfig
from schemas.record import PairRecord
from text.hashing import bucket


def _key_by_chunk(record: PairRecord, total: int, chunk_size: int) -> tuple[int, PairRecord]:
    return bucket(record["id"], num_chunks(total, chunk_size)), record


def _sorted_chunk(chunk: int, records: list[PairRecord]) -> list[PairRecord]:
    """A chunk's records in id order, so scoring and output do not depend on shuffle order."""
    return sorted(records, key=lambda r: r["id"])


class ConsistencyFilter(beam.PTransform):
    """Keep pairs whose own document the teacher ranks within the top k of their chunk's documents."""

    def __init__(self, dataset: str, config: ConsistencyConfig) -> None:
        super().__init__()
        self.dataset = dataset
        self.config = config

    def expand(self, records: beam.PCollection) -> StageOutput:
        total = records | "count" >> beam.combiners.Count.Globally()
        outputs = (
            records
            | "key by chunk" >> beam.Map(_key_by_chunk, total=beam.pvalue.AsSingleton(total), chunk_size=self.config.chunk_size)
            | "group chunks" >> beam.GroupByKey()
            | "sort chunks" >> beam.MapTuple(_sorted_chunk)
            | "score chunks"
            >> beam.ParDo(FilterBatchFn(self.dataset, partial(ConsistencyScorer, self.config))).with_outputs(DROPPED, main="kept")
        )
        return StageOutput(kept=outputs.kept, dropped=outputs[DROPPED])
