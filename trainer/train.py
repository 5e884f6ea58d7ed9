"""The training loop behind `pairmill train CONFIG`: one dataset per batch, InfoNCE (+ GradCache), AdamW,
checkpoints that resume exactly, evaluation before, during and after, a metrics log and plots.

Run folder (``output`` of the config)::

    config.json            the config with every default filled in
    metrics.jsonl          one row per step (loss, lr, temperature, dataset [and shard], throughput) and per evaluation
    loss.png, metrics.png  plots of both
    checkpoints/step-N/    the last few checkpoints (see trainer.checkpoint)
    model/                 the final model; SentenceTransformer("RUN/model") loads it (with loss.matryoshka_dims,
                           its config_sentence_transformers.json lists them: pass one as truncate_dim)

The run folder may be on any Beam filesystem (``output: gs://BUCKET/runs/x``): training then writes a local
working copy (``storage.mirror``: ``<cache>/runs/<hash>``) and uploads what changed after every checkpoint
and at the end, each checkpoint's ``checkpoint.json`` last; ``--resume`` first copies the remote run folder
down, so a run continues on another machine.
"""
from __future__ import annotations

import json
import logging
import math
import os
import random
import shutil
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from schemas.config import ConfigError
from storage.files import is_local
from storage.mirror import Mirror, local_run_folder
from trainer.checkpoint import CHECKPOINTS, MARKER, Checkpoint, has_checkpoints, load_latest_checkpoint, write_checkpoint
from trainer.config import OptimizerConfig, TrainConfig, load_train_config
from trainer.data import Batch, make_sampler, open_training_sets
from trainer.distributed import average_gradients, init_from_environment, rank_and_world, sum_gradients
from trainer.evaluate import RetrievalSet, evaluate, held_out_set, load_beir
from trainer.loss import Temperature, grad_cache_backward, info_nce, plain_backward
from trainer.model import Encoder, StaticGradient, load_student, resolve_autocast, resolve_cpu_threads, resolve_device, save_model, torch_threads
from trainer.runlog import MetricsLog, save_plots

log = logging.getLogger("pairmill.trainer")

FINAL_MODEL = "model"


def run_training(config_path: str, resume: bool = False, output: str | None = None) -> str:
    """`pairmill train CONFIG [--resume] [--output DIR]`: train, and return the run folder (the final model is RUN/model)."""
    config = load_train_config(config_path)
    if output:
        config.output = output
    return train(config, resume=resume)


def build_optimizer(model: torch.nn.Module, temperature: Temperature, config: OptimizerConfig) -> torch.optim.AdamW:
    """AdamW; biases, norms (any parameter of fewer than 2 dimensions or named *norm*) and the temperature get no decay."""
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            (no_decay if parameter.ndim < 2 or "norm" in name.lower() else decay).append(parameter)
    no_decay += [p for p in temperature.parameters() if p.requires_grad]
    groups: list[dict[str, Any]] = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    # The fused kernel is several times faster than the per-tensor loop (a static student's table is 8M numbers).
    fused = all(p.device.type in ("cpu", "cuda") for g in groups for p in g["params"])
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=config.lr, betas=(config.beta1, config.beta2), eps=config.eps, fused=fused)


def clip_gradients(parameters: list[torch.nn.Parameter], max_norm: float) -> None:
    """``torch.nn.utils.clip_grad_norm_``, skipping its scaling pass on the CPU when it would multiply every gradient by 1.

    That pass reads and writes every gradient: a static student's whole table each step. On a GPU it always
    runs, as in torch, where testing the norm would wait for the device.
    """
    total = torch.nn.utils.get_total_norm([p.grad for p in parameters if p.grad is not None])
    # clip_grads_with_norm_ scales by max_norm / (total + 1e-6), capped at 1.
    if total.device.type == "cpu" and max_norm / (float(total) + 1e-6) >= 1.0:
        return
    torch.nn.utils.clip_grads_with_norm_(parameters, max_norm, total)


