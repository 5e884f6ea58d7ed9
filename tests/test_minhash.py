from __future__ import annotations

import hashlib
import random

import mmh3
import numpy as np
import pytest
from datasketch import MinHash
from datasketch.lsh import _optimal_param

from filters import minhash_kernels
from filters.minhash import (
    MinHasher,
    Scheme,
    ShingleHash,
    band_hashes,
    jaccard,
    lsh_parameters,
    optimal_bands,
    shingle_spans,
    shingle_text,
    shingles,
)
from filters.minhash_kernels import murmur3_32, sha1_head
from text.forms import matching_form

WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "while", "café", "owners", "in", "São", "Paulo", "count", "42", "beans"]


def random_texts(rng: random.Random, count: int) -> list[str]:
    punctuation = ["", ".", ", ", "!? ", " -- ", "\n", "\t", "_"]
    texts = []
    for _ in range(count):
        words = [rng.choice(WORDS) + rng.choice(punctuation) for _ in range(rng.randrange(0, 40))]
        texts.append(rng.choice(["", " ", "  "]) + " ".join(words) + rng.choice(["", "?", " ..."]))
    return texts


def test_normalize_folds_case_punctuation_and_whitespace() -> None:
    assert matching_form("  Hello,\tWORLD!!  It's  snake_case\n") == "hello world it s snake case"
    assert matching_form("Ça coûte 3€ — São Paulo") == "ça coûte 3 são paulo"
    assert matching_form("...") == ""


def test_shingles_short_and_empty_texts() -> None:
    assert shingles("One two three four five six", 5) == ["one two three four five", "two three four five six"]
    assert shingles("Just three words", 5) == ["just three words"]
    assert shingles(" ?! ", 5) == []


def test_shingle_text_fields() -> None:
    record = {"id": "d/1", "dataset": "d", "query": "a question", "document": "an answer", "negatives": [], "meta": {}}
    assert shingle_text(record, "document") == "an answer"
    assert shingle_text(record, "query") == "a question"
    assert shingles(shingle_text(record, "pair"), 2) == ["a question", "question an", "an answer"]


@pytest.mark.parametrize("ascii_only", [False, True])
def test_shingle_spans_match_shingles(ascii_only: bool) -> None:
    texts = random_texts(random.Random(3), 200)
    if ascii_only:  # the batch then takes the path that never normalises in Python
        texts = [t for t in texts if t.isascii()]
    for ngram in (1, 3, 5):
        spans = shingle_spans(texts, ngram)
        buffer = spans.buffer.tobytes()
        decoded = [buffer[s : s + n].decode("utf-8") for s, n in zip(spans.starts, spans.lengths, strict=True)]
        expected = [(i, s) for i, t in enumerate(texts) for s in shingles(t, ngram)]
        assert list(zip(spans.doc.tolist(), decoded, strict=True)) == expected
        assert spans.counts.tolist() == [len(shingles(t, ngram)) for t in texts]


def random_messages(seed: int) -> tuple[list[bytes], np.ndarray, np.ndarray, np.ndarray]:
    """Messages of every length around SHA-1's block boundaries, back to back in one buffer."""
    rng = random.Random(seed)
    lengths = [*range(0, 130), 183, 184, 191, 192, 247, 248, 500]
    messages = [bytes(rng.randrange(256) for _ in range(n)) for n in lengths]
    sizes = np.array(lengths, dtype=np.int64)
    return messages, np.frombuffer(b"".join(messages), dtype=np.uint8), np.cumsum(sizes) - sizes, sizes


def test_sha1_head_equals_hashlib_across_block_boundaries() -> None:
    messages, buffer, starts, sizes = random_messages(5)
    # Shuffled, so that one group of lanes holds messages of different block counts.
    order = np.random.default_rng(1).permutation(len(messages))
    head = sha1_head(buffer, starts[order], sizes[order])
    assert head.tolist() == [int.from_bytes(hashlib.sha1(messages[i]).digest()[:8], "big") for i in order]


@pytest.mark.parametrize("seed", [0, 42])
def test_murmur3_equals_mmh3(seed: int) -> None:
    messages, buffer, starts, sizes = random_messages(6)
    expected = [mmh3.hash(m, seed, signed=False) for m in messages]
    assert murmur3_32(buffer, starts, sizes, seed).tolist() == expected
    # Each message alone, so that its last bytes end the buffer too.
    one = np.zeros(1, dtype=np.int64)
    assert [int(murmur3_32(np.frombuffer(m, dtype=np.uint8), one, np.array([len(m)]), seed)[0]) for m in messages] == expected


def murmur3_hash32(data: bytes) -> int:
    return mmh3.hash(data, signed=False)


