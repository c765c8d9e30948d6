"""One client connection: the frame loop and the one ``except`` ladder.

A :class:`Session` reads a header, checks it against :data:`~pyftp.protocol.COMMANDS`,
calls ``handle_<op>`` (from :class:`~pyftp.server.handlers.Handlers`) and lets the one
``except`` ladder in :meth:`Session.run` turn errors into replies: a
:class:`~pyftp.errors.RemoteError` becomes an error reply and the session goes on; a
framing error gets a best-effort ``bad_frame`` and a close; anything else is logged with
its traceback and answered ``internal`` (no paths leak). It also writes the log lines.

Import rule: errors, protocol, transport and the server's handlers. Never client, ui,
shell or cli; the listener only for type hints.
"""
from __future__ import annotations

import logging
import selectors
import socket
import ssl
import threading
import time
from typing import TYPE_CHECKING, Any

from ..errors import (AuthRequiredError, PermissionDeniedError, ProtocolError, RemoteError,
                      TransportError)
from ..protocol import JSONObject, encode_frame, validate_request
from ..transport import Channel
from .handlers import Handlers

if TYPE_CHECKING:
    from .listener import Server

__all__ = ["Session", "fit_reply"]

#: after an error reply, an unread payload up to this size is drained to stay in step
DRAIN_LIMIT = 4 * 1024 * 1024
#: ops that wait on nothing but the storage: replies held for the next write (see
#: Channel.hold_small_writes) may wait behind them. Before any other op (a put may
#: wait for a claim, a listing for a slot, a hash read a large file, a login sleep)
#: what is held is written first, so no reply waits on another request's wait
HOLD_ACROSS = frozenset({"get", "stat", "pwd", "cd"})


def fit_reply(reply: JSONObject) -> JSONObject:
    """``reply`` with its message shortened (head ... tail) so the header fits a frame.

    An error message names the path it is about, and a long cwd plus a long name (JSON
    escapes make one character up to 6 bytes) can exceed :data:`MAX_HEADER`; the
    client must still get the proper error code, never ``internal``.
    """
    try:
        encode_frame(reply)
        return reply
    except ValueError:
        pass
    message = str(reply.get("message", ""))

    def shortened(k: int) -> JSONObject:
        return {**reply, "message": f"{message[:k]} ... {message[-k:]} (message shortened)"}
    lo, hi = 0, len(message) // 2  # the largest k whose reply fits, by bisection
    while lo < hi:
        mid = (lo + hi + 1) // 2
        try:
            encode_frame(shortened(mid))
            lo = mid
        except ValueError:
            hi = mid - 1
    return shortened(lo)


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


def _fmt_peer(addr: tuple[Any, ...]) -> str:
    host, port = addr[0], addr[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Session(Handlers):
    """One client connection, served by its own thread."""

    def __init__(self, server: Server, sock: socket.socket, addr: tuple[Any, ...]) -> None:
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
        self.chan = self._channel(sock)
        self.cwd = "/"
        self.hello_done = False
        #: the digest negotiated in hello (section 14); None: a version 1 session (SHA-256,
        #: fields named sha256, no ranges)
        self.algorithm: str | None = None
        #: the login timeout counts from accept, not from the last request: a peer that
        #: keeps sending requests without logging in is still closed at this time
        self.login_deadline = time.monotonic() + self.config.login_timeout
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

    def _channel(self, sock: socket.socket) -> Channel:
        chan = Channel(sock, limit_rate=self.config.limit_rate)
        # replies to pipelined requests leave together, written before the next read
        chan.hold_small_writes()
        return chan

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
            self._best_effort(fit_reply(exc.to_reply()))
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
        self.chan = self._channel(tls)
        return True

    def _loop(self) -> None:
        cfg = self.config
        while not self.server.stopping:
            self.busy = False
            fields = self._next_request()
            if fields is None:
                return
            self.busy = True
            started = time.perf_counter()
            self._log_path, self._log_bytes = "", 0
            named = fields.get("op")
            op = named if isinstance(named, str) else "?"
            outcome = "ok"
            try:
                cmd, args = validate_request(fields)
                # checked: a path or src present is a non-empty string
                self._log_path = args.get("path") or args.get("src") or ""
                if cmd.name != "hello" and not self.hello_done:
                    raise AuthRequiredError("send hello first: no command is accepted before it")
                if cmd.writes and self.read_only:
                    raise PermissionDeniedError(f"permission denied: {cmd.name} is not allowed "
                                                "in a read-only session")
                if cmd.name not in HOLD_ACROSS:
                    self.chan.flush()
                getattr(self, "handle_" + cmd.name)(args)
            except ProtocolError:
                raise
            except RemoteError as exc:
                outcome = exc.code
                if self._streaming:
                    raise TransportError(f"{op} failed mid-stream: {exc.message}") from exc
                self.chan.send(fit_reply(exc.to_reply()))
                if self.chan.decoder.payload_left and not self.chan.skip_payload(
                        DRAIN_LIMIT, cfg.idle_timeout):
                    self._log(op, "closed after " + outcome, started)
                    return
            self._log(op, outcome, started)
            if self._closing:
                return

    def _next_request(self) -> JSONObject | None:
        """The next request header; None when the peer closed or the login time is up."""
        cfg = self.config
        if self.hello_done:
            return self.chan.recv_header(cfg.idle_timeout, cfg.frame_timeout)
        left = self.login_deadline - time.monotonic()
        if left > 0:
            try:
                return self.chan.recv_header(min(cfg.idle_timeout, left),
                                             min(cfg.frame_timeout, left))
            except TransportError:
                if time.monotonic() < self.login_deadline:
                    raise
        self.server.log.info("%s closed: no login within %gs of connecting", self.peer,
                             cfg.login_timeout)
        return None

    def _log(self, op: str, outcome: str, started: float) -> None:
        if not self.server.log.isEnabledFor(logging.INFO):
            return  # at --log-level warning, skip building a line per request
        ms = (time.perf_counter() - started) * 1000
        who = f"{self.peer} {self.user}" if self.user else self.peer
        self.server.log.info("%s %s %s %s %dB %.1fms", who, _printable(op, 40),
                             _printable(self._log_path or "-", 300), outcome,
                             self._log_bytes, ms)

    def _best_effort(self, reply: JSONObject) -> None:
        if self._streaming:
            return
        try:
            self.sock.settimeout(1.0)
            self.chan.send(reply)
            self.chan.flush()
        except (OSError, TransportError, ValueError):
            pass
