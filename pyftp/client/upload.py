"""The one upload core: a local file as the source of a ``put``.

An :class:`Upload` opens and checks one local file and picks how it travels: a small
file is read once into memory (its digest and its bytes from the same read), a large
one leaves through ``sendfile``; on a server that lists ``sha256_trailer`` a large file
is hashed by a second thread while it is sent and its digest follows the data (so it
is read once, not twice), elsewhere it is hashed before the ``put``. ``Client.put`` and
``Client.put_many`` both send through it: a single put is a batch of one.

:class:`TokenBook` keeps the resume tokens a server hands out (contract C1) for the
process (shared by its clients) or, for the console script, in a small file between
runs.

Import rule: errors, protocol, transport, digests. Never server, sync, ui, shell, cli.
"""
from __future__ import annotations

import fcntl
import json
import os
import posixpath
import stat as stat_
import time

from ..hints import TYPE_CHECKING, LEAN

from .. import digests
from ..digests import OVERLAP_MIN, FileHasher
from ..errors import ChecksumMismatchError, LocalError, ProtocolError
from ..protocol import JSONObject, digest_in, encode_frame, wire_mtime
from ..transport import Channel
from .download import ProgressCallback, TransferResult

if TYPE_CHECKING or not LEAN:  # names for annotations; see pyftp.hints
    from typing import BinaryIO, Callable

if TYPE_CHECKING:
    from ..protocol.shapes import PutFinalReply, PutReply

__all__ = ["Upload", "TokenBook", "SMALL_PUT", "default_token_file"]

#: files up to this size are read into memory in one go
SMALL_PUT = 1 << 20


