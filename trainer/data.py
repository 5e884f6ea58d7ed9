"""Training data: stream built datasets shard by shard, shuffle with a seeded buffer, one dataset per batch
(``data.batch_from: dataset``) or one shard of one dataset per batch (``data.batch_from: shard``).

Nothing loads a dataset into memory: each dataset is read as a stream of blocks of ``shuffle_buffer``
records. A block's order is a permutation drawn from a generator seeded by (seed, dataset, epoch, where the
block starts), and the shards' order is a seeded permutation per epoch. The data position is therefore
four numbers per dataset (epoch, shard cursor, record offset of the block's start, records taken from the
block) plus the batch sampler's generator state: a resumed run re-reads the current block and continues
with exactly the records an uninterrupted run would have seen.

With one-shard batches (contrastors' sampling), each dataset reads its shards in the same seeded order, one at
a time, in blocks that never cross into the next shard; a batch is taken from the dataset's current shard,
the dataset being drawn with probability proportional to its records left this epoch, so that every dataset
runs out at about the same step and then all start the next epoch together. The position per dataset is
(epoch, shard cursor, record offset of the block's start in the shard, records taken from the block).
"""
from __future__ import annotations

import itertools
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from schemas.config import ConfigError
from schemas.manifest import Manifest, ShardInfo
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
        largest = max(shard.records for shard in manifest.shards)
        if data.batch_from == "shard" and largest * (1.0 - data.held_out_fraction) < batch_size:
            raise ConfigError(
                f"{where}: training.batch_size: dataset {manifest.dataset!r} ({folder}) has no shard with {batch_size} training records "
                f"(the largest holds {largest} records), and data.batch_from 'shard' takes every batch from one shard"
            )
        prefixes = resolve_prefixes(manifest.dataset, manifest.prefixes, data.prefixes, data.use_prefixes)
        sets[manifest.dataset] = TrainingSet(manifest.dataset, folder, manifest, prefixes)
    unknown = sorted(set(data.prefixes) - set(sets))
    if unknown:
        raise ConfigError(f"{where}: data.prefixes: {unknown[0]!r} is not one of the datasets ({', '.join(sorted(sets))})")
    return list(sets.values())


def _name_key(name: str) -> int:
    return zlib.crc32(name.encode("utf-8"))


def _shard_order(training_set: TrainingSet, seed: int, epoch: int) -> np.ndarray:
    """The seeded order in which an epoch reads a dataset's shards."""
    rng = np.random.default_rng([seed, _name_key(training_set.name), epoch])
    return rng.permutation(len(training_set.manifest.shards))


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

    def _records_from(self, cursor: int, offset: int) -> Iterator[PairRecord]:
        """This epoch's records from shard ``cursor`` (in epoch order), record ``offset``; tracks the position."""
        order = _shard_order(self.set, self.seed, self.epoch)
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


