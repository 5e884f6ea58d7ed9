"""Trainer data: dataset folders written here, the held-out hash, block shuffling, exact resume of the
data position, one dataset per batch with size**alpha mixing, one-shard batches drawn by records left, prefixes,
negatives sampling."""
from __future__ import annotations

import collections
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from schemas.config import ConfigError
from schemas.recipe import Prefixes
from storage.builds import ShardError
from tests.helpers import write_dataset
from text.hashing import in_fraction
from trainer.config import DataConfig
from trainer.data import BatchSampler, RecordStream, ShardBatchSampler, make_sampler, open_training_sets
from trainer.prefixes import CLASSIFICATION, CLUSTERING, SEARCH, resolve_prefixes, table_prefixes

# Each topic has one word on the query side and an unrelated word on the document side: an untrained model
# cannot match them, a trained one learns to.
QUERY_WORDS = [
    "apple", "river", "candle", "mountain", "violin", "tiger", "pencil", "harbor", "garden", "rocket",
    "wallet", "thunder", "castle", "blanket", "mirror", "orange", "planet", "ladder", "forest", "kettle",
    "bridge", "dragon", "anchor", "island", "lemon", "saddle", "tunnel", "feather", "engine", "meadow",
    "cactus", "helmet", "lantern", "marble", "pirate", "glacier", "bottle", "canyon", "falcon", "piano",
]
DOCUMENT_WORDS = [
    "chess", "copper", "whisper", "velvet", "banner", "cabinet", "eclipse", "fabric", "granite", "hammer",
    "jungle", "kernel", "lobster", "magnet", "needle", "oyster", "parrot", "quartz", "ribbon", "saucer",
    "timber", "umbrella", "vapor", "walnut", "yogurt", "zipper", "bamboo", "cobalt", "dolphin", "emerald",
    "funnel", "gravel", "hornet", "iguana", "jasmine", "kayak", "lizard", "mango", "nectar", "olive",
]
FILLER = ["the", "a", "of", "with", "and", "very", "some", "more", "for", "about"]


def topic_of(text: str) -> int:
    """The topic index of a query or document text made by ``make_records`` (prefixes are skipped)."""
    for word in text.split():
        for words in (QUERY_WORDS, DOCUMENT_WORDS):
            if word in words:
                return words.index(word)
    raise ValueError(text)


def make_records(dataset: str, n: int, negatives: int = 0, topics: int = 40) -> list[dict[str, Any]]:
    """Pairs whose query and document share a topic (through different words); ids and queries are unique."""
    rng = np.random.default_rng(len(dataset) + n)
    records = []
    for i in range(n):
        topic = i % topics
        records.append({
            "id": f"{dataset}/{i}",
            "dataset": dataset,
            "query": f"{QUERY_WORDS[topic]} {' '.join(rng.choice(FILLER, size=2))} item {i}",
            "document": f"{DOCUMENT_WORDS[topic]} {' '.join(rng.choice(FILLER, size=3))}",
            "negatives": [f"{DOCUMENT_WORDS[(topic + j + 1) % topics]} {rng.choice(FILLER)}" for j in range(negatives)],
            "meta": {"row": i},
        })
    return records


def write_records(folder, records: list[dict[str, Any]], kind: str = "paired", per_shard: int = 100) -> str:
    """A dataset folder named after the records' dataset under ``folder``; returns its path."""
    dataset = records[0]["dataset"]
    return str(write_dataset(Path(folder) / dataset, dataset, records, per_shard=per_shard, kind=kind))


def test_held_out_is_a_stable_share_of_ids():
    ids = [f"quora/{i}" for i in range(20000)]
    held = [i for i in ids if in_fraction(i, 0.1)]
    assert 1800 < len(held) < 2200
    assert held == [i for i in ids if in_fraction(i, 0.1)]
    assert not any(in_fraction(i, 0.0) for i in ids[:1000])
    assert all(in_fraction(i, 1.0) for i in ids[:1000])


