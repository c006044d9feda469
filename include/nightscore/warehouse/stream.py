"""Streams between Postgres COPY and pandas, in bounded memory.

`Spool`: a COPY out writes a temporary file that pandas reads back while it is written.
`Feed`: a COPY in reads blocks that another thread puts, a few at a time.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator


class Spool:
    """A temporary file that one thread appends to while another reads it back.

    The writer is psycopg2's COPY out (one `write` per row, gathered here into blocks);
    the reader (pandas) gets what has been written so far, and waits for more until the
    writer closes. The night sits on disk, not in memory; the reader's chunks can be
    scored while the warehouse still computes the rest of the night.
    """

    BLOCK = 1 << 20

    def __init__(self, fd: int) -> None:
        import threading

        self._fd = fd  # an empty file, read and written at explicit offsets
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._written = 0  # bytes on disk, readable
        self._read = 0
        self._closed = False
        self._error: BaseException | None = None
        self._ready = threading.Condition()

    # the writer's side ------------------------------------------------------------------

    def write(self, data: bytes) -> int:
        self._pending.append(data)
        self._pending_bytes += len(data)
        if self._pending_bytes >= self.BLOCK:
            self._flush()
        return len(data)

    def _flush(self) -> None:
        if not self._pending:
            return
        block = b"".join(self._pending)
        self._pending.clear()
        self._pending_bytes = 0
        view = memoryview(block)
        while view:
            view = view[os.pwrite(self._fd, view, self._written + len(block) - len(view)) :]
        with self._ready:
            self._written += len(block)
            self._ready.notify_all()

    def finish(self, error: BaseException | None = None) -> None:
        """The writer is done (or failed: the reader then raises its error)."""
        try:
            if error is None:
                self._flush()
        finally:
            with self._ready:
                self._closed, self._error = True, error
                self._ready.notify_all()

    # the reader's side ------------------------------------------------------------------

    def read(self, size: int = -1) -> bytes:
        with self._ready:
            while self._read >= self._written and not self._closed:
                self._ready.wait()
            if self._error is not None:
                raise self._error
            available = self._written - self._read
        data = os.pread(self._fd, available if size < 0 else min(size, available), self._read)
        self._read += len(data)
        return data

    def readable(self) -> bool:
        return True

    def __iter__(self) -> Iterator[bytes]:  # pandas takes file-likes that iterate
        raise io.UnsupportedOperation("read the spool with read()")


class Feed:
    """What a COPY FROM STDIN reads in one thread, fed block by block from another.

    The queue holds a few chunks' lines at most; `close` ends the COPY, or fails it with
    the feeder's error (Postgres then discards every row the COPY has received).
    """

    def __init__(self, depth: int = 2) -> None:
        import queue

        self._queue: queue.Queue[bytes | BaseException] = queue.Queue(maxsize=depth)
        self._block = b""
        self.failed = False  # set by the COPY's thread: stop feeding it

    def put(self, item: bytes | BaseException) -> None:
        import queue

        while not self.failed:
            try:
                return self._queue.put(item, timeout=0.5)
            except queue.Full:
                continue

    def close(self, error: BaseException | None = None) -> None:
        self.put(b"" if error is None else error)

    def read(self, size: int = -1) -> bytes:
        if not self._block:
            item = self._queue.get()
            if isinstance(item, BaseException):
                raise item
            self._block = item  # b"": the end
        if size < 0 or size >= len(self._block):
            data, self._block = self._block, b""
        else:
            data, self._block = self._block[:size], self._block[size:]
        return data
