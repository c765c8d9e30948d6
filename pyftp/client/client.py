"""``pyftp.Client``: one connection to a pyftp server, one method per operation.

Methods raise the :mod:`pyftp.errors` class of the server's error code, and
:class:`~pyftp.errors.TransportError` when the connection fails. A connection that
failed in the middle of an exchange is closed and never reused out of step (its state
sticks, as in h11): call :meth:`Client.reconnect` to go on.

Transfers are verified and atomic on this side too: a download is written to a hidden
partial file beside the target, checked against the server's SHA-256, and only then
renamed into place; rerunning it continues the partial. Progress leaves through
``on_progress(done, total)`` callbacks with absolute byte counts. No printing here.

Import rule: errors, protocol, transport. Never server or ui.
"""
from __future__ import annotations

import os
import posixpath
import socket
import stat as stat_
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

from .._version import __version__
from ..errors import (BadRequestError, ChecksumMismatchError, ConnectError, LocalError,
                     ProtocolError, PyftpError, RemoteError, TransportError,
                     UnsupportedVersionError)
from ..protocol import (DEFAULT_PORT, VERSION, encode_frame, partial_name, raise_for_reply,
                       mtime_ns, wire_mtime)
from .. import digests
from ..digests import CHUNK, OVERLAP_MIN, FileHasher
from ..transport import Channel

if TYPE_CHECKING:
    import ssl

__all__ = ["Client", "Entry", "TransferResult", "ProgressCallback"]

ProgressCallback = Callable[[int, int], object]

#: requests kept in flight by the pipelined methods
PIPELINE_WINDOW = 64
#: request bytes in flight beyond which no more are sent (far below any socket buffer)
PIPELINE_BYTES = 16 * 1024
#: put_many reads files up to this size into memory in one go
SMALL_PUT = 1 << 20
#: the largest listing payload accepted
LISTING_LIMIT = 1 << 30
_SIMPLE_OPS = frozenset({"stat", "hash", "mkdir", "rm", "rmdir", "mv", "pwd"})


@dataclass(frozen=True)
class Entry:
    """One file or directory on the server."""

    name: str
    type: str  # "file" or "dir"
    size: int
    mtime: float

    @property
    def is_dir(self) -> bool:
        return self.type == "dir"

    @classmethod
    def from_wire(cls, d: dict) -> "Entry":
        name, kind, size, mtime = d.get("name"), d.get("type"), d.get("size", 0), d.get("mtime", 0.0)
        if (type(name) is str and type(kind) is str and type(size) is int
                and type(mtime) in (float, int)):
            # the common case, without the frozen __init__'s four object.__setattr__
            # calls: half the cost of a big listing on the client
            entry = object.__new__(cls)
            entry.__dict__.update(name=name, type=kind, size=size, mtime=float(mtime))
            return entry
        try:
            return cls(str(d["name"]), str(d["type"]), int(d.get("size", 0)),
                       float(d.get("mtime", 0.0)))
        except (KeyError, TypeError, ValueError) as exc:
            raise ProtocolError(f"malformed listing entry from the server: {d!r:.80}") from exc


@dataclass(frozen=True)
class TransferResult:
    """What a finished get or put did."""

    remote: str
    local: str
    total: int  #: the file's length
    sent: int  #: bytes that crossed the wire this time (less than total after a resume)
    offset: int  #: where this transfer started (> 0 when it resumed)
    sha256: str
    seconds: float


