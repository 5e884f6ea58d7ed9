"""Hard-negative selection policies, and whole-dataset mining against a brute-force reference."""
from __future__ import annotations

import copy
import dataclasses
import math

import numpy as np
import pytest

from embedding.models import get_teacher
from mining.negatives import (
    FEWER,
    FULL,
    NO_KEY,
    PADDED,
    TOO_FEW,
    CandidateBatch,
    depth_batches,
    mine_hard_negatives,
    pad_keys,
    select_negatives,
    text_keys,
)
from schemas.recipe import MiningConfig, TeacherConfig
from schemas.record import new_record
from text.forms import matching_form


def config(**overrides) -> MiningConfig:
    base = dict(range_max=10, relative_margin=None, num_negatives=3)
    return dataclasses.replace(MiningConfig(), **{**base, **overrides})


def one_query(scores: list[float], keys: list[int] | None = None, positive_keys: list[int] = (1000,), query_key: int = 2000) -> CandidateBatch:
    """One query whose candidates are corpus rows 0..n-1, best first; positive score 0.9."""
    n = len(scores)
    return CandidateBatch(
        indices=np.arange(n, dtype=np.int64)[None, :],
        scores=np.array([scores], dtype=np.float32),
        keys=np.array([keys if keys is not None else list(range(n))], dtype=np.int64),
        positive_scores=np.array([0.9], dtype=np.float32),
        positive_keys=pad_keys([list(positive_keys)]),
        query_keys=np.array([query_key], dtype=np.int64),
        row_ids=["q/1"],
    )


def test_text_keys_compare_normalised_text() -> None:
    keys = text_keys(["Hello  World", "hello world", "hello worlds", " HELLO\tWORLD "])
    assert keys[0] == keys[1] == keys[3] != keys[2]
    assert (keys >= 0).all() and keys.dtype == np.int64
    assert matching_form("  A\nB  ") == "a b"


def test_top_sampling_takes_the_best_candidates() -> None:
    [mined] = select_negatives(one_query([0.8, 0.7, 0.6, 0.5, 0.4]), config=config())
    assert mined.indices == [0, 1, 2] and mined.outcome == FULL
    assert mined.scores == pytest.approx([0.8, 0.7, 0.6])


def test_positives_and_their_copies_take_no_window_slot() -> None:
    # rows 0 and 2 carry the positive's key; the window of 2 is counted without them
    args = one_query([0.95, 0.8, 0.75, 0.7, 0.6], keys=[1000, 1, 1000, 3, 4])
    [mined] = select_negatives(args, config=config(range_max=2, num_negatives=2))
    assert mined.indices == [1, 3]


def test_range_min_skips_the_first_ranks() -> None:
    [mined] = select_negatives(one_query([0.8, 0.7, 0.6, 0.5, 0.4]), config=config(range_min=2))
    assert mined.indices == [2, 3, 4]


def test_query_text_and_repeated_texts_are_skipped() -> None:
    args = one_query([0.8, 0.7, 0.6, 0.5, 0.4, 0.3], keys=[2000, 7, 7, 8, 9, 10])
    [mined] = select_negatives(args, config=config())
    assert mined.indices == [1, 3, 4]  # 0 is the query's text, 2 repeats 1


def test_relative_margin_uses_the_magnitude_of_the_positive() -> None:
    [mined] = select_negatives(one_query([0.89, 0.86, 0.85, 0.5, 0.4, 0.3]), config=config(relative_margin=0.05))
    assert mined.indices == [2, 3, 4]  # 0.9 * 0.95 = 0.855: 0.86 and above are too close
    args = one_query([-0.1, -0.2, -0.205, -0.25, -0.3])
    args.positive_scores = np.array([-0.2], dtype=np.float32)
    [mined] = select_negatives(args, config=config(relative_margin=0.05, num_negatives=2))
    assert mined.indices == [3, 4]  # threshold -0.2 - 0.01 = -0.21, not -0.2 * 0.95 = -0.19


def test_absolute_margin_and_score_bounds() -> None:
    [mined] = select_negatives(one_query([0.85, 0.79, 0.7, 0.2, 0.1]), config=config(absolute_margin=0.1))
    assert mined.indices == [1, 2, 3]
    bounded = config(max_score=0.75, min_score=0.15, too_few="keep")
    [mined] = select_negatives(one_query([0.85, 0.79, 0.7, 0.2, 0.1]), config=bounded)
    assert mined.indices == [2, 3] and mined.outcome == FEWER


