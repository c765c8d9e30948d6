"""The one download core: where a get's bytes go, and what makes them a file.

A :class:`Download` is one file being fetched: its target (resolved once by
:func:`resolve_target`: a folder takes the remote name, a symlink is followed so the
file it points to is replaced, a FIFO or character device is streamed into and never
replaced), the hidden partial beside the real file, the hash of a kept prefix, the
receive loop, the check against the server's digest frame, the mtime and the atomic
rename. ``Client.get``, ``Client.getfo`` and ``Client.get_many`` all end here: a single
get is a batch of one.

Import rule: errors, protocol, transport, digests. Never server, sync, ui, shell, cli.
"""
from __future__ import annotations

import errno
import os
import posixpath
import stat as stat_
import time
from collections.abc import Callable

from ..hints import TYPE_CHECKING, LEAN

from ..records import dataclass
from .. import digests
from ..errors import (BadRequestError, ChecksumMismatchError, LocalError, ProtocolError,
                      PyftpError, RemoteError)
from ..protocol import (JSONObject, digest_in, mtime_ns, partial_name, raise_for_reply,
                        read_reply)
from ..transport import Channel

if TYPE_CHECKING or not LEAN:  # names for annotations; see pyftp.hints
    from typing import BinaryIO

if TYPE_CHECKING:
    from ..protocol.shapes import GetReply

__all__ = ["Download", "TransferResult", "ProgressCallback", "resolve_target", "file_target",
           "partial_path", "reply_error", "STREAM"]

#: ``on_progress(done, total)``: absolute byte counts of one file, as they move
ProgressCallback = Callable[[int, int], object]
#: what :func:`resolve_target` says of a target that is streamed into, not replaced
STREAM = "stream"


@dataclass(frozen=True)
class TransferResult:
    """What a finished get or put did."""

    remote: str
    local: str
    total: int  #: the file's length
    sent: int  #: bytes that crossed the wire this time (less than total after a resume)
    offset: int  #: where this transfer started (> 0 when it resumed)
    #: the file's digest in :attr:`algorithm` (named ``sha256`` since version 1, when
    #: SHA-256 was the only one; :attr:`digest` is the same value)
    sha256: str
    seconds: float
    algorithm: str = "sha256"  #: the digest algorithm the transfer was verified with

    @property
    def digest(self) -> str:
        """The file's digest (hex) in :attr:`algorithm`."""
        return self.sha256


def resolve_target(remote: str, local: str | os.PathLike[str] | None) -> tuple[str, str]:
    """Where a download of ``remote`` to ``local`` goes: ``(path, how)``.

    ``how`` is ``"file"`` (written to a partial beside ``path``, then renamed over it)
    or :data:`STREAM` (``path`` is a FIFO or character device: written into as the
    bytes arrive, never replaced). A symlink is followed: the file it points to is the
    one replaced, so the link itself survives."""
    name = posixpath.basename(remote.rstrip("/")) or "download"
    if local is None:
        return os.path.abspath(name), "file"
    local = os.fspath(local)
    if os.path.isdir(local):
        return os.path.join(local, name), "file"
    try:
        mode = os.stat(local).st_mode  # through links
    except OSError:
        mode = None
    if mode is not None and (stat_.S_ISFIFO(mode) or stat_.S_ISCHR(mode)):
        return local, STREAM
    if os.path.islink(local):
        if mode is not None and _through_proc(local):
            # /dev/stdout and friends: a process's open file, written into as the shell
            # redirected it, never swapped for a new file the process does not hold
            return local, STREAM
        local = os.path.realpath(local)
    if mode is not None and not stat_.S_ISREG(mode):
        raise LocalError(f"{local} is not a regular file; it is left as it is "
                         "(name a file or a folder)")
    parent = os.path.dirname(os.path.abspath(local))
    if not os.path.isdir(parent):
        raise LocalError(f"local folder does not exist: {parent}")
    return local, "file"


def _through_proc(path: str) -> bool:
    """True when following the link ``path`` passes through /proc (a process's fd)."""
    for _ in range(40):  # the kernel's own limit on links followed
        if os.path.abspath(path).startswith("/proc/"):
            return True
        if not os.path.islink(path):
            return False
        path = os.path.join(os.path.dirname(path), os.readlink(path))
    return False