class ShardStream:
    """One dataset's training records for one-shard batches: each epoch's shards in seeded order, one at a time."""

    def __init__(self, training_set: TrainingSet, seed: int, buffer_size: int, held_out_fraction: float) -> None:
        self.set = training_set
        self.seed = seed
        self.buffer_size = buffer_size
        self.held_out_fraction = held_out_fraction
        self._start_epoch(0)

    def _start_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self._order = _shard_order(self.set, self.seed, epoch)
        sizes = [self.set.manifest.shards[i].records for i in self._order]
        self._later = [sum(sizes[i + 1 :]) for i in range(len(sizes))]  # records in the shards after each position
        self._open_shard(0, 0)

    def _open_shard(self, cursor: int, offset: int) -> None:
        """Position the reader at record ``offset`` of the epoch's shard ``cursor``; no block is read yet."""
        self.cursor = cursor
        self.block_start = self._block_end = offset
        self.taken = 0
        self._block: list[PairRecord] = []
        self._reader: Iterator[PairRecord] = iter(())
        if cursor < len(self._order):
            self._reader = itertools.islice(iter_shard(self.set.path, self.current_shard), offset, None)

    @property
    def current_shard(self) -> ShardInfo:
        return self.set.manifest.shards[self._order[self.cursor]]

    def _next_block(self) -> bool:
        """Read and shuffle the shard's next block; False at the shard's end."""
        raw = list(itertools.islice(self._reader, self.buffer_size))
        if not raw:
            return False
        self.block_start, self._block_end = self._block_end, self._block_end + len(raw)
        block = [r for r in raw if not in_fraction(r["id"], self.held_out_fraction)]  # skip the evaluation split
        rng = np.random.default_rng([self.seed, _name_key(self.set.name), self.epoch, self.cursor, self.block_start])
        self._block = [block[i] for i in rng.permutation(len(block))]
        self.taken = 0
        return True

    def remaining(self) -> int:
        """Records of this epoch not yet taken: the current block's, then the rest of the shard's and the later shards' (as the manifest counts them)."""
        if self.cursor >= len(self._order):
            return 0
        return len(self._block) - self.taken + self.current_shard.records - self._block_end + self._later[self.cursor]

    def take(self, count: int) -> list[PairRecord] | None:
        """``count`` records of one shard, moving past shard ends that cannot fill them; None when the epoch is drained."""
        rows: list[PairRecord] = []
        while len(rows) < count:
            if self.taken == len(self._block) and not self._next_block():
                rows = []  # the shard's last records, fewer than a batch: skipped this epoch
                self._open_shard(self.cursor + 1, 0)
                if self.cursor >= len(self._order):
                    return None
                continue
            end = min(len(self._block), self.taken + count - len(rows))
            rows += self._block[self.taken : end]
            self.taken = end
        return rows

    def next_epoch(self) -> None:
        self._start_epoch(self.epoch + 1)

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "cursor": self.cursor, "block_start": self.block_start, "taken": self.taken}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Re-read the block the saved position was in and skip what had been taken from it."""
        self._start_epoch(int(state["epoch"]))
        self._open_shard(int(state["cursor"]), int(state["block_start"]))
        self._next_block()
        self.taken = int(state["taken"])


@dataclass
class Batch:
    """One step's texts, prefixes applied; ``negatives[i]`` are row i's hard negatives; ``shard`` is the one shard's file (one-shard batches)."""

    dataset: str
    queries: list[str]
    documents: list[str]
    negatives: list[list[str]]
    shard: str | None = None

    def __len__(self) -> int:
        return len(self.queries)

    def part(self, rank: int, world_size: int) -> Batch:
        """This process's contiguous share of the rows."""
        size = len(self) // world_size
        rows = slice(rank * size, (rank + 1) * size)
        return Batch(self.dataset, self.queries[rows], self.documents[rows], self.negatives[rows], self.shard)

    @property
    def flat_negatives(self) -> list[str]:
        return [text for row in self.negatives for text in row]


class _Sampler:
    """What both samplers share: the datasets, the generator, and a batch's texts from its records."""

    batch_from = "dataset"

    def __init__(self, sets: list[TrainingSet], data: DataConfig, batch_size: int, rng: np.random.Generator) -> None:
        self.sets = sets
        self.batch_size = batch_size
        self.num_negatives = data.num_negatives
        self.rng = rng

    def _batch(self, chosen: TrainingSet, records: list[PairRecord], shard: str | None = None) -> Batch:
        query_prefix, document_prefix = chosen.prefixes.query, chosen.prefixes.document
        return Batch(
            chosen.name,
            [query_prefix + r["query"] for r in records],
            [document_prefix + r["document"] for r in records],
            [[document_prefix + text for text in self._sample_negatives(r["negatives"])] for r in records],
            shard,
        )

    def _sample_negatives(self, negatives: list[str]) -> list[str]:
        if len(negatives) <= self.num_negatives:
            return negatives
        return [negatives[i] for i in self.rng.choice(len(negatives), size=self.num_negatives, replace=False)]

    def _check_state(self, state: dict[str, Any], streams: dict[str, Any]) -> None:
        written = state.get("batch_from", "dataset")
        if written != self.batch_from:
            raise ConfigError(f"the checkpoint was written with data.batch_from {written!r}, the config says {self.batch_from!r}")
        missing = sorted(set(streams) - set(state["streams"]))
        if missing:
            raise ConfigError(f"the checkpoint has no data position for dataset {missing[0]!r}: the run's datasets changed")


