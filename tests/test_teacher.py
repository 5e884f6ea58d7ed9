"""The teacher: the offline default model, prefixes, order, normalisation, the per-process cache."""
from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest
import torch

from embedding.models import Teacher, TeacherError, get_teacher
from schemas.recipe import TeacherConfig

TEXTS = [
    "How do I cook rice?",
    "Rinse the rice and simmer it in salted water until tender.",
    "The stock market fell sharply after the announcement.",
    "",
    "Volcanoes erupt when magma pressure builds up under the crust.",
]


@pytest.fixture(scope="module")
def teacher() -> Teacher:
    return get_teacher(TeacherConfig())


def test_default_teacher_loads_offline_and_returns_unit_rows(teacher: Teacher) -> None:
    embeddings = teacher.encode(TEXTS)
    assert teacher.dim == 256 and teacher.device.type in ("cpu", "cuda")
    assert embeddings.shape == (len(TEXTS), 256)
    norms = embeddings.float().norm(dim=1)
    assert torch.allclose(norms[[0, 1, 2, 4]], torch.ones(4), atol=1e-3)
    assert norms[3] == 0  # an empty text has no tokens, so no direction


def test_embeddings_match_sentence_transformers_encode(teacher: Teacher) -> None:
    ours = teacher.encode(TEXTS).float().cpu()
    reference = teacher.model.encode(TEXTS, normalize_embeddings=True, convert_to_tensor=True).float().cpu()
    assert torch.allclose(ours, reference, atol=1e-5)


def test_rows_stay_in_input_order_and_related_texts_score_higher(teacher: Teacher) -> None:
    forward = teacher.encode(TEXTS)
    backward = teacher.encode(TEXTS[::-1])
    assert torch.allclose(forward, backward.flip(0), atol=1e-6)
    rice, answer, stocks = forward[0], forward[1], forward[2]
    assert rice @ answer > rice @ stocks


def test_prefixes_apply_per_side() -> None:
    plain = get_teacher(TeacherConfig())
    prefixed = get_teacher(TeacherConfig(query_prefix="search_query: ", document_prefix="search_document: "))
    assert torch.allclose(prefixed.encode_queries(TEXTS[:1]), plain.encode(["search_query: " + TEXTS[0]]))
    assert torch.allclose(prefixed.encode_documents(TEXTS[:1]), plain.encode(["search_document: " + TEXTS[0]]))
    assert torch.allclose(plain.encode_queries(TEXTS[:1]), plain.encode_documents(TEXTS[:1]))
    assert prefixed.fingerprint == plain.fingerprint  # prefixes are keyed separately by the embedding cache


def test_max_seq_length_truncates_tokens() -> None:
    short = get_teacher(TeacherConfig(max_seq_length=3))
    a, b = short.encode(["one two three four five", "one two three something else entirely"])
    assert torch.allclose(a, b)
    assert short.fingerprint != get_teacher(TeacherConfig()).fingerprint


def test_get_teacher_loads_once_per_config_across_threads() -> None:
    config = TeacherConfig(batch_size=17)
    found: list[Teacher] = []
    threads = [threading.Thread(target=lambda: found.append(get_teacher(TeacherConfig(batch_size=17)))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(t) for t in found}) == 1 and found[0] is get_teacher(config)
    assert get_teacher(TeacherConfig(batch_size=18)) is not found[0]


def test_missing_model_is_a_clear_error_and_never_downloads(tmp_path: Path) -> None:
    with pytest.raises(TeacherError, match="never downloads"):
        Teacher(TeacherConfig(model=str(tmp_path / "no-such-model")))


def test_forcing_cuda_without_a_gpu_is_a_clear_error() -> None:
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(TeacherError, match="CUDA"):
        Teacher(TeacherConfig(device="cuda"))


def test_transformer_models_load_from_a_local_folder(tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from teacher_speed import build_random_bert

    folder = build_random_bert(tmp_path, hidden=32, layers=1, heads=2, max_seq_length=32)
    teacher = Teacher(TeacherConfig(model=str(folder), batch_size=2))
    embeddings = teacher.encode(TEXTS)
    assert embeddings.shape == (len(TEXTS), 32)
    assert torch.allclose(embeddings[[0, 1, 2, 4]].float().norm(dim=1), torch.ones(4), atol=1e-3)
    reference = teacher.model.encode(TEXTS, normalize_embeddings=True, convert_to_tensor=True)
    assert torch.allclose(embeddings, reference, atol=1e-5)
    assert torch.allclose(teacher.encode(TEXTS[::-1]).flip(0), embeddings, atol=1e-5)
