"""MinHash near-duplicate removal in Beam: the shuffles carry band hashes and labels, never records.

1. Signatures for batches of records (filters.minhash); every record's 64-bit band hashes go, packed
   with its label, to the partition of each hash (one of ``PARTITIONS``).
2. Each partition sorts its hashes: a run of two or more labels is a band bucket. Its candidate pairs
   are a star from its smallest label to the others, or with ``verify`` the pairs compared by exact
   Jaccard (each member against the earlier members it is not yet connected to within the bucket).
3. All candidate pairs meet on one worker: they grow with the duplicates, not with the records (about
   425 bytes each in memory). It counts the distinct ones (info:candidate_pairs, info:verified_duplicates), joins
   the duplicate ones into connected components with a union-find, and marks every node of a component
   but its smallest as dropped.
4. Records and the dropped ids meet by id partition, both packed (pipelines/packed.py): the records of
   dropped ids are dropped as ``near_duplicate``.

Nodes are ``(order, id)`` labels, so "smallest" follows the keep rule: the id alone for smallest_id, or
the score (highest first) then the id for highest_score. Nothing depends on bundle boundaries or order.
"""
from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
import numpy as np
import zstandard
from apache_beam.transforms.window import GlobalWindows

from filters.minhash import MinHasher, band_hashes, jaccard, lsh_parameters, shingle_text
from pipelines.funnel import Funnel
from pipelines.packed import (
    FLUSH_BYTES,
    PARTITIONS,
    ZSTD_LEVEL,
    Packed,
    Packer,
    ShuffledBytes,
    decode_item,
    encode_key,
    entries,
    entry_line,
    entry_lines,
    pack_into,
    split_entry,
)
from pipelines.stages import DROPPED, StageOutput, counted_verdict
from schemas.recipe import MinHashConfig
from schemas.record import PairRecord
from schemas.stages import NEAR_DEDUP
from schemas.stats import cluster_size_label
from text.hashing import bucket

STAGE = NEAR_DEDUP
REASON = "near_duplicate"
FINGERPRINTS = "fingerprints"

Label = tuple[str, str]  # (order key, record id)
Edge = tuple[Label, Label]  # (larger, smaller)
BandBatch = tuple[bytes, bytes]  # (band hashes as uint64 bytes, zstd of one JSON label line per hash)


def score_order(score: Any) -> str:
    """A string that sorts highest score first; records without a (finite) score sort after all others."""
    if not isinstance(score, (int, float)) or isinstance(score, bool) or math.isnan(score):
        return "~"
    (bits,) = struct.unpack(">Q", struct.pack(">d", -float(score)))
    # IEEE 754 doubles order like integers once negatives have all bits flipped and positives the sign bit.
    return f"{bits ^ 0xFFFFFFFFFFFFFFFF if bits >> 63 else bits | 1 << 63:016x}"


def record_label(record: PairRecord, keep: str) -> Label:
    order = score_order(record["meta"].get("source_score")) if keep == "highest_score" else ""
    return (order, record["id"])


class SketchFn(beam.DoFn):
    """Batches of records -> (partition, BandBatch) for the partitions their band hashes fall in, and
    (label, shingle fingerprints) per record for verification."""

    def __init__(self, dataset: str, config: MinHashConfig, bands: int, rows: int) -> None:
        self.dataset = dataset
        self.config = config
        self.bands = bands
        self.rows = rows
        self.funnel = Funnel()
        self.shuffled = ShuffledBytes(dataset, f"{STAGE}/bands")

    def setup(self) -> None:
        c = self.config
        self.hasher = MinHasher(c.num_perm, c.seed, c.ngram, c.scheme, c.shingle_hash)

    def start_bundle(self) -> None:
        self.held: dict[int, tuple[list[np.ndarray], list[bytes]]] = {}
        self.held_bytes = 0

    def process(self, batch: list[PairRecord]) -> Iterator[Any]:
        self.funnel.count(self.dataset, STAGE, "in", len(batch))
        sketches = self.hasher.sketch([shingle_text(r, self.config.field) for r in batch], fingerprints=self.config.verify)
        present = np.flatnonzero(~sketches.empty)
        labels = [record_label(batch[i], self.config.keep) for i in present]
        lines = [encode_key(label) + b"\n" for label in labels]
        hashes = band_hashes(sketches, self.bands, self.rows)[present]  # (records with shingles, bands)
        partitions = (hashes % np.uint64(PARTITIONS)).astype(np.int64)
        flat_hashes, flat_partitions = hashes.ravel(), partitions.ravel()
        owner = np.repeat(np.arange(len(present)), self.bands)
        order = np.argsort(flat_partitions, kind="stable")
        bounds = np.flatnonzero(np.diff(flat_partitions[order])) + 1
        for run in np.split(order, bounds) if len(order) else []:
            held = self.held.setdefault(int(flat_partitions[run[0]]), ([], []))
            held[0].append(flat_hashes[run])
            held[1].extend(lines[i] for i in owner[run])
            self.held_bytes += 8 * len(run)
        self.held_bytes += sum(len(line) for line in lines) * self.bands
        if sketches.fingerprints is not None:
            for label, i in zip(labels, present, strict=True):
                yield beam.pvalue.TaggedOutput(FINGERPRINTS, (label, sketches.fingerprints[i].tobytes()))
        if self.held_bytes >= FLUSH_BYTES:
            yield from self.flush()

    def flush(self) -> Iterator[tuple[int, BandBatch]]:
        compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
        for partition, (hashes, lines) in self.held.items():
            batch = (np.concatenate(hashes).tobytes(), compressor.compress(b"".join(lines)))
            self.shuffled.add(len(batch[0]) + len(batch[1]))
            yield partition, batch
        self.start_bundle()

    def finish_bundle(self) -> Iterator[Any]:
        for element in self.flush():
            yield GlobalWindows.windowed_value(element)


