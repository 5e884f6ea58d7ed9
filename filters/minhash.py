"""MinHash signatures, LSH band hashes and exact Jaccard for near-duplicate detection, a whole batch at a time.

Signatures are bit-identical to ``datasketch.MinHash(num_perm, seed, scheme=...)`` fed the word n-gram
shingles of :func:`shingles` as UTF-8 bytes, with datasketch's default hash (``sha1_hash32``: the first four
bytes of SHA-1, little-endian) or, about twice as fast end to end, MurmurHash3 (datasketch's
``hashfunc=lambda b: mmh3.hash(b, signed=False)``). The hot path never loops over texts' words or shingles
in Python: a batch becomes one byte buffer, and compiled loops (:mod:`filters.minhash_kernels`) normalise it,
lay out the shingles as byte spans, hash them, and fold the permuted values into signatures.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from filters import minhash_kernels as kernels
from schemas.record import PairRecord
from text.forms import matching_form

Scheme = Literal["affine32", "legacy"]
ShingleHash = Literal["sha1", "murmur3"]
ShingleField = Literal["document", "query", "pair"]

_MERSENNE_PRIME = np.uint64((1 << 61) - 1)
_MAX_HASH32 = np.uint32(0xFFFFFFFF)


def shingles(text: str, ngram: int) -> list[str]:
    """Word n-grams of the text's matching form; a text shorter than ``ngram`` words is one shingle, an empty one none.

    The reference definition: :func:`shingle_spans` gives the same shingles for a whole batch at once.
    """
    words = matching_form(text).split()
    if len(words) <= ngram:
        return [" ".join(words)] if words else []
    return [" ".join(words[i : i + ngram]) for i in range(len(words) - ngram + 1)]


def shingle_text(record: PairRecord, field: ShingleField) -> str:
    """The text a record is shingled on; ``pair`` is the query followed by the document."""
    if field == "pair":
        return f"{record['query']}\n{record['document']}"
    return record[field]


@dataclass(frozen=True)
class ShingleSpans:
    """Every shingle of a batch as a byte span of one buffer, in document order."""

    buffer: np.ndarray  # uint8: the normalised texts, UTF-8, back to back
    starts: np.ndarray  # int64, per shingle
    lengths: np.ndarray  # int64, per shingle
    counts: np.ndarray  # int64, per text: its number of shingles (0 for a text with no words)

    @property
    def doc(self) -> np.ndarray:
        """Per shingle, the index of its text in the batch."""
        return np.repeat(np.arange(len(self.counts)), self.counts)


def shingle_spans(texts: Sequence[str], ngram: int) -> ShingleSpans:
    """The shingles of :func:`shingles` for many texts at once, without building one string per shingle.

    ASCII texts (the common case) go to the compiled loop as they are, which folds them byte by byte; other
    texts need Unicode's lowercasing and word characters, so Python takes their matching form first, and the loop
    leaves their (already folded) bytes as they are.
    """
    joined = "".join(texts)
    if joined.isascii():  # one byte per character, so the texts' lengths are their byte counts
        parts: Sequence[str | bytes] = texts
        raw_bytes = joined.encode("ascii")
    else:
        encoded = [t.encode("ascii") if t.isascii() else matching_form(t).encode("utf-8") for t in texts]
        parts = encoded
        raw_bytes = b"".join(encoded)
    offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, parts), dtype=np.int64, count=len(parts)), out=offsets[1:])
    raw = np.frombuffer(raw_bytes, dtype=np.uint8)
    buffer, word_begins, text_ends, text_words = kernels.fold_texts(raw, offsets, kernels.FOLD)
    starts, lengths, counts = kernels.shingle_layout(np.flatnonzero(word_begins), text_words, text_ends, ngram)
    return ShingleSpans(buffer, starts, lengths, counts)


def permutations(num_perm: int, seed: int, scheme: Scheme) -> tuple[np.ndarray, np.ndarray]:
    """The (a, b) parameters ``datasketch.MinHash(num_perm, seed, scheme=scheme)`` draws."""
    gen = np.random.RandomState(seed)
    if scheme == "legacy":
        pairs = [(gen.randint(1, _MERSENNE_PRIME, dtype=np.uint64), gen.randint(0, _MERSENNE_PRIME, dtype=np.uint64)) for _ in range(num_perm)]
        a, b = np.array(pairs, dtype=np.uint64).T
        return np.ascontiguousarray(a), np.ascontiguousarray(b)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


@dataclass(frozen=True)
class Sketches:
    """A batch's MinHash signatures and, when asked for, each text's sorted distinct shingle fingerprints."""

    signatures: np.ndarray  # (texts, num_perm) uint32; all 0xFFFFFFFF for a text without shingles
    empty: np.ndarray  # bool per text: no shingles (such texts get no band keys)
    fingerprints: list[np.ndarray] | None  # uint64 per text: each distinct shingle's 64-bit fingerprint, sorted


class MinHasher:
    """datasketch-compatible MinHash over word n-gram shingles, computed a batch at a time."""

    def __init__(self, num_perm: int = 128, seed: int = 1, ngram: int = 5, scheme: Scheme = "affine32", shingle_hash: ShingleHash = "sha1") -> None:
        self.num_perm = num_perm
        self.ngram = ngram
        self.scheme = scheme
        self.shingle_hash = shingle_hash
        self.a, self.b = permutations(num_perm, seed, scheme)

    def _hashes(self, spans: ShingleSpans) -> tuple[np.ndarray, np.ndarray]:
        """Per shingle, the 32-bit hash datasketch would permute, and the fingerprint used for exact Jaccard:
        SHA-1's first 8 bytes, or the MurmurHash3 value itself."""
        if self.shingle_hash == "murmur3":
            hash32 = kernels.murmur3_32(spans.buffer, spans.starts, spans.lengths, 0)
            # 32 bits suffice as fingerprints here: two texts of 1,000 shingles share a false match once in 4,000 pairs.
            return hash32, hash32
        head = kernels.sha1_head(spans.buffer, spans.starts, spans.lengths)
        # datasketch's sha1_hash32 reads the digest's first four bytes little-endian.
        return (head >> np.uint64(32)).astype(np.uint32).byteswap(), head

    def sketch(self, texts: Sequence[str], fingerprints: bool = False) -> Sketches:
        spans = shingle_spans(texts, self.ngram)
        hash32, fingerprint = self._hashes(spans)
        signatures = np.full((len(texts), self.num_perm), _MAX_HASH32, dtype=np.uint32)
        if self.scheme == "legacy":
            kernels.fold_minima(hash32, spans.counts, self.a, self.b, signatures, kernels.permute_legacy)
        else:
            kernels.fold_minima(kernels.fmix32_all(hash32), spans.counts, self.a, self.b, signatures, kernels.permute_affine32)
        empty = spans.counts == 0
        return Sketches(signatures, empty, _distinct_per_text(fingerprint.astype(np.uint64, copy=False), spans) if fingerprints else None)

    def signatures(self, texts: Sequence[str]) -> np.ndarray:
        return self.sketch(texts).signatures