class BatchSampler(_Sampler):
    """Draws each batch's dataset with probability proportional to size**alpha, then its rows from that dataset."""

    def __init__(self, sets: list[TrainingSet], data: DataConfig, batch_size: int, seed: int) -> None:
        super().__init__(sets, data, batch_size, np.random.default_rng([seed, len(sets)]))
        self.streams = {s.name: RecordStream(s, seed, data.shuffle_buffer, data.held_out_fraction) for s in sets}
        weights = np.array([s.manifest.records for s in sets], dtype=np.float64) ** data.alpha
        self.probabilities = weights / weights.sum()

    def next_batch(self) -> Batch:
        chosen = self.sets[int(self.rng.choice(len(self.sets), p=self.probabilities))]
        stream = self.streams[chosen.name]
        records: list[PairRecord] = []
        seen: set[str] = set()
        skipped = 0
        while len(records) < self.batch_size:
            record = stream.next()
            if record["id"] in seen:
                # The batch crossed into the next epoch: a repeated pair would be its own false negative.
                # Each earlier row repeats at most once, so more skips than rows means too few records.
                skipped += 1
                if skipped > self.batch_size:
                    raise ConfigError(f"{chosen.path}: dataset {chosen.name!r} has fewer training records than one batch of {self.batch_size}")
                continue
            seen.add(record["id"])
            records.append(record)
        return self._batch(chosen, records)

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state, "streams": {name: s.state_dict() for name, s in self.streams.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._check_state(state, self.streams)
        self.rng.bit_generator.state = state["rng"]
        for name, stream in self.streams.items():
            stream.load_state_dict(state["streams"][name])


class ShardBatchSampler(_Sampler):
    """``data.batch_from: shard``: each batch from one shard, its dataset drawn in proportion to the records it has left this epoch."""

    batch_from = "shard"

    def __init__(self, sets: list[TrainingSet], data: DataConfig, batch_size: int, seed: int) -> None:
        super().__init__(sets, data, batch_size, np.random.default_rng([seed, len(sets), 1]))
        self.streams = {s.name: ShardStream(s, seed, data.shuffle_buffer, data.held_out_fraction) for s in sets}
        self.epoch_batches = 0  # batches drawn in the current epoch

    def weights(self) -> np.ndarray:
        """Each dataset's records left this epoch, 0 where they cannot fill a batch."""
        left = np.array([self.streams[s.name].remaining() for s in self.sets], dtype=np.float64)
        return np.where(left >= self.batch_size, left, 0.0)

    def next_batch(self) -> Batch:
        while True:
            weights = self.weights()
            if weights.sum() == 0:  # every dataset is drained: all start the next epoch
                if self.epoch_batches == 0:
                    raise ConfigError(f"no shard of any dataset holds {self.batch_size} training records (training.batch_size, data.batch_from 'shard')")
                for stream in self.streams.values():
                    stream.next_epoch()
                self.epoch_batches = 0
                continue
            chosen = self.sets[int(self.rng.choice(len(self.sets), p=weights / weights.sum()))]
            stream = self.streams[chosen.name]
            records = stream.take(self.batch_size)
            if records is not None:
                self.epoch_batches += 1
                return self._batch(chosen, records, stream.current_shard.file)

    def state_dict(self) -> dict[str, Any]:
        return {
            "batch_from": self.batch_from,
            "rng": self.rng.bit_generator.state,
            "epoch_batches": self.epoch_batches,
            "streams": {name: s.state_dict() for name, s in self.streams.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._check_state(state, self.streams)
        self.rng.bit_generator.state = state["rng"]
        self.epoch_batches = int(state["epoch_batches"])
        for name, stream in self.streams.items():
            stream.load_state_dict(state["streams"][name])


def make_sampler(sets: list[TrainingSet], data: DataConfig, batch_size: int, seed: int) -> BatchSampler | ShardBatchSampler:
    """The batch sampler ``data.batch_from`` names."""
    sampler = ShardBatchSampler if data.batch_from == "shard" else BatchSampler
    return sampler(sets, data, batch_size, seed)
