"""fsspec's buffered files over pyftp: reads through verified ranged gets (or, from a
server without them, one verified download shared by its readers), writes collected
in a local temporary file and published by one verified upload on close.

Reads: a server with ranged reads (protocol section 14) sends each block with the
digest of that block, so a reader moves only the bytes it asks for, and a large read
lands straight in the buffer it is returned in. An older server verifies only whole
files, so the file is downloaded once (checked) and every range served from that copy.
A write is sent when the file is closed, so the server sees one ordinary ``put``:
nothing appears under the name until every byte arrived and matched, and a ``with``
block left by an exception publishes nothing at all.

Import rule: the public client API only; fsspec.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from typing import IO, TYPE_CHECKING, Any, BinaryIO

from fsspec.spec import AbstractBufferedFile


if TYPE_CHECKING:  # pragma: no cover
    from ..client import Client

__all__ = ["download_to_temp", "download_into", "Copy", "CopyCache", "PyftpReadFile",
           "PyftpWriteFile"]


def download_to_temp(client: "Client", path: str) -> IO[bytes]:
    """A verified copy of remote ``path`` in an anonymous temporary file.

    ``Client.getfo`` (where the client has it) streams straight into the file and
    checks the digest at the end; otherwise ``get`` publishes a verified copy in a
    private temporary folder, which is opened and unlinked at once. Either way the
    copy has no name left on disk: it vanishes when the last reader closes it.
    """
    if hasattr(client, "getfo"):
        f = tempfile.TemporaryFile(prefix="pyftp-fs-")
        try:
            client.getfo(path, f)
        except BaseException:
            f.close()
            raise
        return f
    folder = tempfile.mkdtemp(prefix="pyftp-fs-")
    try:
        target = os.path.join(folder, "download")
        client.get(path, target, resume=False)
        return open(target, "rb")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def download_into(client: "Client", path: str, f: BinaryIO) -> None:
    """Write remote ``path`` into the open binary file ``f``, verified."""
    if hasattr(client, "getfo"):
        client.getfo(path, f)
        return
    with download_to_temp(client, path) as copy:
        shutil.copyfileobj(copy, f, 1 << 20)


class Copy:
    """A verified local copy of one version (size, mtime) of a remote file.

    Readers share it through ``pread``, which takes no file position, so threads
    (and a forked child, which inherits the descriptor) never disturb each other.
    """

    def __init__(self, f: IO[bytes], size: int, mtime: float) -> None:
        self.file, self.size, self.mtime = f, size, mtime
        self.made = time.monotonic()

    def read(self, start: int, end: int) -> bytes:
        return os.pread(self.file.fileno(), max(0, end - start), start)


class CopyCache:
    """The last few verified copies, so that a reader opening the same file again
    (pandas and PyArrow open a Parquet file once for its footer, once for the data)
    does not download it again.

    A copy is reused only while the server still reports the same size and mtime and
    for at most ``ttl`` seconds after it was made; writes through the file system
    forget it at once. Copies are anonymous temporary files: dropping one frees its
    space when its last reader closes.
    """

    def __init__(self, ttl: float, max_copies: int = 4) -> None:
        self.ttl, self.max_copies = ttl, max_copies
        self._copies: dict[str, Copy] = {}
        self._lock = threading.Lock()

    def get(self, path: str, size: int, mtime: float) -> Copy | None:
        with self._lock:
            self._expire()
            copy = self._copies.get(path)
            if copy is not None and (copy.size, copy.mtime) == (size, mtime):
                return copy
            return None

    def put(self, path: str, copy: Copy) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            self._copies.pop(path, None)
            self._copies[path] = copy
            while len(self._copies) > self.max_copies:
                self._copies.pop(next(iter(self._copies)))

    def forget(self, path: str) -> None:
        """Drop the copies of ``path`` and of everything below it."""
        with self._lock:
            for key in [k for k in self._copies if k == path or k.startswith(path.rstrip("/") + "/")]:
                del self._copies[key]

    def _expire(self) -> None:
        now = time.monotonic()
        for key in [k for k, c in self._copies.items() if now - c.made > self.ttl]:
            del self._copies[key]


class PyftpReadFile(AbstractBufferedFile):  # type: ignore[misc]  # fsspec is untyped
    """A read-only, seekable file on a pyftp server (``fs.open(path, "rb")``).

    On a server with ranged reads, a read of at least a block (``block_size``,
    fsspec's 5 MiB by default) skips fsspec's cache: the bytes go from the socket
    straight into the buffer that is handed back, and PyArrow (whose ``PythonFile``
    asks for :meth:`read_buffer`) takes that buffer as it is. Smaller reads (a Parquet
    footer, a CSV parsed line by line) go through the cache, a block per request.
    Every range is verified and must come from the version of the file that was
    opened (same size and mtime), or the read raises ESTALE.
    """

    def __init__(self, fs: Any, path: str, **kwargs: Any) -> None:
        self._copy: Copy | None = None
        self._ranged = True  # until the server says it has no ranged reads
        self._version: str | None = None  # the server's tag of the version read
        super().__init__(fs, path, **kwargs)

    def _read_into(self, start: int, into: memoryview) -> bool:
        """One verified ranged read into ``into``; False on a server without them."""
        if self._ranged:
            got = self.fs.read_range_into(self.path, start, into, self.details,
                                          self._version)
            self._ranged = got is not None
            if got is not None and self._version is None:
                self._version = got.version  # every later range: the same version
        return self._ranged

    def _fetch_range(self, start: int, end: int) -> bytes:
        end = min(end, self.size)
        if end <= start:
            return b""
        if self._copy is None:
            buf = bytearray(end - start)
            if self._read_into(start, memoryview(buf)):
                return bytes(buf)
            # an older server: one verified local copy, every range served from it
            self._copy = self.fs.local_copy(self.path, self.details)
        return self._copy.read(start, end)

    def _direct(self, want: int, into: memoryview | None = None) -> memoryview | None:
        """Read ``want`` bytes (at most up to the end) past the cache, into ``into`` or
        a new buffer; None (nothing read) for a read under a block or a server without
        ranged reads."""
        if self.closed or self.mode != "rb":
            return None  # the base class says what is wrong
        want = min(want, self.size - self.loc)
        if want < max(1, self.blocksize) or self._copy is not None or not self._ranged:
            return None
        view = memoryview(bytearray(want)) if into is None else into[:want]
        if not self._read_into(self.loc, view):
            return None
        self.loc += want
        return view

    def read(self, length: int = -1) -> bytes:
        length = -1 if length is None else int(length)
        view = self._direct(self.size - self.loc if length < 0 else length)
        return super().read(length) if view is None else bytes(view)

    def read_buffer(self, length: int) -> bytes | memoryview:
        """:meth:`read` for PyArrow's ``PythonFile``, which takes any buffer: a large
        read is handed over in the memory it arrived in, never copied into ``bytes``."""
        view = self._direct(int(length))
        return self.read(length) if view is None else view

    def readinto(self, b: Any) -> int:
        into = memoryview(b).cast("B")
        view = self._direct(len(into), into)
        return super().readinto(b) if view is None else len(view)

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._copy = None


class PyftpWriteFile(AbstractBufferedFile):  # type: ignore[misc]
    """A file being written to a pyftp server (``fs.open(path, "wb")`` or ``"xb"``).

    The bytes go straight to a local temporary file (not through fsspec's in-memory
    block first, which would copy every byte once more); :meth:`commit` (on close, or
    at the end of an fsspec transaction) uploads it with one verified ``put``. The
    upload cannot start earlier: a ``put`` names its size up front, and nothing may
    appear under the name before the last byte is in. ``"xb"`` refuses to replace an
    existing file (``FileExistsError`` at commit, decided by the server).
    """

    #: the temporary file's own buffer: PyArrow writes many small pieces (page headers)
    SPOOL_BUFFER = 1 << 20

    def __init__(self, fs: Any, path: str, mode: str = "wb", **kwargs: Any) -> None:
        if mode not in ("wb", "xb"):
            raise ValueError(f"mode {mode!r} is not supported by pyftp://: the protocol "
                             "has no append; read the file, then write it whole with 'wb'")
        self._spool: IO[bytes] | None = None
        super().__init__(fs, path, mode=mode, **kwargs)

    def write(self, data: Any) -> int:
        if self.closed:
            raise ValueError("I/O operation on closed file.")
        if self.forced:
            raise ValueError("This file has been force-flushed, can only close")
        self._initiate_upload()
        assert self._spool is not None
        n = self._spool.write(data)
        self.loc += n
        return n

    def _initiate_upload(self) -> None:
        if self._spool is None:
            self._spool = tempfile.NamedTemporaryFile(
                prefix="pyftp-fs-", suffix=".upload", delete=False,
                buffering=self.SPOOL_BUFFER)

    def _upload_chunk(self, final: bool = False) -> bool:
        self._initiate_upload()
        assert self._spool is not None
        self._spool.write(self.buffer.getbuffer())  # empty unless a caller filled it
        if final:
            self._spool.close()
            if self.autocommit:
                self.commit()
        return True

    def commit(self) -> None:
        """Upload what was written; the server publishes it only once verified."""
        if self._spool is None:
            return
        try:
            self.fs.upload(self._spool.name, self.path, overwrite=self.mode == "wb")
        finally:
            self.discard()

    def discard(self) -> None:
        """Throw the written bytes away; nothing reaches the server."""
        spool, self._spool = self._spool, None
        if spool is not None:
            spool.close()
            try:
                os.unlink(spool.name)
            except FileNotFoundError:
                pass

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.close()
            return
        # the with block failed: what was written is incomplete, so it is not published
        self.forced = True
        self.discard()
        self.closed = True
