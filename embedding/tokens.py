"""Texts to token ids on every core, for the teacher and the student alike.

sentence-transformers' ``preprocess`` tokenizes one batch at a time in the calling thread, through the Hugging
Face tokenizer's Python layer (about half its time on short texts), so a GPU encoder waits for one CPU core:
about 8,000 texts/s on an H200 (BENCHMARKS.md section 8). Here the tokenizer's Rust core
(``tokenizers.Tokenizer.encode_batch``, which releases the GIL) runs in a pool of threads, each on a slice of
the texts, and the ids of all texts come back as one flat array with their lengths (``TokenIds``). The caller
then knows every text's exact token count before it forms batches: it sorts by it and pads each batch to
its own longest text (``PaddedIds``), or hands a static model the flat ids as they are (``FlatIds``).

``model_tokenizer`` picks one per model. For a transformer the padded features equal ``preprocess``'s for the
same texts: that is checked on probe texts once per model, and where they differ (a lower-casing, prompting,
left-padding or flattening module, a slow tokenizer) the model keeps its own ``preprocess``
(``PreprocessTokenizer``, lengths in characters).
"""
from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import numpy as np
import torch

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding
    from tokenizers import Tokenizer

# Texts per task of the pool: large enough that the Rust call dominates, small enough to spread over the cores
# (a call with fewer texts than SLICE_TEXTS x threads is cut into one slice per thread, of at least MIN_SLICE_TEXTS).
SLICE_TEXTS = 1024
MIN_SLICE_TEXTS = 64
# Texts tokenized ahead of the batches being embedded (one window in flight while the previous one embeds).
WINDOW_TEXTS = 65536
MAX_THREADS = 16
# A tokenizer's "no limit" (transformers' VERY_LARGE_INTEGER is 1e30): no truncation at all.
NO_LIMIT = 1 << 31
FEATURE_KEYS = ("input_ids", "attention_mask", "token_type_ids")
PROBE_TEXTS = (
    "",
    "a",
    "Hello, World! How are you?",
    "  spaced   out\ttext\nwith lines  ",
    "naïve café \u2013 déjà vu; 日本語のテキスト 🙂 \u200b zero-width",
    "word " * 700,
)

_POOL: tuple[int, ThreadPoolExecutor] | None = None  # (the process it belongs to, the pool)
_POOL_LOCK = threading.Lock()


