"""The training loop end to end on tiny datasets: run folder, saved model, exact resume after SIGKILL (also with
one-shard batches and the Matryoshka loss), fallback from a damaged checkpoint, GradCache in the loop, CPU
threads and gradient clipping, config errors, tampered shards."""
from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from schemas.config import ConfigError
from storage.builds import ShardError
from tests.test_trainer_data import DOCUMENT_WORDS, QUERY_WORDS, make_records, write_records
from tests.test_trainer_evaluate import write_beir
from trainer.checkpoint import load_latest_checkpoint
from trainer.config import load_train_config
from trainer.model import resolve_cpu_threads
from trainer.runlog import read_metrics
from trainer.train import PhaseClock, Trainer, clip_gradients, run_training

REPO = str(Path(__file__).resolve().parents[1])


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> str:
    """Two small datasets (one with hard negatives) and a BEIR folder."""
    root = tmp_path_factory.mktemp("corpus")
    write_records(root / "out", make_records("gooaq", 240, negatives=3), kind="triplet", per_shard=90)
    write_records(root / "out", make_records("quora", 160), per_shard=70)
    write_beir(
        str(root / "beir"),
        {f"d{i}": f"{DOCUMENT_WORDS[i]} of the answer" for i in range(30)},
        {f"q{i}": f"{QUERY_WORDS[i]} with a question" for i in range(30)},
        [(f"q{i}", f"d{i}", 1) for i in range(30)],
    )
    return str(root)


def write_config(folder: Path, corpus: str, **overrides: Any) -> str:
    config: dict[str, Any] = {
        "output": str(folder / "run"),
        "datasets": [os.path.join(corpus, "out")],
        "data": {"shuffle_buffer": 50, "held_out_fraction": 0.1, "num_negatives": 2, "max_query_tokens": 16, "max_document_tokens": 32},
        "loss": {},
        "optimizer": {"lr": 0.05, "weight_decay": 0.0, "warmup_steps": 2},
        "training": {"steps": 8, "batch_size": 16, "checkpoint_every": 2, "keep_checkpoints": 3},
        "evaluation": {"every": 4, "max_queries": 50, "beir": [{"path": os.path.join(corpus, "beir")}]},
    }
    for key, value in overrides.items():
        block, _, name = key.partition("__")
        if name:
            config[block][name] = value
        else:
            config[block] = value
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "train.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def train_losses(run_dir: str) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in read_metrics(run_dir) if "loss" in r}


@pytest.fixture(scope="module")
def straight_run(corpus, tmp_path_factory) -> str:
    """An uninterrupted 8-step run that the other tests compare with."""
    return run_training(write_config(tmp_path_factory.mktemp("straight"), corpus))


def test_run_folder_holds_model_metrics_plots_and_last_checkpoints(straight_run):
    from sentence_transformers import SentenceTransformer

    names = set(os.listdir(straight_run))
    assert {"model", "metrics.jsonl", "loss.png", "metrics.png", "config.json", "checkpoints"} <= names
    assert sorted(os.listdir(os.path.join(straight_run, "checkpoints"))) == ["step-00000004", "step-00000006", "step-00000008"]
    rows = read_metrics(straight_run)
    losses = train_losses(straight_run)
    assert sorted(losses) == list(range(1, 9)) and all(v > 0 for v in losses.values())
    train_rows = [r for r in rows if "loss" in r]
    assert {r["dataset"] for r in train_rows} <= {"gooaq", "quora"}
    assert train_rows[0]["lr"] == pytest.approx(0.025) and train_rows[1]["lr"] == pytest.approx(0.05)
    assert all(r["pairs_per_s"] > 0 and r["tokens_per_s"] > 0 for r in train_rows)
    evaluated = {(r["step"], r["eval"]) for r in rows if "eval" in r}
    assert evaluated == {(s, n) for s in (0, 4, 8) for n in ("heldout/gooaq", "heldout/quora", "beir/beir")}
    model = SentenceTransformer(os.path.join(straight_run, "model"), device="cpu")
    embeddings = model.encode(["apple question", "chess answer"])
    assert embeddings.shape == (2, 256)


def test_training_raises_held_out_and_beir_scores(straight_run):
    rows = [r for r in read_metrics(straight_run) if "eval" in r]
    for name in ("beir/beir", "heldout/quora"):
        before = next(r["ndcg@10"] for r in rows if r["eval"] == name and r["step"] == 0)
        after = next(r["ndcg@10"] for r in rows if r["eval"] == name and r["step"] == 8)
        assert after > before, name


