from __future__ import annotations

import itertools
import random
from typing import Any

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from filters.minhash import MinHasher, ShingleHash, jaccard, shingles
from pipelines.funnel import counter_values
from pipelines.near_dedup import ComponentsFn, NearDedup, score_order
from pipelines.packed import entry_lines, pack_into, split_entry
from schemas.recipe import MinHashConfig
from schemas.record import PairRecord, new_record

VOCABULARY = [f"{a}{b}" for a in ("ka", "lo", "mi", "nu", "pe", "ro", "su", "ti") for b in ("ba", "de", "fo", "gu", "hi", "ja", "ke", "lu")]


def words(rng: random.Random, count: int) -> list[str]:
    return [rng.choice(VOCABULARY) for _ in range(count)]


def substitute(text: str, positions: list[int], rng: random.Random) -> str:
    tokens = text.split()
    for position in positions:
        tokens[position] = "zz" + rng.choice(VOCABULARY)
    return " ".join(tokens)


def record(key: str, document: str, score: float | None = None) -> PairRecord:
    meta = {} if score is None else {"source_score": score}
    return new_record("d", key, f"question {key}", document, file="f", row=0, **meta)


def run_stage(records: list[PairRecord], config: MinHashConfig, kept: list[str], reshuffle: bool = False) -> dict[str, int]:
    """Run NearDedup on the local runner, assert the kept keys (the rest dropped as near_duplicate); return counters."""
    pipeline = beam.Pipeline(runner="FnApiRunner")
    created = pipeline | beam.Create(records)
    if reshuffle:
        created = created | beam.Reshuffle()
    output = created | NearDedup("d", config)
    assert_that(output.kept | "kept keys" >> beam.Map(lambda r: r["id"].removeprefix("d/")), equal_to(kept), label="kept")
    expected_dropped = sorted({r["id"].removeprefix("d/") for r in records} - set(kept))
    dropped = output.dropped | "dropped" >> beam.Map(lambda d: (d["record"]["id"].removeprefix("d/"), d["stage"], d["reason"]))
    assert_that(dropped, equal_to([(i, "near_dedup", "near_duplicate") for i in expected_dropped]), label="dropped")
    result = pipeline.run()
    result.wait_until_finish()
    return {name.split("|", 2)[2]: value for name, value in counter_values(result).items()}


@pytest.fixture(scope="module")
def corpus() -> dict[str, Any]:
    """Planted near-duplicates around unrelated 120-word documents."""
    rng = random.Random(7)
    bases = [" ".join(words(rng, 120)) for _ in range(6)]
    records = [record(f"{i}", text) for i, text in enumerate(bases)]
    records += [
        record("0-copy", bases[0].upper().replace(" ", ", ")),  # Jaccard 1 after normalisation
        record("1-end", substitute(bases[1], [119], rng)),  # Jaccard 115/117
        record("2-start", substitute(bases[2], [0, 1], rng)),  # Jaccard 114/118
        record("3-truncated", " ".join(bases[3].split()[:112])),  # Jaccard 108/116
    ]
    return {"records": records, "kept": [str(i) for i in range(6)]}


@pytest.mark.parametrize("shingle_hash", ["sha1", "murmur3"])
def test_planted_near_duplicates_are_dropped(corpus: dict[str, Any], shingle_hash: ShingleHash) -> None:
    counters = run_stage(corpus["records"], MinHashConfig(shingle_hash=shingle_hash), corpus["kept"])
    assert counters["in"] == 10 and counters["kept"] == 6 and counters["dropped:near_duplicate"] == 4
    assert counters["info:clusters"] == 4 and counters["info:candidate_pairs"] >= 4
    assert "info:unconverged" not in counters


def test_result_does_not_depend_on_batches_or_order(corpus: dict[str, Any]) -> None:
    for batch_size in (1, 3):
        run_stage(list(reversed(corpus["records"])), MinHashConfig(batch_size=batch_size), corpus["kept"], reshuffle=True)


@pytest.mark.parametrize("shingle_hash", ["sha1", "murmur3"])
def test_chain_is_removed_transitively_with_verification(shingle_hash: ShingleHash) -> None:
    rng = random.Random(11)
    a = " ".join(words(rng, 200))
    b = substitute(a, [20, 60, 100, 140], rng)
    c = substitute(b, [40, 80, 120, 160], rng)
    hasher = MinHasher(16, 1, ngram=5)
    prints = hasher.sketch([a, b, c], fingerprints=True).fingerprints
    assert prints is not None
    # The premise: A~B and B~C reach 0.8 but A and C are not similar themselves.
    assert jaccard(prints[0], prints[1]) >= 0.8 and jaccard(prints[1], prints[2]) >= 0.8
    assert jaccard(prints[0], prints[2]) < 0.7
    unrelated = " ".join(words(rng, 200))
    records = [record("a", a), record("b", b), record("c", c), record("x", unrelated)]
    # 42 bands of 3 rows put all three pairs in some bucket; verification rejects A-C.
    config = MinHashConfig(verify=True, bands=42, rows=3, shingle_hash=shingle_hash)
    counters = run_stage(records, config, ["a", "x"])
    assert counters["info:verified_duplicates"] == 2  # distinct pairs: A-B and B-C
    assert counters["info:candidate_pairs"] == 3
    assert counters["info:clusters"] == 1


