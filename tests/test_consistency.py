"""Consistency filtering: stable chunks, exact own-document ranks with deterministic ties, and the Beam stage."""
from __future__ import annotations

import copy
import importlib.util
import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import apache_beam as beam
import numpy as np
import pytest
import torch
from apache_beam.testing.util import assert_that, equal_to

from embedding.models import get_teacher
from filters.consistency import INCONSISTENT, ConsistencyScorer, num_chunks, own_document_ranks
from pipelines.consistency import ConsistencyFilter
from pipelines.funnel import counter_values
from schemas.recipe import ConsistencyConfig, ConsistencyTeacherConfig, TeacherConfig
from schemas.record import PairRecord, new_record
from text.hashing import bucket

PAIRS = [
    ("How do volcanoes erupt?", "Volcanoes erupt when magma and gas pressure build up beneath the crust and lava bursts out of the vent."),
    ("What is the best way to cook rice?", "Rinse the rice, then simmer it in water with a pinch of salt until the grains are tender."),
    ("How do I change a flat bicycle tire?", "Remove the wheel, lever the tire off the rim, replace the inner tube and pump it up."),
    ("Why is the sky blue?", "Sunlight is scattered by air molecules, and blue light scatters more than red, so the sky looks blue."),
    ("How can I improve my chess openings?", "Study common chess openings, control the center early and develop your knights and bishops."),
    ("What causes ocean tides?", "Tides are caused by the gravitational pull of the moon and the sun on the ocean water."),
    ("How do I train a puppy to sit?", "Hold a treat above the puppy's nose, move it back until the dog sits, then reward it."),
    ("What is the capital of Japan?", "Tokyo is the capital city of Japan and its largest metropolitan area."),
    ("How do solar panels make electricity?", "Solar panels use photovoltaic cells that turn sunlight into electric current."),
    ("How should I store fresh coffee beans?", "Keep coffee beans in an airtight container away from light, heat and moisture."),
    ("What is a good beginner guitar chord?", "The G major and E minor chords are easy guitar chords for beginners to learn."),
    ("How do vaccines protect against disease?", "Vaccines train the immune system to recognise a virus so the body can fight infection."),
    ("How do I bake sourdough bread?", "Mix flour, water, salt and sourdough starter, let the dough rise overnight and bake it in a hot oven."),
    ("What do honey bees eat?", "Honey bees feed on flower nectar and pollen, which they turn into honey in the hive."),
    ("How does a car engine work?", "A car engine burns fuel in its cylinders, pushing pistons that turn the crankshaft."),
    ("How can I sleep better at night?", "Keep a regular sleep schedule, avoid caffeine late in the day and keep the bedroom dark."),
]
STATIC = ConsistencyTeacherConfig(model="default")  # the fixture's teacher; the stage's default is minilm
SWAPPED = [(3, 11), (5, 13)]  # these pairs get each other's documents


def planted_records() -> tuple[list[PairRecord], set[str]]:
    records = [new_record("demo", f"{i:02d}", q, d, "pairs.tsv", i) for i, (q, d) in enumerate(PAIRS)]
    for a, b in SWAPPED:
        records[a]["document"], records[b]["document"] = records[b]["document"], records[a]["document"]
    return records, {records[i]["id"] for pair in SWAPPED for i in pair}


@pytest.fixture(scope="module")
def scorer() -> ConsistencyScorer:
    return ConsistencyScorer(ConsistencyConfig(), get_teacher(TeacherConfig()))


def test_chunks_are_stable_hashes_of_the_id() -> None:
    ids = [f"ds/{i}" for i in range(4000)]
    chunks = [bucket(i, 4) for i in ids]
    assert chunks[:12] == [0, 0, 3, 0, 3, 1, 3, 0, 1, 1, 3, 0]  # golden values: the same on every run and machine
    assert all(c in range(4) for c in chunks)
    assert min(Counter(chunks).values()) > 800  # spread evenly
    assert num_chunks(0, 10) == 1 and num_chunks(10, 10) == 1 and num_chunks(11, 10) == 2


def brute_force_ranks(queries: np.ndarray, documents: np.ndarray) -> list[int]:
    scores = queries @ documents.T
    return [int(sum(scores[i, j] > scores[i, i] or (scores[i, j] == scores[i, i] and j < i) for j in range(len(scores)) if j != i)) for i in range(len(scores))]