def file_target(local: str) -> str:
    """A ``get_many`` target: a symlink is followed; anything that exists and is not
    a regular file raises LocalError (it is never replaced by one)."""
    try:
        mode = os.lstat(local).st_mode  # one system call for the common case
    except OSError:
        return local
    if stat_.S_ISLNK(mode):
        if _through_proc(local):
            raise LocalError(f"{local} is a process's open file; get it on its own")
        local = os.path.realpath(local)
        try:
            mode = os.stat(local).st_mode
        except OSError:
            return local
    if not stat_.S_ISREG(mode):
        raise LocalError(f"{local} is not a regular file; it is left as it is")
    return local


def partial_path(target: str) -> str:
    """The hidden partial file a download to ``target`` is written to."""
    return os.path.join(os.path.dirname(target) or ".", partial_name(os.path.basename(target)))


def reply_error(header: JSONObject) -> RemoteError:
    """The error an error reply stands for. Raises ProtocolError for a broken reply
    (or a ``bad_frame`` one, after which the server closes): the stream is lost."""
    try:
        raise_for_reply(header)
    except ProtocolError:
        raise
    except RemoteError as exc:
        return exc
    raise ProtocolError("expected an error reply")


class Download:
    """One remote file on its way to a local file (or a stream, when ``stream``).

    :meth:`request` builds the ``get`` (continuing the partial when resuming);
    :meth:`receive` reads the whole reply, payload and digest frame and returns the
    :class:`TransferResult` or the per-file error, so a pipelined stream stays in step
    whatever happens to this file. Errors of the stream itself (a reply that does not
    add up, the connection) are raised.
    """

    def __init__(self, remote: str, target: str, *, keep_mtime: bool = True,
                 progress: ProgressCallback | None = None,
                 stream: BinaryIO | None = None, refused: LocalError | None = None) -> None:
        self.remote, self.target = remote, target
        self.refused = refused  # a target this download must not touch
        self.keep_mtime, self.progress = keep_mtime, progress
        self.stream = stream
        self.partial = partial_path(target) if stream is None else ""
        self.offset = 0  # what the last request asked for
        #: the session's negotiated digest; None: a version 1 session (SHA-256)
        self.session: str | None = None
        #: (st_dev, st_ino) of the partial this download wrote: only that file is renamed
        self.written: tuple[int, int] | None = None

    def request(self, resume: bool) -> JSONObject:
        """The ``get`` request; raises LocalError for a target that is refused."""
        if self.refused is not None:
            raise self.refused
        self.offset = 0
        if resume and self.stream is None:
            try:
                st = os.lstat(self.partial)  # a link there is not a partial of ours
            except OSError:
                st = None
            if st is not None and stat_.S_ISREG(st.st_mode):
                self.offset = st.st_size
        return {"op": "get", "path": self.remote, "offset": self.offset}

    def retry_from_zero(self, result: TransferResult | PyftpError) -> bool:
        """True when a resumed attempt failed in a way a fresh one may not: the kept
        prefix did not belong to the file, or is longer than the file now is."""
        return bool(self.offset) and isinstance(result, (ChecksumMismatchError, BadRequestError))

    def receive(self, chan: Channel, header: JSONObject, next_header: Callable[[], JSONObject],
                timeout: float | None) -> TransferResult | PyftpError:
        started = time.monotonic()
        if header.get("ok") is not True:
            return reply_error(header)
        reply = read_reply("get", header)
        total, size, offset = reply["total"], reply["size"], reply["offset"]
        if offset != self.offset or size != chan.decoder.payload_left or offset + size != total:
            raise ProtocolError(f"the server's get reply for {self.remote} does not add up "
                                f"(offset {offset}, size {size}, total {total})")
        algorithm = self.session or "sha256"
        h = digests.new(algorithm)
        out = _Output(self, h)
        done = offset
        if self.progress:
            self.progress(done, total)

        def sink(chunk: bytes | memoryview) -> None:
            nonlocal done
            out.write(chunk)
            done += len(chunk)
            if self.progress:
                self.progress(done, total)
        try:
            # hasher=h: a large file is hashed on a second thread beside recv and write
            chan.recv_payload_into(sink, timeout=timeout, hasher=h)
        finally:
            out.close()
        digest = next_header()
        if digest.get("ok") is not True:
            return reply_error(digest)
        expected = digest_in("get", read_reply("get.digest", digest), self.session)
        if out.problem is not None:
            return out.problem
        got = h.hexdigest()
        problem = self._publish(reply, expected, got)
        if problem is not None:
            return problem
        return TransferResult(self.remote, self._shown(), total, size, offset, got,
                              time.monotonic() - started, algorithm)

    def _shown(self) -> str:
        if self.stream is None:
            return self.target
        return self.target or str(getattr(self.stream, "name", "") or "<stream>")

    def _publish(self, reply: GetReply, expected: str, got: str) -> PyftpError | None:
        """Compare digests, set the mtime, rename into place; the error or None."""
        if got != expected:
            name = digests.label(self.session or "sha256")
            if self.stream is None:
                _unlink(self.partial)
                return ChecksumMismatchError(
                    f"checksum mismatch: {self.remote} arrived with {name} {got[:12]}..., "
                    f"the server has {expected[:12]}...")
            return ChecksumMismatchError(
                f"checksum mismatch: {self.remote} arrived with {name} {got[:12]}..., the "
                f"server has {expected[:12]}...; the bytes already written to "
                f"{self._shown()} are not the file")
        if self.stream is not None:
            return None
        try:
            st = os.lstat(self.partial)
        except OSError:
            st = None
        if st is None or (st.st_dev, st.st_ino) != self.written:
            # someone swapped the partial after it was verified: its bytes are not ours
            return LocalError(f"cannot write {self.target}: its partial download "
                              f"{self.partial} was replaced by someone else; nothing was "
                              "published: get it again")
        if self.keep_mtime and reply.get("mtime") is not None:
            try:
                ns = mtime_ns(reply["mtime"])
                os.utime(self.partial, ns=(ns, ns), follow_symlinks=False)
            except (OSError, ValueError, TypeError, OverflowError):
                pass  # the bytes are right; a time the OS refuses is not worth failing for
        try:
            os.replace(self.partial, self.target)
        except OSError as exc:
            return LocalError(f"cannot write {self.target}: {exc.strerror}")
        return None


