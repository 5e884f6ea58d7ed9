"""One stable hash, and what is built on it: a key's bucket, a key's place in a fraction, a text's key.

The hash is blake2b with an 8-byte digest of the key's UTF-8 bytes, read big-endian: the same on every run,
machine and Python version (unlike ``hash()``). Shards of a record (by id), consistency chunks (by id),
mining partitions and query batches (by text key) and the trainer's held-out split (by id) all use it, and
tests/test_hashing.py pins its values, so a change of hash (which moves records between shards, chunks
and splits) cannot go unnoticed.
"""
from __future__ import annotations

import hashlib

from text.forms import matching_form

HASH_BITS = 64
TEXT_KEY_MASK = (1 << 63) - 1


def stable_hash(key: str) -> int:
    """The key's unsigned 64-bit hash."""
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "big")


def bucket(key: str, buckets: int) -> int:
    """The key's bucket in ``range(buckets)``."""
    return stable_hash(key) % buckets


def in_fraction(key: str, fraction: float) -> bool:
    """True for about ``fraction`` of all keys (none at 0, all at 1); a key in a fraction is in every larger one."""
    return stable_hash(key) < fraction * 2**HASH_BITS


def text_key(text: str) -> int:
    """A 63-bit key (>= 0, fits int64) of the text's matching form: equal keys mean the same text."""
    return stable_hash(matching_form(text)) & TEXT_KEY_MASK
