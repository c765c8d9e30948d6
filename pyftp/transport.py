"""The blocking socket shell around :mod:`pyftp.protocol`, shared by client and server.

:class:`Channel` owns one connected socket and one :class:`~pyftp.protocol.FrameDecoder`.
It reads whole headers (with an idle timeout and a deadline for a started frame, so a
slow-drip peer cannot hold a thread forever), moves payload bytes straight between the
socket and a sink through one reused buffer (``recv_into``), and sends files with
``socket.sendfile`` (zero-copy where the OS allows). Socket failures leave here as
:class:`~pyftp.errors.TransportError`.

Verification is SHA-256 of every byte on both ends, so it is also where the hashing is
overlapped with the I/O: a receiver hands filled buffers to a hashing thread
(:class:`_HashRing`), a sender hashes the file with :class:`FileHasher` while
``sendfile`` sends it. Payload buffers are pooled (:data:`_POOL`).

Why a module of its own: ARCHITECTURE.md has the client and the server own their
sockets; both need exactly the same framing loop, and writing it twice is how the two
ends drift out of step. This layer sits between protocol and client/server: it imports
protocol and errors, and neither client nor server is imported here.
"""
from __future__ import annotations

import os
import queue
import socket
import threading
import time
from typing import BinaryIO, Callable, Protocol

from .errors import ProtocolError, TransportError
from .protocol import NEED_DATA, FrameDecoder, Header, encode_frame

__all__ = ["Channel", "RateLimiter", "FileHasher", "CHUNK", "OVERLAP_MIN"]

#: payload buffer size; 1 MiB measured about twice as fast as 64 KiB on loopback
CHUNK = 1 << 20
#: payloads at least this long are hashed on a second thread while the bytes move.
#: Below it the thread costs more than it saves (SHA-256 of 2 MiB takes ~1.5 ms).
OVERLAP_MIN = 2 * CHUNK
#: buffers in the ring between the receiving thread and the hashing thread: enough to
#: ride out a scheduling hiccup of either side, few enough to stay in the L3 cache
RING = 4
#: how much one recv may pull in while waiting for a header (pipelined requests)
HEADER_READ = 64 * 1024
#: frames up to this size are written with one os.write before falling back to sendall
SMALL_WRITE = 64 * 1024
#: transfers that may hash on a second thread at once, process-wide. A second thread
#: only helps while a core is idle: with 50 transfers at once on 2 cores the extra
#: threads cost 25% of the aggregate (measured), so the others hash in their own thread
_OVERLAP_SLOTS = threading.BoundedSemaphore(max(1, (os.cpu_count() or 2) - 1))


class Hasher(Protocol):
    """What the overlapped paths need of a hash object (``hashlib.sha256()`` fits)."""

    def update(self, data: bytes | memoryview, /) -> None: ...


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
        self._send_lock = threading.Lock()
        # plain TCP only: a TLS socket's bytes must go through its SSL object
        self._direct = type(sock) is socket.socket

    # ------------------------------------------------------------------ receiving
    def _recv(self, n: int) -> bytes:
        try:
            data = self.sock.recv(n)
        except socket.timeout as exc:
            raise TransportError("timed out waiting for the peer") from exc
        except OSError as exc:
            raise TransportError(f"connection lost: {exc.strerror or exc}") from exc
        self.bytes_in += len(data)
        return data

    def recv_header(self, idle_timeout: float | None = None,
                    frame_timeout: float | None = None) -> dict | None:
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
        parts: list[bytes] = []
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
        ring of buffers, so SHA-256 (which releases the GIL on large buffers) runs on
        one core while this thread receives and writes on the other; in series the
        three would cost their sum. Only cores - 1 transfers per process do that at
        once (with every core busy a second thread only adds switching); the others
        hash each buffer here. ``hasher`` is done with every byte on return.
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
                and _OVERLAP_SLOTS.acquire(blocking=False)):
            try:
                with _HashRing(hasher, self._buffer_size) as ring:
                    return total + self._recv_loop(sink, on_chunk, False, ring.take, ring.hash)
            finally:
                _OVERLAP_SLOTS.release()
        if self._rbuf is None:
            self._rbuf = bytearray(self._buffer_size)
        rbuf = self._rbuf
        after = None
        if hasher is not None:
            def after(_buf: bytearray, n: int) -> None:
                hasher.update(memoryview(rbuf)[:n])
        return total + self._recv_loop(sink, on_chunk, copy, lambda: rbuf, after)

    def _recv_loop(self, sink: Callable[[memoryview | bytes], object],
                   on_chunk: Callable[[int], object] | None, copy: bool,
                   take: Callable[[], bytearray],
                   after: Callable[[bytearray, int], object] | None) -> int:
        """recv_into buffers from ``take()`` until the payload is in; ``after(buf, n)``
        gets each filled buffer once ``sink`` has seen it."""
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
    def send(self, header: dict, payload: bytes = b"") -> None:
        """Send one frame. ``header["size"]`` is set from the payload when it has one."""
        if payload:
            header = {**header, "size": len(payload)}
        frame = encode_frame(header)
        with self._send_lock:
            self._sendall(frame + payload if len(payload) <= 65536 else frame)
            if len(payload) > 65536:
                self._send_limited(memoryview(payload))

    def send_header(self, header: dict) -> None:
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
        step = limiter.chunk()
        for start in range(0, len(view), step):
            piece = view[start:start + step]
            self._sendall(piece)
            limiter.consume(len(piece))

    def _sendall(self, data: bytes | memoryview) -> None:
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
            self.sock.close()
        except OSError:
            pass