class Client:
    """A connection to a pyftp server.

    >>> with Client("127.0.0.1", 6971) as c:            # doctest: +SKIP
    ...     c.put("report.pdf", "/inbox/report.pdf")
    ...     print([e.name for e in c.ls("/inbox")])

    ``tls`` may be True (verify against the system CAs or ``cafile``), an
    ``ssl.SSLContext`` of your own, or False. ``insecure=True`` skips certificate
    checks (TLS still encrypts, but anyone in the middle could read along).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = DEFAULT_PORT, *,
                 user: str | None = None, password: str | None = None,
                 timeout: float | None = 30.0, tls: bool | ssl.SSLContext = False,
                 cafile: str | None = None, insecure: bool = False,
                 limit_rate: int | None = None, connect: bool = True) -> None:
        self.host, self.port = host, port
        self.user, self._password = user, password
        self.timeout = timeout
        self.limit_rate = limit_rate
        self._ssl_context = _client_context(tls, cafile, insecure)
        self._chan: Channel | None = None
        self._broken: str | None = None
        self._cwd = "/"
        self.server_info: dict = {}
        if connect:
            self.connect()

    # ------------------------------------------------------------------ connection
    def connect(self) -> None:
        """Open the connection and say hello (log in when credentials were given)."""
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except socket.timeout as exc:
            raise ConnectError(f"could not connect to {self.address}: timed out") from exc
        except OSError as exc:
            raise ConnectError(f"could not connect to {self.address}: "
                               f"{exc.strerror or exc}; is pyftp-server running there?") from exc
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._ssl_context is not None:
                import ssl
                try:
                    sock = self._ssl_context.wrap_socket(sock, server_hostname=self.host)
                except ssl.SSLCertVerificationError as exc:
                    raise ConnectError(f"TLS: the certificate of {self.address} is not trusted "
                                       f"({exc.verify_message}); pass --cafile FILE") from exc
                except (ssl.SSLEOFError, ConnectionError) as exc:
                    raise ConnectError(f"{self.address} closed the connection during the TLS "
                                       "handshake: the server may be full, or may not use "
                                       "TLS") from exc
                except (ssl.SSLError, OSError) as exc:
                    raise ConnectError(f"TLS handshake with {self.address} failed ({exc}); "
                                       "does the server use TLS?") from exc
            self._chan = Channel(sock, limit_rate=self.limit_rate)
            self._broken = None
            hello: dict = {"op": "hello", "version": VERSION, "client": f"pyftp/{__version__}"}
            if self.user is not None:
                hello["user"] = self.user
                hello["password"] = self._password or ""
            try:
                self.server_info = dict(self._call(hello))
            except UnsupportedVersionError:
                raise
            except TransportError as exc:
                raise ConnectError(
                    f"{self.address} closed the connection during hello ({exc}); if the "
                    "server uses TLS, connect with --tls") from exc
            except ProtocolError as exc:
                tls_hint = ("" if self._ssl_context is not None
                            else "; if the server uses TLS, connect with --tls")
                raise ConnectError(f"{self.address} does not answer like a pyftp server "
                                   f"({exc}){tls_hint}") from exc
        except BaseException:
            self._drop("connect failed")
            raise

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def connected(self) -> bool:
        return self._chan is not None and self._broken is None

    def reconnect(self) -> None:
        """Open a fresh connection and return to the directory the session was in."""
        cwd = self._cwd
        self._drop("reconnecting")
        self.connect()
        if cwd != "/":
            try:
                self.cd(cwd)
            except RemoteError:
                self._cwd = "/"

    def close(self) -> None:
        """Say quit (best effort) and close. Safe to call twice."""
        if self._chan is not None and self._broken is None:
            try:
                self._chan.sock.settimeout(2.0)
                self._call({"op": "quit"})
            except Exception:
                pass
        self._drop("closed")

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _drop(self, why: str) -> None:
        if self._chan is not None:
            self._chan.close()
        self._chan = None
        self._broken = why

    def _channel(self) -> Channel:
        if self._chan is None or self._broken is not None:
            raise TransportError(f"not connected to {self.address} ({self._broken or 'closed'}); "
                                 "reconnect first")
        return self._chan

    def _recv_reply(self) -> dict:
        chan = self._channel()
        fields = chan.recv_header(self.timeout, self.timeout)
        if fields is None:
            raise TransportError(f"{self.address} closed the connection")
        return fields

    def _call(self, request: dict, payload: bytes = b"") -> dict:
        """One request, one reply header (its payload, if any, is left to the caller)."""
        chan = self._channel()
        try:
            chan.send(request, payload)
            reply = self._recv_reply()
        except (TransportError, ProtocolError) as exc:
            self._drop(str(exc))
            raise
        except BaseException:
            self._drop("interrupted")
            raise
        return dict(raise_for_reply(reply))

    def _read_payload(self, limit: int = 1 << 30) -> bytes:
        chan = self._channel()
        try:
            return chan.recv_payload(limit, self.timeout)
        except BaseException:
            self._drop("failed while reading a reply")
            raise

    # ------------------------------------------------------------------ simple ops
    def pwd(self) -> str:
        """The session's current remote directory."""
        self._cwd = str(self._call({"op": "pwd"})["cwd"])
        return self._cwd

    def cd(self, path: str) -> str:
        """Change the remote directory; return the new one."""
        self._cwd = str(self._call({"op": "cd", "path": path})["cwd"])
        return self._cwd

    def ls(self, path: str | None = None) -> list[Entry]:
        """Entries of a remote directory (or the one entry, for a file), sorted by name."""
        req: dict = {"op": "ls"}
        if path is not None:
            req["path"] = path
        self._call(req)
        data = self._read_payload()
        import json
        try:
            items = json.loads(data.decode("utf-8"))
        except ValueError as exc:
            raise ProtocolError("the server sent a listing that is not JSON") from exc
        if not isinstance(items, list):
            raise ProtocolError("the server sent a listing that is not a JSON array")
        return [Entry.from_wire(d) for d in items if isinstance(d, dict)]

    def stat(self, path: str) -> Entry:
        """Describe one remote file or directory."""
        return Entry.from_wire(self._call({"op": "stat", "path": path})["entry"])

    def exists(self, path: str) -> bool:
        from ..errors import NotFoundError
        try:
            self.stat(path)
        except NotFoundError:
            return False
        return True

    def mkdir(self, path: str, parents: bool = False) -> str:
        """Create a directory (``parents=True``: like ``mkdir -p``)."""
        return str(self._call({"op": "mkdir", "path": path, "parents": parents}).get("path", path))

    def rm(self, path: str) -> None:
        """Remove a file."""
        self._call({"op": "rm", "path": path})

    def rmdir(self, path: str) -> None:
        """Remove an empty directory."""
        self._call({"op": "rmdir", "path": path})

    def mv(self, src: str, dst: str, overwrite: bool = False) -> None:
        """Rename or move; an existing ``dst`` is refused unless ``overwrite``."""
        req: dict = {"op": "mv", "src": src, "dst": dst}
        if overwrite:
            req["overwrite"] = True
        self._call(req)

    def hash(self, path: str) -> str:
        """SHA-256 (hex) of a remote file, computed by the server."""
        return str(self._call({"op": "hash", "path": path})["sha256"])

    def upper(self, text: str) -> str:
        """The server's upper-case echo of ``text``."""
        self._call({"op": "upper"}, text.encode("utf-8"))
        return self._read_payload().decode("utf-8", "replace")

    # ------------------------------------------------------------------ get
    def get(self, remote: str, local: str | os.PathLike | None = None, *,
            on_progress: ProgressCallback | None = None, resume: bool = True,
            keep_mtime: bool = True) -> TransferResult:
        """Download ``remote`` to ``local`` (a file path or an existing directory).

        The bytes go to a hidden partial file beside the target; an earlier partial is
        continued when ``resume``. Only a file whose SHA-256 matches the server's takes
        the real name; a resumed one that does not match is fetched once more from zero.
        """
        target = self._local_target(remote, local)
        partial = os.path.join(os.path.dirname(target) or ".", partial_name(os.path.basename(target)))
        try:
            return self._get_once(remote, target, partial, on_progress, resume, keep_mtime)
        except ChecksumMismatchError:
            if not resume:
                raise
            # the kept prefix did not belong to this file: start over once
            return self._get_once(remote, target, partial, on_progress, False, keep_mtime)

    def _local_target(self, remote: str, local) -> str:
        name = posixpath.basename(remote.rstrip("/")) or "download"
        if local is None:
            return os.path.abspath(name)
        local = os.fspath(local)
        if os.path.isdir(local):
            return os.path.join(local, name)
        parent = os.path.dirname(os.path.abspath(local))
        if not os.path.isdir(parent):
            raise LocalError(f"local folder does not exist: {parent}")
        return local

    def _get_once(self, remote, target, partial, on_progress, resume, keep_mtime) -> TransferResult:
        started = time.monotonic()
        offset = 0
        if resume:
            try:
                offset = os.path.getsize(partial)
            except OSError:
                offset = 0
        h = digests.new()
        try:
            reply = self._call({"op": "get", "path": remote, "offset": offset})
        except RemoteError as exc:
            if offset and exc.code == "bad_request":
                # our partial is longer than the file now is: it was something else
                _unlink(partial)
                return self._get_once(remote, target, partial, on_progress, False, keep_mtime)
            raise
        total, size = int(reply.get("total", 0)), int(reply.get("size", 0))
        offset = int(reply.get("offset", offset))
        chan = self._channel()
        try:
            flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if offset else os.O_TRUNC)
            try:
                fd = os.open(partial, flags, 0o644)
            except OSError as exc:
                raise LocalError(f"cannot write {partial}: {exc.strerror}") from exc
            try:
                if offset:
                    with open(partial, "rb", buffering=0) as kept:
                        _hash_prefix(h, kept, offset)
                done = offset
                if on_progress:
                    on_progress(done, total)

                def sink(chunk) -> None:
                    nonlocal done
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(fd, view):]
                    done += len(chunk)
                    if on_progress:
                        on_progress(done, total)
                # hasher=h: SHA-256 runs on a second thread beside recv and write
                chan.recv_payload_into(sink, timeout=self.timeout, hasher=h)
            finally:
                os.close(fd)
            digest = self._recv_reply()
        except BaseException:
            self._drop("a download was interrupted")
            raise
        raise_for_reply(digest)
        got = h.hexdigest()
        problem = _publish_download(partial, target, remote, reply,
                                    str(digest.get("sha256", "")), got, keep_mtime)
        if problem is not None:
            raise problem
        return TransferResult(remote, target, total, size, offset, got, time.monotonic() - started)

    # ------------------------------------------------------------------ put
    def put(self, local: str | os.PathLike, remote: str | None = None, *,
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
        try:
            st = os.stat(local)
        except OSError as exc:
            raise LocalError(f"cannot read {local}: {exc.strerror}") from exc
        if stat_.S_ISDIR(st.st_mode):
            raise LocalError(f"{local} is a directory (use put -r)")
        if not stat_.S_ISREG(st.st_mode):
            raise LocalError(f"{local} is not a regular file")
        if st.st_size >= OVERLAP_MIN and "sha256_trailer" in self.server_info.get("features", ()):
            # hash while sending instead of reading the whole file once before: the
            # digest follows the data and the server still publishes only on a match
            try:
                return self._put_trailer(local, remote, st, on_progress, overwrite, resume,
                                         keep_mtime)
            except ChecksumMismatchError:
                if not resume:
                    raise
                return self._put_trailer(local, remote, st, on_progress, overwrite, False,
                                         keep_mtime)
        digest = _file_sha256(local)
        try:
            return self._put_once(local, remote, st, digest, on_progress, overwrite, resume, keep_mtime)
        except ChecksumMismatchError:
            if not resume:
                raise
            return self._put_once(local, remote, st, digest, on_progress, overwrite, False, keep_mtime)

    def _put_once(self, local, remote, st, digest, on_progress, overwrite, resume,
                  keep_mtime) -> TransferResult:
        started = time.monotonic()
        total = st.st_size
        req = _put_request(remote, st, overwrite, resume, keep_mtime, sha256=digest)
        reply = self._call(req)
        offset = int(reply.get("offset", 0))
        if not 0 <= offset <= total:
            self._drop("bad offset")
            raise ProtocolError(f"the server asked to resume at {offset}, past the end ({total})")
        chan = self._channel()
        try:
            with open(local, "rb", buffering=0) as f:
                chan.send_header({"op": "data", "size": total - offset})
                sent = chan.send_file(f, offset, total - offset,
                                      on_chunk=_ticker(on_progress, offset, total))
                if sent != total - offset:
                    raise LocalError(f"{local} shrank while being sent; upload it again")
            final = self._recv_reply()
        except BaseException:
            self._drop("an upload was interrupted")
            raise
        raise_for_reply(final)
        return TransferResult(str(final.get("path", remote)), local, total, total - offset,
                              offset, str(final.get("sha256", digest)),
                              time.monotonic() - started)

    def _put_trailer(self, local, remote, st, on_progress, overwrite, resume,
                     keep_mtime) -> TransferResult:
        """A put whose SHA-256 is computed while the bytes are sent (``sha256_trailer``).

        A second thread hashes the file with pread while ``sendfile`` sends it, and the
        digest goes in a ``verify`` frame after the data; the server compares it with
        its own before publishing. When the server resumes a partial it tells the
        digest of the bytes it kept; this side hashes the same prefix of its file and,
        if they differ, asks for a fresh start (``"offset": 0``) before sending a byte.
        """
        started = time.monotonic()
        total = st.st_size
        req = _put_request(remote, st, overwrite, resume, keep_mtime, trailer=True)
        try:
            f = open(local, "rb", buffering=0)
        except OSError as exc:
            raise LocalError(f"cannot read {local}: {exc.strerror}") from exc
        with f:
            reply = self._call(req)
            offset = reply.get("offset", 0)
            if type(offset) is not int or not 0 <= offset <= total:
                self._drop("bad offset")
                raise ProtocolError(f"the server asked to resume at {offset!r}, outside "
                                    f"0..{total}")
            chan = self._channel()
            h = digests.new()
            hasher: FileHasher | None = None
            try:
                data: dict = {"op": "data", "size": total - offset}
                if offset:
                    try:
                        _hash_prefix(h, f, offset)
                    except OSError as exc:
                        raise LocalError(f"cannot read {local}: {exc.strerror}") from exc
                    if h.hexdigest() != reply.get("prefix_sha256"):
                        h, offset = digests.new(), 0
                        data = {"op": "data", "size": total, "offset": 0}
                count = total - offset
                hasher = FileHasher(f.fileno(), h, offset, total)
                # sendfile's fallback for TLS reads from the file position (and skips the
                # seek for offset 0): put it where the data starts
                f.seek(offset)
                chan.send_header(data)
                sent = chan.send_file(f, offset, count,
                                      on_chunk=_ticker(on_progress, offset, total))
                try:
                    hasher.result()
                except OSError as exc:
                    raise LocalError(f"cannot read {local}: {exc.strerror}") from exc
                if sent != count or hasher.hashed != count:
                    raise LocalError(f"{local} shrank while being sent; upload it again")
                chan.send({"op": "verify", "sha256": h.hexdigest()})
                final = self._recv_reply()
            except BaseException:
                if hasher is not None:
                    hasher.cancel()
                self._drop("an upload was interrupted")
                raise
        raise_for_reply(final)
        return TransferResult(str(final.get("path", remote)), local, total, count, offset,
                              str(final.get("sha256", h.hexdigest())),
                              time.monotonic() - started)

    # ------------------------------------------------------------------ many files
    # A folder of small files must not cost a round trip each. The server answers
    # requests strictly in order, so the methods below keep a window of requests in
    # flight on the one connection and read the replies as they come. The window is
    # bounded in count and in request bytes: requests the server has not read yet always
    # fit in the socket buffers, so this side never blocks sending while the server
    # blocks sending replies to it (the pipelining deadlock).

    def _pipeline(self, count: int, make_frame: Callable[[int], bytes | None],
                  on_reply: Callable[[int, dict], object], window: int) -> None:
        """Send up to ``window`` requests ahead and hand each reply header to ``on_reply``.

        ``make_frame(i)`` encodes request ``i`` when it is about to be sent (None skips
        it: the caller has recorded why). ``on_reply(i, header)`` must read everything
        that belongs to reply ``i`` (payload, digest frame) and must not raise for a
        per-file error. Anything that escapes drops the connection: it is out of step.
        """
        chan = self._channel()
        window = max(1, int(window))
        inflight: deque[tuple[int, int]] = deque()
        queued = 0  # request bytes sent and not yet answered
        nxt = 0
        try:
            while nxt < count or inflight:
                if nxt < count and len(inflight) <= window // 2:
                    batch: list[bytes] = []
                    while nxt < count and len(inflight) < window and (
                            not inflight or queued < PIPELINE_BYTES):
                        frame = make_frame(nxt)
                        if frame is not None:
                            batch.append(frame)
                            inflight.append((nxt, len(frame)))
                            queued += len(frame)
                        nxt += 1
                    if batch:
                        chan.send_bytes(b"".join(batch))
                if not inflight:
                    continue
                i, size = inflight.popleft()
                queued -= size
                on_reply(i, self._recv_reply())
        except BaseException:
            self._drop("a pipelined batch was interrupted")
            raise

    def call_many(self, requests: Sequence[dict], *,
                  window: int = PIPELINE_WINDOW) -> list[dict | RemoteError]:
        """Send many payload-free requests pipelined; return each reply or its error.

        Only ops whose reply has no payload are allowed (stat, hash, mkdir, rm, rmdir,
        mv, pwd). Per-request errors are returned in place, in order; a connection
        failure raises :class:`~pyftp.errors.TransportError`.
        """
        for r in requests:
            if r.get("op") not in _SIMPLE_OPS:
                raise ValueError(f"call_many() cannot pipeline {r.get('op')!r}; "
                                 f"allowed: {', '.join(sorted(_SIMPLE_OPS))}")
        results: list = [None] * len(requests)

        def frame(i: int) -> bytes | None:
            try:
                return encode_frame(requests[i])
            except ValueError as exc:
                results[i] = BadRequestError(f"request too large: {exc}")
                return None

        def reply(i: int, header: dict) -> None:
            results[i] = dict(header) if header.get("ok") is True else _reply_error(header)
            if header.get("size"):
                raise ProtocolError(f"unexpected payload in a reply to {requests[i].get('op')}")
        self._pipeline(len(requests), frame, reply, window)
        return results

    def hash_many(self, paths: Sequence[str], *,
                  window: int = PIPELINE_WINDOW) -> list[str | RemoteError]:
        """SHA-256 of many remote files, pipelined; an error in place of a failed one."""
        out: list[str | RemoteError] = []
        for r in self.call_many([{"op": "hash", "path": p} for p in paths], window=window):
            out.append(r if isinstance(r, RemoteError) else str(r.get("sha256", "")))
        return out

    def ls_many(self, paths: Sequence[str], *,
                window: int = PIPELINE_WINDOW) -> list[list[Entry] | RemoteError]:
        """List many remote directories pipelined; an error in place of a failed one."""
        results: list = [None] * len(paths)

        def frame(i: int) -> bytes | None:
            try:
                return encode_frame({"op": "ls", "path": paths[i]})
            except ValueError as exc:
                results[i] = BadRequestError(f"path too long: {exc}")
                return None

        def reply(i: int, header: dict) -> None:
            if header.get("ok") is not True:
                results[i] = _reply_error(header)
                return
            results[i] = _parse_listing(self._channel().recv_payload(LISTING_LIMIT, self.timeout))
        self._pipeline(len(paths), frame, reply, window)
        return results

    def get_many(self, pairs: Sequence[tuple[str, str | os.PathLike]], *,
                 resume: bool = True, keep_mtime: bool = True,
                 window: int = PIPELINE_WINDOW,
                 on_bytes: Callable[[int, int, int], object] | None = None,
                 on_file: Callable[[int, "TransferResult | PyftpError"], object] | None = None,
                 ) -> list[TransferResult | PyftpError]:
        """Download many ``(remote, local_file)`` pairs with requests pipelined.

        Each file is verified and published exactly as :meth:`get` does it: written to a
        hidden partial beside ``local_file`` (which must name a file in an existing
        folder), continued from that partial when ``resume``, checked against the
        server's SHA-256 and only then renamed into place (a resumed file that does not
        match is fetched once more from zero). Per-file failures (not found, a local
        write error, a checksum mismatch) are returned in place of the result and do
        not stop the batch. A connection failure raises
        :class:`~pyftp.errors.TransportError`; files finished before it were already
        reported through ``on_file(index, result_or_error)`` and are complete.
        ``on_bytes(index, done, total)`` reports each file's bytes.
        """
        items = [(str(r), os.fspath(l)) for r, l in pairs]
        results: list = [None] * len(items)
        offsets = [0] * len(items)
        fresh: list[int] = []

        def finish(i: int, res) -> None:
            results[i] = res
            if on_file:
                on_file(i, res)

        def frame(i: int) -> bytes | None:
            remote, target = items[i]
            offset = 0
            if resume:
                try:
                    offset = os.path.getsize(_partial_path(target))
                except OSError:
                    offset = 0
            offsets[i] = offset
            try:
                return encode_frame({"op": "get", "path": remote, "offset": offset})
            except ValueError as exc:
                finish(i, BadRequestError(f"path too long: {exc}"))
                return None

        def reply(i: int, header: dict) -> None:
            started = time.monotonic()
            remote, target = items[i]
            if header.get("ok") is not True:
                err = _reply_error(header)
                if offsets[i] and err.code == "bad_request":
                    fresh.append(i)  # the kept partial is longer than the file now is
                else:
                    finish(i, err)
                return
            res = self._receive_file(remote, target, header, offsets[i], keep_mtime,
                                     (lambda d, t: on_bytes(i, d, t)) if on_bytes else None,
                                     started)
            if isinstance(res, ChecksumMismatchError) and offsets[i] and resume:
                fresh.append(i)
            else:
                finish(i, res)
        self._pipeline(len(items), frame, reply, window)
        for i in fresh:
            remote, target = items[i]
            _unlink(_partial_path(target))
            try:
                res = self._get_once(remote, target, _partial_path(target),
                                     (lambda d, t: on_bytes(i, d, t)) if on_bytes else None,
                                     False, keep_mtime)
            except ProtocolError:
                raise
            except (RemoteError, LocalError) as exc:
                res = exc
            finish(i, res)
        return results

    def _receive_file(self, remote: str, target: str, reply: dict, asked: int,
                      keep_mtime: bool, progress: ProgressCallback | None,
                      started: float) -> TransferResult | PyftpError:
        """Read one get reply's payload and digest frame; verify and publish the file.

        Always consumes the whole reply, even when the local file cannot be written,
        so the pipelined stream stays in step; the local problem is returned.
        """
        chan = self._channel()
        partial = _partial_path(target)
        try:
            total, size = int(reply.get("total", 0)), int(reply.get("size", 0))
            offset = int(reply.get("offset", asked))
        except (TypeError, ValueError) as exc:
            raise ProtocolError("the server sent a get reply without sizes") from exc
        if offset != asked or size != chan.decoder.payload_left or offset + size != total:
            raise ProtocolError(f"the server's get reply for {remote} does not add up "
                                f"(offset {offset}, size {size}, total {total})")
        h = digests.new()
        problem: list[PyftpError] = []
        fd: int | None = None
        try:
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | (os.O_APPEND if offset else os.O_TRUNC),
                         0o644)
            if offset:
                with open(partial, "rb", buffering=0) as kept:
                    _hash_prefix(h, kept, offset)
        except OSError as exc:
            problem.append(LocalError(f"cannot write {partial}: {exc.strerror}"))
            if fd is not None:
                os.close(fd)
                fd = None
        done = offset
        if progress:
            progress(done, total)

        def sink(chunk) -> None:
            nonlocal done, fd
            if fd is not None:
                try:
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(fd, view):]
                except OSError as exc:
                    problem.append(LocalError(f"cannot write {partial}: {exc.strerror}"))
                    os.close(fd)
                    fd = None
            done += len(chunk)
            if progress:
                progress(done, total)
        try:
            # hasher=h: a large file is hashed on a second thread beside recv and write
            chan.recv_payload_into(sink, timeout=self.timeout, hasher=h)
        finally:
            if fd is not None:
                os.close(fd)
        digest = self._recv_reply()
        if digest.get("ok") is not True:
            return _reply_error(digest)
        if problem:
            return problem[0]
        got = h.hexdigest()
        problem = _publish_download(partial, target, remote, reply,
                                    str(digest.get("sha256", "")), got, keep_mtime)
        if problem is not None:
            return problem
        return TransferResult(remote, target, total, size, offset, got,
                              time.monotonic() - started)

    def put_many(self, pairs: Sequence[tuple[str | os.PathLike, str]], *,
                 overwrite: bool = False, resume: bool = True, keep_mtime: bool = True,
                 on_bytes: Callable[[int, int, int], object] | None = None,
                 on_file: Callable[[int, "TransferResult | PyftpError"], object] | None = None,
                 ) -> list[TransferResult | PyftpError]:
        """Upload many ``(local_file, remote)`` pairs, one round trip per file.

        A put is two exchanges (header -> offset reply, data -> final reply), and the
        data frame's size depends on the offset the server picks, so puts cannot be
        sent blindly ahead. What is overlapped instead: the next file is read and
        hashed while the server verifies the current one, and its ``put`` header
        travels right behind the current data frame, so the final reply of one file
        and the offset reply of the next come back together. Files up to
        :data:`SMALL_PUT` are read once into memory (hash and bytes from the same
        read); larger ones are sent with ``sendfile``.

        Verification, publishing and resume are those of :meth:`put`. Per-file
        failures (exists, busy, a local read error) are returned in place of the
        result; a connection failure raises
        :class:`~pyftp.errors.TransportError` after ``on_file`` reported every file
        already finished.
        """
        items = [(os.fspath(l), str(r)) for l, r in pairs]
        results: list = [None] * len(items)
        fresh: list[int] = []

        def finish(i: int, res) -> None:
            results[i] = res
            if on_file:
                on_file(i, res)

        def prepare_from(start: int) -> _PutItem | None:
            for i in range(start, len(items)):
                try:
                    return _PutItem.prepare(i, *items[i], overwrite=overwrite,
                                            resume=resume, keep_mtime=keep_mtime)
                except LocalError as exc:
                    finish(i, exc)
            return None

        cur = prepare_from(0)
        nxt: _PutItem | None = None
        if cur is None:
            return results
        try:
            chan = self._channel()
            chan.send_bytes(cur.frame)
            while cur is not None:
                started = time.monotonic()
                header = self._recv_reply()
                if header.get("ok") is not True:
                    err = _reply_error(header)
                    cur.close()
                    nxt = prepare_from(cur.index + 1)
                    if nxt is not None:
                        chan.send_bytes(nxt.frame)
                    finish(cur.index, err)
                    cur, nxt = nxt, None
                    continue
                offset = header.get("offset", 0)
                if type(offset) is not int or not 0 <= offset <= cur.total:
                    raise ProtocolError(f"the server asked to resume {cur.remote} at "
                                        f"{offset!r}, outside 0..{cur.total}")
                count = cur.total - offset
                tick = (lambda d, t, i=cur.index: on_bytes(i, d, t)) if on_bytes else None
                if tick:
                    tick(offset, cur.total)
                if cur.data is not None:
                    chan.send_bytes(encode_frame({"op": "data", "size": count})
                                    + cur.data[offset:])
                    if tick:
                        tick(cur.total, cur.total)
                else:
                    chan.send_header({"op": "data", "size": count})
                    done = offset

                    def chunk(n: int, _tick=tick) -> None:
                        nonlocal done
                        done += n
                        if _tick:
                            _tick(done, cur.total)
                    assert cur.file is not None
                    if chan.send_file(cur.file, offset, count, on_chunk=chunk) != count:
                        finish(cur.index, LocalError(f"{cur.local} shrank while being sent; "
                                                     "upload it again"))
                        raise TransportError(f"the connection was closed because {cur.local} "
                                             "shrank while being sent")
                cur.close()
                # overlap: read and hash the next file while the server verifies this one
                nxt = prepare_from(cur.index + 1)
                if nxt is not None:
                    chan.send_bytes(nxt.frame)
                final = self._recv_reply()
                if final.get("ok") is True:
                    finish(cur.index, TransferResult(
                        str(final.get("path", cur.remote)), cur.local, cur.total, count,
                        offset, str(final.get("sha256", cur.digest)),
                        time.monotonic() - started))
                else:
                    err = _reply_error(final)
                    if isinstance(err, ChecksumMismatchError) and resume:
                        fresh.append(cur.index)
                    else:
                        finish(cur.index, err)
                cur, nxt = nxt, None
        except BaseException:
            self._drop("a batch upload was interrupted")
            raise
        finally:
            for item in (cur, nxt):
                if item is not None:
                    item.close()
        for i in fresh:
            local, remote = items[i]
            try:
                res = self.put(local, remote, overwrite=overwrite, resume=False,
                               keep_mtime=keep_mtime,
                               on_progress=(lambda d, t: on_bytes(i, d, t)) if on_bytes else None)
            except ProtocolError:
                raise
            except (RemoteError, LocalError) as exc:
                res = exc
            finish(i, res)
        return results