def _distinct_per_text(fingerprint: np.ndarray, spans: ShingleSpans) -> list[np.ndarray]:
    doc = spans.doc
    order = np.lexsort((fingerprint, doc))
    sorted_fingerprint, sorted_doc = fingerprint[order], doc[order]
    first = np.ones(len(sorted_fingerprint), dtype=bool)
    first[1:] = (sorted_fingerprint[1:] != sorted_fingerprint[:-1]) | (sorted_doc[1:] != sorted_doc[:-1])
    distinct_counts = np.bincount(sorted_doc[first], minlength=len(spans.counts))
    # np.split of an empty batch would still give one (empty) piece.
    return np.split(sorted_fingerprint[first], np.cumsum(distinct_counts)[:-1]) if len(distinct_counts) else []


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard similarity of two sorted arrays of distinct shingle fingerprints (0.0 when both are empty)."""
    if len(a) == 0 and len(b) == 0:
        return 0.0
    shared = len(np.intersect1d(a, b, assume_unique=True))
    return shared / (len(a) + len(b) - shared)


def _band_probabilities(threshold: float, num_perm: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For every (bands, rows) with bands*rows <= num_perm, in datasketch's search order: the false positive
    and false negative probability integrals.

    The integrands are polynomials of degree bands*rows <= num_perm, so Gauss-Legendre quadrature with
    num_perm//2 + 1 nodes integrates them exactly (datasketch uses scipy's adaptive quad).
    """
    bands = np.array([b for b in range(1, num_perm + 1) for _ in range(1, num_perm // b + 1)], dtype=np.float64)
    rows = np.array([r for b in range(1, num_perm + 1) for r in range(1, num_perm // b + 1)], dtype=np.float64)
    nodes, weights = np.polynomial.legendre.leggauss(num_perm // 2 + 1)

    def integral(lo: float, hi: float, false_negative: bool) -> np.ndarray:
        s = (hi - lo) / 2 * (nodes + 1) + lo
        collide = 1 - (1 - s[None, :] ** rows[:, None]) ** bands[:, None]
        return ((1 - collide if false_negative else collide) * weights).sum(axis=1) * (hi - lo) / 2

    return bands, rows, integral(0.0, threshold, False), integral(threshold, 1.0, True)


def optimal_bands(threshold: float, num_perm: int, false_positive_weight: float = 0.5, false_negative_weight: float = 0.5) -> tuple[int, int]:
    """(bands, rows) minimising the weighted false positive and negative probabilities, as datasketch's MinHashLSH."""
    bands, rows, false_positive, false_negative = _band_probabilities(threshold, num_perm)
    best = int(np.argmin(false_positive * false_positive_weight + false_negative * false_negative_weight))
    return int(bands[best]), int(rows[best])


# (false positive, false negative) weights of the band optimisation. With exact verification a false
# candidate costs one Jaccard computation and no quality, so the optimum is taken to favour recall.
LSH_WEIGHTS = (0.5, 0.5)
VERIFIED_LSH_WEIGHTS = (0.05, 0.95)


def lsh_parameters(threshold: float, num_perm: int, bands: int | None, rows: int | None, verify: bool = False) -> tuple[int, int]:
    """Explicit bands and rows when both are given (checked against num_perm), else the optimum for the threshold."""
    if (bands is None) != (rows is None):
        raise ValueError("MinHash bands and rows must be set together (or both left out)")
    if bands is None or rows is None:
        return optimal_bands(threshold, num_perm, *(VERIFIED_LSH_WEIGHTS if verify else LSH_WEIGHTS))
    if bands < 1 or rows < 1 or bands * rows > num_perm:
        raise ValueError(f"MinHash bands * rows must be between 1 and num_perm={num_perm}, got {bands} * {rows}")
    return bands, rows


_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser, element-wise (uint64 arithmetic wraps)."""
    z = (z ^ (z >> np.uint64(30))) * _MIX_1
    z = (z ^ (z >> np.uint64(27))) * _MIX_2
    return z ^ (z >> np.uint64(31))


def band_hashes(sketches: Sketches, bands: int, rows: int) -> np.ndarray:
    """(texts, bands) uint64: each band's rows of signature values hashed to 64 bits, the band's index mixed in.

    Two texts share a band's value when that band's rows are equal, and otherwise by chance once in 2^64
    pairs: a corpus of 100 million texts expects about 0.002 such pairs per band. Rows of empty texts
    (``sketches.empty``) are meaningless; callers skip them.
    """
    n = len(sketches.signatures)
    values = sketches.signatures[:, : bands * rows].reshape(n, bands, rows).astype(np.uint64)
    hashes = np.broadcast_to((np.arange(bands, dtype=np.uint64) + np.uint64(1)) * _GOLDEN, (n, bands))
    for row in range(rows):
        hashes = _mix64(hashes ^ values[:, :, row])
    return np.ascontiguousarray(hashes)
