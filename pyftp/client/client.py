"""``pyftp.Client``: one connection to a pyftp server, one method per operation.

Methods raise the :mod:`pyftp.errors` class of the server's error code, and
:class:`~pyftp.errors.TransportError` when the connection fails. A connection that
failed in the middle of an exchange is closed and never reused out of step (its state
sticks, as in h11): call :meth:`Client.reconnect` to go on.

Transfers are verified and atomic on this side too: a download is written to a hidden
partial file beside the target, checked against the server's SHA-256, and only then
renamed into place; rerunning it continues the partial. Progress leaves through
``on_progress(done, total)`` callbacks with absolute byte counts. No printing here.

Where the work is: :mod:`.connection` (connect, TLS, hello, the sticky state),
:mod:`.pipeline` (requests in flight; every transfer runs there, a single one as a
batch of one), :mod:`.download` and :mod:`.upload` (the one core of each direction),
:mod:`.ranges` (a verified ranged read, straight into the caller's memory).

Import rule: errors, protocol, transport, digests. Never server, sync, ui, shell, cli.
"""
from __future__ import annotations

import os

from ..hints import TYPE_CHECKING, LEAN, named_tuple

from ..errors import BusyError, LocalError, NotFoundError, PyftpError, RemoteError, TransportError
from ..protocol import JSONObject, digest_in
from .download import STREAM, Download, ProgressCallback, TransferResult, resolve_target
from .entry import Entry
from .pipeline import Batches, parse_listing, parse_names
from .ranges import RangeInfo
from .upload import Upload

if TYPE_CHECKING or not LEAN:  # names for annotations; see pyftp.hints
    from typing import BinaryIO, NamedTuple

__all__ = ["Client", "Entry", "TransferResult", "ProgressCallback", "DiskUsage"]


if TYPE_CHECKING:
    class _DiskUsage(NamedTuple):
        total: int
        free: int
else:  # the same tuple without loading typing (see pyftp.hints)
    _DiskUsage = named_tuple("DiskUsage", "total free", module=__name__)


class DiskUsage(_DiskUsage):
    """What :meth:`Client.df` answers: bytes of the share's file system, ``(total,
    free)``. ``free`` is what the server may still write (space reserved for root is
    not in it, so ``total - free`` is more than what files take)."""

    __slots__ = ()