@pytest.mark.parametrize("query_batch,corpus_chunk", [(3, 4), (100, 100), (1, 1)])
def test_own_document_ranks_match_brute_force(query_batch: int, corpus_chunk: int) -> None:
    rng = np.random.default_rng(0)
    queries = rng.standard_normal((23, 8)).astype(np.float32)
    documents = rng.standard_normal((23, 8)).astype(np.float32)
    ranks, own, best_other = own_document_ranks(queries, documents, query_batch, corpus_chunk)
    assert ranks.tolist() == brute_force_ranks(queries, documents)
    assert np.allclose(own.numpy(), (queries * documents).sum(1), atol=1e-6)
    scores = queries @ documents.T
    np.fill_diagonal(scores, -np.inf)
    assert np.allclose(best_other.numpy(), scores.max(1), atol=1e-6)


def test_tied_documents_rank_by_position_and_a_pair_never_beats_itself() -> None:
    document = np.ones((1, 4), dtype=np.float32) / 2
    documents = np.repeat(document, 4, axis=0)  # four identical documents
    queries = np.repeat(document, 4, axis=0)
    ranks, _, _ = own_document_ranks(queries, documents, query_batch=2, corpus_chunk=3)
    assert ranks.tolist() == [0, 1, 2, 3]


def test_planted_mismatches_are_dropped_with_rank_and_score(scorer: ConsistencyScorer) -> None:
    records, swapped = planted_records()
    verdicts = scorer.check_batch(records)
    dropped = {r["id"] for r, v in zip(records, verdicts, strict=True) if v == INCONSISTENT}
    assert dropped == swapped
    for record, verdict in zip(records, verdicts, strict=True):
        assert isinstance(record["meta"]["consistency_rank"], int)
        assert (record["meta"]["consistency_rank"] < 2) == (verdict is None)
        assert -1.0 <= record["meta"]["consistency_score"] <= 1.0


def test_verdicts_do_not_depend_on_input_order(scorer: ConsistencyScorer) -> None:
    records, _ = planted_records()
    shuffled = copy.deepcopy(records)
    random.Random(1).shuffle(shuffled)
    first = dict(zip((r["id"] for r in records), scorer.check_batch(records), strict=True))
    second = dict(zip((r["id"] for r in shuffled), scorer.check_batch(shuffled), strict=True))
    assert first == second
    by_id = {r["id"]: r["meta"] for r in shuffled}
    assert all(by_id[r["id"]]["consistency_rank"] == r["meta"]["consistency_rank"] for r in records)


def test_larger_k_keeps_more(scorer: ConsistencyScorer) -> None:
    records, _ = planted_records()
    lenient = ConsistencyScorer(ConsistencyConfig(k=len(records)), scorer.teacher)
    assert lenient.check_batch(records) == [None] * len(records)


def test_margin_keeps_pairs_whose_own_score_is_close_to_the_best(scorer: ConsistencyScorer) -> None:
    records, _ = planted_records()
    strict = ConsistencyScorer(ConsistencyConfig(k=1), scorer.teacher)
    strict_verdicts = strict.check_batch(copy.deepcopy(records))
    assert scorer.teacher is not None
    queries = scorer.teacher.encode_queries([r["query"] for r in records])
    documents = scorer.teacher.encode_documents([r["document"] for r in records])
    _, own, best_other = own_document_ranks(queries, documents, query_batch=4)
    gaps = (best_other - own).tolist()
    margin = sorted(gap for gap in gaps if gap > 0)[0] + 1e-4  # wide enough to rescue the closest loser only
    lenient = ConsistencyScorer(ConsistencyConfig(k=1, margin=margin), scorer.teacher).check_batch(copy.deepcopy(records))
    rescued = [i for i, (a, b) in enumerate(zip(strict_verdicts, lenient, strict=True)) if a != b]
    assert rescued == [gaps.index(min(gap for gap in gaps if gap > 0))]  # ids are in input order here
    assert all(lenient[i] is None for i in rescued) and sum(v is None for v in lenient) == sum(v is None for v in strict_verdicts) + 1