def _stream(path: str, seed: int = 0, buffer: int = 64, held_out: float = 0.1) -> RecordStream:
    (training_set,) = open_training_sets([path], DataConfig(held_out_fraction=held_out), 8, "train.yaml")
    return RecordStream(training_set, seed, buffer, held_out)


def test_stream_shuffles_covers_every_training_record_once_per_epoch_and_skips_held_out(tmp_path):
    records = make_records("pairs", 330)
    stream = _stream(write_records(str(tmp_path), records, per_shard=70))
    training_ids = [r["id"] for r in records if not in_fraction(r["id"], 0.1)]
    first = [stream.next()["id"] for _ in range(len(training_ids))]
    second = [stream.next()["id"] for _ in range(len(training_ids))]
    assert sorted(first) == sorted(training_ids) == sorted(second)
    assert first != training_ids and first != second  # shuffled, and differently each epoch
    assert stream.epoch == 1


def test_stream_resumes_exactly_from_its_state(tmp_path):
    path = write_records(str(tmp_path), make_records("pairs", 330), per_shard=70)
    straight = _stream(path)
    expected = [straight.next()["id"] for _ in range(700)]
    for stop in (0, 1, 63, 64, 150, 290, 301):
        first = _stream(path)
        got = [first.next()["id"] for _ in range(stop)]
        state = first.state_dict()
        resumed = _stream(path)
        resumed.load_state_dict(state)
        got += [resumed.next()["id"] for _ in range(700 - stop)]
        assert got == expected, stop


def test_seed_changes_the_order(tmp_path):
    path = write_records(str(tmp_path), make_records("pairs", 200))
    orders = [tuple(s.next()["id"] for _ in range(50)) for s in (_stream(path, seed=1), _stream(path, seed=2), _stream(path, seed=1))]
    assert orders[0] != orders[1] and orders[0] == orders[2]


def test_tampered_shard_stops_training_with_the_shard_error(tmp_path):
    path = write_records(str(tmp_path), make_records("pairs", 200), per_shard=100)
    shard = os.path.join(path, "shard-00001.jsonl.zst")
    data = bytearray(Path(shard).read_bytes())
    data[-3] ^= 0xFF
    Path(shard).write_bytes(bytes(data))
    stream = _stream(path, buffer=1000)
    with pytest.raises(ShardError, match=re.escape("shard-00001.jsonl.zst")):
        stream.next()


def test_dataset_that_is_all_held_out_is_a_clear_error(tmp_path):
    path = write_records(str(tmp_path), make_records("pairs", 40))
    (training_set,) = open_training_sets([path], DataConfig(held_out_fraction=0.0), 8, "train.yaml")
    stream = RecordStream(training_set, 0, 16, held_out_fraction=1.0)
    with pytest.raises(ConfigError, match="no training records"):
        stream.next()


def test_batches_come_from_one_dataset_mixed_by_size_to_the_alpha(tmp_path):
    write_records(str(tmp_path), make_records("big", 900, negatives=10), kind="triplet", per_shard=300)
    write_records(str(tmp_path), make_records("small", 100))
    for alpha, expected_big in ((1.0, 0.9), (0.0, 0.5)):
        data = DataConfig(alpha=alpha, num_negatives=3, shuffle_buffer=200, use_prefixes=False)
        sampler = BatchSampler(open_training_sets([str(tmp_path)], data, 16, "t.yaml"), data, 16, seed=0)
        assert sorted(s.name for s in sampler.sets) == ["big", "small"]
        counts = collections.Counter()
        for _ in range(400):
            batch = sampler.next_batch()
            counts[batch.dataset] += 1
            assert len(batch) == 16
            assert all(topic_of(q) == topic_of(d) for q, d in zip(batch.queries, batch.documents, strict=True))
            assert len(set(batch.queries)) == 16
            if batch.dataset == "big":
                assert all(len(n) == 3 for n in batch.negatives)
                assert len({len(set(n)) for n in batch.negatives}) == 1
            else:
                assert all(n == [] for n in batch.negatives)
        assert abs(counts["big"] / 400 - expected_big) < 0.07, (alpha, counts)


