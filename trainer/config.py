"""The train CONFIG file (`pairmill train CONFIG`): one YAML file, every block a dataclass here.

This file is the reference for every key a train config may hold; ``load_train_config`` validates it and
every error is a one-line ``ConfigError`` naming the file and the key.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from schemas.config import ConfigError, fraction, non_negative, parse_block, positive, setting, to_plain
from schemas.recipe import Prefixes
from storage.configs import load_yaml


def _dimensions(value: list[int] | None) -> str | None:
    if value is not None and (not value or min(value) <= 0 or len(set(value)) < len(value)):
        return "expected distinct dimensions greater than 0"
    return None


def _weights(value: list[float] | None) -> str | None:
    if value is not None and any(w < 0 for w in value):
        return "weights must be 0 or more"
    return None


@dataclass
class DataConfig:
    alpha: float = setting(
        1.0, check=non_negative, help="a batch's dataset is drawn with probability proportional to size**alpha (1 = proportional, 0 = uniform)"
    )
    shuffle_buffer: int = setting(10_000, check=positive, help="records read ahead and shuffled together (seeded)")
    num_negatives: int = setting(7, check=non_negative, help="hard negatives sampled per row of triplet datasets (Nomic used 7)")
    held_out_fraction: float = setting(
        0.01, check=fraction, help="share of each dataset held out for evaluation, chosen by a hash of the record id; never trained on"
    )
    max_query_tokens: int = setting(64, check=positive, help="queries are truncated to this many tokens")
    max_document_tokens: int = setting(256, check=positive, help="documents and negatives are truncated to this many tokens")
    use_prefixes: bool = setting(True, help="put the per-dataset prefixes before texts (manifest, else Nomic's table, else search_query/search_document)")
    prefixes: dict[str, Prefixes] = setting({}, help="per-dataset prefixes that override the manifest and the default table")
    batch_from: Literal["dataset", "shard"] = setting(
        "dataset",
        help=(
            "dataset: a batch's rows come from its dataset's shuffled stream, across shards; shard: from one shard of one "
            "dataset (in-batch negatives from one source slice), the dataset drawn in proportion to its records left this "
            "epoch so that all datasets drain together (needs alpha 1); a shard's last records that fill no batch are skipped "
            "that epoch"
        ),
    )


@dataclass
class ModelConfig:
    student: str = setting(
        "default",
        help="sentence-transformers model or Hugging Face encoder (name in the local cache, or path); 'default' is the offline wordllama "
        "StaticEmbedding, 'minilm' the offline all-MiniLM-L6-v2 (installed with pairmill)",
    )
    device: Literal["auto", "cpu", "cuda"] = setting("auto", help="auto picks CUDA when present")
    precision: Literal["auto", "bf16", "fp32"] = setting("auto", help="auto is bf16 autocast on GPUs that support it, fp32 otherwise")
    gradient_checkpointing: bool = setting(False, help="recompute activations in the backward pass (transformer students only)")
    cpu_threads: int | None = setting(
        None,
        check=positive,
        help=(
            "torch's threads for training on the CPU; null: 1 for a static student (its ops are tiny or memory-bound, so more "
            "threads mostly wait for each other, and on a busy machine every op waits for the slowest), torch's default (one per core) "
            "for a transformer"
        ),
    )


@dataclass
class LossConfig:
    temperature: float = setting(0.02, check=positive, help="InfoNCE temperature (Nomic: 0.02); the start value when learned")
    learn_temperature: bool = setting(False, help="train the temperature with the model")
    symmetric: bool = setting(False, help="add the document-to-query InfoNCE term")
    chunk_size: int | None = setting(None, check=positive, help="GradCache: texts embedded per chunk so large batches fit; null embeds the whole batch at once")
    matryoshka_dims: list[int] | None = setting(
        None,
        check=_dimensions,
        help=(
            "Matryoshka: the loss is the weighted sum of InfoNCE over the embeddings' first N dimensions, re-normalised, for "
            "each N here (e.g. [768, 512, 256, 128, 64]; list the full size to train it too); the saved model records them "
            "and evaluation reports nDCG@10 at each; null trains the full embedding only"
        ),
    )
    matryoshka_weights: list[float] | None = setting(None, check=_weights, help="one weight per matryoshka_dims entry; null weighs each 1")

    def matryoshka(self) -> list[tuple[int, float]]:
        """(dimension, weight) pairs of the Matryoshka loss; empty when it is off."""
        dims = self.matryoshka_dims or []
        return list(zip(dims, self.matryoshka_weights or [1.0] * len(dims), strict=True))


@dataclass
class OptimizerConfig:
    lr: float = setting(2e-5, check=positive, help="peak learning rate (AdamW)")
    weight_decay: float = setting(0.01, check=non_negative, help="AdamW weight decay; never applied to biases and norms")
    beta1: float = setting(0.9, check=fraction, help="AdamW beta1")
    beta2: float = setting(0.999, check=fraction, help="AdamW beta2")
    eps: float = setting(1e-8, check=positive, help="AdamW epsilon")
    warmup_steps: int = setting(0, check=non_negative, help="steps of linear warmup from 0 to lr")
    schedule: Literal["cosine", "linear", "constant"] = setting("cosine", help="decay after warmup, down to 0 at the last step")
    max_grad_norm: float | None = setting(1.0, check=positive, help="clip the gradient norm to this; null is off")


@dataclass
class TrainingConfig:
    steps: int = setting(1000, check=positive, help="optimizer steps")
    batch_size: int = setting(256, check=positive, help="pairs per step over all processes, all from one dataset (and one shard with data.batch_from shard)")
    seed: int = setting(0, help="seed for data order, negatives sampling and torch")
    checkpoint_every: int = setting(500, check=positive, help="write a checkpoint every this many steps (and at the end)")
    keep_checkpoints: int = setting(3, check=positive, help="most recent checkpoints kept")


@dataclass
class BeirSet:
    path: str = setting(help="BEIR folder with corpus.jsonl, queries.jsonl and qrels/<split>.tsv")
    split: str = setting("test", help="qrels file name without .tsv")
    query_prefix: str = setting("search_query: ", help="prefix for the queries")
    document_prefix: str = setting("search_document: ", help="prefix for the corpus")


@dataclass
class EvaluationConfig:
    every: int | None = setting(500, check=positive, help="evaluate every this many steps (also before training and at the end); null: only before and after")
    max_queries: int = setting(1000, check=positive, help="held-out queries per dataset (their documents form the corpus searched)")
    batch_size: int = setting(256, check=positive, help="texts per encoding batch")
    before_training: bool = setting(True, help="evaluate the untrained student at step 0")
    beir: list[BeirSet] = setting([], help="BEIR-format folders evaluated beside the held-out split")


@dataclass
class TrainConfig:
    path: str
    output: str
    datasets: list[str]
    data: DataConfig
    model: ModelConfig
    loss: LossConfig
    optimizer: OptimizerConfig
    training: TrainingConfig
    evaluation: EvaluationConfig

    def as_dict(self) -> dict[str, Any]:
        """Every key with its default filled in, as plain values (saved beside each run)."""
        return {f.name: to_plain(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name != "path"}


BLOCKS = {
    "data": DataConfig,
    "model": ModelConfig,
    "loss": LossConfig,
    "optimizer": OptimizerConfig,
    "training": TrainingConfig,
    "evaluation": EvaluationConfig,
}
TOP_LEVEL_KEYS = ("output", "datasets", *BLOCKS)


def parse_train_config(raw: Any, path: str) -> TrainConfig:
    """Validate a train config given as parsed YAML; errors name ``path`` and the key."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a train config is a mapping with the keys {', '.join(TOP_LEVEL_KEYS)}")
    for key in raw:
        if key not in TOP_LEVEL_KEYS:
            raise ConfigError(f"{path}: unknown key {key!r} (known keys: {', '.join(TOP_LEVEL_KEYS)})")
    if not isinstance(raw.get("output"), str) or not raw["output"]:
        raise ConfigError(f"{path}: output: expected the run folder's path, got {raw.get('output')!r}")
    datasets = raw.get("datasets")
    if isinstance(datasets, str):
        datasets = [datasets]
    if not isinstance(datasets, list) or not datasets or not all(isinstance(d, str) and d for d in datasets):
        raise ConfigError(f"{path}: datasets: expected a list of dataset or build output folders, got {raw.get('datasets')!r}")
    # One dataclass per key, each a different type: TrainConfig's fields are what types them.
    blocks: dict[str, Any] = {name: parse_block(cls, raw.get(name), f"{path}: {name}") for name, cls in BLOCKS.items()}
    config = TrainConfig(path=path, output=raw["output"], datasets=datasets, **blocks)
    if config.loss.chunk_size is not None and config.loss.chunk_size > config.training.batch_size:
        raise ConfigError(f"{path}: loss.chunk_size: must not exceed training.batch_size ({config.training.batch_size}), got {config.loss.chunk_size}")
    dims, weights = config.loss.matryoshka_dims, config.loss.matryoshka_weights
    if weights is not None and len(weights) != len(dims or []):
        raise ConfigError(f"{path}: loss.matryoshka_weights: expected one weight per loss.matryoshka_dims entry ({dims!r}), got {weights!r}")
    if config.data.batch_from == "shard" and config.data.alpha != 1.0:
        raise ConfigError(
            f"{path}: data.alpha: batch_from 'shard' draws datasets in proportion to their records left, so alpha must be 1, got {config.data.alpha}"
        )
    return config


def load_train_config(path: str) -> TrainConfig:
    return parse_train_config(load_yaml(path, "train config"), path)
