"""The threaded pyftp server: accept connections, read frames, dispatch, reply.

One thread per connection, so a slow or dead client never blocks the others. Each
:class:`Session` reads a header, checks it against :data:`~pyftp.protocol.COMMANDS`,
calls ``handle_<op>`` and lets the one ``except`` ladder in :meth:`Session.run` turn
errors into replies: a :class:`~pyftp.errors.RemoteError` becomes an error reply and
the session goes on; a framing error gets a best-effort ``bad_frame`` and a close;
anything else is logged with its traceback and answered ``internal`` (no paths leak).

Import rule: errors, protocol, transport, storage. Never client, ui, repl or cli.
"""
from __future__ import annotations

import logging
import os
import selectors
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from .. import digests
from .._version import __version__
from ..errors import (AuthFailedError, AuthRequiredError, BadRequestError, BusyError,
                     PermissionDeniedError, ProtocolError, RemoteError, TooLargeError, TransportError,
                     UnsupportedVersionError)
from ..protocol import (DEFAULT_PORT, FEATURES, VERSION, dump_json, encode_frame, ok,
                       validate_request, wire_mtime)
from .storage import Storage
from ..transport import Channel

__all__ = ["ServerConfig", "Server", "Account"]

log = logging.getLogger("pyftp.server")

#: files up to this size are sent as one buffer (header + bytes + digest in one write)
SMALL_FILE = 256 * 1024
#: after an error reply, an unread payload up to this size is drained to stay in step
DRAIN_LIMIT = 4 * 1024 * 1024


@dataclass(frozen=True)
class Account:
    """What a successful login grants."""

    name: str
    read_only: bool = False


#: ``authenticate(user, password) -> Account | None``
Authenticator = Callable[[str, str], "Account | None"]


@dataclass
class ServerConfig:
    """Everything a server needs, passed in (no globals). Sizes in bytes, times in s."""

    root: str
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    read_only: bool = False
    max_clients: int = 256
    max_per_ip: int = 32
    idle_timeout: float = 300.0
    #: a connection must complete hello (and its login) within this time, so sockets
    #: that never log in cannot hold connection slots for the whole idle timeout
    login_timeout: float = 30.0
    #: a frame header, once started, must arrive whole within this time (slowloris)
    frame_timeout: float = 30.0
    max_file_size: int | None = None
    max_upper: int = 1 << 20
    limit_rate: int | None = None
    #: partial uploads untouched this long are removed
    partial_ttl: float = 24 * 3600.0
    #: login check; None means an open server (no user or password asked)
    authenticator: Authenticator | None = None
    auth_fail_delay: float = 1.0
    max_auth_failures: int = 3
    ssl_context: ssl.SSLContext | None = None
    #: seconds a shutdown waits for transfers in flight before cutting them
    shutdown_grace: float = 5.0
    #: keep this many bytes free on the server's disk (uploads beyond get no_space)
    min_free: int = 0
    #: refused connections are logged one by one only this often; the rest are counted
    #: and summed up in one line, so a flood cannot flood the log too
    refusal_log_interval: float = 10.0
    logger: logging.Logger = field(default=log, repr=False)


