"""``pyftp.Client``: one connection to a pyftp server, one method per operation.

Methods raise the :mod:`pyftp.errors` class of the server's error code, and
:class:`~pyftp.errors.TransportError` when the connection fails. A connection that
failed in the middle of an exchange is closed and never reused out of step (its state
sticks, as in h11): call :meth:`Client.reconnect` to go on.

Transfers are verified and atomic on this side too: a download is written to a hidden
partial file beside the target, checked against the server's SHA-256, and only then
renamed into place; rerunning it continues the partial. Progress leaves through
``on_progress(done, total)`` callbacks with absolute byte counts. No printing here.

Import rule: errors, protocol, transport, storage's hashing helper. Never server or ui.
"""
from __future__ import annotations

import hashlib
import os
import posixpath
import socket
import ssl
import stat as stat_
import time
from dataclasses import dataclass
from typing import Callable, Iterable

from ._version import __version__
from .errors import (ChecksumMismatchError, ConnectError, LocalError, ProtocolError,
                     RemoteError, TransportError, UnsupportedVersionError)
from .protocol import DEFAULT_PORT, VERSION, partial_name, raise_for_reply
from .transport import CHUNK, Channel

__all__ = ["Client", "Entry", "TransferResult", "ProgressCallback"]

ProgressCallback = Callable[[int, int], object]


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
        from .errors import NotFoundError
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
        h = hashlib.sha256()
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
                    h.update(chunk)
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(fd, view):]
                    done += len(chunk)
                    if on_progress:
                        on_progress(done, total)
                chan.recv_payload_into(sink, timeout=self.timeout)
            finally:
                os.close(fd)
            digest = self._recv_reply()
        except BaseException:
            self._drop("a download was interrupted")
            raise
        raise_for_reply(digest)
        expected = str(digest.get("sha256", ""))
        got = h.hexdigest()
        if got != expected:
            _unlink(partial)
            raise ChecksumMismatchError(f"checksum mismatch: {remote} arrived with SHA-256 "
                                        f"{got[:12]}..., the server has {expected[:12]}...")
        if keep_mtime and "mtime" in reply:
            try:
                ns = int(float(reply["mtime"]) * 1e9)
                os.utime(partial, ns=(ns, ns))
            except (OSError, ValueError, TypeError):
                pass
        try:
            os.replace(partial, target)
        except OSError as exc:
            raise LocalError(f"cannot write {target}: {exc.strerror}") from exc
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
        req: dict = {"op": "put", "path": remote, "total": total, "sha256": digest}
        if overwrite:
            req["overwrite"] = True
        if not resume:
            req["resume"] = False
        if keep_mtime:
            req["mtime"] = round(st.st_mtime_ns / 1e9, 6)
        reply = self._call(req)
        offset = int(reply.get("offset", 0))
        if not 0 <= offset <= total:
            self._drop("bad offset")
            raise ProtocolError(f"the server asked to resume at {offset}, past the end ({total})")
        chan = self._channel()
        try:
            with open(local, "rb", buffering=0) as f:
                chan.send_header({"op": "data", "size": total - offset})
                if on_progress:
                    on_progress(offset, total)
                done = offset

                def tick(n: int) -> None:
                    nonlocal done
                    done += n
                    on_progress(done, total)  # type: ignore[misc]
                sent = chan.send_file(f, offset, total - offset,
                                      on_chunk=tick if on_progress else None)
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


def _client_context(tls, cafile, insecure) -> ssl.SSLContext | None:
    if isinstance(tls, ssl.SSLContext):
        return tls
    if not tls and not cafile and not insecure:
        return None
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _file_sha256(path: str) -> str:
    h = hashlib.sha256()
    try:
        with open(path, "rb", buffering=0) as f:
            _hash_prefix(h, f, None)
    except OSError as exc:
        raise LocalError(f"cannot read {path}: {exc.strerror}") from exc
    return h.hexdigest()


def _hash_prefix(h, f, limit: int | None) -> None:
    view = memoryview(bytearray(CHUNK))
    left = limit
    while left is None or left > 0:
        n = f.readinto(view if left is None else view[:min(len(view), left)])
        if not n:
            break
        h.update(view[:n])
        if left is not None:
            left -= n


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