def _train_then_sigkill(config_path: str, kill_at_loss_call: int) -> None:
    """Run in a child process: train, and SIGKILL itself in the middle of a step (inside the loss)."""
    import trainer.train as train_module

    calls = {"n": 0}
    real_info_nce = train_module.info_nce

    def dying_info_nce(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == kill_at_loss_call:
            os.kill(os.getpid(), signal.SIGKILL)
        return real_info_nce(*args, **kwargs)

    train_module.info_nce = dying_info_nce
    train_module.run_training(config_path)


@pytest.mark.slow
def test_sigkilled_run_resumes_with_the_same_losses(corpus, straight_run, tmp_path):
    config = write_config(tmp_path, corpus)
    # A fresh interpreter (forking a process that holds torch's thread pools can deadlock).
    child = subprocess.run(
        [sys.executable, "-c", f"from tests.test_trainer_train import _train_then_sigkill; _train_then_sigkill({config!r}, 6)"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]  # died inside step 6
    run_dir = str(tmp_path / "run")
    assert load_latest_checkpoint(run_dir).step == 4
    assert max(train_losses(run_dir)) == 5
    with pytest.raises(ConfigError, match="already holds a run; pass --resume"):
        run_training(config)
    run_training(config, resume=True)
    assert train_losses(run_dir) == train_losses(straight_run)
    rows = read_metrics(run_dir)
    assert [r["step"] for r in rows if "loss" in r] == list(range(1, 9))  # no step logged twice


@pytest.mark.slow
def test_one_shard_matryoshka_run_resumes_after_sigkill_and_saves_its_dims(corpus, tmp_path):
    from sentence_transformers import SentenceTransformer

    overrides: dict[str, Any] = {
        "data__batch_from": "shard",
        "loss": {"matryoshka_dims": [256, 64, 16], "matryoshka_weights": [1.0, 0.5, 0.25], "chunk_size": 5},
        "training__steps": 4,
        "evaluation": {"every": None, "before_training": False, "max_queries": 50},
    }
    straight = run_training(write_config(tmp_path / "straight", corpus, **overrides))
    config = write_config(tmp_path / "killed", corpus, **overrides)
    child = subprocess.run(
        [sys.executable, "-c", f"from tests.test_trainer_train import _train_then_sigkill; _train_then_sigkill({config!r}, 3)"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]  # died inside step 3
    run_dir = str(tmp_path / "killed" / "run")
    assert load_latest_checkpoint(run_dir).step == 2
    run_training(config, resume=True)
    assert train_losses(run_dir) == train_losses(straight) and sorted(train_losses(run_dir)) == [1, 2, 3, 4]
    rows = read_metrics(run_dir)
    assert all(r["shard"].startswith("shard-") for r in rows if "loss" in r)
    final = [r for r in rows if "eval" in r]
    assert {r["eval"] for r in final} == {"heldout/gooaq", "heldout/quora"}
    assert all(0 <= r[f"ndcg@10_dim{d}"] <= 1 for r in final for d in (256, 64, 16))
    assert all(r["ndcg@10_dim256"] == pytest.approx(r["ndcg@10"]) for r in final)
    model_dir = os.path.join(run_dir, "model")
    with open(os.path.join(model_dir, "config_sentence_transformers.json"), encoding="utf-8") as f:
        assert json.load(f)["matryoshka_dims"] == [256, 64, 16]
    truncated = SentenceTransformer(model_dir, device="cpu", truncate_dim=64)
    assert truncated.encode(["apple question", "chess answer"]).shape == (2, 64)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"data__batch_from": "shard", "data__alpha": 0.5}, r"train.yaml: data.alpha: batch_from 'shard' .* alpha must be 1"),
        ({"data__batch_from": "shards"}, r"train.yaml: data.batch_from: expected one of 'dataset' \| 'shard'"),
        ({"loss__matryoshka_dims": [64, 64]}, r"train.yaml: loss.matryoshka_dims: expected distinct dimensions greater than 0"),
        ({"loss__matryoshka_weights": [1.0]}, r"train.yaml: loss.matryoshka_weights: expected one weight per loss.matryoshka_dims entry"),
        ({"loss__matryoshka_dims": [512, 64]}, r"train.yaml: loss.matryoshka_dims: 512 exceeds the student's embedding dimension 256"),
    ],
)
def test_matryoshka_and_one_shard_config_errors(corpus, tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message) as err:
        run_training(write_config(tmp_path, corpus, **overrides))
    assert "\n" not in str(err.value)