def test_too_few_policies() -> None:
    scores = [0.8, 0.7]
    [dropped] = select_negatives(one_query(scores), config=config(too_few="drop"))
    assert dropped.outcome == TOO_FEW and dropped.indices == []
    [kept] = select_negatives(one_query(scores), config=config(too_few="keep"))
    assert kept.outcome == FEWER and kept.indices == [0, 1]
    corpus_keys = np.arange(50, dtype=np.int64)
    corpus_keys[10] = 1000  # a copy of the positive
    corpus_keys[11] = 2000  # a copy of the query
    with pytest.raises(ValueError, match="corpus_keys"):
        select_negatives(one_query(scores), config=config(too_few="pad"))
    [padded] = select_negatives(one_query(scores), config=config(too_few="pad"), corpus_keys=corpus_keys)
    assert padded.outcome == PADDED and padded.indices[:2] == [0, 1] and len(padded.indices) == 3
    assert padded.indices[2] not in (0, 1, 10, 11) and math.isnan(padded.scores[2])
    [again] = select_negatives(one_query(scores), config=config(too_few="pad"), corpus_keys=corpus_keys)
    assert again.indices == padded.indices
    [scored] = select_negatives(
        one_query(scores), config=config(too_few="pad"), corpus_keys=corpus_keys, pad_scores=lambda row, docs: docs * 0.001
    )
    assert scored.scores[2] == pytest.approx(scored.indices[2] * 0.001)


def test_padding_finds_the_last_free_documents_of_a_tiny_corpus() -> None:
    corpus_keys = np.array([0, 1, 1000, 2000, 4], dtype=np.int64)  # only row 4 is free
    [padded] = select_negatives(one_query([0.8, 0.7]), config=config(too_few="pad"), corpus_keys=corpus_keys)
    assert padded.indices == [0, 1, 4]


def test_random_sampling_is_seeded_per_row_and_sorted_by_score() -> None:
    scores = [0.8 - 0.05 * i for i in range(10)]
    [first] = select_negatives(one_query(scores), config=config(sampling="random"))
    [second] = select_negatives(one_query(scores), config=config(sampling="random"))
    assert first.indices == second.indices and first.indices == sorted(first.indices)
    draws = set()
    for seed in range(8):
        [mined] = select_negatives(one_query(scores), config=config(sampling="random", seed=seed))
        draws.add(tuple(mined.indices))
    assert len(draws) > 1


def test_empty_slots_from_a_small_corpus_are_ignored() -> None:
    args = one_query([0.8, 0.7, 0.6])
    args.indices[0, 2] = -1
    args.keys[0, 2] = NO_KEY
    [mined] = select_negatives(args, config=config(too_few="keep"))
    assert mined.indices == [0, 1]


def test_depth_batches_cover_every_query_once_and_group_similar_depths() -> None:
    slots = np.array([1, 1, 500, 2, 1, 40, 1], dtype=np.int64)
    batches = depth_batches(slots, batch_size=3)
    assert sorted(np.concatenate(batches).tolist()) == list(range(7))
    assert all(len(b) <= 3 for b in batches)
    assert any(b.tolist() == [2] for b in batches)  # the deep query is searched on its own


RECORDS = [
    ("How do volcanoes erupt?", "Magma and gas pressure push lava out of a volcano's vent."),
    ("How do volcanoes erupt?", "Volcanic eruptions happen when pressure in the magma chamber gets too high."),
    ("Why is the sky blue?", "Air molecules scatter blue sunlight more than red light."),
    ("What causes ocean tides?", "The moon's gravity pulls the oceans and makes tides."),
    ("How do I cook rice?", "Simmer rinsed rice in salted water until tender."),
    ("How do I bake bread?", "Knead flour, water, yeast and salt, let it rise and bake it."),
    ("What do bees eat?", "Bees eat nectar and pollen from flowers."),
    ("How does a car engine work?", "Fuel burns in the cylinders and pushes the pistons."),
    ("How do solar panels work?", "Photovoltaic cells turn sunlight into electricity."),
    ("What is the capital of Japan?", "Tokyo is the capital of Japan."),
    ("How do vaccines work?", "Vaccines teach the immune system to recognise a virus."),
    ("How can I sleep better?", "Keep a regular schedule and a dark bedroom."),
]


