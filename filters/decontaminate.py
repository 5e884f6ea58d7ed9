"""Decontamination: drop a pair whose query or document overlaps a text of an evaluation set.

Texts are compared by shingles, the word n-grams of their matching form (``filters.minhash.shingle_spans``,
the same as near dedup's): a training text overlaps an evaluation text when they share an n-gram of
``ngram`` words, or, where either has fewer words than that, when the shorter text is one of the other's
shingles, which for two short texts means equal in the matching form. Each shingle is known by its
fingerprint, the first 8 bytes of its SHA-1 (near dedup's ``verify`` uses the same): two different shingles
share one by chance once in 2**64 pairs, so a corpus of 470M pairs checked against 50M evaluation
shingles expects about one false overlap in 10**7 pairs.

``EvaluationIndex`` holds every distinct fingerprint of the evaluation texts, sorted, each with a bit mask
of the sets it occurs in, and a directory from a fingerprint's top bits to its stretch of the sorted array;
a lookup reads the directory, then searches a few entries. The launcher builds it once per build
(``build_index``) into a folder on any Beam filesystem; each worker process copies it once per machine into
the local cache (``storage.cache``) and maps it read-only, so the processes of one machine share its pages.
In memory it takes 16 bytes per distinct n-gram (fingerprint and set mask), 12 per distinct 5-word shingle
(fingerprint and text number) and 4 per directory entry (about one per two fingerprints).
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, BinaryIO, ClassVar

import numpy as np

from filters import minhash_kernels as kernels
from filters.base import RecordFilter
from filters.minhash import shingle_spans
from schemas.recipe import MAX_EVALUATION_SETS, DecontaminateConfig
from schemas.record import PairRecord
from schemas.stages import DECONTAMINATE
from storage.cache import local_copy
from storage.files import join, read_json, write_atomically, write_json
from storage.texts import evaluation_texts

INDEX_FILE = "index.json"
TABLE_ARRAYS = ("fingerprints", "values", "directory")
BUILD_BATCH = 4096
# Directory entries per fingerprint: about two fingerprints a stretch, so a lookup reads one or two cache lines.
FINGERPRINTS_PER_BUCKET = 2
OVERLAP = "overlap"
# The containment rule's shingles: short enough that a copy with a few words changed keeps most of them.
NEAR_NGRAM = 5
# A near copy shares at least this many shingles with one evaluation text, whatever the share.
MIN_NEAR_SHINGLES = 3


def overlap_reason(name: str, side: str) -> str:
    """The drop reason of a pair that overlaps evaluation set ``name`` on ``side`` (query, document or both)."""
    return f"{OVERLAP}:{name}:{side}"


def parse_overlap_reason(reason: str) -> tuple[str, str] | None:
    """(evaluation set, side) of an ``overlap_reason``, None for any other reason."""
    kind, _, rest = reason.partition(":")
    name, _, side = rest.rpartition(":")
    return (name, side) if kind == OVERLAP and name else None


def shingle_fingerprints(texts: Sequence[str], ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """Every shingle's fingerprint (uint64), and each text's number of shingles (0 for a text without words)."""
    spans = shingle_spans(texts, ngram)
    return kernels.sha1_head(spans.buffer, spans.starts, spans.lengths), spans.counts


@kernels.compiled()
def _find(fingerprints: np.ndarray, directory: np.ndarray, shift: int, queries: np.ndarray) -> np.ndarray:
    """The position of each query in the sorted ``fingerprints`` (-1 where it is not there): the directory
    gives the stretch of fingerprints with the query's top bits, a binary search the place in it."""
    found = np.full(len(queries), -1, np.int64)
    for i in range(len(queries)):
        query = queries[i]
        bucket = query >> np.uint64(shift)
        lo, end = np.int64(directory[bucket]), np.int64(directory[bucket + np.uint64(1)])
        hi = end
        while lo < hi:
            mid = (lo + hi) >> 1
            if fingerprints[mid] < query:
                lo = mid + 1
            else:
                hi = mid
        if lo < end and fingerprints[lo] == query:
            found[i] = lo
    return found