def tokenizer_threads() -> int:
    """Threads for tokenizing: the cores this process may run on (at most ``MAX_THREADS``)."""
    return max(1, min(MAX_THREADS, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def _pool() -> ThreadPoolExecutor:
    """One pool per process, shared by every model and every Beam DoFn thread (a forked child makes its own:
    the parent's threads do not exist there)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL[0] != os.getpid():
            _POOL = (os.getpid(), ThreadPoolExecutor(tokenizer_threads(), thread_name_prefix="pairmill-tokenize"))
        return _POOL[1]


class TokenIds(NamedTuple):
    """The token ids of several texts: all of them in one flat array, text i's at ``starts[i] : starts[i] + lengths[i]``."""

    flat: np.ndarray  # int64
    lengths: np.ndarray  # int64, one per text
    starts: np.ndarray  # int64, one per text

    def gather(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The flat ids and lengths of texts ``rows``, in that order."""
        lengths = self.lengths[rows]
        total = int(lengths.sum())
        ends = np.cumsum(lengths)
        positions = np.arange(total, dtype=np.int64) - np.repeat(ends - lengths, lengths) + np.repeat(self.starts[rows], lengths)
        return self.flat[positions], lengths


def _join(parts: Sequence[tuple[np.ndarray, np.ndarray]]) -> TokenIds:
    flat = np.concatenate([ids for ids, _ in parts]) if parts else np.zeros(0, dtype=np.int64)
    lengths = np.concatenate([lengths for _, lengths in parts]) if parts else np.zeros(0, dtype=np.int64)
    return TokenIds(flat, lengths, np.cumsum(lengths) - lengths)


class ParallelTokenizer:
    """A ``tokenizers.Tokenizer`` run on slices of the texts in the process's thread pool.

    Truncation is set on a copy of the tokenizer per token limit (a copy is never changed after it is made,
    so threads share it safely); padding is left to the caller.
    """

    def __init__(self, backend: Tokenizer, add_special_tokens: bool) -> None:
        from tokenizers import Tokenizer

        self._source = backend.to_str()
        self._tokenizer_class = Tokenizer
        self.add_special_tokens = add_special_tokens
        self._by_limit: dict[int, Tokenizer] = {}
        self._lock = threading.Lock()

    def _limited(self, max_tokens: int | None) -> Tokenizer:
        limit = NO_LIMIT if max_tokens is None or max_tokens >= NO_LIMIT else int(max_tokens)
        with self._lock:
            tokenizer = self._by_limit.get(limit)
            if tokenizer is None:
                tokenizer = self._tokenizer_class.from_str(self._source)
                tokenizer.no_padding()
                if limit == NO_LIMIT:
                    tokenizer.no_truncation()
                else:
                    tokenizer.enable_truncation(max_length=limit)
                self._by_limit[limit] = tokenizer
            return tokenizer

    def _encode_slice(self, tokenizer: Tokenizer, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        encodings = tokenizer.encode_batch_fast(list(texts), add_special_tokens=self.add_special_tokens)
        id_lists = [e.ids for e in encodings]
        lengths = np.fromiter(map(len, id_lists), dtype=np.int64, count=len(id_lists))
        flat = np.fromiter(itertools.chain.from_iterable(id_lists), dtype=np.int64, count=int(lengths.sum()))
        return flat, lengths

    def _submit(self, texts: Sequence[str], max_tokens: int | None) -> list[Future[tuple[np.ndarray, np.ndarray]]]:
        tokenizer = self._limited(max_tokens)
        pool = _pool()
        size = min(SLICE_TEXTS, max(MIN_SLICE_TEXTS, -(-len(texts) // tokenizer_threads())))
        return [pool.submit(self._encode_slice, tokenizer, texts[i : i + size]) for i in range(0, len(texts), size)]

    def encode(self, texts: Sequence[str], max_tokens: int | None) -> TokenIds:
        """The ids of ``texts``, each cut at ``max_tokens`` (None: uncut)."""
        return _join([future.result() for future in self._submit(texts, max_tokens)])

    def windows(self, texts: Sequence[str], max_tokens: int | None, window: int = WINDOW_TEXTS) -> Iterator[tuple[int, TokenIds]]:
        """(first text's position, ids) per window of ``window`` texts, the next window tokenizing while the caller
        works on this one."""
        starts = range(0, len(texts), window)
        pending = self._submit(texts[: window], max_tokens) if len(texts) else []
        for start in starts:
            following = self._submit(texts[start + window : start + 2 * window], max_tokens) if start + window < len(texts) else []
            yield start, _join([future.result() for future in pending])
            pending = following


def length_batches(lengths: np.ndarray, batch_size: int, token_budget: int) -> list[np.ndarray]:
    """Positions in ``lengths`` grouped longest first into batches of at most ``batch_size`` texts, or more texts
    where they are short: a batch pads to its longest text and holds up to ``token_budget`` padded tokens."""
    order = np.argsort(-lengths, kind="stable")
    batches: list[np.ndarray] = []
    start = 0
    while start < len(order):
        size = max(batch_size, token_budget // max(1, int(lengths[order[start]])))
        batches.append(order[start : start + size])
        start += size
    return batches


class Tokenized(Protocol):
    """Some texts made ready for one model: their lengths, and any of them as that model's input features."""

    @property
    def lengths(self) -> np.ndarray:
        """int64 per text: its token count (its character count where only ``preprocess`` knows the tokens)."""

    def features(self, rows: np.ndarray, device: torch.device) -> dict[str, Any]:
        """The input features of texts ``rows`` (in that order) on ``device``."""


class ModelTokenizer(Protocol):
    """Texts -> ``Tokenized`` for one model, each text cut at a token limit (None: the model's own)."""

    def encode(self, texts: Sequence[str], max_tokens: int | None) -> Tokenized: ...

    def windows(self, texts: Sequence[str], max_tokens: int | None) -> Iterator[tuple[int, Tokenized]]:
        """(first text's position, its window) for consecutive windows of ``texts``, the next one made while
        the caller embeds this one."""


class PaddedIds(NamedTuple):
    """A transformer's texts as ids; each batch is padded on the right to its own longest text."""

    ids: TokenIds
    pad_id: int
    keys: tuple[str, ...]
    extra: dict[str, Any]  # what ``preprocess`` adds beside the tensors (sentence-transformers' ``modality``)

    @property
    def lengths(self) -> np.ndarray:
        return self.ids.lengths

    def features(self, rows: np.ndarray, device: torch.device) -> dict[str, Any]:
        flat, lengths = self.ids.gather(rows)
        width = max(1, int(lengths.max())) if len(lengths) else 1
        mask = np.arange(width)[None, :] < lengths[:, None]
        input_ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
        input_ids[mask] = flat
        arrays = {"input_ids": input_ids, "attention_mask": mask.astype(np.int64), "token_type_ids": np.zeros_like(input_ids)}
        return {**{key: to_device(torch.from_numpy(arrays[key]), device) for key in self.keys}, **self.extra}


class FlatIds(NamedTuple):
    """A static model's texts as ids: an EmbeddingBag's flat ids and offsets, nothing to pad."""

    ids: TokenIds

    @property
    def lengths(self) -> np.ndarray:
        return self.ids.lengths

    def features(self, rows: np.ndarray, device: torch.device) -> dict[str, Any]:
        flat, lengths = self.ids.gather(rows)
        return {"input_ids": to_device(torch.from_numpy(flat), device), "offsets": to_device(torch.from_numpy(np.cumsum(lengths) - lengths), device)}


class PreprocessTexts(NamedTuple):
    """The texts themselves, for a model whose own ``preprocess`` must tokenize them (lengths in characters)."""

    texts: Sequence[str]
    model: SentenceTransformer
    max_tokens: int | None

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter(map(len, self.texts), dtype=np.int64, count=len(self.texts))

    def features(self, rows: np.ndarray, device: torch.device) -> dict[str, Any]:
        from sentence_transformers.util import batch_to_device

        batch = [self.texts[i] for i in rows.tolist()]
        previous = self.model.max_seq_length
        if self.max_tokens is not None:
            self.model.max_seq_length = min(self.max_tokens, previous) if previous else self.max_tokens
        try:
            return dict(batch_to_device(self.model.preprocess(batch), device))
        finally:
            self.model.max_seq_length = previous


class StaticTokenizer:
    """A StaticEmbedding's tokenizer (no special tokens, as its ``preprocess``) on every core."""

    def __init__(self, backend: Tokenizer) -> None:
        self.parallel = ParallelTokenizer(backend, add_special_tokens=False)

    def encode(self, texts: Sequence[str], max_tokens: int | None) -> FlatIds:
        return FlatIds(self.parallel.encode(texts, max_tokens))

    def windows(self, texts: Sequence[str], max_tokens: int | None) -> Iterator[tuple[int, FlatIds]]:
        for start, ids in self.parallel.windows(texts, max_tokens):
            yield start, FlatIds(ids)


class TransformerTokenizer:
    """A transformer's fast tokenizer on every core, giving the features its module's ``preprocess`` gives."""

    def __init__(self, backend: Tokenizer, pad_id: int, keys: tuple[str, ...], extra: dict[str, Any], max_seq_length: int | None) -> None:
        self.parallel = ParallelTokenizer(backend, add_special_tokens=True)
        self.pad_id = pad_id
        self.keys = keys
        self.extra = extra
        self.max_seq_length = max_seq_length

    def _limit(self, max_tokens: int | None) -> int | None:
        if max_tokens is None or self.max_seq_length is None:
            return max_tokens if max_tokens is not None else self.max_seq_length
        return min(max_tokens, self.max_seq_length)

    def encode(self, texts: Sequence[str], max_tokens: int | None) -> PaddedIds:
        return PaddedIds(self.parallel.encode(texts, self._limit(max_tokens)), self.pad_id, self.keys, self.extra)

    def windows(self, texts: Sequence[str], max_tokens: int | None) -> Iterator[tuple[int, PaddedIds]]:
        for start, ids in self.parallel.windows(texts, self._limit(max_tokens)):
            yield start, PaddedIds(ids, self.pad_id, self.keys, self.extra)


class PreprocessTokenizer:
    """The model's own ``preprocess``, batch by batch in the calling thread: for what the fast paths do not cover."""

    def __init__(self, model: SentenceTransformer) -> None:
        self.model = model

    def encode(self, texts: Sequence[str], max_tokens: int | None) -> PreprocessTexts:
        return PreprocessTexts(texts, self.model, max_tokens)

    def windows(self, texts: Sequence[str], max_tokens: int | None) -> Iterator[tuple[int, PreprocessTexts]]:
        for start in range(0, len(texts), WINDOW_TEXTS):
            yield start, self.encode(texts[start : start + WINDOW_TEXTS], max_tokens)


def _fast_transformer(model: SentenceTransformer) -> TransformerTokenizer | None:
    """The parallel tokenizer for a text transformer whose features it reproduces exactly, checked on
    ``PROBE_TEXTS`` at the model's limit and at a short one; None where any differ."""
    modules: list[Any] = list(model.children())
    module = modules[0] if modules else None
    tokenizer: Any = getattr(module, "tokenizer", None)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if module is None or backend is None or getattr(tokenizer, "pad_token_id", None) is None or getattr(tokenizer, "padding_side", "right") != "right":
        return None
    previous = model.max_seq_length
    try:
        expected = module.preprocess(list(PROBE_TEXTS))
        keys = tuple(k for k in FEATURE_KEYS if k in expected)
        extra = {k: v for k, v in expected.items() if k not in FEATURE_KEYS}
        if "input_ids" not in keys or any(not isinstance(v, str) for v in extra.values()):
            return None
        fast = TransformerTokenizer(backend, int(tokenizer.pad_token_id), keys, extra, None)
        every_row = np.arange(len(PROBE_TEXTS))
        for limit in (previous, 16):
            model.max_seq_length = limit
            expected = module.preprocess(list(PROBE_TEXTS))
            ours = fast.encode(PROBE_TEXTS, limit).features(every_row, torch.device("cpu"))
            if any(not torch.equal(ours[k], torch.as_tensor(expected[k]).long()) for k in keys):
                return None
    except Exception:  # a tokenizer that cannot be driven this way keeps preprocess
        return None
    finally:
        model.max_seq_length = previous
    fast.max_seq_length = previous
    return fast


def static_module(model: torch.nn.Module) -> StaticEmbedding | None:
    """The model's StaticEmbedding when that is all it is (a static model: token vectors averaged), else None."""
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding

    modules = list(model.children())
    if len(modules) == 1 and isinstance(modules[0], StaticEmbedding):
        return modules[0]
    return None


def model_tokenizer(model: SentenceTransformer) -> ModelTokenizer:
    """The fastest tokenizer that gives ``model`` exactly the input its own ``preprocess`` would."""
    static = static_module(model)
    if static is not None:
        return StaticTokenizer(static.tokenizer)
    return _fast_transformer(model) or PreprocessTokenizer(model)


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """On a GPU, through pinned memory without waiting: the copy overlaps the host's work on the next batch."""
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)
