"""Training data: stream built datasets shard by shard, shuffle with a seeded buffer, one dataset per batch.

Nothing loads a dataset into memory: each dataset is read as a stream of blocks of ``shuffle_buffer``
records. A block's order is a permutation drawn from a generator seeded by (seed, dataset, epoch, where the
block starts), and the shards' order is a seeded permutation per epoch. The data position is therefore
four numbers per dataset (epoch, shard cursor, record offset of the block's start, records taken from the
block) plus the batch sampler's generator state: a resumed run re-reads the current block and continues
with exactly the records an uninterrupted run would have seen.
"""
from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from schemas.config import ConfigError
from schemas.manifest import Manifest
from schemas.recipe import Prefixes
from schemas.record import PairRecord
from storage.builds import find_datasets, iter_shard, read_manifest
from text.hashing import in_fraction
from trainer.config import DataConfig
from trainer.prefixes import resolve_prefixes

TRAINABLE_OBJECTIVES = ("paired", "triplet")


@dataclass
class TrainingSet:
    """One built dataset folder as the trainer sees it."""

    name: str
    path: str
    manifest: Manifest
    prefixes: Prefixes


def open_training_sets(paths: list[str], data: DataConfig, batch_size: int, where: str) -> list[TrainingSet]:
    """Every dataset under ``paths`` (dataset folders or build output folders), checked for training."""
    sets: dict[str, TrainingSet] = {}
    for folder in (d for p in paths for d in find_datasets(p)):
        manifest = read_manifest(folder)
        kind = manifest.objective.get("type")
        if kind not in TRAINABLE_OBJECTIVES:
            raise ConfigError(f"{where}: datasets: {folder} has objective {kind!r}; the trainer takes {' or '.join(TRAINABLE_OBJECTIVES)}")
        if manifest.dataset in sets:
            raise ConfigError(f"{where}: datasets: dataset {manifest.dataset!r} is in both {sets[manifest.dataset].path} and {folder}")
        trainable = manifest.records * (1.0 - data.held_out_fraction)
        if trainable < batch_size:
            raise ConfigError(
                f"{where}: training.batch_size: dataset {manifest.dataset!r} ({folder}) has about {int(trainable)} training "
                f"records, fewer than one batch of {batch_size} (every batch comes from one dataset)"
            )
        prefixes = resolve_prefixes(manifest.dataset, manifest.prefixes, data.prefixes, data.use_prefixes)
        sets[manifest.dataset] = TrainingSet(manifest.dataset, folder, manifest, prefixes)
    unknown = sorted(set(data.prefixes) - set(sets))
    if unknown:
        raise ConfigError(f"{where}: data.prefixes: {unknown[0]!r} is not one of the datasets ({', '.join(sorted(sets))})")
    return list(sets.values())


def _name_key(name: str) -> int:
    return zlib.crc32(name.encode("utf-8"))


