"""Members of a .7z archive read as streams: py7zr decompresses the member in a thread into a bounded
queue and the reader takes it from there, so nothing is unpacked to disk and memory stays a few chunks.
"""
from __future__ import annotations

import io
import posixpath
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO

import py7zr
import py7zr.exceptions
from py7zr.io import Py7zIO, WriterFactory


class Corrupt7zArchive(OSError):
    """A .7z archive that cannot be read (an OSError, so the reader reports it as a corrupt file)."""


class MissingArchiveMember(LookupError):
    """An archive without the member asked for."""


_END = object()


class _Cancelled(Exception):
    """Stops py7zr's extraction thread when the reader closes the stream early."""


class _QueueWriter(Py7zIO):
    """Receives py7zr's decompressed chunks and hands them to the reading thread through a bounded queue."""

    def __init__(self, chunks: queue.Queue, cancelled: threading.Event) -> None:
        self.chunks = chunks
        self.cancelled = cancelled
        self.written = 0

    def write(self, s: bytes | bytearray) -> int:
        block = bytes(s)
        while True:
            if self.cancelled.is_set():
                raise _Cancelled()
            try:
                self.chunks.put(block, timeout=0.1)
                break
            except queue.Full:
                continue
        self.written += len(block)
        return len(block)

    def read(self, size: int | None = None) -> bytes:
        return b""

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0

    def flush(self) -> None:
        return None

    def size(self) -> int:
        return self.written


class _QueueWriterFactory(WriterFactory):
    def __init__(self, writer: _QueueWriter) -> None:
        self.writer = writer

    def create(self, filename: str) -> Py7zIO:
        return self.writer


class SevenZipMemberStream(io.RawIOBase):
    """One member of an open .7z archive as a readable stream; memory is bounded by ``max_chunks`` chunks."""

    def __init__(self, archive: py7zr.SevenZipFile, member: str, max_chunks: int = 4) -> None:
        super().__init__()
        self._chunks: queue.Queue = queue.Queue(maxsize=max_chunks)
        self._cancelled = threading.Event()
        self._pending = memoryview(b"")
        self._done = False
        writer = _QueueWriter(self._chunks, self._cancelled)
        self._thread = threading.Thread(target=self._extract, args=(archive, member, writer), daemon=True)
        self._thread.start()

    def _extract(self, archive: py7zr.SevenZipFile, member: str, writer: _QueueWriter) -> None:
        try:
            archive.extract(targets=[member], factory=_QueueWriterFactory(writer))
            outcome: Any = _END
        except _Cancelled:
            return
        except BaseException as err:  # handed to the reading thread, which raises it there
            outcome = err
        while not self._cancelled.is_set():
            try:
                self._chunks.put(outcome, timeout=0.1)
                return
            except queue.Full:
                continue

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            if self._done:
                return 0
            item = self._chunks.get()
            if item is _END:
                self._done = True
                return 0
            if isinstance(item, BaseException):
                self._done = True
                raise Corrupt7zArchive(f"{type(item).__name__}: {item}") from item
            self._pending = memoryview(item)
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def close(self) -> None:
        if not self.closed:
            self._cancelled.set()
            while self._thread.is_alive():
                try:
                    self._chunks.get(timeout=0.1)
                except queue.Empty:
                    continue
            self._thread.join()
        super().close()


@contextmanager
def open_member(stream: BinaryIO, member: str) -> Iterator[BinaryIO]:
    """The first member of the archive in ``stream`` whose base name is ``member``, as a buffered stream."""
    try:
        archive = py7zr.SevenZipFile(stream, mode="r")
    except (py7zr.exceptions.ArchiveError, ValueError, EOFError) as err:
        raise Corrupt7zArchive(f"not a readable .7z archive ({type(err).__name__}: {err})") from err
    with archive:
        names = [n for n in archive.getnames() if posixpath.basename(n) == member]
        if not names:
            raise MissingArchiveMember(f"no {member} in the archive")
        with SevenZipMemberStream(archive, names[0]) as raw, io.BufferedReader(raw, buffer_size=1 << 20) as lines:
            yield lines