class Client(Batches):
    """A connection to a pyftp server.

    >>> with Client("127.0.0.1", 6971) as c:            # doctest: +SKIP
    ...     c.put("report.pdf", "/inbox/report.pdf")
    ...     print([e.name for e in c.ls("/inbox")])

    ``tls`` may be True (verify against the system CAs or ``cafile``), an
    ``ssl.SSLContext`` of your own, or False. ``insecure=True`` skips certificate
    checks (TLS still encrypts, but anyone in the middle could read along).
    ``hello_timeout`` bounds the wait for the server's first answer (5 s): a peer that
    is not pyftp raises :class:`~pyftp.errors.NotPyftpError` saying what it is.
    ``digest`` forces the digest algorithm (``"sha256"`` or ``"blake3"``); None picks
    BLAKE3 when both ends have it. :attr:`algorithm` says which one the session uses.
    """

    # ------------------------------------------------------------------ simple ops
    def pwd(self) -> str:
        """The session's current remote directory."""
        self._cwd = self._call({"op": "pwd"})["cwd"]
        return self._cwd

    def cd(self, path: str) -> str:
        """Change the remote directory; return the new one."""
        self._cwd = self._call({"op": "cd", "path": path})["cwd"]
        return self._cwd

    def ls(self, path: str | None = None) -> list[Entry]:
        """Entries of a remote directory (or the one entry, for a file), sorted by name."""
        req: JSONObject = {"op": "ls"}
        if path is not None:
            req["path"] = path
        self._call(req)
        return parse_listing(self._read_payload())

    def names(self, path: str | None = None) -> list[str]:
        """The names in a remote directory, sorted by name, a folder's ending in ``/``
        (like ``ls -p``; for a file, its one name).

        Cheaper than :meth:`ls` on a long folder: the server reads no file's size or
        time (protocol feature ``ls_names``; an older server sends the full listing,
        which gives the same names).
        """
        req: dict[str, object] = {"op": "ls", "names": True}
        if path is not None:
            req["path"] = path
        self._call(req)
        return parse_names(self._read_payload())

    def stat(self, path: str) -> Entry:
        """Describe one remote file or directory."""
        return Entry.from_wire(self._call({"op": "stat", "path": path})["entry"])

    def exists(self, path: str) -> bool:
        try:
            self.stat(path)
        except NotFoundError:
            return False
        return True

    def mkdir(self, path: str, parents: bool = False) -> str:
        """Create a directory (``parents=True``: like ``mkdir -p``)."""
        return self._call({"op": "mkdir", "path": path, "parents": parents}).get("path") or path

    def rm(self, path: str) -> None:
        """Remove a file."""
        self._call({"op": "rm", "path": path})

    def rmdir(self, path: str) -> None:
        """Remove an empty directory."""
        self._call({"op": "rmdir", "path": path})

    def mv(self, src: str, dst: str, overwrite: bool = False) -> None:
        """Rename or move; an existing ``dst`` is refused unless ``overwrite``."""
        req: JSONObject = {"op": "mv", "src": src, "dst": dst}
        if overwrite:
            req["overwrite"] = True
        self._call(req)

    def hash(self, path: str) -> str:
        """The digest (hex) of a remote file, computed by the server, in the session's
        :attr:`algorithm` (SHA-256 on a version 1 server)."""
        reply = self._call({"op": "hash", "path": path})
        return str(digest_in("hash", reply, self.algorithm if self.negotiated else None))

    def df(self) -> DiskUsage:
        """Total and free bytes of the file system holding the share (protocol 7.14).

        Raises :class:`~pyftp.errors.RemoteError` with code ``unsupported`` when the
        server cannot say: an older server without the feature ``df``, or a storage
        backend with no disk behind it (a bucket)."""
        if "df" not in self.server_info.get("features", ()):
            raise RemoteError(f"unsupported: {self.address} cannot report disk space (an "
                              "older server, without df)", code="unsupported")
        reply = self._call({"op": "df"})
        return DiskUsage(reply["total"], reply["free"])

    def upper(self, text: str) -> str:
        """The server's upper-case echo of ``text``."""
        self._call({"op": "upper"}, text.encode("utf-8"))
        return self._read_payload().decode("utf-8", "replace")

    # ------------------------------------------------------------------ transfers
    def get(self, remote: str, local: str | os.PathLike[str] | None = None, *,
            on_progress: ProgressCallback | None = None, resume: bool = True,
            keep_mtime: bool = True) -> TransferResult:
        """Download ``remote`` to ``local`` (a file path or an existing directory).

        The bytes go to a hidden partial file beside the target; an earlier partial is
        continued when ``resume``. Only a file whose SHA-256 matches the server's takes
        the real name; a resumed one that does not match is fetched once more from zero.
        A symlink is followed (the file it points to is replaced, the link stays); a
        FIFO or character device is written into (see :meth:`getfo`), never replaced.
        """
        target, how = resolve_target(remote, local)
        if how == STREAM:
            try:
                # append: a FIFO or device does not care, and /dev/stdout redirected to a
                # file with >> must not be truncated
                f = open(target, "ab", buffering=0)
            except OSError as exc:
                raise LocalError(f"cannot write {target}: {exc.strerror}") from exc
            with f:
                return _one(self._download([Download(remote, target, progress=on_progress,
                                                     stream=f)], False, 1, None))
        load = Download(remote, target, keep_mtime=keep_mtime, progress=on_progress)
        return _one(self._download([load], resume, 1, None))

    def getfo(self, remote: str, f: BinaryIO, *,
              on_progress: ProgressCallback | None = None) -> TransferResult:
        """Download ``remote`` into the open binary file ``f`` as the bytes arrive.

        No partial file and no resume. The SHA-256 is checked at the end: on a mismatch
        :class:`~pyftp.errors.ChecksumMismatchError` is raised after the fact (the bytes
        were written). ``TransferResult.local`` is ``f.name``, or ``"<stream>"``."""
        load = Download(remote, "", progress=on_progress, stream=f)
        return _one(self._download([load], False, 1, None))

    def get_range(self, remote: str, offset: int, length: int, *,
                  expect: tuple[int, float] | None = None) -> bytes:
        """Bytes ``[offset, offset + length)`` of ``remote``, verified against the
        server's digest of exactly that range (protocol section 14: a server that lists
        the feature ``ranges``). A range past the end raises BadRequestError; a
        mismatch ChecksumMismatchError. ``expect``: the file's ``(size, mtime)`` as
        ``stat`` reported it; a file that no longer has them raises BusyError (ranges
        read one by one must not come from two versions of a file).
        :meth:`get_range_into` fills a buffer of yours instead; :meth:`get_ranges` sends
        many reads pipelined."""
        if type(offset) is not int or type(length) is not int or offset < 0 or length < 0:
            raise ValueError("get_range: offset and length must be integers >= 0")
        buf = bytearray(length)
        info = self.get_range_into(remote, offset, buf)
        if expect is not None and (info.total, info.mtime) != expect:
            raise BusyError(f"busy: {remote} changed since it was opened ({expect[0]} "
                            f"bytes, mtime {expect[1]}; now {info.total} bytes, mtime "
                            f"{info.mtime}): open it again")
        return bytes(buf)

    def get_range_into(self, remote: str, offset: int,
                       into: bytearray | memoryview) -> RangeInfo:
        """Fill ``into`` with bytes ``[offset, offset + len(into))`` of ``remote``,
        verified as :meth:`get_range` does. The bytes go from the socket straight into
        ``into`` (no copy in between); what ``into`` holds is only to be trusted once
        this returned. Returns the file's length and mtime as the server saw it while
        sending, so a reader of several ranges can tell that they belong together."""
        res = self.get_ranges_into([(remote, offset, into)], window=1)[0]
        if isinstance(res, PyftpError):
            raise res
        return res

    def put(self, local: str | os.PathLike[str], remote: str | None = None, *,
            on_progress: ProgressCallback | None = None, overwrite: bool = False,
            resume: bool = True, keep_mtime: bool = True) -> TransferResult:
        """Upload ``local`` to ``remote`` (default: its name in the remote cwd).

        The server publishes the file only once all bytes arrived and their SHA-256
        matches; a partial upload left by an earlier attempt is continued when
        ``resume``. If a resumed upload does not verify, it is sent once more from zero.
        """
        local = os.fspath(local)
        if remote is None:
            remote = os.path.basename(local.rstrip(os.sep))
        trailer = "sha256_trailer" in self.server_info.get("features", ())
        up = Upload(local, remote, overwrite=overwrite, keep_mtime=keep_mtime, trailer=trailer,
                    session=self.algorithm if self.negotiated else None)
        got: list[TransferResult | PyftpError] = []
        try:
            return _one(self._upload([up], resume, [on_progress], lambda _i, r: got.append(r)))
        except TransportError:
            if got and isinstance(got[-1], LocalError):
                raise got[-1] from None  # the file shrank: that is what to tell
            raise


def _one(results: list[TransferResult | PyftpError]) -> TransferResult:
    """The result of a batch of one, or its error raised."""
    res = results[0]
    if isinstance(res, PyftpError):
        raise res
    return res