class RecordStream:
    """An endless, block-shuffled stream of one dataset's training records (held-out records skipped)."""

    def __init__(self, training_set: TrainingSet, seed: int, buffer_size: int, held_out_fraction: float) -> None:
        self.set = training_set
        self.seed = seed
        self.buffer_size = buffer_size
        self.held_out_fraction = held_out_fraction
        self.epoch = 0
        self.block_start = (0, 0)
        self.taken = 0
        self._block: list[PairRecord] = []
        self._cursor, self._offset = 0, 0
        self._reader: Iterator[PairRecord] = self._records_from(0, 0)
        self._trained_this_epoch = 0

    def _shard_order(self, epoch: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, _name_key(self.set.name), epoch])
        return rng.permutation(len(self.set.manifest.shards))

    def _records_from(self, cursor: int, offset: int) -> Iterator[PairRecord]:
        """This epoch's records from shard ``cursor`` (in epoch order), record ``offset``; tracks the position."""
        order = self._shard_order(self.epoch)
        shards = self.set.manifest.shards
        for position in range(cursor, len(order)):
            skip = offset if position == cursor else 0
            for index, record in enumerate(iter_shard(self.set.path, shards[order[position]])):
                if index < skip:
                    continue
                self._cursor, self._offset = position, index + 1
                yield record
            self._cursor, self._offset = position + 1, 0

    def _read_block(self) -> None:
        """Read the next block from the current position, start a new epoch at the end of the data."""
        while True:
            self.block_start = (self._cursor, self._offset)
            block: list[PairRecord] = []
            read = 0
            for record in self._reader:
                if not in_fraction(record["id"], self.held_out_fraction):  # the evaluation split
                    block.append(record)
                read += 1
                if read == self.buffer_size:
                    break
            if block:
                rng = np.random.default_rng([self.seed, _name_key(self.set.name), self.epoch, *self.block_start])
                self._block = [block[i] for i in rng.permutation(len(block))]
                self.taken = 0
                self._trained_this_epoch += len(block)
                return
            if read == 0:  # the epoch's data is exhausted
                if self._trained_this_epoch == 0:
                    raise ConfigError(f"{self.set.path}: dataset {self.set.name!r} has no training records (all are held out)")
                self.epoch += 1
                self._trained_this_epoch = 0
                self._cursor, self._offset = 0, 0
                self._reader = self._records_from(0, 0)

    def next(self) -> PairRecord:
        if self.taken >= len(self._block):
            self._read_block()
        record = self._block[self.taken]
        self.taken += 1
        return record

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "block_start": list(self.block_start), "taken": self.taken}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Re-read the block the saved position was in and skip what had been taken from it."""
        self.epoch = int(state["epoch"])
        cursor, offset = (int(v) for v in state["block_start"])
        self._cursor, self._offset = cursor, offset
        self._reader = self._records_from(cursor, offset)
        self._trained_this_epoch = 0
        self._read_block()
        self.taken = int(state["taken"])


@dataclass
class Batch:
    """One step's texts, prefixes applied; ``negatives[i]`` are row i's hard negatives."""

    dataset: str
    queries: list[str]
    documents: list[str]
    negatives: list[list[str]]

    def __len__(self) -> int:
        return len(self.queries)

    def part(self, rank: int, world_size: int) -> Batch:
        """This process's contiguous share of the rows."""
        size = len(self) // world_size
        rows = slice(rank * size, (rank + 1) * size)
        return Batch(self.dataset, self.queries[rows], self.documents[rows], self.negatives[rows])

    @property
    def flat_negatives(self) -> list[str]:
        return [text for row in self.negatives for text in row]


class BatchSampler:
    """Draws each batch's dataset with probability proportional to size**alpha, then its rows from that dataset."""

    def __init__(self, sets: list[TrainingSet], data: DataConfig, batch_size: int, seed: int) -> None:
        self.sets = sets
        self.batch_size = batch_size
        self.num_negatives = data.num_negatives
        self.streams = {s.name: RecordStream(s, seed, data.shuffle_buffer, data.held_out_fraction) for s in sets}
        weights = np.array([s.manifest.records for s in sets], dtype=np.float64) ** data.alpha
        self.probabilities = weights / weights.sum()
        self.rng = np.random.default_rng([seed, len(sets)])

    def next_batch(self) -> Batch:
        chosen = self.sets[int(self.rng.choice(len(self.sets), p=self.probabilities))]
        stream = self.streams[chosen.name]
        query_prefix, document_prefix = chosen.prefixes.query, chosen.prefixes.document
        queries: list[str] = []
        documents: list[str] = []
        negatives: list[list[str]] = []
        seen: set[str] = set()
        skipped = 0
        while len(queries) < self.batch_size:
            record = stream.next()
            if record["id"] in seen:
                # The batch crossed into the next epoch: a repeated pair would be its own false negative.
                # Each earlier row repeats at most once, so more skips than rows means too few records.
                skipped += 1
                if skipped > self.batch_size:
                    raise ConfigError(f"{chosen.path}: dataset {chosen.name!r} has fewer training records than one batch of {self.batch_size}")
                continue
            seen.add(record["id"])
            queries.append(query_prefix + record["query"])
            documents.append(document_prefix + record["document"])
            negatives.append([document_prefix + text for text in self._sample_negatives(record["negatives"])])
        return Batch(chosen.name, queries, documents, negatives)

    def _sample_negatives(self, negatives: list[str]) -> list[str]:
        if len(negatives) <= self.num_negatives:
            return negatives
        return [negatives[i] for i in self.rng.choice(len(negatives), size=self.num_negatives, replace=False)]

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state, "streams": {name: s.state_dict() for name, s in self.streams.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        missing = sorted(set(self.streams) - set(state["streams"]))
        if missing:
            raise ConfigError(f"the checkpoint has no data position for dataset {missing[0]!r}: the run's datasets changed")
        self.rng.bit_generator.state = state["rng"]
        for name, stream in self.streams.items():
            stream.load_state_dict(state["streams"][name])
