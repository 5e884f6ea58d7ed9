"""MinHash near-duplicate removal as Beam rounds: no worker ever holds more than one key's group.

1. Signatures for batches of records (filters.minhash); each record is emitted once per LSH band,
   keyed by the band key.
2. Each band bucket with two or more records becomes candidate pairs: a star from its smallest node
   to the others, or with ``verify`` the pairs compared by exact Jaccard (each member against the
   earlier members it is not yet connected to within the bucket). Distinct pairs are counted
   (info:candidate_pairs, info:verified_duplicates) and the duplicate ones become edges.
3. Connected components by alternating large-star / small-star rounds (Kiveris et al., "Connected
   Components in MapReduce and Beyond", 2014), unrolled ``max_rounds`` times. At convergence every
   node points at its component's smallest node, which is the one kept.
4. Records are joined with the verdicts by id: all but each component's smallest node are dropped as
   ``near_duplicate``. A node whose component had not converged is kept and counted (info:unconverged).

Nodes are ``(order, id)`` labels, so "smallest" follows the keep rule: the id alone for smallest_id, or
the score (highest first) then the id for highest_score. Nothing depends on bundle boundaries or order.
"""
from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
import numpy as np

from filters.minhash import MinHasher, band_keys, jaccard, lsh_parameters, shingle_text
from pipelines.funnel import Funnel
from pipelines.stages import DROPPED, StageOutput, counted_verdict
from schemas.recipe import MinHashConfig
from schemas.record import PairRecord
from schemas.stages import NEAR_DEDUP
from schemas.stats import cluster_size_label

STAGE = NEAR_DEDUP
REASON = "near_duplicate"
FINGERPRINTS = "fingerprints"

Label = tuple[str, str]  # (order key, record id)
Edge = tuple[Label, Label]


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
    """A batch of records -> (band key, label) per band, and (label, shingle fingerprints) for verification."""

    def __init__(self, dataset: str, config: MinHashConfig, bands: int, rows: int) -> None:
        self.dataset = dataset
        self.config = config
        self.bands = bands
        self.rows = rows
        self.funnel = Funnel()

    def setup(self) -> None:
        c = self.config
        self.hasher = MinHasher(c.num_perm, c.seed, c.ngram, c.scheme, c.shingle_hash)

    def process(self, batch: list[PairRecord]) -> Iterator[Any]:
        self.funnel.count(self.dataset, STAGE, "in", len(batch))
        sketches = self.hasher.sketch([shingle_text(r, self.config.field) for r in batch], fingerprints=self.config.verify)
        for i, (record, keys) in enumerate(zip(batch, band_keys(sketches, self.bands, self.rows), strict=True)):
            if not keys:
                continue
            label = record_label(record, self.config.keep)
            for key in keys:
                yield key, label
            if sketches.fingerprints is not None:
                yield beam.pvalue.TaggedOutput(FINGERPRINTS, (label, sketches.fingerprints[i].tobytes()))


def star_edges(element: tuple[bytes, Iterable[Label]]) -> Iterator[tuple[Edge, bool]]:
    """A band bucket -> candidate edges from its smallest label to each other one (taken as duplicates)."""
    members = sorted(set(element[1]))
    for member in members[1:]:
        yield (member, members[0]), True


def bucket_memberships(element: tuple[bytes, Iterable[Label]]) -> Iterator[tuple[Label, bytes]]:
    """(label, bucket key) for every member of a bucket that holds two or more labels."""
    key, labels = element
    members = set(labels)
    if len(members) > 1:
        for label in members:
            yield label, key