def test_beam_stage_scores_each_stable_chunk(scorer: ConsistencyScorer) -> None:
    records, swapped = planted_records()
    config = ConsistencyConfig(teacher=STATIC, chunk_size=8)  # 16 records -> 2 chunks, scored by the fixture's teacher
    chunks = num_chunks(len(records), config.chunk_size)
    expected_kept, expected_dropped = [], []
    for chunk in range(chunks):
        members = copy.deepcopy([r for r in records if bucket(r["id"], chunks) == chunk])
        for record, verdict in zip(members, scorer.check_batch(members), strict=True):
            (expected_kept if verdict is None else expected_dropped).append(record["id"])
    assert set(expected_dropped) == swapped

    pipeline = beam.Pipeline(runner="FnApiRunner")
    output = pipeline | beam.Create(copy.deepcopy(records)) | ConsistencyFilter("demo", config)
    assert_that(output.kept | "kept ids" >> beam.Map(lambda r: r["id"]), equal_to(expected_kept), label="kept")
    assert_that(
        output.dropped | "dropped ids" >> beam.Map(lambda d: (d["record"]["id"], d["stage"], d["reason"])),
        equal_to([(i, "consistency", INCONSISTENT) for i in expected_dropped]),
        label="dropped",
    )
    assert_that(
        output.kept | "ranks" >> beam.Map(lambda r: r["meta"]["consistency_rank"] < 2), equal_to([True] * len(expected_kept)), label="ranks"
    )
    result = pipeline.run()
    result.wait_until_finish()
    counters = counter_values(result)
    assert counters["demo|consistency|in"] == len(records)
    assert counters["demo|consistency|kept"] == len(expected_kept)
    assert counters["demo|consistency|dropped:inconsistent"] == len(expected_dropped)


def test_beam_stage_on_an_empty_dataset() -> None:
    pipeline = beam.Pipeline(runner="FnApiRunner")
    output = pipeline | beam.Create([]) | ConsistencyFilter("empty", ConsistencyConfig(teacher=STATIC, chunk_size=4))
    assert_that(output.kept, equal_to([]), label="kept")
    assert_that(output.dropped, equal_to([]), label="dropped")
    pipeline.run().wait_until_finish()


def test_half_precision_embeddings_are_ranked_too() -> None:
    rng = np.random.default_rng(2)
    queries = torch.from_numpy(rng.standard_normal((12, 16)).astype(np.float32))
    documents = queries + 0.01 * torch.from_numpy(rng.standard_normal((12, 16)).astype(np.float32))
    ranks, _, _ = own_document_ranks(queries.bfloat16(), documents.bfloat16(), query_batch=5)
    assert ranks.tolist() == [0] * 12


FUSED_CHECK = """
import torch
from filters.consistency import blockwise_own_document_ranks, default_tie_tolerance
from filters.consistency_kernels import TILE_CHOICES, fused_own_document_ranks

generator = torch.Generator().manual_seed(0)


def quarters(n, dim):
    # Multiples of 1/4 up to 1: every product and sum is exact in float16 and float32, whatever the order of
    # summation, so planted ties are exact ties in both paths.
    return torch.randint(-4, 5, (n, dim), generator=generator).float() / 4


for n, dim, dtype, splits in ((300, 64, torch.float32, 1), (257, 96, torch.float32, 3), (1, 32, torch.float32, 1),
                              (200, 64, torch.float16, 2), (130, 64, torch.float16, 1)):
    queries = quarters(n, dim)
    documents = queries + quarters(n, dim)
    documents[5:12] = documents[min(n - 1, 3)]  # ties, before and after their pair
    for q, d in ((queries, documents), (torch.nn.functional.normalize(torch.randn(n, dim, generator=generator), dim=1), None)):
        d = torch.nn.functional.normalize(q + torch.randn(n, dim, generator=generator), dim=1) if d is None else d
        q, d = q.to(dtype), d.to(dtype)
        reference = blockwise_own_document_ranks(q, d, 64, 100)
        own = (q.float() * d.float()).sum(dim=1)
        for tiles in (TILE_CHOICES[0], TILE_CHOICES[-1]):
            ranks, best = fused_own_document_ranks(q, d, own, default_tie_tolerance(dtype), tiles, splits)
            assert torch.equal(ranks, reference.ranks), (n, dim, dtype, splits, tiles)
            # Scores summed in another order differ in their last bits (exactly equal on the quarters).
            assert torch.allclose(best, reference.best_other, rtol=0, atol=1e-6), (n, dim, dtype, splits, tiles)
print("ok")
"""


@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="Triton is not installed")
def test_fused_kernel_counts_what_the_blockwise_path_counts() -> None:
    """The GPU kernel, run by Triton's interpreter on the CPU (numpy has no bfloat16: float32 and float16 here;
    benchmarks/gpu_suite.py compares bfloat16 on a GPU)."""
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    run = subprocess.run([sys.executable, "-c", FUSED_CHECK], env=env, capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-3000:]
