"""The compiled (numba) inner loops of :mod:`filters.minhash`: normalise a batch's bytes into words, lay out
shingles, hash them (SHA-1 or MurmurHash3), and fold permuted hash values into signatures.

Each loop runs once per batch over flat arrays, so no Python code runs per text, word or shingle.
Compiled code is cached on disk where numba finds a writable place (beside this file, its user cache, or
``NUMBA_CACHE_DIR``): the first process compiles, later ones load. Where there is none, each process
compiles for itself.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

import llvmlite.ir as ir
import numpy as np
from numba import njit, types
from numba.extending import intrinsic

if TYPE_CHECKING:
    from numba.core.base import BaseContext
    from numba.core.typing.context import BaseContext as TypingContext
    from numba.core.typing.templates import Signature

Function = TypeVar("Function", bound=Callable[..., Any])
# How an intrinsic emits its LLVM IR: the builder and the arguments' values in, the result's value out
# (llvmlite ships no type information, so its IRBuilder and Value are Any to mypy).
Emit = Callable[[ir.IRBuilder, ir.Value, ir.Value], ir.Value]


def compiled(**options: Any) -> Callable[[Function], Function]:
    """numba's ``njit`` with an on-disk cache, or without one where no cache location is writable.

    The compiled dispatcher is called from Python and from compiled code as the function itself is, so it
    keeps the function's type.
    """

    def decorate(function: Function) -> Function:
        try:
            return njit(cache=True, **options)(function)
        except RuntimeError:  # numba: "cannot cache function ...: no locator available"
            return njit(**options)(function)

    return decorate


# numba widens arithmetic on uint32 to 64 bits, which halves how many values one SIMD instruction holds and
# hides SHA-1's 32-bit rotations from the compiler; these operations stay 32-bit (and wrap, as SHA-1 needs).
_U32 = ir.IntType(32)


def _uint32_operation(emit: Emit) -> Callable[[np.uint32, np.uint32], np.uint32]:
    """A uint32 operation on two uint32 values, for compiled code, whose IR ``emit`` writes."""

    @intrinsic
    def operation(typingctx: TypingContext, a: types.Type, b: types.Type) -> tuple[Signature, Callable[..., ir.Value]]:
        def codegen(context: BaseContext, builder: ir.IRBuilder, signature: Signature, args: Sequence[ir.Value]) -> ir.Value:
            return emit(builder, *args)

        return types.uint32(types.uint32, types.uint32), codegen

    # numba's stubs type an intrinsic by its typing function, called from Python (where it raises); compiled
    # code calls it with the arguments after typingctx and gets the value its signature names.
    return cast(Callable[[np.uint32, np.uint32], np.uint32], operation)


add32 = _uint32_operation(lambda builder, a, b: builder.add(a, b))
mul32 = _uint32_operation(lambda builder, a, b: builder.mul(a, b))
xor32 = _uint32_operation(lambda builder, a, b: builder.xor(a, b))
and32 = _uint32_operation(lambda builder, a, b: builder.and_(a, b))
or32 = _uint32_operation(lambda builder, a, b: builder.or_(a, b))
shr32 = _uint32_operation(lambda builder, a, bits: builder.lshr(a, bits))
# Written as two shifts and an or, which the compiler turns into one rotate instruction.
rotl32 = _uint32_operation(lambda builder, a, bits: builder.or_(builder.shl(a, bits), builder.lshr(a, builder.sub(ir.Constant(_U32, 32), bits))))


def _unaligned_uint32(big_endian: bool) -> Callable[[np.ndarray, int], np.uint32]:
    """A load of 4 bytes of a uint8 array, from any index, as one uint32, for compiled code."""

    @intrinsic
    def load(typingctx: TypingContext, buffer: types.Type, index: types.Type) -> tuple[Signature, Callable[..., ir.Value]]:
        def codegen(context: BaseContext, builder: ir.IRBuilder, signature: Signature, args: Sequence[ir.Value]) -> ir.Value:
            array = context.make_array(signature.args[0])(context, builder, args[0])
            value = builder.load(builder.bitcast(builder.gep(array.data, [args[1]]), _U32.as_pointer()), align=1)
            return builder.call(builder.module.declare_intrinsic("llvm.bswap", [_U32]), [value]) if big_endian else value

        return types.uint32(buffer, types.intp), codegen

    return cast(Callable[[np.ndarray, int], np.uint32], load)  # called from compiled code: see _uint32_operation


# The 4 bytes buffer[index:index+4] as one uint32, read in one instruction. They assume a little-endian
# machine (x86-64, ARM64); the tests against hashlib and mmh3 would fail on any other.
load_le32 = _unaligned_uint32(big_endian=False)
load_be32 = _unaligned_uint32(big_endian=True)


@compiled(inline="always")
def fmix32(h: np.uint32) -> np.uint32:
    """MurmurHash3's 32-bit finalizer (datasketch's affine schemes apply it before permuting, too)."""
    h = xor32(h, shr32(h, np.uint32(16)))
    h = mul32(h, np.uint32(0x85EBCA6B))
    h = xor32(h, shr32(h, np.uint32(13)))
    h = mul32(h, np.uint32(0xC2B2AE35))
    return xor32(h, shr32(h, np.uint32(16)))


# ASCII bytes as ``text.forms.matching_form`` folds them: letters lowercased, digits kept, everything else a
# space. Bytes of 128 and above are left alone: they only occur in texts already in their matching form.
FOLD = np.array([c | 0x20 if chr(c).isalpha() else c if chr(c).isdigit() else 32 for c in range(128)] + list(range(128, 256)), dtype=np.uint8)


@compiled()
def fold_texts(raw: np.ndarray, offsets: np.ndarray, fold: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Normalise each text ``raw[offsets[i]:offsets[i+1]]`` byte by byte: fold, and keep one space between words.

    Returns the normalised texts back to back (no separator between texts), a flag per normalised byte that
    is set where a word begins, and each text's end and word count.
    """
    texts = len(offsets) - 1
    out = np.empty(len(raw), np.uint8)
    word_begins = np.empty(len(raw), np.bool_)
    text_ends = np.empty(texts, np.int64)
    text_words = np.zeros(texts, np.int64)
    pos = np.int64(0)
    for text in range(texts):
        in_word = np.int64(0)
        words = np.int64(0)
        # Without branches, which word boundaries would mispredict: every byte is written, and kept (pos
        # moves on) when it is a word character or the first space after one. Unsigned indices spare
        # numba's check for negative ones, which would keep this loop from being optimised.
        for i in range(np.uint64(offsets[text]), np.uint64(offsets[text + 1])):
            c = fold[raw[i]]
            is_word = np.int64(c != 32)
            begins = is_word > in_word
            out[pos] = c
            word_begins[pos] = begins
            words += begins
            pos += is_word | in_word
            in_word = is_word
        if words and not in_word:
            pos -= 1  # the space kept after the text's last word
        text_ends[text] = pos
        text_words[text] = words
    return out[:pos], word_begins[:pos], text_ends, text_words


