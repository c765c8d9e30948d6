"""The blocking socket shell around :mod:`pyftp.protocol`, shared by client and server.

:class:`Channel` owns one connected socket and one :class:`~pyftp.protocol.FrameDecoder`.
It reads whole headers (with an idle timeout and a deadline for a started frame, so a
slow-drip peer cannot hold a thread forever), moves payload bytes straight between the
socket and a sink through one reused buffer (``recv_into``), and sends files with
``socket.sendfile`` (zero-copy where the OS allows). Socket failures leave here as
:class:`~pyftp.errors.TransportError`.

A receiver may pass a hash object: the payload is then hashed on a second thread while
it arrives (:class:`pyftp.digests.HashRing`). Payload buffers come from the one pool in
:mod:`pyftp.digests`.

Why a module of its own: ARCHITECTURE.md has the client and the server own their
sockets; both need exactly the same framing loop, and writing it twice is how the two
ends drift out of step. This layer sits between protocol and client/server: it imports
protocol, digests and errors, and neither client nor server is imported here.
"""
from __future__ import annotations

import os
import socket
import threading
import time

from .hints import TYPE_CHECKING, LEAN

from .errors import ProtocolError, TransportError
from .digests import CHUNK, OVERLAP_MIN, OVERLAP_SLOTS, Hasher, HashRing
from .protocol import NEED_DATA, FrameDecoder, Header, encode_frame

if TYPE_CHECKING or not LEAN:  # names for annotations; see pyftp.hints
    from typing import Any, BinaryIO, Callable, TypeVar
    _Buf = TypeVar("_Buf", bytearray, memoryview)

__all__ = ["Channel", "RateLimiter"]

#: how much one recv may pull in while waiting for a header (pipelined requests)
HEADER_READ = 64 * 1024
#: frames up to this size are written with one os.write before falling back to sendall
SMALL_WRITE = 64 * 1024
#: held small frames are written out once they add up to this many bytes
HOLD_LIMIT = 64 * 1024
#: what a receive loop fills: a pooled buffer, or a view of the caller's memory


