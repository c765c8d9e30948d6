"""One connection to a pyftp server: connect, TLS, hello, and the sticky-error state.

:class:`Connection` is the base of :class:`pyftp.Client`. It owns the socket (through a
:class:`~pyftp.transport.Channel`) and the state h11 would call ERROR: a connection that
failed in the middle of an exchange is dropped at once and every later call says so,
so a stream that is out of step is never read again. :meth:`Connection.reconnect`
opens a fresh one.

The hello has its own deadline (``hello_timeout``): a peer that is not pyftp is named
from what it sent (an SSH, HTTP or FTP server) with :class:`~pyftp.errors.NotPyftpError`
instead of a raw frame length or a long wait. The hello also negotiates the session's
digest (protocol section 14): BLAKE3 when both ends have it, else SHA-256;
:attr:`Connection.algorithm` says which, and :attr:`Connection.negotiated` whether the
server speaks the negotiated form at all (an older server gets version 1 exactly).

Import rule: errors, protocol, transport, digests, _version. Never server, sync, ui, shell, cli.
"""
from __future__ import annotations

import contextlib
import os
import socket
import time

from ..hints import TYPE_CHECKING, LEAN

from .. import digests
from .._version import __version__
from ..errors import (ConnectError, NotPyftpError, ProtocolError, RemoteError,
                      TransportError, UnsupportedVersionError)
from ..protocol import DEFAULT_PORT, VERSION, JSONObject, read_reply
from ..transport import Channel
from .upload import TokenBook

if TYPE_CHECKING or not LEAN:  # names for annotations; see pyftp.hints
    from typing import Iterator, TypeVar
    _Self = TypeVar("_Self", bound="Connection")

if TYPE_CHECKING:
    import ssl

    from ..protocol.shapes import HelloReply

__all__ = ["Connection", "client_context", "DEFAULT_HELLO_TIMEOUT"]


#: how long a server may take to answer hello (a pyftp server answers at once; a login
#: refusal is delayed about 1 s on purpose)
DEFAULT_HELLO_TIMEOUT = 5.0
#: bytes of the first answer looked at to name a peer that is not pyftp
_SNIFF = 5


