"""MinHash signatures, LSH band keys and exact Jaccard for near-duplicate detection, a whole batch at a time.

Signatures are bit-identical to ``datasketch.MinHash(num_perm, seed, scheme=...)`` fed the word n-gram
shingles of :func:`shingles` as UTF-8 bytes with datasketch's default hash (``sha1_hash32``: the first four
bytes of SHA-1, little-endian). The hot path never loops over shingles in Python: shingles are byte spans
of the batch's normalised text, SHA-1 runs vectorised over all of them in numpy, and one permutation pass
with ``np.minimum.reduceat`` gives every document's signature.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np

from schemas.record import PairRecord

Scheme = Literal["affine32", "legacy"]
ShingleField = Literal["document", "query", "pair"]

_NON_WORD = re.compile(r"[\W_]+")
# For ASCII, the same folding as _NON_WORD after lower(): letters lowercased, digits kept, all else a space.
_ASCII_FOLD = bytes(c | 0x20 if chr(c).isalpha() and c < 128 else c if 48 <= c <= 57 else 32 for c in range(256))
_MERSENNE_PRIME = np.uint64((1 << 61) - 1)
_MAX_HASH32 = np.uint32(0xFFFFFFFF)
_SHA1_INIT = (0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0)
_SHA1_ROUND_CONSTANTS = (0x5A827999, 0x6ED9EBA1, 0x8F1BBCDC, 0xCA62C1D6)
# Messages hashed together per numpy pass: large enough to hide ufunc call overhead, small enough that
# the 16 schedule words and 5 state words stay in the CPU cache.
_SHA1_CHUNK = 16384
# Shingles permuted together: num_perm rows of this many values (1 MiB at 128 permutations).
_PERMUTE_CHUNK = 2048


def normalize(text: str) -> str:
    """Lowercase; every run of punctuation, symbols and whitespace becomes one space; no edge spaces."""
    return _normalized_bytes(text).decode("utf-8")


def _normalized_bytes(text: str) -> bytes:
    # ASCII text (the common case) takes one byte-table pass, several times faster than the regex.
    if text.isascii():
        return b" ".join(text.encode("ascii").translate(_ASCII_FOLD).split())
    return _NON_WORD.sub(" ", text.lower()).strip().encode("utf-8")


def shingles(text: str, ngram: int) -> list[str]:
    """Word n-grams of the normalised text; a text shorter than ``ngram`` words is one shingle, an empty one none."""
    words = normalize(text).split()
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

    buffer: np.ndarray  # uint8: the normalised texts, UTF-8, joined by single spaces
    starts: np.ndarray  # int64, per shingle
    lengths: np.ndarray  # int64, per shingle
    doc: np.ndarray  # int64, per shingle: the index of its text in the batch
    counts: np.ndarray  # int64, per text: its number of shingles (0 for a text with no words)


def shingle_spans(texts: Sequence[str], ngram: int) -> ShingleSpans:
    """The shingles of :func:`shingles` for many texts at once, without building one string per shingle.

    After normalisation words are separated by exactly one space, so the n-gram starting at word i is
    the buffer slice from word i's start to word i+n-1's end.
    """
    encoded = [_normalized_bytes(t) for t in texts]
    buffer = np.frombuffer(b" ".join(encoded), dtype=np.uint8)
    # Splitting the joined buffer on single spaces gives every text (spaces + 1) pieces; an empty text
    # gives one empty piece.
    spaces_per_text = np.fromiter((e.count(b" ") for e in encoded), dtype=np.int64, count=len(encoded))
    words_per_text = np.where(np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded)) > 0, spaces_per_text + 1, 0)
    first_piece = np.concatenate(([0], np.cumsum(spaces_per_text + 1)[:-1])).astype(np.int64)
    space_at = np.flatnonzero(buffer == 32)
    piece_starts = np.concatenate(([0], space_at + 1))
    piece_ends = np.concatenate((space_at, [len(buffer)]))

    counts = np.where(words_per_text >= ngram, words_per_text - ngram + 1, np.minimum(words_per_text, 1))
    span_words = np.minimum(words_per_text, ngram)
    doc = np.repeat(np.arange(len(encoded), dtype=np.int64), counts)
    position = np.arange(len(doc), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    first_word = first_piece[doc] + position
    last_word = first_word + span_words[doc] - 1
    starts = piece_starts[first_word]
    return ShingleSpans(buffer, starts, piece_ends[last_word] - starts, doc, counts.astype(np.int64))


# Shift amounts and round constants as 0-d arrays: numpy dispatches those several times faster than scalars,
# which matters because SHA-1 here is thousands of small ufunc calls per chunk.
_SHIFT = {bits: np.array(bits, dtype=np.uint32) for bits in (1, 2, 5, 27, 30, 31)}
_ROUND_CONSTANT = [np.array(k, dtype=np.uint32) for k in _SHA1_ROUND_CONSTANTS]


def _rotl(x: np.ndarray, bits: int, out: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """Rotate left into ``out``, which may be ``x`` itself."""
    np.right_shift(x, _SHIFT[32 - bits], scratch)
    np.left_shift(x, _SHIFT[bits], out)
    return np.bitwise_or(out, scratch, out)


def _sha1_blocks(words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first two SHA-1 state words after compressing ``words`` (messages x 16*blocks, padded, uint32)."""
    count = words.shape[0]
    state = [np.full(count, h, dtype=np.uint32) for h in _SHA1_INIT]
    f, t1, t2 = (np.empty(count, dtype=np.uint32) for _ in range(3))
    for block in range(words.shape[1] // 16):
        schedule = np.ascontiguousarray(words[:, 16 * block : 16 * block + 16].T)
        a, b, c, d, e = (s.copy() for s in state)
        for t in range(80):
            w = schedule[t % 16]
            if t >= 16:
                np.bitwise_xor(w, schedule[(t - 3) % 16], w)
                np.bitwise_xor(w, schedule[(t - 8) % 16], w)
                np.bitwise_xor(w, schedule[(t - 14) % 16], w)
                _rotl(w, 1, w, t1)
            stage = t // 20
            if stage == 0:  # choose: d ^ (b & (c ^ d))
                np.bitwise_xor(c, d, f)
                np.bitwise_and(f, b, f)
                np.bitwise_xor(f, d, f)
            elif stage == 2:  # majority: (b & c) | (d & (b | c))
                np.bitwise_or(b, c, f)
                np.bitwise_and(f, d, f)
                np.bitwise_and(b, c, t1)
                np.bitwise_or(f, t1, f)
            else:  # parity
                np.bitwise_xor(b, c, f)
                np.bitwise_xor(f, d, f)
            # The new a is built in e's array, which the renaming below frees.
            np.add(e, w, e)
            np.add(e, _ROUND_CONSTANT[stage], e)
            np.add(e, f, e)
            np.add(e, _rotl(a, 5, t1, t2), e)
            _rotl(b, 30, b, t2)
            a, b, c, d, e = e, a, b, c, d
        for s, v in zip(state, (a, b, c, d, e)):
            np.add(s, v, s)
    return state[0], state[1]


@functools.lru_cache(maxsize=None)
def _padding(block_count: int) -> tuple[int, np.ndarray, np.ndarray]:
    """For messages that pad to ``block_count`` blocks, by length: which message words to keep (masks) and
    the padding (0x80, zeros, 64-bit big-endian bit length) to OR in; plus the shortest such length."""
    width = 64 * block_count
    shortest = max(0, width - 72)
    lengths = np.arange(shortest, width - 8)
    keep = np.where(np.arange(width) < lengths[:, None], 0xFF, 0).astype(np.uint8)
    pad = np.zeros((len(lengths), width), dtype=np.uint8)
    pad[np.arange(len(lengths)), lengths] = 0x80
    pad[:, -8:] = (lengths * 8).astype(">u8").view(np.uint8).reshape(-1, 8)
    return shortest, keep.view(">u4").astype(np.uint32), pad.view(">u4").astype(np.uint32)


def sha1_head(buffer: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The first 8 bytes of SHA-1 of each byte span ``buffer[start:start+length]``, as big-endian uint64.

    Equal to ``int.from_bytes(hashlib.sha1(span).digest()[:8], "big")``, computed for all spans at once.
    """
    head = np.empty(len(starts), dtype=np.uint64)
    blocks = (lengths + 8) // 64 + 1  # message, 0x80, zero padding and the 8-byte bit length
    padded = np.concatenate((buffer, np.zeros(64 * int(blocks.max(initial=1)), dtype=np.uint8)))
    for block_count in np.flatnonzero(np.bincount(blocks)):
        shortest, keep, pad = _padding(int(block_count))
        windows = np.lib.stride_tricks.sliding_window_view(padded, 64 * int(block_count))
        members = np.flatnonzero(blocks == block_count)
        for lo in range(0, len(members), _SHA1_CHUNK):
            chunk = members[lo : lo + _SHA1_CHUNK]
            row = lengths[chunk] - shortest
            words = windows[starts[chunk]].view(">u4").astype(np.uint32)
            words &= keep[row]
            words |= pad[row]
            h0, h1 = _sha1_blocks(words)
            head[chunk] = (h0.astype(np.uint64) << np.uint64(32)) | h1
    return head


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


def _fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer, which datasketch's affine schemes apply before permuting."""
    h = h ^ (h >> np.uint32(16))
    h *= np.uint32(0x85EBCA6B)
    h ^= h >> np.uint32(13)
    h *= np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


@dataclass(frozen=True)
class Sketches:
    """A batch's MinHash signatures and, when asked for, each text's sorted distinct shingle fingerprints."""

    signatures: np.ndarray  # (texts, num_perm) uint32; all 0xFFFFFFFF for a text without shingles
    empty: np.ndarray  # bool per text: no shingles (such texts get no band keys)
    fingerprints: list[np.ndarray] | None  # uint64 per text: the first 8 bytes of each shingle's SHA-1


class MinHasher:
    """datasketch-compatible MinHash over word n-gram shingles, computed a batch at a time."""

    def __init__(self, num_perm: int = 128, seed: int = 1, ngram: int = 5, scheme: Scheme = "affine32") -> None:
        self.num_perm = num_perm
        self.ngram = ngram
        self.scheme = scheme
        self.a, self.b = permutations(num_perm, seed, scheme)

    def _permuted(self, hash32: np.ndarray) -> np.ndarray:
        """Permuted hash values as datasketch's update_batch computes them: one row per permutation,
        one column per shingle (so the per-document minimum reduces contiguous memory)."""
        if self.scheme == "legacy":
            hv = hash32.astype(np.uint64)[None, :]
            return (((self.a[:, None] * hv + self.b[:, None]) % _MERSENNE_PRIME) & np.uint64(_MAX_HASH32)).astype(np.uint32)
        values = self.a[:, None] * _fmix32(hash32)[None, :]
        values += self.b[:, None]
        return values

    def sketch(self, texts: Sequence[str], fingerprints: bool = False) -> Sketches:
        spans = shingle_spans(texts, self.ngram)
        head = sha1_head(spans.buffer, spans.starts, spans.lengths)
        # datasketch's sha1_hash32 reads the digest's first four bytes little-endian.
        hash32 = (head >> np.uint64(32)).astype(np.uint32).byteswap()
        signatures = np.full((len(texts), self.num_perm), _MAX_HASH32, dtype=np.uint32)
        for lo in range(0, len(hash32), _PERMUTE_CHUNK):
            hi = min(lo + _PERMUTE_CHUNK, len(hash32))
            doc = spans.doc[lo:hi]
            segment_starts = np.flatnonzero(np.concatenate(([True], doc[1:] != doc[:-1])))
            minima = np.minimum.reduceat(self._permuted(hash32[lo:hi]), segment_starts, axis=1).T
            # A text's shingles may continue from the previous chunk, so fold into what is there.
            docs = doc[segment_starts]
            signatures[docs] = np.minimum(signatures[docs], minima)
        empty = spans.counts == 0
        return Sketches(signatures, empty, _distinct_per_text(head, spans) if fingerprints else None)

    def signatures(self, texts: Sequence[str]) -> np.ndarray:
        return self.sketch(texts).signatures


def _distinct_per_text(head: np.ndarray, spans: ShingleSpans) -> list[np.ndarray]:
    order = np.lexsort((head, spans.doc))
    sorted_head, sorted_doc = head[order], spans.doc[order]
    first = np.ones(len(sorted_head), dtype=bool)
    first[1:] = (sorted_head[1:] != sorted_head[:-1]) | (sorted_doc[1:] != sorted_doc[:-1])
    distinct_counts = np.bincount(sorted_doc[first], minlength=len(spans.counts))
    # np.split of an empty batch would still give one (empty) piece.
    return np.split(sorted_head[first], np.cumsum(distinct_counts)[:-1]) if len(distinct_counts) else []


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


def band_keys(sketches: Sketches, bands: int, rows: int) -> list[list[bytes]]:
    """Per text, one key per band: the band index (2 bytes) then its hash values (big-endian); none for empty texts."""
    values = sketches.signatures[:, : bands * rows].astype(">u4").reshape(len(sketches.signatures), bands, rows)
    prefixes = [band.to_bytes(2, "big") for band in range(bands)]
    keys: list[list[bytes]] = []
    for row, empty in zip(values, sketches.empty):
        keys.append([] if empty else [prefix + band.tobytes() for prefix, band in zip(prefixes, row)])
    return keys