def band_buckets(element: tuple[int, Iterable[BandBatch]]) -> Iterator[tuple[int, list[Label]]]:
    """A partition of band hashes -> every bucket of two or more distinct labels, labels sorted."""
    batches = list(element[1])
    if not batches:
        return
    decompressor = zstandard.ZstdDecompressor()
    hashes = np.concatenate([np.frombuffer(h, dtype=np.uint64) for h, _ in batches])
    lines = [line for _, data in batches for line in decompressor.decompress(data).split(b"\n")[:-1]]
    order = np.argsort(hashes, kind="stable")
    ordered = hashes[order]
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    ends = np.append(starts[1:], len(ordered))
    for start, end in zip(starts[ends - starts > 1], ends[ends - starts > 1], strict=True):
        members = sorted({tuple(json.loads(lines[i])) for i in order[start:end]})
        if len(members) > 1:
            yield int(ordered[start]), members


def star_edges(element: tuple[int, list[Label]]) -> Iterator[tuple[Edge, bool]]:
    """A bucket -> candidate edges from its smallest label to each other one (taken as duplicates)."""
    members = element[1]
    for member in members[1:]:
        yield (member, members[0]), True


def bucket_memberships(element: tuple[int, list[Label]]) -> Iterator[tuple[Label, int]]:
    """(label, bucket) for every member of a bucket."""
    key, labels = element
    for label in labels:
        yield label, key


def fingerprints_to_buckets(element: tuple[Label, dict[str, list[Any]]]) -> Iterator[tuple[int, tuple[Label, bytes]]]:
    label, joined = element
    if joined["buckets"]:
        fingerprints = joined["fingerprints"][0]
        for key in set(joined["buckets"]):
            yield key, (label, fingerprints)


class VerifiedEdgesFn(beam.DoFn):
    """A band bucket with fingerprints -> each compared pair, and whether its exact Jaccard reaches the threshold.

    Members are taken in label order and each is compared with the earlier ones it is not already
    connected to (a union-find over the bucket), so a bucket of copies costs one comparison per member
    while chains A~B~C are still found.
    """

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold

    def process(self, element: tuple[int, Iterable[tuple[Label, bytes]]]) -> Iterator[tuple[Edge, bool]]:
        members = sorted(dict(element[1]).items())
        fingerprints = [np.frombuffer(f, dtype=np.uint64) for _, f in members]
        components = UnionFind()
        for i in range(1, len(members)):
            for j in range(i):
                if components.root(i) == components.root(j):
                    continue
                duplicate = jaccard(fingerprints[i], fingerprints[j]) >= self.threshold
                if duplicate:
                    components.union(i, j)
                yield (members[i][0], members[j][0]), duplicate


class UnionFind:
    """Disjoint sets whose root is always the smallest member (so a component's root is the node kept)."""

    def __init__(self) -> None:
        self.parent: dict[Any, Any] = {}

    def root(self, node: Any) -> Any:
        parent = self.parent
        while (up := parent.get(node, node)) != node:
            parent[node] = parent.get(up, up)  # path halving
            node = up
        return node

    def union(self, a: Any, b: Any) -> None:
        ra, rb = self.root(a), self.root(b)
        if ra != rb:
            small, large = (ra, rb) if ra < rb else (rb, ra)
            self.parent[large] = small


