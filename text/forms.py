"""Normal forms of text, one per purpose: what a text is stored as, and what "the same text" means.

- ``clean_form``: the text a pair keeps (filters/clean.py rewrites both sides with it).
- ``matching_form``: lowercase, every run of punctuation, symbols, underscores and whitespace one space. Texts
  equal in this form are the same text everywhere: exact dedup groups on it, clean's ``drop_identical``
  compares in it, mining's "is this the positive (or the query) again?" guards key on it, and near-dedup
  shingles its words (filters/minhash_kernels.py folds ASCII bytes to the same form, so signatures stay
  datasketch's).
"""
from __future__ import annotations

import html
import re
import unicodedata
from typing import Literal

UnicodeForm = Literal["NFC", "NFKC", "none"]

# Control and format characters except tab and newline (zero-width joiners, BOMs, NULs, ...).
_INVISIBLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\u2060-\u2064\ufeff]")
_SPACES = re.compile(r"[^\S\n]+")
_SPACED_NEWLINES = re.compile(r" *\n *")
_BLANK_LINES = re.compile(r"\n{3,}")
_NOT_WORD = re.compile(r"[\W_]+")


def clean_form(text: str, unescape_html: bool = True, unicode_form: UnicodeForm = "NFKC") -> str:
    """Entities unescaped, Unicode-normalised, invisible characters removed, spaces folded, paragraphs kept."""
    if unescape_html and "&" in text:
        text = html.unescape(text)
    if unicode_form != "none":
        text = unicodedata.normalize(unicode_form, text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _INVISIBLE.sub("", text)
    text = _SPACES.sub(" ", text)
    text = _SPACED_NEWLINES.sub("\n", text)
    text = _BLANK_LINES.sub("\n\n", text)
    return text.strip()


def matching_form(text: str) -> str:
    """Lowercase; every run of punctuation, symbols and whitespace becomes one space; no edge spaces."""
    return _NOT_WORD.sub(" ", text.lower()).strip()
