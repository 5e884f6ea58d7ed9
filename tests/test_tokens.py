"""Texts to token ids on every core (embedding/tokens.py): the same ids as the tokenizer gives one text at a
time, the same features as sentence-transformers' preprocess, and preprocess itself wherever they would differ."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sentence_transformers import SentenceTransformer

from embedding.models import Teacher, embed_texts
from embedding.tokens import (
    SLICE_TEXTS,
    PreprocessTokenizer,
    StaticTokenizer,
    TransformerTokenizer,
    length_batches,
    model_tokenizer,
    static_module,
)
from schemas.recipe import TeacherConfig

CPU = torch.device("cpu")
# More texts than one slice of the pool, of many lengths, a few empty and a few past any limit.
TEXTS = [("word " * (i % 97)) + f"text number {i}, café ü 日本 🙂" * (i % 5) for i in range(SLICE_TEXTS * 2 + 37)]


@pytest.fixture(scope="module")
def minilm() -> SentenceTransformer:
    return Teacher(TeacherConfig(model="minilm", device="cpu")).model


@pytest.fixture(scope="module")
def static() -> SentenceTransformer:
    return Teacher(TeacherConfig(device="cpu")).model


def test_parallel_ids_equal_the_tokenizer_text_by_text(static: SentenceTransformer) -> None:
    module = static_module(static)
    assert module is not None
    tokenizer = StaticTokenizer(module.tokenizer)
    for limit in (None, 7):
        ids = tokenizer.parallel.encode(TEXTS, limit)
        assert len(ids.lengths) == len(TEXTS)
        for i in (0, 1, 5, SLICE_TEXTS - 1, SLICE_TEXTS, len(TEXTS) - 1):
            expected = module.tokenizer.encode(TEXTS[i], add_special_tokens=False).ids[:limit]
            assert ids.flat[ids.starts[i] : ids.starts[i] + ids.lengths[i]].tolist() == expected


def test_static_features_equal_preprocess(static: SentenceTransformer) -> None:
    module = static_module(static)
    assert module is not None
    rows = np.array([3, 0, 2, 1, 50])
    ours = StaticTokenizer(module.tokenizer).encode(TEXTS, None).features(rows, CPU)
    theirs = module.preprocess([TEXTS[i] for i in rows])
    assert torch.equal(ours["input_ids"], theirs["input_ids"]) and torch.equal(ours["offsets"], theirs["offsets"])


@pytest.mark.parametrize("limit", [None, 12])
def test_transformer_features_equal_preprocess_for_any_rows(minilm: SentenceTransformer, limit: int | None) -> None:
    tokenizer = model_tokenizer(minilm)
    assert isinstance(tokenizer, TransformerTokenizer)
    tokenized = tokenizer.encode(TEXTS, limit)
    rows = np.array([7, 1, 0, 400, 96, 2000])
    ours = tokenized.features(rows, CPU)
    previous = minilm.max_seq_length
    minilm.max_seq_length = limit or previous
    try:
        theirs = minilm.preprocess([TEXTS[i] for i in rows])
    finally:
        minilm.max_seq_length = previous
    assert set(ours) == set(theirs)
    for key, value in theirs.items():
        assert torch.equal(ours[key], value) if isinstance(value, torch.Tensor) else ours[key] == value, key


def test_a_model_the_fast_path_does_not_reproduce_keeps_preprocess(minilm: SentenceTransformer, monkeypatch: pytest.MonkeyPatch) -> None:
    module = next(iter(minilm.children()))
    original = module.preprocess
    monkeypatch.setattr(module, "preprocess", lambda texts, *a, **k: original(["query: " + t for t in texts], *a, **k))
    assert isinstance(model_tokenizer(minilm), PreprocessTokenizer)
    monkeypatch.undo()
    monkeypatch.setattr(module.tokenizer, "padding_side", "left")
    assert isinstance(model_tokenizer(minilm), PreprocessTokenizer)


def test_preprocess_fallback_embeds_like_the_fast_path(minilm: SentenceTransformer) -> None:
    texts = TEXTS[:300]

    def embed(features: dict) -> torch.Tensor:
        return minilm(features)["sentence_embedding"]

    def batches(lengths: np.ndarray) -> list[np.ndarray]:
        return length_batches(lengths, 32, 32 * 64)

    fast = embed_texts(texts, model_tokenizer(minilm), None, batches, embed, 384, torch.float32, CPU)
    slow = embed_texts(texts, PreprocessTokenizer(minilm), None, batches, embed, 384, torch.float32, CPU)
    assert torch.allclose(fast, slow, atol=1e-5)


def test_windows_cover_every_text_once_in_order(static: SentenceTransformer) -> None:
    module = static_module(static)
    assert module is not None
    parallel = StaticTokenizer(module.tokenizer).parallel
    whole = parallel.encode(TEXTS, None)
    seen = 0
    for start, ids in parallel.windows(TEXTS, None, window=500):
        assert start == seen
        assert np.array_equal(ids.lengths, whole.lengths[start : start + 500])
        seen += len(ids.lengths)
    assert seen == len(TEXTS)
    assert list(parallel.windows([], None)) == []


def test_length_batches_sort_longest_first_and_fill_a_token_budget() -> None:
    lengths = np.array([5, 100, 1, 100, 50, 2, 2, 3])
    batches = length_batches(lengths, batch_size=2, token_budget=10)
    assert np.array_equal(np.concatenate(batches), np.argsort(-lengths, kind="stable"))
    assert [len(b) for b in batches] == [2, 2, 3, 1]  # 100 100 | 50 5 | 3 2 2 (3 x 3 <= 10) | 1
    # Short texts fill the budget: 10 tokens a batch of texts 2 long is 5 of them, more than batch_size.
    assert [len(b) for b in length_batches(np.full(12, 2), batch_size=2, token_budget=10)] == [5, 5, 2]
    assert length_batches(np.zeros(0, dtype=np.int64), 2, 10) == []


def test_teacher_encodes_empty_and_single_inputs(tmp_path: Path) -> None:
    teacher = Teacher(TeacherConfig(model="minilm", device="cpu"))
    assert teacher.encode([]).shape == (0, 384)
    assert teacher.encode([""]).shape == (1, 384)