class RateLimiter:
    """A token bucket: ``consume(n)`` blocks just long enough to keep ``rate`` bytes/s."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = float(rate)
        self._clock, self._sleep = clock, sleep
        self._start = clock()
        self._sent = 0.0

    #: idle time is credited for at most this many seconds of traffic, so a pause (or
    #: the time between connecting and the first transfer) never turns into a burst
    BURST = 0.05

    def consume(self, n: int) -> None:
        now = self._clock()
        if self._start + self._sent / self.rate < now - self.BURST:
            self._start, self._sent = now - self.BURST, 0.0
        self._sent += n
        ahead = self._sent / self.rate - (now - self._start)
        if ahead > 0:
            self._sleep(ahead)

    def chunk(self) -> int:
        """A chunk size that keeps the sleeps short (about 1/20 s of traffic)."""
        return max(4096, min(CHUNK, int(self.rate / 20)))


class Channel:
    """One framed connection. Not thread-safe: one reader and one writer at a time."""

    def __init__(self, sock: socket.socket, *, limit_rate: float | None = None,
                 buffer_size: int = CHUNK) -> None:
        self.sock = sock
        self.decoder = FrameDecoder()
        self.limiter = RateLimiter(limit_rate) if limit_rate else None
        self._buffer_size = buffer_size
        self._rbuf: bytearray | None = None  # allocated on the first payload read
        self.bytes_in = 0
        self.bytes_out = 0
        self.writes = 0  #: write calls made on the socket (how well frames were batched)
        self._send_lock = threading.Lock()
        # plain TCP only: a TLS socket's bytes must go through its SSL object
        self._direct = type(sock) is socket.socket
        #: small frames not written yet (see :meth:`hold_small_writes`); None: write at once
        self._held: list[bytes] | None = None
        self._held_size = 0

    # ------------------------------------------------------------------ receiving
    def _recv(self, n: int) -> bytes:
        if self._held:
            self.flush()  # the peer may be waiting for these before it sends more
        try:
            data = self.sock.recv(n)
        except socket.timeout as exc:
            raise TransportError("timed out waiting for the peer") from exc
        except OSError as exc:
            raise TransportError(f"connection lost: {exc.strerror or exc}") from exc
        self.bytes_in += len(data)
        return data

    def recv_header(self, idle_timeout: float | None = None,
                    frame_timeout: float | None = None) -> dict[str, Any] | None:
        """Return the next frame header, or None if the peer closed between frames.

        ``idle_timeout`` bounds the wait for a frame to start; once its first byte is in,
        the whole header must arrive within ``frame_timeout`` seconds.
        """
        if self.decoder.payload_left:
            raise RuntimeError("recv_header() called with payload still unread")
        deadline = None
        while True:
            event = self.decoder.next_event()
            if isinstance(event, Header):
                if deadline is not None:
                    # what is left of the frame deadline must not become the timeout of
                    # the reply: a header split near its deadline would cut the get after it
                    self._settimeout(idle_timeout)
                return event.fields
            assert event is NEED_DATA
            if self.decoder.in_frame:
                if deadline is None and frame_timeout is not None:
                    deadline = time.monotonic() + frame_timeout
                timeout = _left(deadline, idle_timeout)
            else:
                timeout = idle_timeout
            self._settimeout(timeout)
            try:
                data = self._recv(HEADER_READ)
            except TransportError:
                if deadline is not None and time.monotonic() >= deadline:
                    raise TransportError("a frame header did not arrive in time") from None
                raise
            if not data:
                if self.decoder.in_frame:
                    raise TransportError("connection closed in the middle of a frame")
                return None
            self.decoder.feed(data)

    def recv_payload(self, limit: int, timeout: float | None = None) -> bytes:
        """Read the current frame's whole payload into memory (at most ``limit`` bytes)."""
        if self.decoder.payload_left > limit:
            raise ProtocolError(f"payload of {self.decoder.payload_left} bytes is over "
                                f"the {limit}-byte limit")
        parts: list[memoryview | bytes] = []  # copy=True: each chunk is its own bytes
        self.recv_payload_into(parts.append, timeout=timeout, copy=True)
        return b"".join(parts)

    def recv_payload_into(self, sink: Callable[[memoryview | bytes], object], *,
                          timeout: float | None = None,
                          on_chunk: Callable[[int], object] | None = None,
                          copy: bool = False, hasher: Hasher | None = None) -> int:
        """Move the current frame's payload to ``sink`` chunk by chunk; return its size.

        ``sink`` gets views of one reused buffer (bytes if ``copy``), valid only during
        the call. ``timeout`` is the longest stall allowed between two chunks.

        ``hasher``, when given, is fed every payload byte in order. For a payload of at
        least :data:`OVERLAP_MIN` bytes it is fed on a second thread through a small
        ring of buffers, so the hash (which releases the GIL on large buffers) runs on
        one core while this thread receives and writes on the other; in series the
        three would cost their sum. Only cores - 1 transfers per process do that at
        once (with every core busy a second thread only adds switching), and BLAKE3 on
        a machine of two cores never does (:meth:`HashRing.pays`: there the handoff
        costs more than the hash); the others hash each buffer here, right after the
        sink wrote it. ``hasher`` is done with every byte on return.
        """
        total = 0
        # bytes the decoder already holds come first, or the stream would reorder
        while self.decoder.payload_left and self.decoder.buffered:
            chunk = self.decoder.take_buffered_payload(CHUNK)
            sink(chunk)
            if hasher is not None:
                hasher.update(chunk)
            total += len(chunk)
            if on_chunk:
                on_chunk(len(chunk))
        if not self.decoder.payload_left:
            return total
        self._settimeout(timeout)
        if (hasher is not None and not copy and self.decoder.payload_left >= OVERLAP_MIN
                and HashRing.pays(hasher) and OVERLAP_SLOTS.acquire(blocking=False)):
            try:
                with HashRing(hasher, self._buffer_size) as ring:
                    return total + self._recv_loop(sink, on_chunk, False, ring.take, ring.hash)
            finally:
                OVERLAP_SLOTS.release()
        if self._rbuf is None:
            self._rbuf = bytearray(self._buffer_size)
        rbuf = self._rbuf
        after = None
        if hasher is not None:
            def after(_buf: bytearray, n: int) -> None:
                hasher.update(memoryview(rbuf)[:n])
        return total + self._recv_loop(sink, on_chunk, copy, lambda: rbuf, after)

    def recv_payload_to(self, into: memoryview, *, timeout: float | None = None,
                        hasher: Hasher | None = None) -> None:
        """Receive the current frame's whole payload straight into ``into``, which must
        be exactly as long: no buffer in between, so a large ranged read costs the
        kernel's copy and nothing more. ``hasher`` is fed each piece just after it
        landed, while it is still in the CPU cache."""
        if len(into) != self.decoder.payload_left:
            raise ValueError(f"recv_payload_to: the buffer holds {len(into)} bytes, the "
                             f"payload is {self.decoder.payload_left}")
        pos = 0

        def sink(chunk: memoryview | bytes) -> None:
            nonlocal pos
            into[pos:pos + len(chunk)] = chunk
            pos += len(chunk)
        # bytes the decoder already holds come first (copied: they are few)
        while self.decoder.payload_left and self.decoder.buffered:
            chunk = self.decoder.take_buffered_payload(CHUNK)
            sink(chunk)
            if hasher is not None:
                hasher.update(chunk)
        if not self.decoder.payload_left:
            return
        self._settimeout(timeout)

        def take() -> memoryview:
            return into[pos:]

        def landed(buf: memoryview, n: int) -> None:
            nonlocal pos
            if hasher is not None:
                hasher.update(buf[:n])
            pos += n
        self._recv_loop(lambda _view: None, None, False, take, landed)

    def _recv_loop(self, sink: Callable[[memoryview | bytes], object],
                   on_chunk: Callable[[int], object] | None, copy: bool,
                   take: Callable[[], _Buf],
                   after: Callable[[_Buf, int], object] | None) -> int:
        """recv_into buffers from ``take()`` until the payload is in; ``after(buf, n)``
        gets each filled buffer once ``sink`` has seen it."""
        if self._held:
            self.flush()
        total = 0
        limiter = self.limiter
        decoder = self.decoder
        step = limiter.chunk() if limiter else self._buffer_size
        recv_into = self.sock.recv_into
        while decoder.payload_left:
            buf = take()
            view = memoryview(buf)[:min(step, decoder.payload_left)]
            try:
                n = recv_into(view)
            except socket.timeout as exc:
                raise TransportError("the transfer stalled: no data arrived in time") from exc
            except OSError as exc:
                raise TransportError(f"connection lost: {exc.strerror or exc}") from exc
            if not n:
                raise TransportError("connection closed in the middle of a transfer")
            self.bytes_in += n
            decoder.payload_consumed(n)
            sink(bytes(view[:n]) if copy else view[:n])
            if after is not None:
                after(buf, n)
            total += n
            if on_chunk:
                on_chunk(n)
            if limiter:
                limiter.consume(n)
        return total

    def skip_payload(self, limit: int, timeout: float | None = None) -> bool:
        """Discard the current payload if it is at most ``limit`` bytes; else False."""
        if self.decoder.payload_left > limit:
            return False
        self.recv_payload_into(lambda _chunk: None, timeout=timeout)
        return True

    # ------------------------------------------------------------------ sending
    def send(self, header: dict[str, Any], payload: bytes = b"") -> None:
        """Send one frame. ``header["size"]`` is set from the payload when it has one."""
        if payload:
            header = {**header, "size": len(payload)}
        frame = encode_frame(header)
        with self._send_lock:
            self._sendall(frame + payload if len(payload) <= 65536 else frame)
            if len(payload) > 65536:
                self._send_limited(memoryview(payload))

    def send_header(self, header: dict[str, Any]) -> None:
        """Send a header whose payload the caller sends next (``send_file``/``send_bytes``)."""
        self._sendall(encode_frame(header))

    def send_bytes(self, data: bytes | memoryview) -> None:
        self._send_limited(memoryview(data))

    def send_file(self, f: BinaryIO, offset: int, count: int,
                  on_chunk: Callable[[int], object] | None = None) -> int:
        """Send ``count`` bytes of ``f`` from ``offset``; return how many were sent.

        Uses ``socket.sendfile`` (zero-copy) in large slices, falling back to read+send
        where the OS or TLS cannot. Fewer bytes than ``count`` means the file shrank.
        """
        if self._held:
            self.flush()  # what was held goes first: the stream stays in order
        sent = 0
        limiter = self.limiter
        # with a progress callback, slices of CHUNK/2 keep a bar's speed and ETA alive
        # on slow links; without one, one sendfile call moves the whole range
        step = limiter.chunk() if limiter else (CHUNK // 2 if on_chunk else count or 1)
        while sent < count:
            want = min(step, count - sent)
            try:
                n = self.sock.sendfile(f, offset + sent, want)
            except socket.timeout as exc:
                raise TransportError("timed out sending to the peer") from exc
            except OSError as exc:
                raise TransportError(f"connection lost: {exc.strerror or exc}") from exc
            if n == 0:
                break
            sent += n
            self.bytes_out += n
            if on_chunk:
                on_chunk(n)
            if limiter:
                limiter.consume(n)
        return sent

    def _send_limited(self, view: memoryview) -> None:
        limiter = self.limiter
        if not limiter:
            self._sendall(view)
            return
        if self._held:
            self.flush()  # nothing is held across the limiter's sleeps
        step = limiter.chunk()
        for start in range(0, len(view), step):
            piece = view[start:start + step]
            self._write(piece)
            limiter.consume(len(piece))

    def hold_small_writes(self) -> None:
        """From now on keep small frames and write them together, just before this side
        next reads from the socket (or sends something large, or closes).

        For the server: the replies to requests a client pipelined then leave in one
        write instead of one each. A write on loopback TCP also carries the whole
        delivery to the reader and its wake-up, ~20-80 us a call on 2 cores: for a
        folder of small files that was a third of the server's time per file. Nothing
        waits for a held frame longer than the requests already read take to answer:
        before any blocking read the held frames are written.
        """
        if self._held is None:
            self._held = []

    def flush(self) -> None:
        """Write the held frames (see :meth:`hold_small_writes`) in one go."""
        held = self._held
        if held:
            data = held[0] if len(held) == 1 else b"".join(held)
            held.clear()
            self._held_size = 0
            self._write(data)

    def _sendall(self, data: bytes | memoryview) -> None:
        held = self._held
        if held is not None:
            if len(data) <= SMALL_WRITE:
                held.append(data if type(data) is bytes else bytes(data))
                self._held_size += len(data)
                if self._held_size >= HOLD_LIMIT:
                    self.flush()
                return
            if held:
                self.flush()
        self._write(data)

    def _write(self, data: bytes | memoryview) -> None:
        self.writes += 1
        try:
            if self._direct and len(data) <= SMALL_WRITE:
                # a small frame nearly always fits the socket's send buffer: one write.
                # sock.sendall with a timeout polls before every send, a system call
                # per frame; the poll is kept for what does not fit at once. fileno()
                # is read now, as socket methods do: -1 once closed (EBADF), never a
                # number some other file has taken over since
                try:
                    n = os.write(self.sock.fileno(), data)
                except BlockingIOError:
                    n = 0
                if n == len(data):
                    self.bytes_out += n
                    return
                data = memoryview(data)[n:]
                self.bytes_out += n
            self.sock.sendall(data)
        except socket.timeout as exc:
            raise TransportError("timed out sending to the peer") from exc
        except OSError as exc:
            raise TransportError(f"connection lost: {exc.strerror or exc}") from exc
        self.bytes_out += len(data)

    # ------------------------------------------------------------------ misc
    def _settimeout(self, timeout: float | None) -> None:
        if self.sock.gettimeout() == timeout:
            return  # settimeout is a syscall, and every header read asks for one
        try:
            self.sock.settimeout(timeout)
        except OSError as exc:
            raise TransportError("connection closed") from exc

    def close(self) -> None:
        try:
            self.flush()  # best effort: a closing error reply is worth a last try
        except TransportError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass


def _left(deadline: float | None, idle: float | None) -> float | None:
    if deadline is None:
        return idle
    return max(0.001, deadline - time.monotonic())
