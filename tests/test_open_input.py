"""open_input reads every byte a damaged compressed stream decodes before the damage (as the reference
decoder in tests/reference_decoders.py does), then raises the codec's error; clean streams read whole."""
from __future__ import annotations

import bz2
import gzip
import io
import lzma
import random
from pathlib import Path
from typing import cast

import pytest
import zstandard

from storage.compressed import STREAM_ERRORS, open_input
from tests.reference_decoders import recover_bytes

COMPRESS = {"gz": gzip.compress, "zst": zstandard.ZstdCompressor().compress, "bz2": bz2.compress, "xz": lzma.compress}


def lines(rows: int) -> bytes:
    rng = random.Random(rows)
    words = ["kettle", "grind", "roast", "filter", "water", "bean", "cup", "brew", "pour", "steam", "milk", "crema"]
    return b"".join((" ".join(rng.choice(words) for _ in range(10)) + f" {i}\n").encode() for i in range(rows))


def read_until_error(path: Path) -> tuple[bytes, str | None]:
    out = bytearray()
    try:
        with open_input(str(path)) as stream:
            # read1: one decoder read per call, as line iteration and TextIOWrapper read
            while chunk := cast(io.BufferedReader, stream).read1(4096):
                out += chunk
    except STREAM_ERRORS as err:
        return bytes(out), type(err).__name__
    return bytes(out), None


@pytest.mark.parametrize("fmt", sorted(COMPRESS))
@pytest.mark.parametrize("rows", [6, 20_000])
def test_damaged_stream_yields_what_decodes_before_the_damage(tmp_path: Path, fmt: str, rows: int) -> None:
    data = bytearray(COMPRESS[fmt](lines(rows)))
    for i in range(len(data) * 4 // 5, len(data) * 4 // 5 + 8):
        data[i] ^= 0xFF
    path = tmp_path / f"rows.txt.{fmt}"
    path.write_bytes(bytes(data))
    expected, _ = recover_bytes(path)
    got, error = read_until_error(path)
    assert error is not None
    assert got == expected


@pytest.mark.parametrize("fmt", sorted(COMPRESS))
def test_clean_and_concatenated_streams_read_whole(tmp_path: Path, fmt: str) -> None:
    first, second = lines(3000), lines(500)
    path = tmp_path / f"rows.txt.{fmt}"
    path.write_bytes(COMPRESS[fmt](first) + COMPRESS[fmt](second))
    assert read_until_error(path) == (first + second, None)
    path.write_bytes(COMPRESS[fmt](first)[:-5])
    got, error = read_until_error(path)
    assert error == "EOFError" and first.startswith(got)
