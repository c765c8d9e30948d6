"""fsspec's buffered files over pyftp: reads served from one verified download, writes
collected in a local temporary file and published by one verified upload on close.

Why whole files: a pyftp ``get`` is verified by the SHA-256 of the whole file, and the
protocol has no ranged read yet, so a read downloads the file once (checked) and serves
every range from that copy. A write is sent when the file is closed, so the server
sees one ordinary ``put``: nothing appears under the name until every byte arrived and
matched, and a ``with`` block left by an exception publishes nothing at all.

Import rule: the public client API only; fsspec.
"""
from __future__ import annotations

import errno
import os
import shutil
import tempfile
import threading
import time
from typing import IO, TYPE_CHECKING, Any, BinaryIO

from fsspec.spec import AbstractBufferedFile

from ..errors import BusyError

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
    """A read-only, seekable file on a pyftp server (``fs.open(path, "rb")``)."""

    def __init__(self, fs: Any, path: str, **kwargs: Any) -> None:
        self._copy: Copy | None = None
        super().__init__(fs, path, **kwargs)

    def _fetch_range(self, start: int, end: int) -> bytes:
        # a server with ranged reads (protocol section 14) sends only [start, end),
        # verified by the digest of the range; an older one: a verified local copy
        if self._copy is None:
            end = min(end, self.size)
            if end <= start:
                return b""

            def ranged(c: Client) -> bytes | None:
                if "ranges" not in c.server_info.get("features", ()):
                    return None
                # every range from the version opened: one replaced meanwhile would
                # mix two files' bytes, each range verified on its own
                try:
                    return c.get_range(self.path, start, end - start,
                                       expect=(self.size, self.details.get("mtime")))
                except BusyError as exc:
                    raise OSError(errno.ESTALE, str(exc), self.path) from exc
            data: bytes | None = self.fs._run(ranged, self.path)
            if data is not None:
                return data
            self._copy = self.fs.local_copy(self.path, self.details)
        return self._copy.read(start, end)

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._copy = None


class PyftpWriteFile(AbstractBufferedFile):  # type: ignore[misc]
    """A file being written to a pyftp server (``fs.open(path, "wb")`` or ``"xb"``).

    The bytes go to a local temporary file; :meth:`commit` (on close, or at the end of
    an fsspec transaction) uploads it with one verified ``put``. ``"xb"`` refuses to
    replace an existing file (``FileExistsError`` at commit, decided by the server).
    """

    def __init__(self, fs: Any, path: str, mode: str = "wb", **kwargs: Any) -> None:
        if mode not in ("wb", "xb"):
            raise ValueError(f"mode {mode!r} is not supported by pyftp://: the protocol "
                             "has no append; read the file, then write it whole with 'wb'")
        self._spool: IO[bytes] | None = None
        super().__init__(fs, path, mode=mode, **kwargs)

    def _initiate_upload(self) -> None:
        self._spool = tempfile.NamedTemporaryFile(prefix="pyftp-fs-", suffix=".upload",
                                                  delete=False)

    def _upload_chunk(self, final: bool = False) -> bool:
        assert self._spool is not None
        self._spool.write(self.buffer.getbuffer())
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