@pytest.mark.parametrize("shingle_hash", ["sha1", "murmur3"])
@pytest.mark.parametrize("scheme", ["affine32", "legacy"])
@pytest.mark.parametrize("num_perm,seed", [(128, 1), (64, 7)])
def test_signatures_equal_datasketch(shingle_hash: ShingleHash, scheme: Scheme, num_perm: int, seed: int) -> None:
    rng = random.Random(num_perm + seed)
    texts = random_texts(rng, 150)
    # One text long enough that its shingles fill several groups of hashing lanes.
    texts.append(" ".join(rng.choice(WORDS) for _ in range(5 * minhash_kernels.LANES + 10)))
    hasher = MinHasher(num_perm, seed, ngram=5, scheme=scheme, shingle_hash=shingle_hash)
    signatures = hasher.signatures(texts)
    hashfunc = {"sha1": {}, "murmur3": {"hashfunc": murmur3_hash32}}[shingle_hash]
    for text, signature in zip(texts, signatures, strict=True):
        reference = MinHash(num_perm=num_perm, seed=seed, scheme=scheme, **hashfunc)
        reference.update_batch([s.encode("utf-8") for s in shingles(text, 5)])
        assert np.array_equal(signature, reference.hashvalues), text


def test_signature_does_not_depend_on_the_batch() -> None:
    texts = random_texts(random.Random(11), 50)
    hasher = MinHasher(64, 3, ngram=3)
    together = hasher.signatures(texts)
    alone = np.vstack([hasher.signatures([t]) for t in texts])
    assert np.array_equal(together, alone)


@pytest.mark.parametrize("num_perm", [32, 128, 256])
def test_optimal_bands_equal_datasketch(num_perm: int) -> None:
    for threshold in (0.5, 0.7, 0.8, 0.85, 0.9, 0.95):
        assert optimal_bands(threshold, num_perm) == _optimal_param(threshold, num_perm, 0.5, 0.5)


def test_lsh_parameters() -> None:
    assert lsh_parameters(0.8, 128, None, None) == optimal_bands(0.8, 128) == (9, 13)
    assert lsh_parameters(0.8, 128, None, None, verify=True) == optimal_bands(0.8, 128, 0.05, 0.95) == (16, 8)
    assert lsh_parameters(0.8, 128, 16, 8) == (16, 8)
    with pytest.raises(ValueError, match="together"):
        lsh_parameters(0.8, 128, 16, None)
    with pytest.raises(ValueError, match="num_perm=128"):
        lsh_parameters(0.8, 128, 20, 8)


def test_band_hashes() -> None:
    text = "one two three four five six seven eight nine ten eleven twelve"
    edited = text.replace("twelve", "dozen")
    sketches = MinHasher(128, 1, ngram=2).sketch([text, text.upper(), edited, "unrelated words entirely here"])
    hashes = band_hashes(sketches, 32, 4)
    assert hashes.shape == (4, 32) and hashes.dtype == np.uint64
    assert (hashes[0] == hashes[1]).all()
    rows_equal = (sketches.signatures[0, :128].reshape(32, 4) == sketches.signatures[2, :128].reshape(32, 4)).all(axis=1)
    assert rows_equal.any() and not rows_equal.all()  # Jaccard 10/12 shares some bands at 32 x 4
    assert ((hashes[0] == hashes[2]) == rows_equal).all()  # a band's hash is equal exactly where its rows are
    assert not set(hashes[0].tolist()) & set(hashes[3].tolist())
    assert len(set(hashes[0].tolist())) == 32  # equal rows in two bands still give two hashes
    same_rows = sketches.signatures.copy()
    same_rows[:, 4:8] = same_rows[:, 0:4]
    copied = band_hashes(type(sketches)(same_rows, sketches.empty, None), 32, 4)
    assert copied[0, 0] != copied[0, 1]


@pytest.mark.parametrize("shingle_hash", ["sha1", "murmur3"])
def test_jaccard_of_fingerprints_equals_exact_jaccard(shingle_hash: ShingleHash) -> None:
    texts = random_texts(random.Random(13), 40)
    sketches = MinHasher(16, 1, ngram=2, shingle_hash=shingle_hash).sketch(texts, fingerprints=True)
    assert sketches.fingerprints is not None
    for i in range(0, 40, 3):
        for j in range(1, 40, 7):
            a, b = set(shingles(texts[i], 2)), set(shingles(texts[j], 2))
            expected = len(a & b) / len(a | b) if a | b else 0.0
            assert jaccard(sketches.fingerprints[i], sketches.fingerprints[j]) == pytest.approx(expected)
    assert sketches.empty.tolist() == [not shingles(t, 2) for t in texts]


def test_batches_without_shingles() -> None:
    hasher = MinHasher(16, 1, ngram=5)
    nothing = hasher.sketch([], fingerprints=True)
    assert nothing.signatures.shape == (0, 16) and nothing.fingerprints == []
    blank = hasher.sketch(["", "?!"], fingerprints=True)
    assert (blank.signatures == 0xFFFFFFFF).all() and blank.empty.all()
    assert [len(f) for f in blank.fingerprints or []] == [0, 0]
    assert band_hashes(blank, 4, 4).shape == (2, 4)


def test_kernels_compile_where_no_cache_location_is_writable(monkeypatch: pytest.MonkeyPatch) -> None:
    import numba
    from numba.core.caching import CacheImpl

    def add_one(x: int) -> int:
        return x + 1

    monkeypatch.setattr(CacheImpl, "_locator_classes", [])
    with pytest.raises(RuntimeError, match="no locator available"):  # what plain numba does there
        numba.njit(cache=True)(add_one)
    assert minhash_kernels.compiled()(add_one)(41) == 42