def test_damaged_latest_checkpoint_falls_back_to_the_previous_one(corpus, straight_run, tmp_path, caplog):
    shutil.copytree(straight_run, tmp_path / "run")
    config = write_config(tmp_path, corpus)
    state = tmp_path / "run" / "checkpoints" / "step-00000008" / "state.pt"
    data = bytearray(state.read_bytes())
    data[len(data) // 2] ^= 0xFF
    state.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="pairmill.trainer"):
        run_training(config, resume=True)  # resumes at step 6 and trains steps 7 and 8 again
    assert "step-00000008 is damaged" in caplog.text and "falling back" in caplog.text
    assert train_losses(str(tmp_path / "run")) == train_losses(straight_run)
    assert load_latest_checkpoint(str(tmp_path / "run")).step == 8


def test_grad_cache_and_plain_loss_train_alike(corpus, tmp_path):
    common = {"training__steps": 3, "evaluation": {"every": None, "before_training": False}, "loss": {"symmetric": True, "learn_temperature": True}}
    plain = run_training(write_config(tmp_path / "plain", corpus, **common))
    cached = run_training(write_config(tmp_path / "cached", corpus, **{**common, "loss": {**common["loss"], "chunk_size": 5}}))
    plain_losses, cached_losses = train_losses(plain), train_losses(cached)
    assert plain_losses.keys() == cached_losses.keys()
    for step in plain_losses:
        assert cached_losses[step] == pytest.approx(plain_losses[step], rel=1e-5)
    temperatures = [r["temperature"] for r in read_metrics(cached) if "loss" in r]
    assert temperatures[-1] != pytest.approx(0.02)


def test_a_step_embeds_texts_longest_first_and_scores_them_in_batch_order(corpus, tmp_path):
    """A side is embedded longest text first (each GradCache chunk pads to its own longest); the loss still pairs
    query i with document i of the batch: it equals the loss of the sides embedded in batch order."""
    config = load_train_config(write_config(tmp_path, corpus, loss={"chunk_size": 5}, data={
        "shuffle_buffer": 50, "held_out_fraction": 0.1, "num_negatives": 2, "max_query_tokens": 16, "max_document_tokens": 32}))
    trainer = Trainer(config, resume=False)
    batch = trainer.sampler.next_batch()
    data = config.data
    lengths = trainer.encoder.tokenize(batch.documents, data.max_document_tokens).lengths
    assert not (lengths[:-1] >= lengths[1:]).all(), "the batch's documents are not already longest first"
    with torch.no_grad():
        sides = [trainer.encoder.embed(trainer.encoder.features(texts, limit)) if texts else None for texts, limit in (
            (batch.queries, data.max_query_tokens), (batch.documents, data.max_document_tokens), (batch.flat_negatives, data.max_document_tokens))]
        expected = float(trainer._loss(*sides))
    loss, _ = trainer.train_step(batch, PhaseClock())
    assert loss == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(("cpu_threads", "expected"), [(None, 1), (2, 2)])
def test_cpu_threads_hold_while_training_and_are_restored_after(corpus, tmp_path, monkeypatch, cpu_threads, expected):
    seen: list[int] = []
    train_step = Trainer.train_step

    def recording(self, batch, clock):
        seen.append(torch.get_num_threads())
        return train_step(self, batch, clock)

    monkeypatch.setattr(Trainer, "train_step", recording)
    config = write_config(tmp_path, corpus, model={"device": "cpu", "cpu_threads": cpu_threads}, training__steps=2, evaluation={"every": None})
    previous = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        run_training(config)
        assert seen == [expected, expected]  # the default student trains on one thread unless told otherwise
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(previous)