class Server:
    """A pyftp server. ``with Server(cfg) as s:`` starts it; ``s.address`` says where."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.storage = Storage(config.root, read_only=config.read_only,
                               max_file_size=config.max_file_size, min_free=config.min_free)
        self.log = config.logger
        self._listener: socket.socket | None = None
        self._sessions: set[Session] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._accept_thread: threading.Thread | None = None
        self._janitor: threading.Thread | None = None
        self._refusals = _RefusalLog(self.log, config.refusal_log_interval)
        self._deadline = float("inf")  # end of the shutdown grace, once stopping

    # ------------------------------------------------------------------ lifecycle
    @property
    def address(self) -> tuple[str, int]:
        """(host, port) actually bound."""
        assert self._listener is not None, "server not started"
        host, port = self._listener.getsockname()[:2]
        return host, port

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def start(self) -> "Server":
        """Bind, listen and start accepting in a background thread."""
        host = self.config.host
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and host in ("::", ""):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.bind((host, self.config.port))
            sock.listen(128)
        except BaseException:
            sock.close()
            raise
        self._listener = sock
        self.storage.clean_partials(self.config.partial_ttl)
        self._accept_thread = threading.Thread(target=self._accept_loop,
                                               name="pyftp-accept", daemon=True)
        self._accept_thread.start()
        self._janitor = threading.Thread(target=self._janitor_loop,
                                         name="pyftp-janitor", daemon=True)
        self._janitor.start()
        return self

    def serve_forever(self) -> None:
        """Start if needed and block until :meth:`shutdown` is called."""
        if self._listener is None:
            self.start()
        self._stopped.wait()

    def shutdown(self, grace: float | None = None) -> None:
        """Stop accepting, let transfers in flight finish for ``grace`` s, then close all.

        Idle sessions are closed at once. An upload that did not finish is never
        published: its partial stays for a later resume.
        """
        if self._stopping.is_set():
            self._stopped.wait()
            return
        self._stopping.set()
        grace = self.config.shutdown_grace if grace is None else grace
        if self._listener is not None:
            try:
                # shutdown wakes the accept loop's select at once on Linux; closing first
                # would drop that wake-up and every stop would wait out the select timeout
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._accept_thread is not None:
            self._accept_thread.join()
        if self._listener is not None:
            try:
                self._listener.close()
            except OSError:
                pass
        # min: a cut() that came before this line (two quick signals) still counts
        self._deadline = min(self._deadline, time.monotonic() + grace)
        for session in self._snapshot():
            if not session.busy:
                session.interrupt()
        for session in self._snapshot():
            while session.thread.is_alive() and time.monotonic() < self._deadline:
                # short joins, so a cut() (which moves the deadline) takes effect at once
                session.thread.join(min(0.1, max(0.0, self._deadline - time.monotonic())))
        for session in self._snapshot():
            session.interrupt()
        for session in self._snapshot():
            session.thread.join(2.0)
        if self._janitor is not None:
            self._janitor.join(2.0)
        self._stopped.set()

    def cut(self) -> None:
        """During a shutdown, end the grace period now: transfers in flight are cut.

        Takes no lock (a signal handler may call it while its thread holds one):
        it moves the deadline, and ``shutdown`` interrupts every session once past it.
        """
        self._deadline = time.monotonic()

    def __enter__(self) -> "Server":
        if self._listener is None:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()

    def _snapshot(self) -> list["Session"]:
        with self._lock:
            return list(self._sessions)

    @property
    def session_count(self) -> int:
        with self._lock:
            return len(self._sessions)

    # ------------------------------------------------------------------ accepting
    def _accept_loop(self) -> None:
        listener = self._listener
        assert listener is not None
        with selectors.DefaultSelector() as sel:
            sel.register(listener, selectors.EVENT_READ)
            try:
                while not self._stopping.is_set():
                    # a short select timeout is how a closed listener is noticed portably
                    ready = sel.select(timeout=0.2)
                    self._refusals.flush()
                    if not ready:
                        continue
                    try:
                        conn, addr = listener.accept()
                    except OSError:
                        if self._stopping.is_set():
                            return
                        continue
                    self._admit(conn, addr)
            finally:
                self._refusals.flush(final=True)  # a count still held is not lost

    def _admit(self, conn: socket.socket, addr) -> None:
        peer_ip = addr[0]
        cfg = self.config
        with self._lock:
            total = len(self._sessions)
            same_ip = sum(1 for s in self._sessions if s.peer_ip == peer_ip)
            refuse = None
            if total >= cfg.max_clients:
                refuse = f"server is full ({cfg.max_clients} clients); try again later"
            elif same_ip >= cfg.max_per_ip:
                refuse = f"too many connections from {peer_ip} (limit {cfg.max_per_ip}); close one and retry"
            if refuse is None:
                session = Session(self, conn, addr)
                self._sessions.add(session)
        if refuse is not None:
            self._refusals.refused(_fmt_peer(addr), refuse)
            _refuse(conn, BusyError(f"busy: {refuse}"), tls=cfg.ssl_context is not None)
            return
        session.thread.start()

    def _forget(self, session: "Session") -> None:
        with self._lock:
            self._sessions.discard(session)

    def _janitor_loop(self) -> None:
        period = max(1.0, min(self.config.partial_ttl / 4, 3600.0))
        while not self._stopping.wait(period):
            try:
                n = self.storage.clean_partials(self.config.partial_ttl)
                if n:
                    self.log.info("removed %d stale partial upload(s)", n)
            except Exception:  # pragma: no cover - best effort housekeeping
                self.log.exception("partial clean-up failed")


class _RefusalLog:
    """Log refused connections: the first of each interval in full, the others as a count.

    Used by the accept thread only. ``flush`` (called at least every 0.2 s by that
    thread) writes the count once the interval is over.
    """

    def __init__(self, log: logging.Logger, interval: float) -> None:
        self.log = log
        self.interval = interval
        self._since = -float("inf")
        self._held = 0

    def refused(self, peer: str, why: str) -> None:
        self.flush()
        if time.monotonic() - self._since < self.interval:
            self._held += 1
            return
        self._since = time.monotonic()
        self.log.warning("%s refused: %s", peer, why)

    def flush(self, *, final: bool = False) -> None:
        """Write the count once the interval is over (or now, when the server stops)."""
        if not final and time.monotonic() - self._since < self.interval:
            return
        if self._held:
            self.log.warning("refused %d more connection(s) in the last %.1f s (server full "
                             "or too many from one address)", self._held,
                             time.monotonic() - self._since)
            self._held = 0
            self._since = time.monotonic()  # the next one starts a new interval


def _refuse(conn: socket.socket, error: RemoteError, *, tls: bool) -> None:
    """Tell an over-limit client why, without a thread, then close."""
    try:
        conn.settimeout(1.0)
        if not tls:  # over TLS the handshake would cost a thread: just close
            Channel(conn).send(error.to_reply())
    except (OSError, TransportError):
        pass
    finally:
        conn.close()


def _handshake(tls: ssl.SSLSocket, limit: float) -> None:
    """Finish a server-side TLS handshake within ``limit`` seconds in all.

    A socket timeout bounds each read only, so a client dripping its hello one byte at
    a time could hold the thread forever; this loop keeps one deadline instead.
    """
    deadline = time.monotonic() + limit
    tls.settimeout(0.0)
    with selectors.DefaultSelector() as sel:
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                events = selectors.EVENT_READ
            except ssl.SSLWantWriteError:
                events = selectors.EVENT_WRITE
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"the TLS handshake did not finish within {limit:g}s")
            sel.register(tls, events)
            ready = sel.select(left)
            sel.unregister(tls)
            if not ready:
                raise TimeoutError(f"the TLS handshake did not finish within {limit:g}s")
    tls.settimeout(None)


def _printable(text: str, limit: int) -> str:
    """A client-chosen name made safe for one log line.

    Line breaks and other control characters are escaped, so a file named
    "x\\n... login ok admin" cannot forge a line in the log; long names are cut.
    """
    if text.isprintable() and len(text) <= limit:
        return text
    out = text.encode("unicode_escape", "backslashreplace").decode("ascii")
    return out if len(out) <= limit else out[:limit] + "..."


def _fmt_peer(addr) -> str:
    host, port = addr[0], addr[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Session:
    """One client connection, served by its own thread."""

    def __init__(self, server: Server, sock: socket.socket, addr) -> None:
        self.server = server
        self.config = server.config
        self.storage = server.storage
        self.sock = sock
        try:
            # replies are small frames written back to back (a put's final reply, then
            # the next pipelined request's); Nagle would hold each behind a delayed ACK
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self.peer = _fmt_peer(addr)
        self.peer_ip = addr[0]
        self.chan = Channel(sock, limit_rate=self.config.limit_rate)
        self.cwd = "/"
        self.hello_done = False
        self.user: str | None = None
        self.read_only = self.config.read_only
        self.auth_failures = 0
        self.busy = False
        #: set while a reply's payload is on its way: an error now breaks the stream
        self._streaming = False
        self._log_path = ""
        self._log_bytes = 0
        self._closing = False
        self.thread = threading.Thread(target=self.run, name=f"pyftp-{self.peer}", daemon=True)

    def interrupt(self) -> None:
        """Wake the session's thread by shutting its socket (used by shutdown)."""
        try:
            # the plain socket method: SSLSocket.shutdown would drop the TLS object under
            # the feet of the thread that is reading through it
            socket.socket.shutdown(self.sock, socket.SHUT_RDWR)
        except OSError:
            pass

    # ------------------------------------------------------------------ the loop
    def run(self) -> None:
        log = self.server.log
        try:
            if self.config.ssl_context is not None and not self._start_tls():
                return
            self._loop()
        except ProtocolError as exc:
            log.info("%s bad frame: %s", self.peer, exc.message)
            self._best_effort(exc.to_reply())
        except TransportError as exc:
            log.info("%s disconnected: %s", self.peer, exc.message)
        except Exception:
            log.exception("%s internal error", self.peer)
            self._best_effort({"ok": False, "error": "internal",
                               "message": "internal server error; the server log has details"})
        finally:
            self.chan.close()
            self.server._forget(self)

    def _start_tls(self) -> bool:
        ctx = self.config.ssl_context
        assert ctx is not None
        try:
            tls = ctx.wrap_socket(self.sock, server_side=True, do_handshake_on_connect=False)
            self.sock = tls  # from here on interrupt() reaches the handshake too
            _handshake(tls, self.config.frame_timeout)
        except (OSError, ssl.SSLError) as exc:
            plain = "WRONG_VERSION_NUMBER" in str(exc) or "HTTP_REQUEST" in str(exc)
            self.server.log.info("%s TLS handshake failed: %s%s", self.peer, exc,
                                 " (a plain client on a TLS server?)" if plain else "")
            return False
        self.chan = Channel(tls, limit_rate=self.config.limit_rate)
        return True

    def _loop(self) -> None:
        cfg = self.config
        while not self.server.stopping:
            self.busy = False
            idle = cfg.idle_timeout if self.hello_done else min(cfg.idle_timeout,
                                                                cfg.login_timeout)
            fields = self.chan.recv_header(idle, cfg.frame_timeout)
            if fields is None:
                return
            self.busy = True
            started = time.perf_counter()
            self._log_path, self._log_bytes = "", 0
            op = fields.get("op") if isinstance(fields.get("op"), str) else "?"
            outcome = "ok"
            try:
                cmd, args = validate_request(fields)
                self._log_path = args.get("path", args.get("src", ""))
                if cmd.name != "hello" and not self.hello_done:
                    raise AuthRequiredError("send hello first: no command is accepted before it")
                if cmd.writes and self.read_only:
                    raise PermissionDeniedError(f"permission denied: {cmd.name} is not allowed "
                                                "in a read-only session")
                getattr(self, "handle_" + cmd.name)(args)
            except ProtocolError:
                raise
            except RemoteError as exc:
                outcome = exc.code
                if self._streaming:
                    raise TransportError(f"{op} failed mid-stream: {exc.message}") from exc
                self.chan.send(exc.to_reply())
                if self.chan.decoder.payload_left and not self.chan.skip_payload(
                        DRAIN_LIMIT, cfg.idle_timeout):
                    self._log(op, "closed after " + outcome, started)
                    return
            self._log(op, outcome, started)
            if self._closing:
                return

    def _log(self, op: str, outcome: str, started: float) -> None:
        if not self.server.log.isEnabledFor(logging.INFO):
            return  # at --log-level warning, skip building a line per request
        ms = (time.perf_counter() - started) * 1000
        who = f"{self.peer} {self.user}" if self.user else self.peer
        self.server.log.info("%s %s %s %s %dB %.1fms", who, _printable(op, 40),
                             _printable(self._log_path or "-", 300), outcome,
                             self._log_bytes, ms)

    def _best_effort(self, reply: dict) -> None:
        if self._streaming:
            return
        try:
            self.sock.settimeout(1.0)
            self.chan.send(reply)
        except (OSError, TransportError, ValueError):
            pass

    # ------------------------------------------------------------------ handlers
    # One per op in protocol.COMMANDS (a test keeps the two in step). Each sends its
    # reply; errors are raised and answered by the loop above.

    def handle_hello(self, a: dict) -> None:
        if self.hello_done:
            raise BadRequestError("hello was already sent on this connection")
        if a["version"] != VERSION:
            raise UnsupportedVersionError(
                f"unsupported protocol version {a['version']}; this server speaks version {VERSION}")
        auth = self.config.authenticator
        if auth is not None:
            user, password = a.get("user"), a.get("password")
            if user is None or password is None:
                raise AuthRequiredError("this server requires a user name and password "
                                        "(pyftp --user NAME; password from PYFTP_PASSWORD)")
            self._log_path = user
            account = auth(user, password)
            if account is None:
                self.auth_failures += 1
                time.sleep(self.config.auth_fail_delay)  # slows down password guessing
                if self.auth_failures >= self.config.max_auth_failures:
                    self._closing = True
                raise AuthFailedError("login failed: unknown user or wrong password")
            self.user = account.name
            self.read_only = self.read_only or account.read_only
        self.hello_done = True
        features = list(FEATURES)
        if self.config.ssl_context is not None:
            features.append("tls")
        if self.read_only:
            features.append("read_only")
        self.chan.send(ok(version=VERSION, server=f"pyftp/{__version__}", features=features))

    def handle_ls(self, a: dict) -> None:
        entries = self.storage.list(self.cwd, a.get("path", "."))
        payload = dump_json(entries)
        self._log_bytes = len(payload)
        self.chan.send(ok(), payload)

    def handle_stat(self, a: dict) -> None:
        self.chan.send(ok(entry=self.storage.stat(self.cwd, a["path"])))

    def handle_cd(self, a: dict) -> None:
        self.cwd = self.storage.chdir(self.cwd, a["path"])
        self.chan.send(ok(cwd=self.cwd))

    def handle_pwd(self, a: dict) -> None:
        self.chan.send(ok(cwd=self.cwd))

    def handle_mkdir(self, a: dict) -> None:
        vpath = self.storage.mkdir(self.cwd, a["path"], a.get("parents", False))
        self.chan.send(ok(path=vpath))

    def handle_rm(self, a: dict) -> None:
        self.chan.send(ok(path=self.storage.rm(self.cwd, a["path"])))

    def handle_rmdir(self, a: dict) -> None:
        self.chan.send(ok(path=self.storage.rmdir(self.cwd, a["path"])))

    def handle_mv(self, a: dict) -> None:
        src, dst = self.storage.mv(self.cwd, a["src"], a["dst"], a.get("overwrite", False))
        self._log_path = f"{src} -> {dst}"
        self.chan.send(ok(src=src, dst=dst))

    def handle_hash(self, a: dict) -> None:
        digest, total, vpath = self.storage.hash(self.cwd, a["path"])
        self._log_path = vpath
        self.chan.send(ok(sha256=digest, total=total, path=vpath))

    def handle_upper(self, a: dict) -> None:
        size = self.chan.decoder.payload_left
        if size > self.config.max_upper:
            raise TooLargeError(f"too large: upper takes at most {self.config.max_upper} bytes")
        data = self.chan.recv_payload(self.config.max_upper, self.config.idle_timeout)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadRequestError(f"upper: the text is not valid UTF-8 ({exc.reason} at "
                                  f"byte {exc.start})") from exc
        out = text.upper().encode("utf-8")
        self._log_bytes = len(out)
        self.chan.send(ok(), out)

    def handle_quit(self, a: dict) -> None:
        self.chan.send(ok())
        self._closing = True

    def handle_get(self, a: dict) -> None:
        f, st, vpath = self.storage.open_read(self.cwd, a["path"])
        self._log_path = vpath
        with f:
            offset = a.get("offset", 0)
            total = st.st_size
            if offset > total:
                raise BadRequestError(f"offset {offset} is past the end of {vpath} ({total} bytes)")
            count = total - offset
            reply = ok(size=count, offset=offset, total=total,
                       mtime=wire_mtime(st.st_mtime_ns))
            if total <= SMALL_FILE:
                self._send_small(f, st, reply, offset, vpath)
            else:
                self._send_large(f, st, reply, offset, count)
            self._log_bytes = count

    def _recv_verify(self) -> str:
        """Read the ``verify`` frame that ends a trailer put; return its SHA-256."""
        cfg = self.config
        fields = self.chan.recv_header(cfg.idle_timeout, cfg.frame_timeout)
        if fields is None:
            raise TransportError("closed before sending the digest of a put")
        digest = fields.get("sha256")
        if (fields.get("op") != "verify" or fields.get("size", 0) or not isinstance(digest, str)
                or len(digest) != 64 or digest.strip("0123456789abcdef")):
            self._closing = True
            raise BadRequestError("put: expected a verify frame with the file's sha256 "
                                  "(64 lower-case hex digits) right after the data")
        return digest

    def _send_small(self, f, st, reply: dict, offset: int, vpath: str) -> None:
        """Reply, bytes and digest frame in one write: one syscall per small get."""
        data = os.pread(f.fileno(), st.st_size, 0)
        if len(data) != st.st_size:
            # another writer is shrinking the file right now: nothing is wrong with the request
            raise BusyError(f"busy: {vpath} changed while being read; try again")
        digest = self.storage.digests.get(st)
        if digest is None:
            digest = digests.hash_bytes(data)
            self.storage.digests.put(st, digest)
        self.chan.send_bytes(encode_frame(reply) + data[offset:]
                             + encode_frame({"ok": True, "sha256": digest}))

    def _send_large(self, f, st, reply: dict, offset: int, count: int) -> None:
        """sendfile the bytes while another thread hashes the whole file from disk."""
        digest = self.storage.digests.get(st)
        result: dict = {}
        hasher = None
        if digest is None:
            def work() -> None:
                try:
                    result["digest"] = self.storage.digest(f, st)
                except BaseException as exc:  # reported in the digest frame
                    result["error"] = exc
            hasher = threading.Thread(target=work, name="pyftp-hash", daemon=True)
            hasher.start()
        self._streaming = True
        try:
            self.chan.send_header(reply)
            sent = self.chan.send_file(f, offset, count)
            if sent != count:
                raise TransportError(f"file shrank while being sent ({sent} of {count} bytes)")
        finally:
            if hasher is not None:
                hasher.join()
        self._streaming = False
        if hasher is not None:
            if "error" in result:
                self.server.log.error("hashing failed: %r", result["error"])
                self.chan.send({"ok": False, "error": "internal",
                                "message": "the server could not hash the file; retry"})
                return
            digest = result["digest"]
        self.chan.send({"ok": True, "sha256": digest})

    def handle_put(self, a: dict) -> None:
        cfg = self.config
        # trailer (feature sha256_trailer): the client hashes while it sends and puts
        # the digest in a "verify" frame after the data, instead of reading the whole
        # file once before sending; publishing still waits for that digest
        trailer = a.get("trailer", False)
        if trailer and a.get("sha256") is not None:
            raise BadRequestError("put: give either sha256 or trailer, not both")
        up = self.storage.begin_upload(
            self.cwd, a["path"], a["total"], a.get("sha256"),
            overwrite=a.get("overwrite", False), resume=a.get("resume", True),
            mtime=a.get("mtime"), owner=self.interrupt, trailer=trailer, token=a.get("token"))
        self._log_path = up.vpath
        try:
            reply = ok(offset=up.offset, token=up.token)
            if up.prefix_sha256 is not None:
                reply["prefix_sha256"] = up.prefix_sha256
            self.chan.send(reply)
            fields = self.chan.recv_header(cfg.idle_timeout, cfg.frame_timeout)
            if fields is None:
                raise TransportError("closed before sending the data of a put")
            if trailer and up.offset and fields.get("offset") == 0:
                up.restart()  # the client's bytes differ from the kept prefix
            if fields.get("op") != "data" or fields.get("size", 0) != up.remaining:
                if trailer:
                    self._closing = True  # a verify frame may follow: out of step
                raise BadRequestError(
                    f"put {up.vpath}: expected a data frame of {up.remaining} bytes, got "
                    f"op={str(fields.get('op'))[:20]!r} size={fields.get('size', 0)}")
            failure: list[RemoteError] = []

            def sink(chunk) -> None:
                if not failure:
                    try:
                        up.write(chunk, hashed=True)
                    except RemoteError as exc:  # keep reading so the stream stays in step
                        failure.append(exc)
            # the transport feeds the hash (on a second thread for large payloads)
            self._log_bytes = self.chan.recv_payload_into(sink, timeout=cfg.idle_timeout,
                                                          hasher=up.hasher)
            if trailer:
                up.expected = self._recv_verify()
            if failure:
                up.discard()
                raise failure[0]
            digest = up.commit()
        except BaseException:
            up.abort()
            raise
        self.chan.send(ok(total=up.total, sha256=digest, path=up.vpath))