def test_verification_removes_false_candidates() -> None:
    rng = random.Random(12)
    a = " ".join(words(rng, 100))
    half_changed = substitute(a, list(range(0, 100, 10)), rng)
    shared = set(shingles(a, 5)) & set(shingles(half_changed, 5))
    assert 0.2 < len(shared) / len(set(shingles(a, 5)) | set(shingles(half_changed, 5))) < 0.5
    records = [record("a", a), record("b", half_changed)]
    # With 128 bands of one row nearly any overlap is a candidate; only verification keeps both.
    run_stage(records, MinHashConfig(bands=128, rows=1), ["a"])
    run_stage(records, MinHashConfig(bands=128, rows=1, verify=True), ["a", "b"])


def test_highest_score_is_kept_with_ties_to_the_smallest_id() -> None:
    rng = random.Random(13)
    text = " ".join(words(rng, 80))
    records = [record("1", text, 2.0), record("2", text, 7.5), record("3", text, 7.5), record("4", text), record("5", text, -1.0)]
    run_stage(records, MinHashConfig(keep="highest_score"), ["2"])
    run_stage(records, MinHashConfig(), ["1"])


def test_score_order_sorts_highest_first() -> None:
    scores = [-1e300, -2.5, -0.0, 0.0, 1e-9, 3, 7.5, 1e300]
    orders = [score_order(s) for s in scores]
    assert orders == sorted(orders, reverse=True)
    assert score_order(None) > max(orders) and score_order(float("nan")) == score_order(None)


def test_empty_texts_are_never_near_duplicates() -> None:
    records = [record("1", ""), record("2", ""), record("3", "?!")]
    counters = run_stage(records, MinHashConfig(), ["1", "2", "3"])
    assert "info:candidate_pairs" not in counters


def label(n: int) -> tuple[str, str]:
    return ("", f"n{n:04d}")


def components_drops(edges: list[tuple[int, int]], expected: list[str], verify: bool = False,
                     refuted: frozenset[tuple[int, int]] = frozenset()) -> dict[str, int]:
    """Run ComponentsFn on candidate pairs (``refuted`` ones not duplicates) as NearDedup does; assert the dropped ids."""
    pairs = [((label(max(u, v)), label(min(u, v))), (u, v) not in refuted) for u, v in edges]
    pipeline = beam.Pipeline(runner="FnApiRunner")
    drops = (
        pipeline
        | beam.Create(pairs)
        | pack_into("d", "near_dedup", lambda pair: (0, 0))
        | beam.GroupByKey()
        | beam.ParDo(ComponentsFn("d", verify))
        | beam.FlatMap(lambda element: [split_entry(line)[0] for line in entry_lines([element[1]])])
    )
    assert_that(drops, equal_to(expected))
    result = pipeline.run()
    result.wait_until_finish()
    return {name.split("|", 2)[2]: value for name, value in counter_values(result).items()}


def reference_drops(edges: list[tuple[int, int]]) -> list[str]:
    parent: dict[int, int] = {}

    def root(x: int) -> int:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for u, v in edges:
        ru, rv = root(u), root(v)
        parent[max(ru, rv)] = min(ru, rv)
    return [label(n)[1] for n in parent if root(n) != n]


def test_connected_components_match_union_find() -> None:
    rng = random.Random(17)
    path = rng.sample(range(1000, 1200), 200)  # a long chain in shuffled label order
    edges = list(itertools.pairwise(path))
    edges += [(rng.randrange(300), rng.randrange(300)) for _ in range(250)]
    edges = [(u, v) for u, v in edges if u != v]
    edges += edges[:40]  # a pair met in several bands is counted once
    expected = reference_drops(edges)
    counters = components_drops(edges, expected)
    distinct = {(max(u, v), min(u, v)) for u, v in edges}
    assert counters["info:candidate_pairs"] == len(distinct)
    assert counters["info:clusters"] == len({label(n) for u, v in edges for n in (u, v)}) - len(expected)
    assert "info:verified_duplicates" not in counters


def test_refuted_pairs_link_nothing() -> None:
    edges = [(1, 2), (2, 3), (5, 6)]
    counters = components_drops(edges, [label(2)[1]], verify=True, refuted=frozenset({(2, 3), (5, 6)}))
    assert counters["info:candidate_pairs"] == 3 and counters["info:verified_duplicates"] == 1
    assert counters["info:clusters"] == 1 and counters["info:cluster_size:2"] == 1