@kernels.compiled()
def _most_shared(owners: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per text (its ``counts[t]`` shingles in turn), the evaluation text that owns most of them (-1: none) and how many."""
    best = np.full(len(counts), -1, np.int64)
    shared = np.zeros(len(counts), np.int64)
    start = 0
    for text in range(len(counts)):
        segment = np.sort(owners[start : start + counts[text]])
        start += counts[text]
        run, previous = 0, np.int64(-1)
        for owner in segment:
            if owner < 0:
                continue
            run = run + 1 if owner == previous else 1
            previous = owner
            if run > shared[text]:
                shared[text], best[text] = run, owner
    return best, shared


@dataclasses.dataclass
class ShingleTable:
    """Distinct shingle fingerprints, sorted, each with a value, and a directory from a fingerprint's top bits to
    its stretch of the array (about ``FINGERPRINTS_PER_BUCKET`` fingerprints a stretch)."""

    fingerprints: np.ndarray  # uint64, sorted, distinct
    values: np.ndarray  # one per fingerprint
    directory: np.ndarray  # 2**bits + 1 positions in fingerprints

    @classmethod
    def of(cls, fingerprints: np.ndarray, values: np.ndarray, combine: np.ufunc) -> ShingleTable:
        """The table of (fingerprint, value) pairs; a fingerprint's values are combined by ``combine`` (a ufunc's
        reduceat), in the order they are given (a stable sort keeps it)."""
        order = np.argsort(fingerprints, kind="stable")
        fingerprints, values = fingerprints[order], values[order]
        first = np.ones(len(fingerprints), dtype=bool)
        first[1:] = fingerprints[1:] != fingerprints[:-1]
        starts = np.flatnonzero(first)
        distinct = fingerprints[starts]
        combined = combine.reduceat(values, starts) if len(starts) else values[:0]
        bits = max(1, min(32, math.ceil(math.log2(max(2, len(distinct) / FINGERPRINTS_PER_BUCKET)))))
        top = distinct >> np.uint64(64 - bits)
        positions = np.searchsorted(top, np.arange(2**bits + 1, dtype=np.uint64))
        return cls(distinct, combined, positions.astype(np.uint32 if len(distinct) < 2**32 else np.int64))

    @property
    def shift(self) -> int:
        return 64 - int(math.log2(len(self.directory) - 1))

    @property
    def nbytes(self) -> int:
        return int(self.fingerprints.nbytes + self.values.nbytes + self.directory.nbytes)

    def find(self, queries: np.ndarray) -> np.ndarray:
        """Each query fingerprint's position in the table, -1 where it is not there."""
        return _find(self.fingerprints, self.directory, self.shift, queries)