class Connection:
    """The connection state behind :class:`pyftp.Client` (see its docstring)."""

    def __init__(self, host: str = "127.0.0.1", port: int = DEFAULT_PORT, *,
                 user: str | None = None, password: str | None = None,
                 timeout: float | None = 30.0, tls: bool | ssl.SSLContext = False,
                 cafile: str | None = None, insecure: bool = False,
                 limit_rate: int | None = None, connect: bool = True,
                 hello_timeout: float | None = DEFAULT_HELLO_TIMEOUT,
                 resume_tokens: TokenBook | str | os.PathLike[str] | None = None,
                 digest: str | None = None) -> None:
        if digest is not None and digest not in digests.ALGORITHMS:
            have = ", ".join(digests.ALGORITHMS)
            raise ValueError(f"digest {digest!r} is not available in this build (it has: "
                             f"{have}; BLAKE3 needs the blake3 package)")
        #: the digest asked for (None: the best both ends have)
        self.digest = digest
        #: the session's digest algorithm, and whether hello negotiated it (False: a
        #: version 1 server, SHA-256 with the version 1 field names)
        self.algorithm = "sha256"
        self.negotiated = False
        self.host, self.port = host, port
        #: where the resume tokens of cut uploads are kept: this process's shared book,
        #: or a file (a path) so that the next process resumes too
        self.resume_tokens = (resume_tokens if isinstance(resume_tokens, TokenBook)
                              else TokenBook.shared() if resume_tokens is None
                              else TokenBook(resume_tokens))
        self.user, self._password = user, password
        self.timeout = timeout
        self.hello_timeout = hello_timeout
        self.limit_rate = limit_rate
        self._ssl_context = client_context(tls, cafile, insecure)
        self._chan: Channel | None = None
        self._broken: str | None = None
        self._cwd = "/"
        #: the server's hello reply: ``server``, ``features`` and, negotiated, ``digest``
        self.server_info: HelloReply = {}
        if connect:
            self.connect()

    # ------------------------------------------------------------------ open / close
    def connect(self) -> None:
        """Open the connection and say hello (log in when credentials were given)."""
        try:
            # an ASCII name goes as bytes: as str, the socket module would first load
            # the IDNA codec (with stringprep and unicodedata) to encode it. getaddrinfo
            # takes bytes; typeshed's create_connection signature says str only.
            host: str | bytes = self.host.encode("ascii") if self.host.isascii() else self.host
            sock = socket.create_connection((host, self.port),  # type: ignore[arg-type]
                                            timeout=self.timeout)
        except socket.timeout as exc:
            raise ConnectError(f"could not connect to {self.address}: timed out") from exc
        except OSError as exc:
            raise ConnectError(f"could not connect to {self.address}: "
                               f"{exc.strerror or exc}; is pyftp-server running there?") from exc
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._ssl_context is not None:
                sock = self._wrap_tls(sock)
            self._chan = Channel(sock, limit_rate=self.limit_rate)
            self._broken = None
            self.server_info = self._hello()
        except BaseException:
            self._drop("connect failed")
            raise

    def _wrap_tls(self, sock: socket.socket) -> socket.socket:
        import ssl
        assert self._ssl_context is not None
        # the handshake is part of saying hello: a silent peer gets the hello deadline
        sock.settimeout(self._hello_wait())
        try:
            return self._ssl_context.wrap_socket(sock, server_hostname=self.host)
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

    def _hello(self) -> HelloReply:
        hello: JSONObject = {"op": "hello", "version": VERSION, "client": f"pyftp/{__version__}"}
        if self.user is not None:
            hello["user"] = self.user
            hello["password"] = self._password or ""
        hello["digests"] = [self.digest] if self.digest else list(digests.ALGORITHMS)
        chan = self._channel()
        tls_hint = "" if self._ssl_context is not None else "; if the server uses TLS, connect with --tls"
        try:
            chan.send(hello)
            first = self._sniff(chan)
            if not first:
                raise TransportError(f"{self.address} closed the connection")
            _name_the_peer(first, self.address)
            chan.decoder.feed(first)
            reply = chan.recv_header(self._hello_wait(), self._hello_wait())
            if reply is None:
                raise TransportError(f"{self.address} closed the connection")
            return self._agree(read_reply("hello", reply))
        except (UnsupportedVersionError, NotPyftpError, ConnectError):
            raise
        except TransportError as exc:
            raise ConnectError(f"{self.address} closed the connection during hello "
                               f"({exc}){tls_hint}") from exc
        except ProtocolError as exc:
            raise NotPyftpError(f"{self.address} does not answer like a pyftp server "
                                f"({exc}){tls_hint}") from exc

    def _agree(self, reply: HelloReply) -> HelloReply:
        """Take the digest the server picked (none: a version 1 server, SHA-256)."""
        picked = reply.get("digest")
        if picked is None:
            if self.digest not in (None, "sha256"):
                raise ConnectError(f"{self.address} cannot verify with {self.digest} (an "
                                   "older server: SHA-256 only); use --digest sha256")
            self.algorithm, self.negotiated = "sha256", False
            return reply
        wanted = [self.digest] if self.digest else digests.ALGORITHMS
        if picked not in wanted:
            raise ProtocolError(f"the server picked the digest {picked:.20}, which was "
                                "not offered")
        self.algorithm, self.negotiated = picked, True
        return reply

    @property
    def digest_field(self) -> str:
        """The name of a digest field in this session: ``sha256`` (version 1) or
        ``digest`` (negotiated)."""
        return "digest" if self.negotiated else "sha256"

    def _hello_wait(self) -> float | None:
        waits = [t for t in (self.timeout, self.hello_timeout) if t is not None]
        return min(waits) if waits else None

    def _sniff(self, chan: Channel) -> bytes:
        """The first bytes of the answer to hello (at least :data:`_SNIFF` unless the
        peer closes), read within the hello deadline."""
        wait = self._hello_wait()
        deadline = None if wait is None else time.monotonic() + wait
        got = b""
        while len(got) < _SNIFF:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            chan.sock.settimeout(left)
            try:
                data = chan.sock.recv(64 * 1024)
            except socket.timeout:
                break
            except OSError as exc:
                raise TransportError(f"connection lost: {exc.strerror or exc}") from exc
            if not data:
                return got
            got += data
        if not got:
            # silence past the deadline: many servers wait for their client to speak
            # first (HTTP, TLS), and an end of line makes them answer, which names them
            got = _probe(chan.sock, min(1.0, wait or 1.0))
            if got and not got.startswith(b"\x00"):
                _name_the_peer(got, self.address)
            raise NotPyftpError(f"{self.address} did not answer the hello within "
                                f"{wait:g} s: not a pyftp server, or a TLS one "
                                "(then connect with --tls)")
        if not got.startswith(b"\x00"):
            _name_the_peer(got, self.address)
        return got

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def connected(self) -> bool:
        return self._chan is not None and self._broken is None

    @property
    def socket(self) -> socket.socket | None:
        """The connected socket (read-only; None when not connected)."""
        return self._chan.sock if self.connected and self._chan is not None else None

    @property
    def writes(self) -> int:
        """How many writes this connection made to its socket (pipelining tests)."""
        return self._chan.writes if self._chan is not None else 0

    def reconnect(self) -> None:
        """Open a fresh connection and return to the directory the session was in."""
        cwd = self._cwd
        self._drop("reconnecting")
        self.connect()
        if cwd != "/":
            try:
                self._cwd = self._call({"op": "cd", "path": cwd})["cwd"]
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

    def abort(self, reason: str = "aborted") -> None:
        """Drop the connection at once, as a network failure would: no quit is sent,
        and the next call raises TransportError until :meth:`reconnect`."""
        self._drop(reason)

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ exchanges
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

    def _recv_reply(self) -> JSONObject:
        fields = self._channel().recv_header(self.timeout, self.timeout)
        if fields is None:
            raise TransportError(f"{self.address} closed the connection")
        return fields

    def _call(self, request: JSONObject, payload: bytes = b"") -> JSONObject:
        """One request, one checked reply header (a payload is left to the caller)."""
        chan = self._channel()
        with self._in_step():
            chan.send(request, payload)
            reply = self._recv_reply()
        op: str = request["op"]
        return read_reply(op, reply)

    @contextlib.contextmanager
    def _in_step(self) -> Iterator[None]:
        """Around the frames of one exchange: whatever escapes leaves the stream out
        of step, so the connection is dropped (error replies are read, not raised)."""
        try:
            yield
        except (TransportError, ProtocolError) as exc:
            self._drop(str(exc))
            raise
        except BaseException:
            self._drop("interrupted")
            raise

    def _read_payload(self, limit: int = 1 << 30) -> bytes:
        chan = self._channel()
        try:
            return chan.recv_payload(limit, self.timeout)
        except BaseException:
            self._drop("failed while reading a reply")
            raise