class ComponentsFn(beam.DoFn):
    """Every candidate pair -> the dropped ids, packed by id partition: each component's nodes but its smallest."""

    def __init__(self, dataset: str, verify: bool) -> None:
        self.dataset = dataset
        self.verify = verify
        self.funnel = Funnel()
        self.packer = Packer(dataset, f"{STAGE}/dropped ids")

    def process(self, element: tuple[int, Iterable[Packed]]) -> Iterator[tuple[int, Packed]]:
        pairs: dict[Edge, bool] = {}
        for _, ((larger, smaller), duplicate) in entries(element[1]):
            pairs[(tuple(larger), tuple(smaller))] = duplicate
        components = UnionFind()
        for (larger, smaller), duplicate in pairs.items():
            if duplicate:
                components.union(larger, smaller)
        self.funnel.count(self.dataset, STAGE, "info:candidate_pairs", len(pairs))
        if self.verify:
            self.funnel.count(self.dataset, STAGE, "info:verified_duplicates", sum(pairs.values()))
        sizes: dict[Label, int] = {}
        for node in list(components.parent):
            root = components.root(node)
            sizes[root] = sizes.get(root, 1) + 1
            self.packer.add(bucket(node[1], PARTITIONS), entry_line(node[1], None))
        self.funnel.count(self.dataset, STAGE, "info:clusters", len(sizes))
        for size in sizes.values():
            self.funnel.count(self.dataset, STAGE, f"info:cluster_size:{cluster_size_label(size)}")
        yield from self.packer.flush()


class ApplyVerdictsFn(beam.DoFn):
    """One id partition: its dropped ids and its records -> each record kept or dropped."""

    def __init__(self, dataset: str) -> None:
        self.dataset = dataset
        self.funnel = Funnel()

    def process(self, element: tuple[int, dict[str, list[Packed]]]) -> Iterator[Any]:
        _, joined = element
        drop = {split_entry(line)[0] for line in entry_lines(joined["drop"])}
        for line in entry_lines(joined["records"]):
            record_id, item = split_entry(line)
            yield counted_verdict(self.funnel, self.dataset, STAGE, decode_item(item), REASON if record_id in drop else None)


class NearDedup(beam.PTransform):
    """MinHash LSH near-duplicate removal for one dataset's records; returns what it kept and dropped."""

    def __init__(self, dataset: str, config: MinHashConfig) -> None:
        super().__init__()
        self.dataset = dataset
        self.config = config
        self.bands, self.rows = lsh_parameters(config.threshold, config.num_perm, config.bands, config.rows, config.verify)

    def expand(self, records: beam.PCollection) -> StageOutput:
        dataset, config = self.dataset, self.config
        sketched = (
            records
            | "batch" >> beam.BatchElements(min_batch_size=1, max_batch_size=config.batch_size)
            | "sketch" >> beam.ParDo(SketchFn(dataset, config, self.bands, self.rows)).with_outputs(FINGERPRINTS, main="bands")
        )
        buckets = sketched.bands | "group bands" >> beam.GroupByKey() | "buckets" >> beam.FlatMap(band_buckets)
        if config.verify:
            members = buckets | "bucket memberships" >> beam.FlatMap(bucket_memberships)
            pairs = (
                {"fingerprints": sketched[FINGERPRINTS], "buckets": members}
                | "join fingerprints" >> beam.CoGroupByKey()
                | "fingerprints to buckets" >> beam.FlatMap(fingerprints_to_buckets)
                | "buckets with fingerprints" >> beam.GroupByKey()
                | "verified pairs" >> beam.ParDo(VerifiedEdgesFn(config.threshold))
            )
        else:
            pairs = buckets | "star edges" >> beam.FlatMap(star_edges)
        drop_ids = (
            pairs
            | "pack pairs" >> pack_into(dataset, f"{STAGE}/pairs", lambda pair: (0, 0))
            | "all pairs" >> beam.GroupByKey()
            | "components" >> beam.ParDo(ComponentsFn(dataset, config.verify))
        )
        outputs = (
            {
                "records": records | "pack by id" >> pack_into(dataset, f"{STAGE}/records",
                                                               lambda record: (bucket(record["id"], PARTITIONS), record["id"])),
                "drop": drop_ids,
            }
            | "join verdicts" >> beam.CoGroupByKey()
            | "apply verdicts" >> beam.ParDo(ApplyVerdictsFn(dataset)).with_outputs(DROPPED, main="kept")
        )
        return StageOutput(kept=outputs.kept, dropped=outputs[DROPPED])
