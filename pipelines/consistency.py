"""The consistency stage in Beam: split a dataset into stable chunks by id hash, score each chunk with the teacher.

records -> packed, counted -> number of chunks -> packed by chunk -> GroupByKey -> sort by id -> score each
chunk as one batch (the DoFn of ``ApplyFilter``, so counting is shared) -> kept / dropped. The teacher loads
once per worker process (``get_teacher`` in ``setup``) and is shared by the worker's threads; on Dataflow,
GPU workers come from
``--dataflow_service_options=worker_accelerator=type:nvidia-l4;count:1;install-nvidia-driver`` with a
GPU machine type (``--machine_type=g2-standard-8``) and a container holding CUDA torch
(``--sdk_container_image``); one chunk is held in memory by the worker that scores it.
"""
from __future__ import annotations

from collections.abc import Iterable
from functools import partial

import apache_beam as beam

from pipelines.packed import GroupIntoBuckets, Packed, decode_item, entry_lines, split_entry
from pipelines.stages import DROPPED, FilterBatchFn, StageOutput
from schemas.recipe import ConsistencyConfig
from schemas.record import PairRecord, record_id
from schemas.stages import CONSISTENCY


def _sorted_chunk(element: tuple[int, Iterable[Packed]]) -> list[PairRecord]:
    """A chunk's records in id order, so scoring and output do not depend on shuffle order."""
    return [decode_item(item) for _, item in sorted(split_entry(line) for line in entry_lines(element[1]))]


class ConsistencyFilter(beam.PTransform):
    """Keep pairs whose own document the teacher ranks within the top k of their chunk's documents."""

    def __init__(self, dataset: str, config: ConsistencyConfig) -> None:
        super().__init__()
        self.dataset = dataset
        self.config = config

    def expand(self, records: beam.PCollection) -> StageOutput:
        # The scorer's module imports torch: only a launcher whose recipe runs this stage needs it.
        from filters.consistency import ConsistencyScorer, num_chunks

        chunk_size = self.config.chunk_size
        outputs = (
            records
            | "chunks" >> GroupIntoBuckets(self.dataset, CONSISTENCY, record_id, lambda total: num_chunks(total, chunk_size))
            | "sort chunks" >> beam.Map(_sorted_chunk)
            | "score chunks"
            >> beam.ParDo(FilterBatchFn(self.dataset, partial(ConsistencyScorer, self.config))).with_outputs(DROPPED, main="kept")
        )
        return StageOutput(kept=outputs.kept, dropped=outputs[DROPPED])
