"""The threaded pyftp server: accept connections, admit or refuse them, shut down.

One thread per connection (a :class:`~pyftp.server.session.Session`), so a slow or dead
client never blocks the others. The :class:`Server` binds and accepts, applies the
connection limits (refusals are logged through :class:`_RefusalLog`, so a flood cannot
flood the log), runs the janitor that removes stale partial uploads, and shuts down with
a grace period for transfers in flight.

Import rule: errors, protocol, transport, storage and the server's session. Never
client, ui, shell or cli.
"""
from __future__ import annotations

import errno
import logging
import os
import selectors
import socket
import ssl
import threading
import time
from typing import Any, Callable

from ..records import dataclass, field
from ..errors import BusyError, RemoteError, TransportError
from ..protocol import DEFAULT_PORT
from .storage import open_storage
from ..transport import Channel
from .handlers import SpoolBudget
from .session import Session, _fmt_peer
from .throttle import LoginThrottle

try:
    import resource
except ImportError:  # pragma: no cover - not a Unix
    resource = None  # type: ignore[assignment]

#: descriptors one session may hold at once: its socket, an upload's folder and
#: partial, and one more (metadata, a listing spool)
FDS_PER_CLIENT = 4
#: descriptors the server keeps for itself (listener, log, the janitor's walk, ...)
FDS_RESERVED = 16
#: accept() errors that mean "out of descriptors or memory": wait, do not spin
_SCARCE = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}

__all__ = ["ServerConfig", "Server", "Account"]

log = logging.getLogger("pyftp.server")


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

    #: a folder, or ``s3://BUCKET[/PREFIX]`` (an object store; needs ``pyftp[s3]``)
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
    #: a failed login waits this long before its reply; across connections, the first
    #: delay between checked attempts from one address (or on one user name from an
    #: address that failed), doubling with each failure up to ``auth_fail_cap``
    auth_fail_delay: float = 1.0
    #: the longest such delay; an attempt that would wait longer is refused unchecked
    auth_fail_cap: float = 60.0
    #: failed-login records kept per kind (addresses, user names): least recent go first
    auth_track: int = 10_000
    max_auth_failures: int = 3
    ssl_context: ssl.SSLContext | None = None
    #: seconds a shutdown waits for transfers in flight before cutting them
    shutdown_grace: float = 5.0
    #: keep this many bytes free on the server's disk (uploads beyond get no_space)
    min_free: int = 0
    #: refused connections are logged one by one only this often; the rest are counted
    #: and summed up in one line, so a flood cannot flood the log too
    refusal_log_interval: float = 10.0
    #: bytes of spooled listings held at once, all connections together: past it,
    #: ``ls`` of a long folder answers busy (peers that never read cannot fill /tmp)
    max_listing_spool: int = 256 << 20
    #: the digests this server offers in hello negotiation (None: all this build has,
    #: :data:`pyftp.digests.ALGORITHMS`); SHA-256 stays available to version 1 clients
    digests: tuple[str, ...] | None = None
    #: the object store's URL for an ``s3://`` root (else AWS_ENDPOINT_URL / profile)
    s3_endpoint: str | None = None
    logger: logging.Logger = field(default=log, repr=False)


class Server:
    """A pyftp server. ``with Server(cfg) as s:`` starts it; ``s.address`` says where."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.storage = open_storage(config.root, read_only=config.read_only,
                                    max_file_size=config.max_file_size,
                                    min_free=config.min_free, s3_endpoint=config.s3_endpoint)
        self.log = config.logger
        self._listener: socket.socket | None = None
        self._sessions: set[Session] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._accept_thread: threading.Thread | None = None
        self._janitor: threading.Thread | None = None
        self._refusals = _RefusalLog(self.log, config.refusal_log_interval)
        #: listings being built at once: each holds all of its entries for a moment
        self.listing_slots = threading.BoundedSemaphore(max(2, os.cpu_count() or 2))
        #: spooled listings waiting for their peers to read them
        self.spool_budget = SpoolBudget(config.max_listing_spool)
        #: failed logins, shared by every connection (per address and per user name)
        self.throttle = LoginThrottle(config.auth_fail_delay, config.auth_fail_cap,
                                      config.auth_track)
        self._deadline = float("inf")  # end of the shutdown grace, once stopping
        #: connections admitted at once: max_clients, or fewer if the open-file limit
        #: could not hold that many (then every session would risk EMFILE)
        self.max_clients = config.max_clients

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

    def pause(self, seconds: float) -> bool:
        """Sleep up to ``seconds``, waking at once when the server stops (then True)."""
        return self._stopping.wait(seconds)

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
        self.max_clients = self._fd_budget()
        # the start-up clean-up of stale partials runs first thing on the janitor
        # thread: a huge or hostile tree must never delay (or stop) serving
        self._accept_thread = threading.Thread(target=self._accept_loop,
                                               name="pyftp-accept", daemon=True)
        self._accept_thread.start()
        self._janitor = threading.Thread(target=self._janitor_loop,
                                         name="pyftp-janitor", daemon=True)
        self._janitor.start()
        return self

    def _fd_budget(self) -> int:
        """How many clients the open-file limit can serve: raise the soft limit as far
        as needed (up to the hard one), else lower max_clients and say so."""
        want = self.config.max_clients * FDS_PER_CLIENT + FDS_RESERVED
        if resource is None:
            return self.config.max_clients
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and soft < want:
            new = want if hard == resource.RLIM_INFINITY else min(hard, want)
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
                soft = new
            except (OSError, ValueError):
                pass
        if soft == resource.RLIM_INFINITY or soft >= want:
            return self.config.max_clients
        fit = max(1, (soft - FDS_RESERVED) // FDS_PER_CLIENT)
        self.log.warning("the open-file limit (%d) holds at most %d clients: serving %d "
                         "at once instead of %d (raise 'ulimit -n' to serve more)",
                         soft, fit, fit, self.config.max_clients)
        return fit

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

    def __exit__(self, *exc: object) -> None:
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
                    except OSError as exc:
                        if self._stopping.is_set():
                            return
                        if exc.errno in _SCARCE:  # the listener stays readable: no spin
                            self._stopping.wait(0.05)
                        continue
                    self._admit(conn, addr)
            finally:
                self._refusals.flush(final=True)  # a count still held is not lost

    def _admit(self, conn: socket.socket, addr: tuple[Any, ...]) -> None:
        peer_ip = addr[0]
        cfg = self.config
        with self._lock:
            total = len(self._sessions)
            same_ip = sum(1 for s in self._sessions if s.peer_ip == peer_ip)
            refuse = None
            if total >= self.max_clients:
                refuse = f"server is full ({self.max_clients} clients); try again later"
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
        first = True
        while True:
            try:
                n = self.storage.clean_partials(self.config.partial_ttl)
                if n or first:
                    self.log.info("%sremoved %d stale partial upload(s)",
                                  "start-up clean-up: " if first else "", n)
            except Exception as exc:  # RecursionError on a deep tree, OSError, ...
                # best effort: the server goes on serving, and the next round retries
                self.log.warning("partial clean-up failed (%s: %s); serving goes on",
                                 type(exc).__name__, exc)
            first = False
            if self._stopping.wait(period):
                return


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