class _Output:
    """Where a download's bytes are written: the partial file (after hashing the kept
    prefix into ``h``) or the caller's stream. A write error is kept, not raised, and
    the rest of the payload is read and dropped so the connection stays in step."""

    def __init__(self, load: Download, h: digests.Hasher) -> None:
        self.problem: PyftpError | None = None
        self.fd: int | None = None
        self.stream = load.stream
        self.name = load.partial or load._shown()
        if self.stream is not None:
            return
        offset = load.offset
        # read-write: the kept prefix is hashed through the same descriptor (pread).
        # O_NOFOLLOW and a regular file only: a link or FIFO planted under the partial's
        # name (a shared folder) must never lead the download into another file
        flags = (os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW
                 | (os.O_APPEND if offset else os.O_TRUNC))
        try:
            self.fd = os.open(load.partial, flags | os.O_NONBLOCK, 0o644)
            st = os.fstat(self.fd)
            if not stat_.S_ISREG(st.st_mode):
                self.close()
                self.problem = LocalError(f"cannot write {self.name}: it is not a regular "
                                          "file (not a partial download of pyftp's); "
                                          "remove it and get the file again")
                return
            load.written = (st.st_dev, st.st_ino)
            if offset:
                digests.hash_into(h, self.fd, 0, offset)
        except OSError as exc:
            self._fail(exc)

    def write(self, chunk: bytes | memoryview) -> None:
        if self.problem is not None:
            return
        try:
            if self.fd is not None:
                view = memoryview(chunk)
                while view:
                    view = view[os.write(self.fd, view):]
            else:
                assert self.stream is not None
                view = memoryview(chunk)
                while view:
                    n = self.stream.write(view)
                    view = view[len(view) if n is None else n:]
        except (OSError, ValueError) as exc:
            self._fail(exc)

    def _fail(self, exc: Exception) -> None:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        if isinstance(exc, OSError) and exc.errno == errno.ELOOP:
            why = ("it is a symbolic link (a partial download is never written through "
                   "one); remove it and get the file again")
        self.problem = LocalError(f"cannot write {self.name}: {why}")
        self.close()

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.stream is not None and self.problem is None:
            try:
                self.stream.flush()
            except (OSError, ValueError) as exc:
                self.problem = LocalError(f"cannot write {self.name}: {exc}")


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