@pytest.mark.parametrize("max_norm", [0.5, 2.0, 10.0])
def test_clip_gradients_matches_clip_grad_norm_and_leaves_gradients_within_the_norm_untouched(max_norm):
    torch.manual_seed(0)
    ours = [torch.nn.Parameter(torch.zeros(30)), torch.nn.Parameter(torch.zeros(4, 5))]
    theirs = [torch.nn.Parameter(torch.zeros(30)), torch.nn.Parameter(torch.zeros(4, 5))]
    for mine, reference in zip(ours, theirs, strict=True):
        mine.grad = torch.randn(mine.shape) * 0.3  # a total norm of about 2
        reference.grad = mine.grad.clone()
    versions = [p.grad._version for p in ours]
    norm = float(torch.nn.utils.clip_grad_norm_(theirs, max_norm))
    clip_gradients(ours, max_norm)
    for mine, reference in zip(ours, theirs, strict=True):
        assert torch.allclose(mine.grad, reference.grad, rtol=1e-6, atol=0)
    scaled = [p.grad._version != v for p, v in zip(ours, versions, strict=True)]
    assert scaled == [norm > max_norm] * 2  # the scaling pass ran only where it changes the gradients


def test_cpu_threads_default_to_one_for_a_static_student_on_the_cpu_only():
    cpu, cuda = torch.device("cpu"), torch.device("cuda", 0)
    assert resolve_cpu_threads(None, cpu, static=True) == 1
    assert resolve_cpu_threads(None, cpu, static=False) is None
    assert resolve_cpu_threads(4, cpu, static=False) == 4
    assert resolve_cpu_threads(None, cuda, static=True) is None and resolve_cpu_threads(4, cuda, static=True) is None


def test_transformer_student_with_gradient_checkpointing(corpus, tmp_path):
    from sentence_transformers import SentenceTransformer

    from trainer.model import build_bert_student

    student = build_bert_student(str(tmp_path / "bert"), hidden_size=32, layers=2, heads=2, intermediate_size=64, max_tokens=64)
    config = write_config(
        tmp_path, corpus, model={"student": student, "gradient_checkpointing": True}, training__steps=2,
        evaluation={"every": None, "before_training": False}, optimizer={"lr": 1e-3},
    )
    run_dir = run_training(config)
    assert sorted(train_losses(run_dir)) == [1, 2]
    trained = SentenceTransformer(os.path.join(run_dir, "model"), device="cpu")
    untrained = SentenceTransformer(student, device="cpu")
    assert not torch.allclose(trained[0].auto_model.embeddings.word_embeddings.weight, untrained[0].auto_model.embeddings.word_embeddings.weight)


def test_tampered_shard_stops_the_run_with_a_clear_error(corpus, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(os.path.join(corpus, "out"), out)
    shard = out / "quora" / "shard-00001.jsonl.zst"
    data = bytearray(shard.read_bytes())
    data[10] ^= 0x01
    shard.write_bytes(bytes(data))
    config = write_config(tmp_path, corpus, datasets=[str(out)])
    with pytest.raises(ShardError, match=r"quora/shard-00001.jsonl.zst"):
        run_training(config)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"optimiser": {}}, r"train.yaml: unknown key 'optimiser'"),
        ({"loss__temperature": -1}, r"train.yaml: loss.temperature: must be greater than 0"),
        ({"training__batch_size": "big"}, r"train.yaml: training.batch_size: expected integer"),
        ({"loss__chunk_size": 64}, r"train.yaml: loss.chunk_size: must not exceed training.batch_size"),
        ({"data__prefixes": {"quora": {"querry": "x"}}}, r"train.yaml: data.prefixes.quora: unknown key 'querry'"),
        ({"training__batch_size": 512}, r"train.yaml: training.batch_size: dataset '\w+' .* fewer than one batch of 512"),
        ({"model": {"student": "/nowhere/model"}}, r"train.yaml: model.student: '/nowhere/model' is neither a local model folder"),
    ],
)
def test_config_errors_are_one_line_and_name_file_and_key(corpus, tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message) as err:
        run_training(write_config(tmp_path, corpus, **overrides))
    assert "\n" not in str(err.value)


def test_config_reads_exponent_numbers_and_fills_defaults(corpus, tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(f"output: {tmp_path}/run\ndatasets: {corpus}/out\noptimizer:\n  lr: 2e-5\n")
    config = load_train_config(str(path))
    assert config.optimizer.lr == 2e-5 and config.datasets == [f"{corpus}/out"]
    assert config.loss.temperature == 0.02 and config.data.num_negatives == 7
    assert json.loads(json.dumps(config.as_dict()))["training"]["batch_size"] == 256


def test_demo_train_config_is_valid():
    config = load_train_config(os.path.join(REPO, "recipes", "train_demo.yaml"))
    assert config.model.student == "default" and config.datasets == ["out/demo/built"]