def test_sampler_state_resumes_batches_exactly(tmp_path):
    write_records(str(tmp_path), make_records("big", 500, negatives=9), kind="triplet", per_shard=120)
    write_records(str(tmp_path), make_records("small", 150))
    data = DataConfig(shuffle_buffer=50, num_negatives=4)

    def sampler() -> BatchSampler:
        return BatchSampler(open_training_sets([str(tmp_path)], data, 8, "t.yaml"), data, 8, seed=3)

    straight = sampler()
    expected = [straight.next_batch() for _ in range(120)]
    first = sampler()
    for _ in range(47):
        first.next_batch()
    resumed = sampler()
    resumed.load_state_dict(first.state_dict())
    assert [resumed.next_batch() for _ in range(73)] == expected[47:]


def test_open_training_sets_errors_name_the_problem(tmp_path):
    small = write_records(str(tmp_path / "a"), make_records("tiny", 20))
    with pytest.raises(ConfigError, match=r"t.yaml: training.batch_size: dataset 'tiny'"):
        open_training_sets([small], DataConfig(), 64, "t.yaml")
    write_records(str(tmp_path / "b"), make_records("tiny", 20))
    with pytest.raises(ConfigError, match="dataset 'tiny' is in both"):
        open_training_sets([str(tmp_path / "a"), str(tmp_path / "b")], DataConfig(), 4, "t.yaml")
    labeled = write_records(str(tmp_path / "c"), make_records("labels", 20), kind="labeled-pair")
    with pytest.raises(ConfigError, match="objective 'labeled-pair'"):
        open_training_sets([labeled], DataConfig(), 4, "t.yaml")
    with pytest.raises(ConfigError, match=re.escape("data.prefixes: 'nope'")):
        open_training_sets([small], DataConfig(prefixes={"nope": Prefixes()}), 4, "t.yaml")


def test_prefixes_come_from_override_then_manifest_then_nomic_table():
    assert table_prefixes("quora") == CLASSIFICATION
    assert table_prefixes("quora_mined") == CLASSIFICATION
    assert table_prefixes("stackexchange_title_body") == CLUSTERING
    assert table_prefixes("reddit_title_body_2019") == CLUSTERING
    assert table_prefixes("gooaq") == SEARCH
    assert table_prefixes("my_faq") == SEARCH
    empty = {"query": "", "document": ""}
    assert resolve_prefixes("quora", empty, {}, True) == Prefixes("classification: ", "classification: ")
    assert resolve_prefixes("quora", {"query": "q: ", "document": "d: "}, {}, True) == Prefixes("q: ", "d: ")
    override = {"quora": Prefixes("x ", "y ")}
    assert resolve_prefixes("quora", {"query": "q: ", "document": "d: "}, override, True) == Prefixes("x ", "y ")
    assert resolve_prefixes("quora", empty, override, False) == Prefixes("", "")


def test_batches_carry_the_prefixes(tmp_path):
    write_records(str(tmp_path), make_records("gooaq", 60, negatives=2), kind="triplet")
    data = DataConfig(num_negatives=1)
    sampler = BatchSampler(open_training_sets([str(tmp_path)], data, 8, "t.yaml"), data, 8, seed=0)
    batch = sampler.next_batch()
    assert all(q.startswith("search_query: ") and q.split()[1] in QUERY_WORDS for q in batch.queries)
    assert all(d.startswith("search_document: ") and d.split()[1] in DOCUMENT_WORDS for d in batch.documents)
    assert all(len(n) == 1 and n[0].startswith("search_document: ") for n in batch.negatives)


def test_batch_part_splits_rows_between_processes():
    from trainer.data import Batch

    batch = Batch("d", ["q0", "q1", "q2", "q3"], ["d0", "d1", "d2", "d3"], [["n0"], [], ["n2a", "n2b"], []])
    second = batch.part(1, 2)
    assert (second.queries, second.documents, second.flat_negatives) == (["q2", "q3"], ["d2", "d3"], ["n2a", "n2b"])



