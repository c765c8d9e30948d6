"""The one home of content digests: algorithms, the hashing loop, the overlapped hashers
and the payload buffer pool.

Every byte of a transfer is hashed on both ends, so this is where that work is made
cheap: :class:`HashRing` hashes received buffers on a second thread while the receiver
writes them, :class:`FileHasher` hashes a file with ``pread`` while ``sendfile`` sends
it, and :data:`POOL` keeps the 1 MiB buffers warm between transfers. Every other module
asks here for a digest object (:func:`new`) or a file's digest (:func:`hash_file`,
:func:`hash_fd`); none imports ``hashlib`` for file content.

Two algorithms exist: ``sha256`` (protocol version 1, always available) and ``blake3``
(the ``blake3`` package: Rust, SIMD, releases the GIL; 3-4 x faster per core). A build
without the ``blake3`` package falls back to SHA-256 alone: :data:`ALGORITHMS` says
which this build has, in order of preference.

Import rule: the standard library (and the optional ``blake3`` package) only. No
sockets, no pyftp modules.
"""
from __future__ import annotations

import os
import threading
from types import ModuleType, TracebackType

from .hints import TYPE_CHECKING, LEAN, Protocol

if TYPE_CHECKING or not LEAN:  # names for annotations; see pyftp.hints
    from typing import Callable, Iterable

__all__ = [
    "ALGORITHMS", "KNOWN", "DEFAULT", "pick", "label", "CHUNK", "OVERLAP_MIN", "Hasher",
    "new", "hash_bytes",
    "hash_fd", "hash_file", "hash_into", "BufferPool", "POOL", "HashRing", "FileHasher",
    "pread_into", "OVERLAP_SLOTS", "Digest",
]

_blake3: ModuleType | None
try:
    import blake3 as _blake3
except ImportError:  # a build without it still speaks version 1 (SHA-256)
    _blake3 = None

#: every algorithm the protocol knows, by wire name
KNOWN = ("blake3", "sha256")
#: the digests this build can compute, by wire name, in order of preference
ALGORITHMS: tuple[str, ...] = ("blake3", "sha256") if _blake3 is not None else ("sha256",)
#: the algorithm of protocol version 1
DEFAULT = "sha256"
#: payload buffer size; 1 MiB measured about twice as fast as 64 KiB on loopback
CHUNK = 1 << 20
#: payloads at least this long are hashed on a second thread while the bytes move.
#: Below it the thread costs more than it saves (SHA-256 of 2 MiB takes ~1.5 ms).
OVERLAP_MIN = 2 * CHUNK
#: buffers in the ring between the receiving thread and the hashing thread: enough to
#: ride out a scheduling hiccup of either side, few enough to stay in the L3 cache
RING = 4
#: transfers that may hash on a second thread at once, process-wide. A second thread
#: only helps while a core is idle: with 50 transfers at once on 2 cores the extra
#: threads cost 25% of the aggregate (measured), so the others hash in their own thread
OVERLAP_SLOTS = threading.BoundedSemaphore(max(1, (os.cpu_count() or 2) - 1))
#: digests fast enough that, with no core to spare, a second thread costs more than
#: it saves: BLAKE3 hashes a MiB in ~0.2 ms, about what handing the buffer to another
#: thread and back costs (futex wake-ups, the buffer's cache lines moving between
#: cores). Measured on 2 cores, 1 GiB over loopback into a file: BLAKE3 in the
#: receiving thread 1,535 MiB/s, on a second thread 1,103; SHA-256 (0.7 ms a MiB) the
#: other way round, 928 vs 1,220
INLINE_DIGESTS = frozenset({"blake3"})
#: machines of at most this many cores hash :data:`INLINE_DIGESTS` in the receiving
#: thread: a transfer's two ends and its hash already want more cores than that. With
#: more, a free core hashes beside the receiver (not measured here: the two-core rule
#: is only applied where it was measured)
INLINE_CORES = 2


class Hasher(Protocol):
    """What the overlapped paths need of a hash object (what :func:`new` returns fits)."""

    def update(self, data: bytes | memoryview, /) -> None: ...


class Digest(Hasher, Protocol):
    """A digest object as :func:`new` returns it: hashlib's and blake3's both fit."""

    def hexdigest(self) -> str: ...

    def copy(self) -> Digest: ...


def new(algorithm: str = DEFAULT, data: bytes = b"") -> Digest:
    """A fresh digest object (``update``, ``hexdigest``, ``copy``) of ``algorithm``
    (64 hex digits for both); ValueError for one this build cannot compute."""
    if algorithm == "sha256":
        import hashlib  # here, not at the top: a BLAKE3 session never loads OpenSSL
        return hashlib.sha256(data)
    if algorithm == "blake3" and _blake3 is not None:
        blake: Digest = _blake3.blake3(data)  # the package ships no type hints
        return blake
    raise ValueError(f"unknown digest {algorithm!r}; this build has: {', '.join(ALGORITHMS)}")