class TokenBook:
    """Resume tokens (contract C1): sent with every later put of the same target, from
    the same local file, and forgotten once it published.

    A key is (server address: host and port, user, absolute remote path, total, the local file's
    identity): a token is never offered for another file or another account. Without
    ``path`` the book lives in memory (one book per process, shared by its clients, so
    a new connection after a server restart still resumes); with ``path`` it is a small
    JSON file (mode 0600, at most :attr:`LIMIT` entries, oldest dropped first) that
    lets the next process resume an upload this one was cut off from.

    Only uploads that are worth resuming in another process go to the file: a file sent
    in one frame (up to :data:`SMALL_PUT`) is sent whole again by a rerun anyway, so its
    token (still needed by this process's retries) stays in memory (``durable=False``).
    A ``put -r`` of many small files would otherwise rewrite the file twice per file.
    """

    LIMIT = 1000
    _shared: TokenBook | None = None

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = os.fspath(path) if path is not None else None
        self._tokens: dict[str, str] = {}

    @classmethod
    def shared(cls) -> TokenBook:
        """The process-wide in-memory book (the default of every Client)."""
        if cls._shared is None:
            cls._shared = cls()
        return cls._shared

    @staticmethod
    def key(server: str, user: str | None, cwd: str, remote: str, total: int,
            st: os.stat_result | None = None) -> str:
        where = posixpath.normpath(posixpath.join(cwd or "/", remote))
        local = f"{st.st_dev}:{st.st_ino}:{st.st_mtime_ns}" if st is not None else ""
        return "\0".join((server, user or "", where, str(total), local))

    def get(self, key: str, durable: bool = True) -> str | None:
        if not durable:
            return self._tokens.get(key)
        return self._load().get(key)

    def remember(self, key: str, token: object, durable: bool = True) -> None:
        if isinstance(token, str) and token:
            self._change(lambda book: book.__setitem__(key, token), durable)

    def forget(self, key: str, durable: bool = True) -> None:
        self._change(lambda book: book.pop(key, None), durable)

    def __len__(self) -> int:
        return len(self._load())

    # -- the file form: read whole, changed under a lock, replaced atomically
    def _load(self) -> dict[str, str]:
        if self.path is None:
            return self._tokens
        try:
            with open(self.path, encoding="utf-8") as f:
                book = json.load(f)
        except (OSError, ValueError):
            return {}  # missing or damaged: resuming is an optimisation, never required
        if not isinstance(book, dict):
            return {}
        return {k: v for k, v in book.items() if isinstance(k, str) and isinstance(v, str)}

    def _change(self, edit: Callable[[dict[str, str]], object], durable: bool = True) -> None:
        if self.path is None or not durable:
            edit(self._tokens)
            return
        try:
            os.makedirs(os.path.dirname(self.path) or ".", mode=0o700, exist_ok=True)
            lock = os.open(self.path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            return  # a cache we cannot write costs only the resume
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            book = self._load()
            edit(book)
            while len(book) > self.LIMIT:
                book.pop(next(iter(book)))
            tmp = f"{self.path}.{os.getpid()}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(book, f)
            os.replace(tmp, self.path)
        except OSError:
            pass
        finally:
            os.close(lock)


def default_token_file() -> str:
    """Where the console script keeps resume tokens between runs."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "pyftp", "resume-tokens.json")


class Upload:
    """One local file on its way to ``remote``; :meth:`open` reads or hashes it.

    ``trailer`` says the server accepts the digest after the data. The ``put`` frame
    is encoded by :meth:`open` so a batch can send it right behind the previous file.
    """

    def __init__(self, local: str, remote: str, *, overwrite: bool, keep_mtime: bool,
                 trailer: bool, token_key: str | None = None,
                 session: str | None = None) -> None:
        self.local, self.remote = local, remote
        #: the session's negotiated digest; None: a version 1 session (SHA-256, fields
        #: named sha256)
        self.session = session
        self.algorithm = session or "sha256"
        self._field = "sha256" if session is None else "digest"
        self.overwrite, self.keep_mtime, self.trailer = overwrite, keep_mtime, trailer
        self.token_key = token_key
        self.total = 0
        #: whether the resume token belongs in the token file (see TokenBook)
        self.durable_token = True
        self.digest = ""
        self.data: bytes | None = None
        self.file: BinaryIO | None = None
        self.frame = b""
        self.offset = 0
        self._hasher: FileHasher | None = None
        self._h: digests.Digest | None = None

    def open(self, resume: bool, tokens: TokenBook | None = None,
             cwd: str = "/", server: str = "", user: str | None = None) -> "Upload":
        """Open, check and read (small) or hash (large, no trailer) the file; encode
        its ``put`` (with the resume token ``tokens`` holds for it, if any). Raises
        LocalError; nothing stays open after an error."""
        self.data, self.digest, self.offset, self._h = None, "", 0, None
        try:
            # O_NONBLOCK: opening a FIFO must not hang the batch; no effect on files
            fd = os.open(self.local, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        except OSError as exc:
            raise LocalError(f"cannot read {self.local}: {exc.strerror}") from exc
        try:
            st = os.fstat(fd)
            if stat_.S_ISDIR(st.st_mode):
                raise LocalError(f"{self.local} is a directory (use put -r)")
            if not stat_.S_ISREG(st.st_mode):
                raise LocalError(f"{self.local} is not a regular file")
        except BaseException:
            os.close(fd)
            raise
        f: BinaryIO | None = os.fdopen(fd, "rb", buffering=0)
        try:
            self.total = st.st_size
            req: JSONObject = {"op": "put", "path": self.remote}
            if st.st_size <= SMALL_PUT:
                assert f is not None
                self.data = f.read() or b""
                self.total = len(self.data)
                self.digest = digests.hash_bytes(self.data, self.algorithm)
            elif self.trailer and st.st_size >= OVERLAP_MIN:
                self.file, f = f, None
            else:
                self.digest = digests.hash_fd(fd, limit=st.st_size, algorithm=self.algorithm)
                self.file, f = f, None
            req["total"] = self.total
            self.durable_token = self.data is None
            req.update({self._field: self.digest} if self.digest else {"trailer": True})
            if self.overwrite:
                req["overwrite"] = True
            if not resume:
                req["resume"] = False
            if self.keep_mtime:
                req["mtime"] = wire_mtime(st.st_mtime_ns)
            if tokens is not None:
                self.token_key = tokens.key(server, user, cwd, self.remote, self.total, st)
                token = tokens.get(self.token_key, self.durable_token)
                if token is not None:
                    req["token"] = token
            self.frame = encode_frame(req)
        except OSError as exc:
            self.close()
            raise LocalError(f"cannot read {self.local}: {exc.strerror}") from exc
        except ValueError as exc:
            self.close()
            raise LocalError(f"remote path too long for {self.local}: {exc}") from exc
        except BaseException:
            self.close()
            raise
        finally:
            if f is not None:
                f.close()
        return self

    def send(self, chan: Channel, reply: PutReply, tick: ProgressCallback | None,
             then: Callable[[], bytes] = bytes) -> int:
        """Send the data (and ``verify``) frames for the offset ``reply``, then the
        bytes ``then()`` returns (the next put's header: for a small file in the same
        write); return the data bytes sent. Raises ProtocolError for an offset outside
        the file, LocalError if the file shrank (the connection is then out of step:
        the caller drops it)."""
        offset = reply["offset"]
        if not 0 <= offset <= self.total:
            raise ProtocolError(f"the server asked to resume {self.remote} at {offset!r}, "
                                f"outside 0..{self.total}")
        data: JSONObject = {"op": "data", "size": self.total - offset}
        if not self.digest and offset:
            # the server offers the partial it kept: only if it is a prefix of this file
            # (no digest yet means the file was left open to be hashed while it is sent)
            assert self.file is not None
            h = self._h = digests.new(self.algorithm)
            try:
                digests.hash_into(h, self.file.fileno(), 0, offset)
            except OSError as exc:
                raise LocalError(f"cannot read {self.local}: {exc.strerror}") from exc
            if h.hexdigest() != reply.get("prefix_" + self._field):
                self._h, offset = None, 0
                data = {"op": "data", "size": self.total, "offset": 0}
        self.offset = offset
        count = self.total - offset
        if tick:
            tick(offset, self.total)
        if self.data is not None:
            chan.send_bytes(b"".join((encode_frame(data), self.data[offset:], then())))
            if tick:
                tick(self.total, self.total)
            return count
        self._send_file(chan, data, offset, count, tick)
        tail = then()
        if tail:
            chan.send_bytes(tail)
        return count

    def _send_file(self, chan: Channel, data: JSONObject, offset: int, count: int,
                   tick: ProgressCallback | None) -> None:
        f = self.file
        assert f is not None
        if not self.digest:
            self._h = self._h or digests.new(self.algorithm)
            self._hasher = FileHasher(f.fileno(), self._h, offset, self.total)
        # sendfile's fallback for TLS reads from the file position: put it where the
        # data starts
        f.seek(offset)
        chan.send_header(data)
        done = offset

        def chunk(n: int) -> None:
            nonlocal done
            done += n
            if tick:
                tick(done, self.total)
        # without a progress callback one sendfile call moves the whole range
        sent = chan.send_file(f, offset, count, on_chunk=chunk if tick else None)
        if self._hasher is not None:
            try:
                self._hasher.result()
            except OSError as exc:
                raise LocalError(f"cannot read {self.local}: {exc.strerror}") from exc
            if self._hasher.hashed != count:
                sent = -1
        if sent != count:
            raise LocalError(f"{self.local} shrank while being sent; upload it again")
        if self._h is not None:
            self.digest = self._h.hexdigest()
            chan.send({"op": "verify", self._field: self.digest})

    def result(self, final: PutFinalReply,
               started: float) -> TransferResult | ChecksumMismatchError:
        """What the put did, from its final reply; a ChecksumMismatchError when the
        server reports another digest than that of the bytes sent (a server that lies
        about what it holds must not have its digest reported as this file's)."""
        theirs = digest_in("put", final, self.session, False)
        if theirs is not None and theirs != self.digest:
            name = digests.label(self.algorithm)
            return ChecksumMismatchError(
                f"checksum mismatch: the server reports {self.remote} as {name} "
                f"{str(theirs)[:12]}..., but {self.local} has {self.digest[:12]}...; the "
                "server does not hold what was sent: upload it again")
        return TransferResult(str(final.get("path") or self.remote), self.local, self.total,
                              self.total - self.offset, self.offset, self.digest,
                              time.monotonic() - started, self.algorithm)

    def close(self) -> None:
        """Release the file, its hasher and its bytes (a batch of many small files
        must not keep every one of them in memory)."""
        self.data = None
        if self._hasher is not None:
            self._hasher.cancel()
            self._hasher = None
        if self.file is not None:
            self.file.close()
            self.file = None