def _row(text: str) -> int:
    """The record index ``make_records`` wrote into a query ("... item 17")."""
    return int(text.rsplit(" ", 1)[1])


def _shard_sampler(root, seed: int, batch_size: int, **data: Any) -> BatchSampler | ShardBatchSampler:
    config = DataConfig(batch_from="shard", use_prefixes=False, **data)
    return make_sampler(open_training_sets([str(root)], config, batch_size, "t.yaml"), config, batch_size, seed)


def test_one_shard_batches_drain_every_dataset_together_once_per_epoch(tmp_path):
    write_records(str(tmp_path), make_records("big", 1200), per_shard=200)
    write_records(str(tmp_path), make_records("small", 400), per_shard=200)
    last_small, big_in_first_half = [], []
    for seed in range(10):
        sampler = _shard_sampler(tmp_path, seed, 20, shuffle_buffer=64, held_out_fraction=0.0)
        assert isinstance(sampler, ShardBatchSampler)
        batches = [sampler.next_batch() for _ in range(160)]  # two epochs of 60 + 20 batches
        for batch in batches:
            shards = {_row(q) // 200 for q in batch.queries}
            assert shards == {int(batch.shard.split("-")[1].split(".")[0])}, batch.shard  # every row from the batch's shard
        for epoch in (batches[:80], batches[80:]):
            rows = collections.Counter((b.dataset, _row(q)) for b in epoch for q in b.queries)
            assert len(rows) == 1600 and set(rows.values()) == {1}  # each record exactly once per epoch
        datasets = [b.dataset for b in batches[:80]]
        last_small.append(max(i for i, name in enumerate(datasets) if name == "small"))
        big_in_first_half.append(datasets[:40].count("big") / 40)
    # Drawn in proportion to the records left, batches are balls drawn from an urn without replacement: small's
    # last batch is expected at index 76 of 0..79 (standard deviation about 3), and big makes up 3/4 throughout.
    assert np.mean(last_small) > 72, last_small
    assert abs(np.mean(big_in_first_half) - 0.75) < 0.06, big_in_first_half


def test_one_shard_sampler_resumes_batches_exactly(tmp_path):
    # Shards of 120, 120, 120, 120 and 20 records and blocks of 50: batches cross blocks, shard ends are
    # skipped, and the last big shard never fills a batch.
    write_records(str(tmp_path), make_records("big", 500, negatives=9), kind="triplet", per_shard=120)
    write_records(str(tmp_path), make_records("small", 150), per_shard=70)

    def sampler() -> BatchSampler | ShardBatchSampler:
        return _shard_sampler(tmp_path, 3, 16, shuffle_buffer=50, num_negatives=4)

    straight = sampler()
    expected = [straight.next_batch() for _ in range(70)]
    assert {b.dataset for b in expected} == {"big", "small"} and all(len(b) == 16 for b in expected)
    for stop in (0, 1, 13, 29, 30, 47):
        first = sampler()
        for _ in range(stop):
            first.next_batch()
        resumed = sampler()
        resumed.load_state_dict(first.state_dict())
        assert [resumed.next_batch() for _ in range(70 - stop)] == expected[stop:], stop
    dataset_mode = BatchSampler(straight.sets, DataConfig(), 16, 3)
    with pytest.raises(ConfigError, match=r"written with data\.batch_from 'shard'"):
        dataset_mode.load_state_dict(straight.state_dict())


def test_one_shard_batches_need_a_shard_that_fills_a_batch(tmp_path):
    write_records(str(tmp_path), make_records("tiny_shards", 200), per_shard=30)
    with pytest.raises(ConfigError, match=r"t.yaml: training.batch_size: dataset 'tiny_shards' .* has no shard with 32 training records"):
        _shard_sampler(tmp_path, 0, 32)