@dataclass
class _PutItem:
    """One file of a put_many, read and hashed, with its ``put`` request encoded."""

    index: int
    local: str
    remote: str
    total: int
    digest: str
    frame: bytes
    data: bytes | None  # the whole file, when small
    file: object | None  # an open file for sendfile, when large

    @classmethod
    def prepare(cls, index: int, local: str, remote: str, *, overwrite: bool, resume: bool,
                keep_mtime: bool) -> "_PutItem":
        try:
            # O_NONBLOCK: opening a FIFO must not hang the batch; no effect on files
            fd = os.open(local, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        except OSError as exc:
            raise LocalError(f"cannot read {local}: {exc.strerror}") from exc
        try:
            st = os.fstat(fd)
            if stat_.S_ISDIR(st.st_mode):
                raise LocalError(f"{local} is a directory (use put -r)")
            if not stat_.S_ISREG(st.st_mode):
                raise LocalError(f"{local} is not a regular file")
        except BaseException:
            os.close(fd)
            raise
        f = os.fdopen(fd, "rb", buffering=0)
        try:
            data: bytes | None = None
            if st.st_size <= SMALL_PUT:
                data = f.read() or b""
                digest, total = digests.hash_bytes(data), len(data)
            else:
                h = digests.new()
                _hash_prefix(h, f, st.st_size)
                digest, total = h.hexdigest(), st.st_size
                f.seek(0)  # sendfile's fallback (TLS) reads from the current position
        except OSError as exc:
            f.close()
            raise LocalError(f"cannot read {local}: {exc.strerror}") from exc
        except BaseException:
            f.close()
            raise
        req = _put_request(remote, st, overwrite, resume, keep_mtime, total=total,
                           sha256=digest)
        try:
            frame = encode_frame(req)
        except ValueError as exc:
            f.close()
            raise LocalError(f"remote path too long for {local}: {exc}") from exc
        if data is not None:
            f.close()
            return cls(index, local, remote, total, digest, frame, data, None)
        return cls(index, local, remote, total, digest, frame, None, f)

    def close(self) -> None:
        if self.file is not None:
            self.file.close()  # type: ignore[attr-defined]
            self.file = None


def _reply_error(header: dict) -> RemoteError:
    """The error an error reply stands for. Raises ProtocolError for a broken reply
    (or a ``bad_frame`` one, after which the server closes): the stream is lost."""
    try:
        raise_for_reply(header)
    except ProtocolError:
        raise
    except RemoteError as exc:
        return exc
    raise ProtocolError("expected an error reply")


def _parse_listing(data: bytes) -> list[Entry]:
    import json
    try:
        items = json.loads(data.decode("utf-8"))
    except ValueError as exc:
        raise ProtocolError("the server sent a listing that is not JSON") from exc
    if not isinstance(items, list):
        raise ProtocolError("the server sent a listing that is not a JSON array")
    return [Entry.from_wire(d) for d in items if isinstance(d, dict)]


def _partial_path(target: str) -> str:
    """The hidden partial file a download to ``target`` is written to."""
    return os.path.join(os.path.dirname(target) or ".", partial_name(os.path.basename(target)))


def _ticker(on_progress: ProgressCallback | None, offset: int,
            total: int) -> Callable[[int], None] | None:
    """Report ``offset`` now, then turn byte counts sent into absolute progress calls."""
    if on_progress is None:
        return None
    on_progress(offset, total)
    done = offset

    def tick(n: int) -> None:
        nonlocal done
        done += n
        on_progress(done, total)
    return tick


def _put_request(remote: str, st: os.stat_result, overwrite: bool, resume: bool,
                 keep_mtime: bool, total: int | None = None, **extra) -> dict:
    """The ``put`` header for a local file; ``extra`` is ``sha256=`` or ``trailer=True``.

    ``total`` defaults to the size in ``st``; a caller that has read the file gives
    the length it actually read."""
    req: dict = {"op": "put", "path": remote,
                 "total": st.st_size if total is None else total, **extra}
    if overwrite:
        req["overwrite"] = True
    if not resume:
        req["resume"] = False
    if keep_mtime:
        req["mtime"] = wire_mtime(st.st_mtime_ns)
    return req


def _publish_download(partial: str, target: str, remote: str, reply: dict, expected: str,
                      got: str, keep_mtime: bool) -> PyftpError | None:
    """The end of every download: compare digests, set the mtime, rename into place.

    Returns the error (the partial is removed on a mismatch), or None once published.
    """
    if got != expected:
        _unlink(partial)
        return ChecksumMismatchError(f"checksum mismatch: {remote} arrived with SHA-256 "
                                     f"{got[:12]}..., the server has {expected[:12]}...")
    if keep_mtime and "mtime" in reply:
        try:
            ns = mtime_ns(reply["mtime"])
            os.utime(partial, ns=(ns, ns))
        except (OSError, ValueError, TypeError, OverflowError):
            pass  # the bytes are right; a time the OS refuses is not worth failing for
    try:
        os.replace(partial, target)
    except OSError as exc:
        return LocalError(f"cannot write {target}: {exc.strerror}")
    return None


def _client_context(tls, cafile, insecure) -> ssl.SSLContext | None:
    if not tls and not cafile and not insecure:
        return None  # plain TCP (an SSLContext is always true)
    # imported only for TLS: about a tenth of a one-shot command's start-up otherwise
    import ssl
    if isinstance(tls, ssl.SSLContext):
        return tls
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _file_sha256(path: str) -> str:
    try:
        return digests.hash_file(path)
    except OSError as exc:
        raise LocalError(f"cannot read {path}: {exc.strerror}") from exc


def _hash_prefix(h, f, limit: int | None) -> None:
    digests.hash_into(h, f.fileno(), 0, limit)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