@dataclasses.dataclass
class EvaluationIndex:
    """The evaluation texts' shingles: of ``ngram`` words with the sets each occurs in (``shared``), and of
    ``NEAR_NGRAM`` words with the first text each occurs in (``near``; None without the containment rule)."""

    names: list[str]  # bit i of a mask is set ``names[i]``
    ngram: int
    sets: list[dict[str, Any]]  # per set: name, path, format, texts, first (its first text's number), shingles
    shared: ShingleTable  # values: uint64 set masks
    near: ShingleTable | None  # values: uint32 text numbers, counted over the sets in order

    def text_masks(self, texts: Sequence[str], containment: float | None) -> np.ndarray:
        """Per text, the mask of the evaluation sets it overlaps (uint64; 0 for none): it shares a shingle of
        ``ngram`` words with one of their texts, or, with ``containment``, at least that share of its shingles of
        ``NEAR_NGRAM`` words (and ``MIN_NEAR_SHINGLES``) occur in one text."""
        found = np.zeros(len(texts), dtype=np.uint64)
        fingerprints, counts = shingle_fingerprints(texts, self.ngram)
        if len(fingerprints):
            positions = self.shared.find(fingerprints)
            per_shingle = np.where(positions >= 0, self.shared.values[np.maximum(positions, 0)], np.uint64(0))
            with_shingles = np.flatnonzero(counts)
            found[with_shingles] = np.bitwise_or.reduceat(per_shingle, _starts(counts)[with_shingles])
        if containment is not None and self.near is not None:
            fingerprints, counts = shingle_fingerprints(texts, NEAR_NGRAM)
            positions = self.near.find(fingerprints)
            owners = np.where(positions >= 0, self.near.values[np.maximum(positions, 0)].astype(np.int64), -1)
            best, shared = _most_shared(owners, counts)
            near = (shared >= MIN_NEAR_SHINGLES) & (shared >= containment * counts)
            firsts = np.array([s["first"] for s in self.sets], dtype=np.int64)
            bits = np.searchsorted(firsts, best[near], side="right") - 1
            found[near] |= np.left_shift(np.uint64(1), bits.astype(np.uint64))
        return found

    def write(self, folder: str) -> None:
        """The tables' arrays as .npy files and ``index.json`` last, so a folder with ``index.json`` is whole."""
        tables = {"shared": self.shared, **({"near": self.near} if self.near is not None else {})}
        for name, table in tables.items():
            for part in TABLE_ARRAYS:
                write_atomically(join(folder, f"{name}-{part}.npy"), functools.partial(_save_array, getattr(table, part)))
        write_json(join(folder, INDEX_FILE), {"names": self.names, "ngram": self.ngram, "sets": self.sets, "tables": list(tables)}, indent=2)

    @classmethod
    def read(cls, folder: str) -> EvaluationIndex:
        """An index ``write`` made, from any Beam filesystem: a remote one is copied once per machine and mapped."""
        local = local_copy(folder)
        meta = read_json(join(local, INDEX_FILE))
        tables = {name: ShingleTable(*(np.load(join(local, f"{name}-{part}.npy"), mmap_mode="r").view(np.ndarray) for part in TABLE_ARRAYS))
                  for name in meta["tables"]}
        return cls(meta["names"], meta["ngram"], meta["sets"], tables["shared"], tables.get("near"))

    @property
    def nbytes(self) -> int:
        return self.shared.nbytes + (self.near.nbytes if self.near is not None else 0)


def _starts(counts: np.ndarray) -> np.ndarray:
    return np.cumsum(counts) - counts


def _save_array(array: np.ndarray, stream: BinaryIO) -> None:
    np.save(stream, array)