def pick(offered: Iterable[object], available: Iterable[str] = ALGORITHMS) -> str | None:
    """The first of ``offered`` (a peer's list, in its order of preference) that is
    ``available``; None when they have none in common."""
    have = set(available)
    for name in offered:
        if isinstance(name, str) and name in have:
            return name
    return None


def label(algorithm: str) -> str:
    """An algorithm's name for people: ``SHA-256``, ``BLAKE3``."""
    return {"sha256": "SHA-256", "blake3": "BLAKE3"}.get(algorithm, algorithm)


def hash_bytes(data: bytes | memoryview, algorithm: str = DEFAULT) -> str:
    """The hex digest of ``data``."""
    return new(algorithm, bytes(data) if isinstance(data, memoryview) else data).hexdigest()


def hash_into(h: Hasher, fd: int, start: int = 0, stop: int | None = None,
              stopped: Callable[[], bool] | None = None) -> int:
    """Feed bytes ``[start, stop)`` of ``fd`` (to its end when ``stop`` is None) to ``h``
    with ``pread``, so the fd's position is untouched; return the bytes hashed (fewer
    than asked if the file is shorter, or once ``stopped()`` says so, asked before each
    1 MiB). The one hashing loop of the project."""
    buf = POOL.take(CHUNK)
    view = memoryview(buf)
    pos = start
    try:
        while (stop is None or pos < stop) and not (stopped and stopped()):
            want = CHUNK if stop is None else min(CHUNK, stop - pos)
            n = pread_into(fd, view[:want], pos)
            if not n:
                break
            h.update(view[:n])
            pos += n
    finally:
        view.release()
        POOL.give(buf)
    return pos - start


def hash_fd(fd: int, *, limit: int | None = None, algorithm: str = DEFAULT) -> str:
    """The hex digest of an open file's first ``limit`` bytes (all of it when None)."""
    h = new(algorithm)
    hash_into(h, fd, 0, limit)
    return h.hexdigest()


def hash_file(path: str, *, limit: int | None = None, algorithm: str = DEFAULT) -> str:
    """The hex digest of a file (or of its first ``limit`` bytes)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        return hash_fd(fd, limit=limit, algorithm=algorithm)
    finally:
        os.close(fd)


class BufferPool:
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


POOL = BufferPool(CHUNK, 4 * RING)


class HashRing:
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
        import queue  # only transfers of OVERLAP_MIN bytes and more come here
        self._free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
        self._full: queue.SimpleQueue[tuple[bytearray, int] | None] = queue.SimpleQueue()
        self._bufs = [POOL.take(size) for _ in range(RING)]
        for buf in self._bufs:
            self._free.put(buf)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="pyftp-hash", daemon=True)

    def __enter__(self) -> "HashRing":
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._full.put(None)
        self._thread.join()
        for buf in self._bufs:
            POOL.give(buf)
        if self._error is not None and exc is None:
            raise self._error

    @staticmethod
    def pays(hasher: Hasher, cores: int | None = None) -> bool:
        """Whether hashing ``hasher``'s bytes on a second thread beats hashing each
        buffer in the receiving thread on a machine of ``cores`` cores (this one's by
        default): not for :data:`INLINE_DIGESTS` on up to :data:`INLINE_CORES` cores.
        A hash object that does not say its ``name`` is taken to be slow."""
        if cores is None:
            cores = os.cpu_count() or 2
        if cores > INLINE_CORES:
            return True
        return getattr(hasher, "name", None) not in INLINE_DIGESTS

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
        self._slot_lock, self._slot = threading.Lock(), False
        if OVERLAP_SLOTS.acquire(blocking=False):
            self._slot = True
            self._thread = threading.Thread(target=self._threaded, name="pyftp-hash",
                                            daemon=True)
            try:
                self._thread.start()
            except BaseException:
                # start() may fail before the thread runs, or be interrupted (Ctrl-C)
                # while it waits for the thread to begin: either way the slot goes back
                # once, whoever gets there first, and a started thread stops early
                self._cancelled = True
                self._release_slot()
                raise

    def _release_slot(self) -> None:
        with self._slot_lock:
            if self._slot:
                self._slot = False
                OVERLAP_SLOTS.release()

    def _threaded(self) -> None:
        try:
            self._work()
        finally:
            self._release_slot()

    def _work(self) -> None:
        # a file that shrank ends the loop early: the caller sees it from the count
        try:
            self.hashed = hash_into(self._hasher, self._fd, self._start, self._stop,
                                    lambda: self._cancelled)
        except OSError as exc:
            self._error = exc

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