def reference_negatives(records, teacher, cfg: MiningConfig) -> dict[str, list[str]]:
    """A direct reading of the policies on the full score matrix, one query at a time."""
    corpus = list(dict.fromkeys(r["document"] for r in records))
    corpus_embeddings = teacher.encode_documents(corpus).numpy()
    result = {}
    for record in records:
        group = [r for r in records if matching_form(r["query"]) == matching_form(record["query"])]
        query = teacher.encode_queries([group[0]["query"]]).numpy()[0]
        scores = corpus_embeddings @ query
        positives = {matching_form(r["document"]) for r in group}
        positive_score = min(float(scores[corpus.index(r["document"])]) for r in group)
        ranked = [i for i in sorted(range(len(corpus)), key=lambda i: (-scores[i], i)) if matching_form(corpus[i]) not in positives]
        window = ranked[cfg.range_min : cfg.range_max]
        chosen = [
            corpus[i]
            for i in window
            if matching_form(corpus[i]) != matching_form(record["query"])
            and scores[i] <= positive_score - abs(positive_score) * cfg.relative_margin
        ][: cfg.num_negatives]
        result[record["id"]] = chosen if len(chosen) == cfg.num_negatives else None
    return result


def test_mining_a_dataset_matches_the_reference_reading() -> None:
    teacher = get_teacher(TeacherConfig())
    records = [new_record("demo", str(i), q, d, "f", i) for i, (q, d) in enumerate(RECORDS)]
    cfg = dataclasses.replace(MiningConfig(), num_negatives=4, range_max=8, query_batch=5)
    result = mine_hard_negatives(copy.deepcopy(records), None, teacher, cfg)
    expected = reference_negatives(records, teacher, cfg)
    mined = {r["id"]: r["negatives"] for r in result.kept}
    assert mined == {i: n for i, n in expected.items() if n is not None}
    assert {d["record"]["id"] for d in result.dropped} == {i for i, n in expected.items() if n is None}
    assert result.outcomes[FULL] == len(result.kept)
    volcano = [r for r in result.kept if r["query"] == "How do volcanoes erupt?"]
    assert len(volcano) == 2 and volcano[0]["negatives"] == volcano[1]["negatives"]
    assert not {RECORDS[0][1], RECORDS[1][1]} & set(volcano[0]["negatives"])
    for record in result.kept:
        meta = record["meta"]
        assert len(meta["negative_scores"]) == len(record["negatives"]) == 4
        assert meta["negative_scores"] == sorted(meta["negative_scores"], reverse=True)
        assert meta["file"] == "f" and -1 <= meta["positive_score"] <= 1


def test_mining_from_a_separate_corpus_and_padding() -> None:
    teacher = get_teacher(TeacherConfig())
    records = [new_record("demo", str(i), q, d, "f", i) for i, (q, d) in enumerate(RECORDS[:4])]
    corpus = [d for _, d in RECORDS[4:]] + [RECORDS[2][1].upper()]  # a case variant of a positive
    cfg = dataclasses.replace(MiningConfig(), num_negatives=20, too_few="pad", relative_margin=None)
    result = mine_hard_negatives(records, corpus, teacher, cfg)
    assert result.outcomes[PADDED] == 4 and not result.dropped
    for record in result.kept:
        assert RECORDS[2][1].upper() not in record["negatives"] or record["document"] != RECORDS[2][1]
        assert len(set(record["negatives"])) == len(record["negatives"])
        assert all(not math.isnan(s) for s in record["meta"]["negative_scores"])


def test_a_punctuation_variant_of_a_positive_is_no_negative() -> None:
    # Exact dedup treats these as one text (the matching form), so mining's positive guard must too.
    variant = "Magma, and gas pressure push lava out of a volcano's vent!!"
    assert matching_form(variant) == matching_form(RECORDS[0][1]) and variant != RECORDS[0][1]
    teacher = get_teacher(TeacherConfig())
    records = [new_record("demo", str(i), q, d, "f", i) for i, (q, d) in enumerate(RECORDS)]
    records.append(new_record("demo", "variant", "Where does lava come from?", variant, "f", 99))
    cfg = dataclasses.replace(MiningConfig(), num_negatives=3, range_max=8, relative_margin=None)
    for corpus in (None, [d for _, d in RECORDS] + [variant]):
        result = mine_hard_negatives(copy.deepcopy(records), corpus, teacher, cfg)
        volcano = [r for r in result.kept if r["query"] == "How do volcanoes erupt?"]
        assert len(volcano) == 2
        assert all(variant not in r["negatives"] and RECORDS[0][1] not in r["negatives"] for r in volcano)


@pytest.mark.slow
@pytest.mark.realdata
def test_agrees_with_sentence_transformers_on_real_pairs(realdata) -> None:
    pytest.importorskip("datasets")
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from mining_vs_st import compare_small

    agreement = compare_small(realdata, rows=600)
    assert agreement >= 0.99