def _batches(texts: Iterable[str], size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for text in texts:
        batch.append(text)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def index_from_texts(sets: Sequence[tuple[str, Iterable[str]]], ngram: int, near: bool, sources: Sequence[dict[str, Any]] | None = None,
                     progress: bool = False) -> EvaluationIndex:
    """The index of evaluation sets given as (name, texts), with the ``near`` table or without; ``sources``
    describes each set (path, format) for its datasheet."""
    if len(sets) > MAX_EVALUATION_SETS:
        raise ValueError(f"at most {MAX_EVALUATION_SETS} evaluation sets, not {len(sets)}")
    shared: list[tuple[np.ndarray, np.ndarray]] = []
    owned: list[tuple[np.ndarray, np.ndarray]] = []
    described: list[dict[str, Any]] = []
    number = 0
    for bit, (name, texts) in enumerate(sets):
        first, distinct = number, []
        for batch in _batches(texts, BUILD_BATCH):
            fingerprints, _ = shingle_fingerprints(batch, ngram)
            distinct.append(np.unique(fingerprints))
            if near:
                fingerprints, counts = shingle_fingerprints(batch, NEAR_NGRAM)
                # The first occurrence of each shingle in the batch: its smallest text number (texts are in order).
                fingerprints, occurrence = np.unique(fingerprints, return_index=True)
                owners = np.repeat(np.arange(number, number + len(batch), dtype=np.uint32), counts)[occurrence]
                owned.append((fingerprints, owners))
            number += len(batch)
            if progress and (number - first) % (BUILD_BATCH * 64) < len(batch):
                print(f"pairmill: decontamination index, {name}: {number - first:,} texts", file=sys.stderr, flush=True)
        fingerprints = np.unique(np.concatenate(distinct)) if distinct else np.zeros(0, dtype=np.uint64)
        shared.append((fingerprints, np.full(len(fingerprints), np.uint64(1) << np.uint64(bit), dtype=np.uint64)))
        described.append({**(sources[bit] if sources else {}), "name": name, "texts": number - first, "first": first, "shingles": len(fingerprints)})
    shared_table = ShingleTable.of(np.concatenate([f for f, _ in shared] or [np.zeros(0, dtype=np.uint64)]),
                                   np.concatenate([m for _, m in shared] or [np.zeros(0, dtype=np.uint64)]), np.bitwise_or)
    near_table = None
    if near:
        near_table = ShingleTable.of(np.concatenate([f for f, _ in owned] or [np.zeros(0, dtype=np.uint64)]),
                                     np.concatenate([o for _, o in owned] or [np.zeros(0, dtype=np.uint32)]), np.minimum)
    return EvaluationIndex([name for name, _ in sets], ngram, described, shared_table, near_table)


def index_folder(output: str, config: DecontaminateConfig) -> str:
    """Where a build keeps the index of ``config`` (named by the block's content, so blocks that agree share one)."""
    content = json.dumps(dataclasses.asdict(config), sort_keys=True)
    return join(output, "_decontamination", hashlib.sha256(content.encode()).hexdigest()[:16])


def build_index(config: DecontaminateConfig, folder: str) -> EvaluationIndex:
    """Read every evaluation source of ``config`` and write their index to ``folder``."""
    # A set only queries are checked against is there for its queries: its corpus is the training documents' by design.
    sets = [(source.set_name, evaluation_texts(source.path, source.format, source.field, corpus=source.set_name not in config.queries_only))
            for source in config.against]
    described = [{"path": source.path, "format": source.format, "queries_only": source.set_name in config.queries_only} for source in config.against]
    index = index_from_texts(sets, config.ngram, config.containment is not None, described, progress=True)
    index.write(folder)
    return index


_INDEXES: dict[str, EvaluationIndex] = {}
_LOCK = threading.Lock()


def get_index(folder: str) -> EvaluationIndex:
    """The process-wide index in ``folder``: read once, shared by every thread (Beam DoFn.setup)."""
    with _LOCK:
        index = _INDEXES.get(folder)
        if index is None:
            index = _INDEXES[folder] = EvaluationIndex.read(folder)
        return index


class DecontaminateFilter(RecordFilter):
    """Drops a pair whose checked sides overlap an evaluation set, naming the first such set in ``against``'s
    order and the side: ``overlap:<set>:query``, ``:document`` or ``:both``."""

    stage: ClassVar[str] = DECONTAMINATE

    def __init__(self, config: DecontaminateConfig, folder: str, index: EvaluationIndex | None = None) -> None:
        self.config = config
        self.folder = folder
        self.index = index

    def setup(self) -> None:
        if self.index is None:
            self.index = get_index(self.folder)

    def check(self, record: PairRecord) -> str | None:
        return self.check_batch([record])[0]

    def check_batch(self, records: list[PairRecord]) -> list[str | None]:
        self.setup()
        index = self.index
        assert index is not None
        none = np.zeros(len(records), dtype=np.uint64)
        containment = self.config.containment
        queries = index.text_masks([r["query"] for r in records], containment) if self.config.sides != "document" else none
        documents = index.text_masks([r["document"] for r in records], containment) if self.config.sides != "query" else none
        queries_only = sum((np.uint64(1) << np.uint64(index.names.index(name)) for name in self.config.queries_only), np.uint64(0))
        documents &= ~np.uint64(queries_only)
        verdicts: list[str | None] = [None] * len(records)
        for row in np.flatnonzero(queries | documents).tolist():
            query, document = int(queries[row]), int(documents[row])
            either = query | document
            bit = (either & -either).bit_length() - 1  # the lowest set: the first in `against`
            side = "both" if (query >> bit) & (document >> bit) & 1 else ("query" if (query >> bit) & 1 else "document")
            verdicts[row] = overlap_reason(index.names[bit], side)
        return verdicts
