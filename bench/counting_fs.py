"""A local filesystem that counts the bytes read through it, for DuckDB to read through.

DuckDB reads through any fsspec filesystem registered on a connection, for paths starting
with that filesystem's protocol. Registering this one and pointing views at
``counted:///abs/path/...`` measures the bytes a query really fetched from storage, after
DuckDB's partition and column pruning: what an object store would have served.
"""

from __future__ import annotations

import os
import threading

from fsspec.implementations.local import LocalFileSystem

PROTOCOL = "counted"


def url(path: str) -> str:
    """``path`` (absolute) as a URL that reads through the counting filesystem."""
    return f"{PROTOCOL}://{path}"


class CountingFileSystem(LocalFileSystem):
    """The local filesystem under ``counted://``; ``bytes_read`` sums every read."""

    protocol = (PROTOCOL,)

    def __init__(self, **kwargs):
        # fsspec caches instances by their arguments; each caller wants its own counter.
        super().__init__(skip_instance_cache=True, **kwargs)
        self.bytes_read = 0
        self._lock = threading.Lock()

    def count(self, size: int) -> None:
        with self._lock:
            self.bytes_read += size

    def _open(self, path, mode="rb", block_size=None, **kwargs):
        if "r" not in mode or "+" in mode:
            return super()._open(path, mode, block_size, **kwargs)
        return _CountingReader(self._strip_protocol(path), self)


class _CountingReader:
    """A read-only file that counts what it reads.

    DuckDB positions and reads with two separate calls (``seek``, then ``read``) and may
    share one handle between threads, so each thread keeps its own position and reads at
    it with ``os.pread``: no thread ever reads at another's position.
    """

    def __init__(self, path: str, filesystem: CountingFileSystem):
        self.path = path
        self.closed = True  # until the descriptor is open, for __del__
        self._descriptor = os.open(path, os.O_RDONLY)
        self.closed = False
        self._size = os.fstat(self._descriptor).st_size
        self._filesystem = filesystem
        self._position = threading.local()

    def tell(self) -> int:
        return getattr(self._position, "offset", 0)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        origin = {os.SEEK_SET: 0, os.SEEK_CUR: self.tell(), os.SEEK_END: self._size}[whence]
        self._position.offset = origin + offset
        return self._position.offset

    def read(self, size: int | None = -1) -> bytes:
        start = self.tell()
        wanted = self._size - start if size is None or size < 0 else size
        chunks, done = [], 0
        while done < wanted:
            chunk = os.pread(self._descriptor, wanted - done, start + done)
            if not chunk:  # end of file
                break
            chunks.append(chunk)
            done += len(chunk)
        self._position.offset = start + done
        self._filesystem.count(done)
        return b"".join(chunks)

    def readinto(self, buffer) -> int:
        data = self.read(len(memoryview(buffer)))
        memoryview(buffer)[: len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    @property
    def size(self) -> int:
        return self._size

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            os.close(self._descriptor)

    def __del__(self) -> None:
        # DuckDB drops its handles without closing them; the descriptor goes with the object.
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