def _probe(sock: socket.socket, wait: float) -> bytes:
    """What a silent peer says to a blank line (an HTTP server answers 400, a TLS one an
    alert), within ``wait`` s; b"" if nothing. The connection is given up on anyway."""
    try:
        sock.settimeout(wait)
        sock.sendall(b"\r\n\r\n")
        return sock.recv(_SNIFF)
    except OSError:
        return b""


def _name_the_peer(first: bytes, address: str) -> None:
    """Raise NotPyftpError naming a well-known non-pyftp server from its first bytes.

    A pyftp reply starts with a 4-byte length of at most 65536, so its first byte is
    always 0; each banner below starts with a printable letter instead."""
    if first.startswith(b"\x00"):
        return
    if first[:1] in (b"\x15", b"\x16") and first[1:2] == b"\x03":
        raise ConnectError(f"{address} answered with TLS: connect with --tls")
    if first.startswith(b"SSH-"):
        what = "an SSH server"
    elif first.startswith(b"HTTP/") or first.lower().startswith((b"<!doc", b"<html")):
        # an HTML page without a status line: the answer to a request an HTTP server
        # took for HTTP/0.9 (what a hello followed by a blank line looks like to it)
        what = "an HTTP server"
    elif first.startswith(b"220"):
        what = "an FTP server"
    else:
        raise NotPyftpError(f"{address} is not a pyftp server (it answered "
                            f"{first[:16]!r}); check the host and port")
    raise NotPyftpError(f"{address} is {what}, not a pyftp server; check the port "
                        "(pyftp-server listens on 6971 by default)")


def client_context(tls: bool | ssl.SSLContext, cafile: str | None,
                   insecure: bool) -> ssl.SSLContext | None:
    """The TLS context for ``tls``/``cafile``/``insecure``, or None for plain TCP."""
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