def fingerprints_to_buckets(element: tuple[Label, dict[str, list[Any]]]) -> Iterator[tuple[bytes, tuple[Label, bytes]]]:
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

    def process(self, element: tuple[bytes, Iterable[tuple[Label, bytes]]]) -> Iterator[tuple[Edge, bool]]:
        members = sorted(dict(element[1]).items())
        fingerprints = [np.frombuffer(f, dtype=np.uint64) for _, f in members]
        parent = list(range(len(members)))

        def root(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for i in range(1, len(members)):
            for j in range(i):
                if root(i) == root(j):
                    continue
                duplicate = jaccard(fingerprints[i], fingerprints[j]) >= self.threshold
                if duplicate:
                    parent[root(i)] = root(j)
                yield (members[i][0], members[j][0]), duplicate


class CountPairsFn(beam.DoFn):
    """Distinct candidate pairs -> the duplicate edges; counts candidates (and verified duplicates)."""

    def __init__(self, dataset: str, verify: bool) -> None:
        self.dataset = dataset
        self.verify = verify
        self.funnel = Funnel()

    def process(self, element: tuple[Edge, bool]) -> Iterator[Edge]:
        edge, duplicate = element
        self.funnel.count(self.dataset, STAGE, "info:candidate_pairs")
        if duplicate:
            if self.verify:
                self.funnel.count(self.dataset, STAGE, "info:verified_duplicates")
            yield edge


def both_directions(edge: Edge) -> Iterator[Edge]:
    yield edge
    yield edge[1], edge[0]


def large_star(element: tuple[Label, Iterable[Label]]) -> Iterator[Edge]:
    """Link every larger neighbour of a node to the smallest node of its neighbourhood."""
    node, neighbours = element
    distinct = set(neighbours)
    smallest = min(min(distinct), node)
    for neighbour in distinct:
        if neighbour > node:
            yield neighbour, smallest


def toward_smaller(edge: Edge) -> Edge:
    """Key an edge by its larger end."""
    u, v = edge
    return (u, v) if v < u else (v, u)


def small_star(element: tuple[Label, Iterable[Label]]) -> Iterator[Edge]:
    """Link a node and its smaller neighbours to the smallest of them."""
    node, smaller = element
    distinct = set(smaller)
    smallest = min(distinct)
    for neighbour in distinct | {node}:
        if neighbour != smallest:
            yield neighbour, smallest


class ParentsFn(beam.DoFn):
    """A node and the smaller nodes it points at after the last round -> its parent, and a child entry for it."""

    def process(self, element: tuple[Label, Iterable[Label]]) -> Iterator[Any]:
        node, parents = element
        distinct = set(parents)
        yield node, ("parent", None)
        yield min(distinct), ("child", (node, len(distinct) == 1))


class VerdictsFn(beam.DoFn):
    """A node with what points at it: a converged child (one parent, which is a root) is dropped."""

    def __init__(self, dataset: str) -> None:
        self.dataset = dataset
        self.funnel = Funnel()

    def process(self, element: tuple[Label, Iterable[tuple[str, Any]]]) -> Iterator[str]:
        _, entries = element
        entries = list(entries)
        is_root = not any(kind == "parent" for kind, _ in entries)
        children = [value for kind, value in entries if kind == "child"]
        if is_root and children:
            self.funnel.count(self.dataset, STAGE, "info:clusters")
            self.funnel.count(self.dataset, STAGE, f"info:cluster_size:{cluster_size_label(1 + len(children))}")
        for (_, child_id), single_parent in children:
            if is_root and single_parent:
                yield child_id
            else:
                self.funnel.count(self.dataset, STAGE, "info:unconverged")


class ApplyVerdictsFn(beam.DoFn):
    def __init__(self, dataset: str) -> None:
        self.dataset = dataset
        self.funnel = Funnel()

    def process(self, element: tuple[str, dict[str, list[Any]]]) -> Iterator[Any]:
        _, joined = element
        reason = REASON if joined["drop"] else None
        for record in joined["records"]:
            yield counted_verdict(self.funnel, self.dataset, STAGE, record, reason)


class ConnectedComponents(beam.PTransform):
    """Edges -> the ids to drop: every node of a converged component except its smallest."""

    def __init__(self, dataset: str, max_rounds: int) -> None:
        super().__init__()
        self.dataset = dataset
        self.max_rounds = max_rounds

    def expand(self, edges: beam.PCollection) -> beam.PCollection:
        for i in range(self.max_rounds):
            edges = (
                edges
                | f"both directions {i}" >> beam.FlatMap(both_directions)
                | f"neighbourhoods {i}" >> beam.GroupByKey()
                | f"large star {i}" >> beam.FlatMap(large_star)
                | f"toward smaller {i}" >> beam.Map(toward_smaller)
                | f"smaller neighbours {i}" >> beam.GroupByKey()
                | f"small star {i}" >> beam.FlatMap(small_star)
            )
        return (
            edges
            | "parents" >> beam.GroupByKey()
            | "parent and child entries" >> beam.ParDo(ParentsFn())
            | "entries per node" >> beam.GroupByKey()
            | "verdicts" >> beam.ParDo(VerdictsFn(self.dataset))
        )


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
        buckets = sketched.bands | "buckets" >> beam.GroupByKey()
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
        # A pair met in several bands is counted and linked once.
        edges = pairs | "distinct pairs" >> beam.Distinct() | "count pairs" >> beam.ParDo(CountPairsFn(dataset, config.verify))
        drop_ids = edges | "components" >> ConnectedComponents(dataset, config.max_rounds)
        outputs = (
            {
                "records": records | "key by id" >> beam.Map(lambda record: (record["id"], record)),
                "drop": drop_ids | "key drops" >> beam.Map(lambda record_id: (record_id, True)),
            }
            | "join verdicts" >> beam.CoGroupByKey()
            | "apply verdicts" >> beam.ParDo(ApplyVerdictsFn(dataset)).with_outputs(DROPPED, main="kept")
        )
        return StageOutput(kept=outputs.kept, dropped=outputs[DROPPED])