@compiled()
def shingle_layout(word_starts: np.ndarray, text_words: np.ndarray, text_ends: np.ndarray, ngram: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every word n-gram as a byte span (start, length) of the normalised texts, and each text's shingle
    count; a text of fewer than ``ngram`` words is one shingle, a text of none has none.

    Words are one space apart, so a shingle ends one byte before the word after its last word starts, and
    a text's last shingle ends where the text does.
    """
    counts = np.maximum(text_words - ngram + 1, np.minimum(text_words, 1))
    total = counts.sum()
    starts = np.empty(total, np.int64)
    lengths = np.empty(total, np.int64)
    # Unsigned positions, as in fold_texts: no check for negative indices in the loop.
    first_word = np.uint64(0)
    shingle = np.uint64(0)
    for text in range(len(text_words)):
        span = np.uint64(min(text_words[text], ngram))
        last = np.uint64(counts[text]) - np.uint64(1)  # wraps for a text without shingles: the loop is empty
        for i in range(np.uint64(counts[text])):
            start = word_starts[first_word + i]
            starts[shingle + i] = start
            lengths[shingle + i] = word_starts[first_word + i + span] - 1 - start if i < last else text_ends[text] - start
        first_word += np.uint64(text_words[text])
        shingle += np.uint64(counts[text])
    return starts, lengths, counts


# Messages hashed side by side: every step of SHA-1 runs as a loop over this many lanes, which the compiler
# turns into SIMD instructions; 64 lanes of state and schedule stay within the L1 cache.
LANES = 64


@compiled(inline="always")
def _load_block(buffer: np.ndarray, start: int, length: int, block: int, last: bool, words: np.ndarray, lane: int) -> None:
    """Write block ``block`` of the padded message ``buffer[start:start+length]`` into ``words[:, lane]`` as
    16 big-endian words: the message, the 0x80 byte, zeros, and in the last block the 64-bit bit length."""
    rest = length - 64 * block  # message bytes from this block's start; may be negative
    full = min(max(rest, 0) // 4, 16)
    q = start + 64 * block
    for i in range(full):
        words[i, lane] = load_be32(buffer, q + 4 * i)
    if full < 16:
        # The word where the message ends (0 to 3 more bytes, then 0x80), or all zeros after that word.
        word = 0
        for j in range(4 if rest >= 4 * full else 0):
            taken = 4 * full + j
            word = (word << 8) | (buffer[q + taken] if taken < rest else (0x80 if taken == rest else 0))
        words[full, lane] = word
        for i in range(full + 1, 16):
            words[i, lane] = 0
    if last:
        words[14, lane] = (length * 8) >> 32
        words[15, lane] = (length * 8) & 0xFFFFFFFF


@compiled(inline="always")
def _round(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray, e: np.ndarray, lane: int, f: np.uint32, k: np.uint32, w: np.uint32) -> None:
    """One SHA-1 round in one lane: the state words move along and the new first one takes in f, k and w."""
    new_a = add32(add32(rotl32(a[lane], np.uint32(5)), f), add32(add32(e[lane], k), w))
    e[lane], d[lane], c[lane], b[lane], a[lane] = d[lane], c[lane], rotl32(b[lane], np.uint32(30)), a[lane], new_a


@compiled()
def sha1_head(buffer: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The first 8 bytes of SHA-1 of each span ``buffer[start:start+length]``, as big-endian uint64."""
    n = len(starts)
    head = np.empty(n, np.uint64)
    blocks = (lengths + 8) // 64 + 1  # message, 0x80, zero padding and the 8-byte bit length
    w = np.zeros((16, LANES), np.uint32)
    h = np.empty((5, LANES), np.uint32)
    a, b, c, d, e = np.empty(LANES, np.uint32), np.empty(LANES, np.uint32), np.empty(LANES, np.uint32), np.empty(LANES, np.uint32), np.empty(LANES, np.uint32)
    initial = np.array([0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0], np.uint32)
    k = np.array([0x5A827999, 0x6ED9EBA1, 0x8F1BBCDC, 0xCA62C1D6], np.uint32)
    for group in range(0, n, LANES):
        members = min(LANES, n - group)
        for s in range(5):
            for lane in range(LANES):
                h[s, lane] = initial[s]
        # Lanes of a group may need different block counts; each lane's digest is read after its own last block.
        for block in range(blocks[group : group + members].max()):
            for lane in range(members):
                m = group + lane
                _load_block(buffer, starts[m], lengths[m], block, block == blocks[m] - 1, w, lane)
            for lane in range(LANES):
                a[lane], b[lane], c[lane], d[lane], e[lane] = h[0, lane], h[1, lane], h[2, lane], h[3, lane], h[4, lane]
            for t in range(80):
                s = t & 15
                if t >= 16:
                    for lane in range(LANES):
                        w[s, lane] = rotl32(xor32(xor32(w[(t - 3) & 15, lane], w[(t - 8) & 15, lane]), xor32(w[(t - 14) & 15, lane], w[s, lane])), np.uint32(1))
                if t < 20:
                    for lane in range(LANES):
                        f = xor32(d[lane], and32(b[lane], xor32(c[lane], d[lane])))  # choose
                        _round(a, b, c, d, e, lane, f, k[0], w[s, lane])
                elif t < 40 or t >= 60:
                    for lane in range(LANES):
                        f = xor32(xor32(b[lane], c[lane]), d[lane])  # parity
                        _round(a, b, c, d, e, lane, f, k[t // 20], w[s, lane])
                else:
                    for lane in range(LANES):
                        f = or32(and32(b[lane], c[lane]), and32(d[lane], or32(b[lane], c[lane])))  # majority
                        _round(a, b, c, d, e, lane, f, k[2], w[s, lane])
            for lane in range(LANES):
                h[0, lane] = add32(h[0, lane], a[lane])
                h[1, lane] = add32(h[1, lane], b[lane])
                h[2, lane] = add32(h[2, lane], c[lane])
                h[3, lane] = add32(h[3, lane], d[lane])
                h[4, lane] = add32(h[4, lane], e[lane])
            for lane in range(members):
                if blocks[group + lane] == block + 1:
                    head[group + lane] = (np.uint64(h[0, lane]) << np.uint64(32)) | np.uint64(h[1, lane])
    return head


@compiled()
def murmur3_32(buffer: np.ndarray, starts: np.ndarray, lengths: np.ndarray, seed: int) -> np.ndarray:
    """MurmurHash3 x86_32 of each span ``buffer[start:start+length]``, as ``mmh3.hash(span, seed, signed=False)``."""
    c1, c2 = np.uint32(0xCC9E2D51), np.uint32(0x1B873593)
    hashes = np.empty(len(starts), np.uint32)
    for m in range(len(starts)):
        start, length = starts[m], lengths[m]
        h = np.uint32(seed)
        for q in range(start, start + length - 3, 4):
            k = mul32(rotl32(mul32(load_le32(buffer, q), c1), np.uint32(15)), c2)
            h = add32(mul32(rotl32(xor32(h, k), np.uint32(13)), np.uint32(5)), np.uint32(0xE6546B64))
        # The last 0 to 3 bytes. Mixing in a zero tail changes nothing, so no branch is needed for its absence
        # (a mispredicted one costs more than the mixing); the tail is one 4-byte read, masked, wherever the
        # buffer extends that far.
        tail = start + length - length % 4
        if tail + 4 <= len(buffer):
            k = and32(load_le32(buffer, tail), np.uint32((1 << (8 * (length % 4))) - 1))
        else:
            k = np.uint32(0)
            for i in range(length % 4 - 1, -1, -1):
                k = or32(mul32(k, np.uint32(256)), np.uint32(buffer[tail + i]))
        h = xor32(h, mul32(rotl32(mul32(k, c1), np.uint32(15)), c2))
        hashes[m] = fmix32(xor32(h, np.uint32(length)))
    return hashes


@compiled(inline="always")
def permute_affine32(a: np.uint32, b: np.uint32, h: np.uint32) -> np.uint32:
    """datasketch's affine32 scheme: ``a * fmix32(h) + b`` (mod 2**32); fmix32 is applied beforehand, once per shingle."""
    return add32(mul32(a, h), b)


@compiled(inline="always")
def permute_legacy(a: np.uint64, b: np.uint64, h: np.uint32) -> np.uint32:
    """datasketch's legacy scheme: ``(a * h + b) mod (2**61 - 1)`` in wrapping uint64 arithmetic, as datasketch's
    numpy code computes it, truncated to 32 bits."""
    return np.uint32(((a * np.uint64(h) + b) % np.uint64((1 << 61) - 1)) & np.uint64(0xFFFFFFFF))


# A permutation scheme, compiled: (a, b, hash) -> permuted 32-bit value; a and b are uint32 or uint64 by scheme.
Permute = Callable[[Any, Any, np.uint32], np.uint32]


@compiled()
def fold_minima(hash32: np.ndarray, counts: np.ndarray, a: np.ndarray, b: np.ndarray, signatures: np.ndarray, permute: Permute) -> None:
    """Each text's signature: per permutation, the minimum of ``permute(a, b, h)`` over its shingles' hashes.

    Shingles are taken four at a time, so each pass over a signature row serves four of them; a text's last
    group repeats its last shingle, which leaves the minimum as it is.
    """
    end = 0
    for text in range(len(counts)):
        start, end = end, end + counts[text]
        row = signatures[text]
        for first in range(start, end, 4):
            h0, h1 = hash32[first], hash32[min(first + 1, end - 1)]
            h2, h3 = hash32[min(first + 2, end - 1)], hash32[min(first + 3, end - 1)]
            for j in range(len(a)):
                lowest = min(min(permute(a[j], b[j], h0), permute(a[j], b[j], h1)), min(permute(a[j], b[j], h2), permute(a[j], b[j], h3)))
                row[j] = min(row[j], lowest)


@compiled()
def fmix32_all(hash32: np.ndarray) -> np.ndarray:
    """:func:`fmix32` of every hash (datasketch's affine32 scheme mixes each shingle's hash before permuting)."""
    mixed = np.empty_like(hash32)
    for i in range(len(hash32)):
        mixed[i] = fmix32(hash32[i])
    return mixed
