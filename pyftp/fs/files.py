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

import os
import shutil
import tempfile
from typing import IO, TYPE_CHECKING, Any

from fsspec.spec import AbstractBufferedFile

if TYPE_CHECKING:  # pragma: no cover
    from ..client import Client

__all__ = ["download_to_temp", "download_into", "PyftpReadFile", "PyftpWriteFile"]


def download_to_temp(client: "Client", path: str) -> IO[bytes]:
    """A verified copy of remote ``path`` in an anonymous temporary file, at offset 0."""
    f = tempfile.TemporaryFile(prefix="pyftp-fs-")
    try:
        download_into(client, path, f)
        f.seek(0)
    except BaseException:
        f.close()
        raise
    return f


def download_into(client: "Client", path: str, f: IO[bytes]) -> None:
    """Write remote ``path`` into the open binary file ``f``, verified.

    ``Client.getfo`` streams straight into ``f`` and checks the digest at the end;
    a client without it downloads to a temporary folder first (``get`` publishes
    only a verified copy there) and copies that.
    """
    getfo = getattr(client, "getfo", None)
    if getfo is not None:
        getfo(path, f)
        return
    folder = tempfile.mkdtemp(prefix="pyftp-fs-")
    try:
        target = os.path.join(folder, "download")
        client.get(path, target, resume=False)
        with open(target, "rb") as src:
            shutil.copyfileobj(src, f, 1 << 20)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class PyftpReadFile(AbstractBufferedFile):
    """A read-only, seekable file on a pyftp server (``fs.open(path, "rb")``)."""

    def __init__(self, fs: Any, path: str, **kwargs: Any) -> None:
        self._copy: IO[bytes] | None = None
        super().__init__(fs, path, **kwargs)

    def _fetch_range(self, start: int, end: int) -> bytes:
        # TODO(issue 14): ranged reads on the wire (a get with a length, verified by
        # the digest of the range) will fetch only [start, end) instead of the file
        if self._copy is None:
            copy = self.fs.download(self.path)
            got = os.fstat(copy.fileno()).st_size
            if got != self.size:
                copy.close()
                raise OSError(f"{self.path} changed while it was being read "
                              f"({self.size} bytes, now {got}); open it again")
            self._copy = copy
        self._copy.seek(start)
        return self._copy.read(max(0, end - start))

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self._copy is not None:
                self._copy.close()
                self._copy = None


class PyftpWriteFile(AbstractBufferedFile):
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