def learning_rate_factor(step: int, total: int, config: OptimizerConfig) -> float:
    """Multiplier of the peak lr for optimizer step ``step`` (0-based): linear warmup, then the decay schedule."""
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    if config.schedule == "constant":
        return 1.0
    progress = (step - config.warmup_steps) / max(1, total - config.warmup_steps)
    if config.schedule == "linear":
        return max(0.0, 1.0 - progress)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def _rng_states() -> dict[str, Any]:
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def _set_rng_states(states: dict[str, Any]) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _save_model_atomically(save: Callable[[str], None], target: str) -> None:
    temporary = target + ".tmp"
    shutil.rmtree(temporary, ignore_errors=True)
    save(temporary)
    shutil.rmtree(target, ignore_errors=True)
    os.rename(temporary, target)


class PhaseClock:
    """Wall seconds per phase of one step, each phase ending where the next begins (logged as ``<phase>_s``).

    On a GPU, kernels run asynchronously: the phases are host time, and the wait for the GPU falls in the
    phase that reads the loss (``optimizer``).
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._mark = time.perf_counter()

    def lap(self, phase: str) -> None:
        """End ``phase`` now."""
        now = time.perf_counter()
        self.seconds[phase] = self.seconds.get(phase, 0.0) + now - self._mark
        self._mark = now


class Trainer:
    """One run: the data, the student, the loss and optimizer, and the run folder."""

    def __init__(self, config: TrainConfig, resume: bool) -> None:
        self.config = config
        remote = None if is_local(config.output) else config.output
        self.run_dir = local_run_folder(config.output) if remote else config.output
        self.mirror = Mirror(self.run_dir, remote, last=(MARKER,)) if remote else None
        local_rank = init_from_environment()
        self.rank, self.world = rank_and_world()
        where = config.path
        if config.training.batch_size % self.world:
            raise ConfigError(f"{where}: training.batch_size: {config.training.batch_size} does not divide among {self.world} processes")
        if self.mirror is not None:
            self._prepare_mirror(self.mirror, resume, where)
        checkpoint: Checkpoint | None = None
        if resume:
            checkpoint = load_latest_checkpoint(self.run_dir)
            if checkpoint is None:
                log.warning("%s has no usable checkpoint; starting from step 0", self.run_dir)
        elif has_checkpoints(self.run_dir) or os.path.exists(os.path.join(self.run_dir, FINAL_MODEL)):
            raise ConfigError(f"{where}: output: {self.run_dir} already holds a run; pass --resume to continue it, or choose another folder")
        self.sets = open_training_sets(config.datasets, config.data, config.training.batch_size, where)
        self.sampler = make_sampler(self.sets, config.data, config.training.batch_size, config.training.seed)
        self.eval_sets: list[RetrievalSet] = []
        if self.rank == 0:
            self.eval_sets = [held_out_set(s, config.data.held_out_fraction, config.evaluation.max_queries) for s in self.sets]
            self.eval_sets = [s for s in self.eval_sets if s.queries] + [load_beir(b) for b in config.evaluation.beir]
        random.seed(config.training.seed)
        np.random.seed(config.training.seed)
        torch.manual_seed(config.training.seed)
        self.device = resolve_device(config.model.device, local_rank)
        student = checkpoint.model_path if checkpoint else config.model.student
        self.model = load_student(student, self.device, f"{where}: model.student")
        self.model.train()
        self.matryoshka = config.loss.matryoshka()
        self.matryoshka_dims = [dim for dim, _ in self.matryoshka]
        width = self.model.get_embedding_dimension()
        if width is not None and self.matryoshka_dims and max(self.matryoshka_dims) > width:
            raise ConfigError(f"{where}: loss.matryoshka_dims: {max(self.matryoshka_dims)} exceeds the student's embedding dimension {width}")
        self.encoder = Encoder(self.model, self.device, resolve_autocast(config.model.precision, self.device))
        if config.model.gradient_checkpointing:
            self.encoder.enable_gradient_checkpointing()
        static = self.encoder.static
        self.static_gradient = StaticGradient(static) if static is not None and static.embedding.weight.requires_grad else None
        self.temperature = Temperature(config.loss.temperature, config.loss.learn_temperature).to(self.device)
        self.optimizer = build_optimizer(self.model, self.temperature, config.optimizer)
        steps = config.training.steps
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: learning_rate_factor(s, steps, config.optimizer))
        self.step = 0
        if checkpoint is not None:
            self._restore(checkpoint)
        if self.rank == 0:
            os.makedirs(self.run_dir, exist_ok=True)
            with open(os.path.join(self.run_dir, "config.json"), "w", encoding="utf-8") as f:
                json.dump(config.as_dict(), f, indent=2, sort_keys=True)
            self.metrics = MetricsLog(self.run_dir, checkpoint.step if checkpoint else None)

    def _prepare_mirror(self, mirror: Mirror, resume: bool, where: str) -> None:
        """A remote run folder: its local working copy, the remote run copied down for ``--resume``."""
        if self.rank == 0:
            if resume:
                mirror.pull()
            elif any(r.startswith((CHECKPOINTS + "/", FINAL_MODEL + "/")) for r in mirror.remote_files()):
                raise ConfigError(f"{where}: output: {mirror.remote} already holds a run; pass --resume to continue it, or choose another folder")
            else:
                shutil.rmtree(self.run_dir, ignore_errors=True)  # a stale working copy of an earlier run
        if self.world > 1:
            torch.distributed.barrier()

    def _restore(self, checkpoint: Checkpoint) -> None:
        state = checkpoint.state
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.temperature.load_state_dict(state["temperature"])
        self.sampler.load_state_dict(state["data"])
        _set_rng_states(state["rng"])
        self.step = checkpoint.step
        log.info("resumed %s at step %d", checkpoint.path, self.step)

    def _state(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "temperature": self.temperature.state_dict(),
            "data": self.sampler.state_dict(),
            "rng": _rng_states(),
        }

    def _side(self, texts: list[str], max_tokens: int) -> tuple[list[dict], torch.Tensor]:
        """One side's chunks, its texts longest first so that each chunk pads only to its own longest text, and
        the permutation that puts the side's embeddings back in batch order."""
        tokenized = self.encoder.tokenize(texts, max_tokens)
        order = np.argsort(-tokenized.lengths, kind="stable")
        size = self.config.loss.chunk_size or max(1, len(texts))
        chunks = [tokenized.features(order[i : i + size], self.device) for i in range(0, len(texts), size)]
        return chunks, torch.from_numpy(np.argsort(order)).to(self.device)

    def _loss(self, queries: torch.Tensor, documents: torch.Tensor, negatives: torch.Tensor | None) -> torch.Tensor:
        return info_nce(queries, documents, negatives, self.temperature(), self.config.loss.symmetric, self.matryoshka)

    def train_step(self, batch: Batch, clock: PhaseClock) -> tuple[float, int]:
        """One optimizer step on ``batch``; returns the loss and the tokens this process embedded."""
        data = self.config.data
        part = batch.part(self.rank, self.world)
        prepared = [
            self._side(part.queries, data.max_query_tokens),
            self._side(part.documents, data.max_document_tokens),
            self._side(part.flat_negatives, data.max_document_tokens),
        ]
        sides = [chunks for chunks, _ in prepared]
        queries, documents, negatives = (batch_order for _, batch_order in prepared)
        tokens = sum(Encoder.token_count(chunk) for chunks in sides for chunk in chunks)
        clock.lap("tokenize")

        def loss_in_batch_order(q: torch.Tensor, d: torch.Tensor, n: torch.Tensor | None) -> torch.Tensor:
            return self._loss(q[queries], d[documents], None if n is None else n[negatives])

        self.optimizer.zero_grad(set_to_none=True)
        if self.config.loss.chunk_size:
            loss = grad_cache_backward(self.encoder.embed, sides, loss_in_batch_order, self.device)
        else:
            loss = plain_backward(self.encoder.embed, sides, loss_in_batch_order)
        if self.static_gradient is not None:
            self.static_gradient.densify()
        clock.lap("model")
        model_parameters = [p for p in self.model.parameters() if p.requires_grad]
        sum_gradients(model_parameters)
        average_gradients(list(self.temperature.parameters()))
        if self.config.optimizer.max_grad_norm is not None:
            clip_gradients(model_parameters, self.config.optimizer.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        value = float(loss)
        clock.lap("optimizer")
        return value, tokens

    def evaluate_all(self) -> None:
        data, evaluation = self.config.data, self.config.evaluation
        for retrieval_set in self.eval_sets:
            scores = evaluate(self.encoder, retrieval_set, data.max_query_tokens, data.max_document_tokens, evaluation.batch_size, self.matryoshka_dims)
            self.metrics.write({"step": self.step, "eval": retrieval_set.name, **scores})
            log.info("step %d %s %s", self.step, retrieval_set.name, " ".join(f"{k}={v:.4f}" for k, v in scores.items()))

    def checkpoint(self) -> None:
        write_checkpoint(self.run_dir, self.step, self._save_model, self._state(), self.config.training.keep_checkpoints)
        save_plots(self.run_dir)
        if self.mirror is not None:
            self.mirror.push()

    def _save_model(self, folder: str) -> None:
        save_model(self.model, folder, self.matryoshka_dims)

    def run(self) -> str:
        """Train to ``training.steps`` (evaluating and checkpointing on the way); returns the run folder."""
        threads = resolve_cpu_threads(self.config.model.cpu_threads, self.device, self.encoder.static is not None)
        with torch_threads(threads):
            return self._run()

    def _run(self) -> str:
        training, evaluation = self.config.training, self.config.evaluation
        leader = self.rank == 0
        if leader and self.step == 0 and evaluation.before_training:
            self.evaluate_all()
        progress = None
        if leader and sys.stderr.isatty():
            from tqdm import tqdm

            progress = tqdm(total=training.steps, initial=self.step, desc="training", unit="step")
        while self.step < training.steps:
            started, cpu_started = time.perf_counter(), time.process_time()
            clock = PhaseClock()
            batch = self.sampler.next_batch()
            clock.lap("data")
            lr = self.optimizer.param_groups[0]["lr"]
            loss, tokens = self.train_step(batch, clock)
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
            self.step += 1
            if not leader:
                continue
            row = {
                "step": self.step,
                "loss": loss,
                "lr": lr,
                "temperature": float(self.temperature().detach()),
                "dataset": batch.dataset,
                **({"shard": batch.shard} if batch.shard else {}),
                "pairs_per_s": len(batch) / elapsed,
                "tokens_per_s": tokens * self.world / elapsed,
                "cpu_s": cpu,  # this process's CPU time for the step (all threads): cost on a shared machine
                **{f"{phase}_s": seconds for phase, seconds in clock.seconds.items()},
            }
            self.metrics.write(row)
            if progress is not None:
                progress.update(1)
                progress.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", pairs_s=f"{row['pairs_per_s']:.0f}")
            last = self.step == training.steps
            if (evaluation.every and self.step % evaluation.every == 0) or last:
                self.evaluate_all()
            if self.step % training.checkpoint_every == 0 or last:
                self.checkpoint()
        if progress is not None:
            progress.close()
        if leader:
            _save_model_atomically(self._save_model, os.path.join(self.run_dir, FINAL_MODEL))
            save_plots(self.run_dir)
            if self.mirror is not None:
                self.mirror.push()
        return self.mirror.remote if self.mirror is not None else self.run_dir


def train(config: TrainConfig, resume: bool = False) -> str:
    return Trainer(config, resume).run()
