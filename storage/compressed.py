"""Compressed input as plain byte streams: a file on any Beam filesystem opened and decoded by its extension.

Every byte a damaged file decodes to before its damage is read before the codec's error is raised, so a
reader keeps the rows in front of the damage and rejects the file from there on (``STREAM_ERRORS``).
"""
from __future__ import annotations

import bz2
import io
import lzma
import posixpath
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO, cast

import zstandard

from storage.files import open_read, size

# Errors that mean the input stream itself broke off or is corrupt (not one bad row).
STREAM_ERRORS: tuple[type[BaseException], ...] = (
    EOFError,
    OSError,
    zlib.error,
    lzma.LZMAError,
    zstandard.ZstdError,
)



@dataclass(frozen=True)
class Codec:
    """How to decode one compression format's streams, and what may follow the last stream."""

    new_decoder: Callable[[], Any]
    zero_padding: bool = False  # zero bytes between/after streams are skipped (gzip)
    trailing_ignored: bool = False  # a last "stream" that does not decode is trailing data, not damage (bzip2, xz)
    empty_is_truncated: bool = False  # an empty file is a stream cut off before its header (bzip2, xz)


CODECS: dict[str, Codec] = {
    ".gz": Codec(lambda: zlib.decompressobj(wbits=31), zero_padding=True),
    ".bz2": Codec(bz2.BZ2Decompressor, trailing_ignored=True, empty_is_truncated=True),
    # Pushshift's dumps use a 2 GiB window, above zstd's default decoding limit.
    ".zst": Codec(lambda: zstandard.ZstdDecompressor(max_window_size=2**31).decompressobj()),
    ".zstd": Codec(lambda: zstandard.ZstdDecompressor(max_window_size=2**31).decompressobj()),
    ".xz": Codec(lambda: lzma.LZMADecompressor(format=lzma.FORMAT_AUTO), trailing_ignored=True, empty_is_truncated=True),
}


class Decompressed(io.RawIOBase):
    """Decodes consecutive streams of one codec (gzip members, zstd frames); input ending inside one raises EOFError.

    A decoder drops the output of the call that meets damaged input, so a damaged chunk is decoded again
    one byte at a time, by a decoder brought back to the chunk's start by decoding its stream again from
    the stream's first byte (this costs time on damaged files only, and needs a seekable input). Every
    byte decoded before the damage is read before the codec's error is raised. zstandard's own stream
    reader would also end quietly at a truncated frame, losing the rest of a file without a trace.
    """

    CHUNK = 1 << 16

    def __init__(self, raw: BinaryIO, codec: Codec) -> None:
        self.raw = raw
        self.codec = codec
        self.base = raw.tell() if raw.seekable() else 0
        self.decoder = codec.new_decoder()
        self.in_stream = codec.empty_is_truncated
        self.in_stream_output = False  # the current stream has decoded some output
        self.streams = 0  # streams finished so far
        self.offset = 0  # input bytes read
        self.stream_start = 0  # input offset of the current stream's first byte
        self.pending = memoryview(b"")
        self.error: BaseException | None = None
        self.finished = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not len(self.pending):
            if self.error is not None:
                raise self.error
            data = b"" if self.finished else self.raw.read(self.CHUNK)
            if not data:
                if self.in_stream:
                    raise EOFError("compressed data ends inside a stream (the file is truncated)")
                return 0
            start, self.offset = self.offset, self.offset + len(data)
            out: list[bytes] = []
            try:
                self._decompress(data, start, out)
            except STREAM_ERRORS as err:
                if self.codec.trailing_ignored and self.streams and not self.in_stream_output:
                    self.finished, self.in_stream = True, False
                else:
                    out.append(self._salvage(start, len(data)))
                    self.error = err
            self.pending = memoryview(b"".join(out))
        count = min(len(buffer), len(self.pending))
        buffer[:count] = self.pending[:count]
        self.pending = self.pending[count:]
        return count

    def _decompress(self, chunk: bytes, start: int, out: list[bytes]) -> None:
        data = chunk
        while data:
            if not self.in_stream:
                if self.codec.zero_padding:
                    data = data.lstrip(b"\0")
                    if not data:
                        return
                self.stream_start, self.in_stream_output = start + len(chunk) - len(data), False
            self.in_stream = True
            piece = self.decoder.decompress(data)
            self.in_stream_output = self.in_stream_output or bool(piece)
            out.append(piece)
            if not self.decoder.eof:
                return
            data = self.decoder.unused_data
            self.decoder, self.in_stream, self.streams = self.codec.new_decoder(), False, self.streams + 1

    def _salvage(self, start: int, size: int) -> bytes:
        """What the damaged chunk [start, start + size) decodes to before its first bad byte."""
        if not self.raw.seekable():
            return b""
        decoder = self.codec.new_decoder()
        self.raw.seek(self.base + self.stream_start)
        position = self.stream_start
        while position < start:  # output already returned: only the decoder's state is wanted
            data = self.raw.read(min(self.CHUNK, start - position))
            if not data:
                return b""
            decoder.decompress(data)
            position += len(data)
        data = self.raw.read(start + size - position)
        out = []
        for i in range(len(data)):
            try:
                out.append(decoder.decompress(data[i : i + 1]))
            except STREAM_ERRORS:
                break
            if decoder.eof:
                break
        return b"".join(out)


class ProgressReader(io.RawIOBase):
    """Passes a file's bytes through and, every few seconds, tells the terminal how far the file is read."""

    EVERY_SECONDS = 5.0

    def __init__(self, raw: BinaryIO, path: str, size: int) -> None:
        self.raw = raw
        self.name = posixpath.basename(path)
        self.size = max(size, 1)
        self.done = 0
        self.started = self.shown = time.monotonic()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self.raw.seekable()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self.raw.seek(offset, whence)

    def tell(self) -> int:
        return self.raw.tell()

    def close(self) -> None:
        self.raw.close()
        super().close()

    def readinto(self, buffer: Any) -> int:
        data = self.raw.read(len(buffer))
        buffer[: len(data)] = data
        self.done += len(data)
        now = time.monotonic()
        if now - self.shown >= self.EVERY_SECONDS:
            self.shown = now
            rate = self.done / max(now - self.started, 1e-9)
            left = (self.size - self.done) / max(rate, 1.0)
            print(f"reading {self.name}: {100 * self.done / self.size:.0f}% of {self.size / 1e6:,.0f} MB, "
                  f"{rate / 1e6:.1f} MB/s, about {left:.0f} s left", file=sys.stderr, flush=True)
        return len(data)


@contextmanager
def open_input(path: str) -> Iterator[BinaryIO]:
    """Open any Beam filesystem path as a decompressed binary stream, by extension (.gz .bz2 .zst .xz).

    In a terminal, reading a large file reports its progress; in logs (no TTY) it stays quiet.
    """
    raw = open_read(path)
    if sys.stderr.isatty():
        # A readable binary stream, but an io.RawIOBase, which typeshed does not count as a typing.BinaryIO.
        raw = cast(BinaryIO, ProgressReader(raw, path, size(path)))
    try:
        codec = CODECS.get(posixpath.splitext(path.lower())[1])
        if codec is None:
            yield raw
        else:
            with io.BufferedReader(Decompressed(raw, codec), buffer_size=1 << 20) as stream:
                yield stream
    finally:
        raw.close()