def _left(deadline: float | None, idle: float | None) -> float | None:
    if deadline is None:
        return idle
    return max(0.001, deadline - time.monotonic())


class _BufferPool:
    """Payload buffers kept for the next transfer instead of freed.

    A fresh 1 MiB buffer is memory the process has not touched yet, and touching it
    page by page is not free: on a 2-core VM it measured ~0.75 ms per MiB, as much as
    moving that MiB. The ring (4 buffers) and the sending hasher take theirs from here
    and give them back; at most ``keep`` are kept, so a burst of transfers at once
    does not pin its peak memory for good.
    """

    def __init__(self, size: int, keep: int) -> None:
        self.size, self.keep = size, keep
        self._free: list[bytearray] = []
        self._lock = threading.Lock()

    def take(self, size: int) -> bytearray:
        if size == self.size:
            with self._lock:
                if self._free:
                    return self._free.pop()
        return bytearray(size)

    def give(self, buf: bytearray) -> None:
        if len(buf) == self.size:
            with self._lock:
                if len(self._free) < self.keep:
                    self._free.append(buf)


_POOL = _BufferPool(CHUNK, 4 * RING)


class _HashRing:
    """Buffers that go round between the receiving thread and one hashing thread.

    The receiver ``take()``s a free buffer, fills it, lets the sink write it, and hands
    it on with ``hash(buf, n)``; the hashing thread updates the hash and frees the
    buffer. Buffers are hashed in the order they were filled, and the receiver waits
    when all of them are queued, so memory stays at ``RING`` buffers. Leaving the
    ``with`` block always stops and joins the thread; an error inside the thread is
    raised there.
    """

    def __init__(self, hasher: Hasher, size: int) -> None:
        self._hasher = hasher
        self._free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
        self._full: queue.SimpleQueue[tuple[bytearray, int] | None] = queue.SimpleQueue()
        self._bufs = [_POOL.take(size) for _ in range(RING)]
        for buf in self._bufs:
            self._free.put(buf)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="pyftp-hash", daemon=True)

    def __enter__(self) -> "_HashRing":
        self._thread.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._full.put(None)
        self._thread.join()
        for buf in self._bufs:
            _POOL.give(buf)
        if self._error is not None and exc is None:
            raise self._error

    def take(self) -> bytearray:
        buf = self._free.get()
        if self._error is not None:
            raise self._error
        return buf

    def hash(self, buf: bytearray, n: int) -> None:
        self._full.put((buf, n))

    def _work(self) -> None:
        update = self._hasher.update
        while True:
            item = self._full.get()
            if item is None:
                return
            buf, n = item
            try:
                if self._error is None:
                    update(memoryview(buf)[:n])
            except BaseException as exc:  # handed to the receiving thread
                self._error = exc
            finally:
                self._free.put(buf)  # always: the receiver must never wait forever


class FileHasher:
    """Hash bytes ``[start, stop)`` of an open file on a second thread.

    Used while the same bytes leave through ``sendfile``: the kernel copies to the
    socket on one core while SHA-256 runs on the other, instead of one after the
    other. It reads with ``pread`` (its own position), so the sender's offsets are
    untouched. ``result()`` joins and returns the hash object; ``cancel()`` stops early
    (a failed transfer must not keep reading a large file) and joins too. Like the
    receiving ring it takes one of the cores - 1 slots; with none free it hashes in the
    caller's thread when ``result()`` is called (the same work, no extra switching).
    """

    def __init__(self, fd: int, hasher: Hasher, start: int, stop: int) -> None:
        self._fd, self._hasher = fd, hasher
        self._start, self._stop = start, stop
        self._cancelled = False
        self._done = False
        self._error: OSError | None = None
        self.hashed = 0
        self._thread: threading.Thread | None = None
        if _OVERLAP_SLOTS.acquire(blocking=False):
            self._thread = threading.Thread(target=self._threaded, name="pyftp-hash",
                                            daemon=True)
            try:
                self._thread.start()
            except BaseException:
                _OVERLAP_SLOTS.release()
                raise

    def _threaded(self) -> None:
        try:
            self._work()
        finally:
            _OVERLAP_SLOTS.release()

    def _work(self) -> None:
        buf = _POOL.take(CHUNK)
        view = memoryview(buf)
        pos, stop = self._start, self._stop
        update = self._hasher.update
        try:
            while pos < stop and not self._cancelled:
                n = pread_into(self._fd, view[:min(CHUNK, stop - pos)], pos)
                if not n:
                    break  # the file shrank: the caller sees it from the short count
                update(view[:n])
                pos += n
        except OSError as exc:
            self._error = exc
        finally:
            view.release()
            _POOL.give(buf)
        self.hashed = pos - self._start

    def result(self) -> Hasher:
        """Wait for the hash; raise the OSError a read met. Check :attr:`hashed`."""
        if self._thread is not None:
            self._thread.join()
        elif not self._done:
            self._done = True
            self._work()
        if self._error is not None:
            raise self._error
        return self._hasher

    def cancel(self) -> None:
        self._cancelled = True
        if self._thread is not None:
            self._thread.join()


def pread_into(fd: int, view: memoryview, pos: int) -> int:
    """Read into ``view`` from ``pos`` of ``fd`` without moving its file position (so a
    concurrent ``sendfile`` of the same file is unaffected); return the bytes read."""
    if hasattr(os, "preadv"):
        return os.preadv(fd, [view], pos)
    data = os.pread(fd, len(view), pos)
    view[:len(data)] = data
    return len(data)
