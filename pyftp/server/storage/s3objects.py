"""Objects as the S3 backend reads them: metadata keys, the stat of an object, what a
failed store call means to a client, and the reader streaming an object by ranged GETs.

Import rule: errors, digests, botocore. Never transport (no sockets here).
"""
from __future__ import annotations

import io
import os
import stat as stat_
import threading
from collections import OrderedDict
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ... import digests
from ...errors import (BusyError, InternalError, NotFoundError, PermissionDeniedError,
                       RemoteError, TooLargeError)

__all__ = ["MTIME_KEY", "MISSING", "digest_key", "recorded", "code_of", "store_error",
           "make_stat", "ObjectReader", "RangeTap", "S3Client", "Answer", "SeenObjects"]

#: a boto3 S3 client: boto3 is untyped, so this is the one place ``Any`` stands for it
S3Client = Any
#: what a boto3 call answers (a JSON-like dict of the store's reply)
Answer = dict[str, Any]

MTIME_KEY = "pyftp-mtime-ns"
MISSING = {"404", "NoSuchKey", "NotFound", "NoSuchUpload"}


def store_error(exc: Exception, vpath: str) -> RemoteError:
    """The pyftp error for a failed store call, naming the virtual path only."""
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in MISSING:
            return NotFoundError(f"not found: {vpath}")
        if code in ("AccessDenied", "403"):
            return PermissionDeniedError(f"permission denied by the object store: {vpath}")
        if code in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
            return BusyError(f"busy: {vpath} changed meanwhile; try again")
        if code in ("EntityTooLarge", "QuotaExceeded"):
            return TooLargeError(f"file too large for the object store: {vpath}")
        return InternalError(f"the object store refused ({code}) on {vpath}; try again")
    return InternalError(f"cannot reach the object store ({type(exc).__name__}) for "
                         f"{vpath}; try again later")


def digest_key(algorithm: str) -> str:
    """The metadata key holding a file's digest in ``algorithm``."""
    return "pyftp-" + algorithm


def recorded(meta: dict[str, str]) -> dict[str, str]:
    """{algorithm: digest} of the digests an object's metadata holds."""
    found = {}
    for name in digests.KNOWN:
        value = meta.get(digest_key(name))
        if isinstance(value, str) and len(value) == 64:
            found[name] = value
    return found


def code_of(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def make_stat(size: int, mtime_ns: int, ident: int, *, folder: bool = False) -> os.stat_result:
    """A stat result for an object: the digest cache keys on (dev, ino, size, mtime,
    ctime), so ``ident`` (from key and ETag) changes whenever the object does."""
    mode = (stat_.S_IFDIR | 0o755) if folder else (stat_.S_IFREG | 0o644)
    sec = mtime_ns // 1_000_000_000
    return os.stat_result((mode, ident, 0x53_33, 1, 0, 0, size, sec, sec, sec),
                          {"st_atime_ns": mtime_ns, "st_mtime_ns": mtime_ns,
                           "st_ctime_ns": mtime_ns})


class SeenObjects:
    """What this server has seen of objects, so listings need no HEAD for them again:
    digests and mtime by key and ETag (a changed object has another ETag), and folder
    times by marker key. Bounded; thread-safe."""

    SIZE = 8192

    def __init__(self) -> None:
        self._files: OrderedDict[tuple[str, str], tuple[dict[str, str], int]] = OrderedDict()
        self._folders: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, key: str, etag: str, known: dict[str, str], mtime_ns: int) -> None:
        with self._lock:
            self._files[(key, etag)] = (known, mtime_ns)
            while len(self._files) > self.SIZE:
                self._files.popitem(last=False)

    def get(self, key: str, etag: str) -> tuple[dict[str, str], int] | None:
        with self._lock:
            return self._files.get((key, etag))

    def folder(self, marker: str) -> int | None:
        with self._lock:
            return self._folders.get(marker)

    def put_folder(self, marker: str, mtime_ns: int) -> None:
        with self._lock:
            self._folders[marker] = mtime_ns
            while len(self._folders) > self.SIZE:
                self._folders.popitem(last=False)

    def forget_folder(self, marker: str) -> None:
        with self._lock:
            self._folders.pop(marker, None)


class ObjectReader(io.RawIOBase):
    """A large object read by ranged GETs from wherever ``seek`` put it.

    Every GET carries ``If-Match: ETAG``: if the object is replaced mid-read the read
    fails instead of mixing two versions. No ``fileno``: ``socket.sendfile`` falls
    back to ``read``. A :meth:`tap` bounds the reads to a range and hashes them as they
    pass, so a ranged get costs one ranged GET of exactly its bytes.
    """

    def __init__(self, s3: S3Client, bucket: str, key: str, etag: str, size: int,
                 vpath: str) -> None:
        super().__init__()
        self.s3, self.bucket, self.key, self.etag = s3, bucket, key, etag
        self.size, self.vpath = size, vpath
        self.pos = 0
        self.end = size
        self._body: Any = None  # botocore's StreamingBody (untyped)
        self._body_pos = -1
        self._tap: RangeTap | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, pos: int, whence: int = 0) -> int:
        self.pos = pos if whence == 0 else (self.pos + pos if whence == 1 else self.size + pos)
        return self.pos

    def tell(self) -> int:
        return self.pos

    def _stream(self, start: int, end: int | None = None) -> Any:
        """The body of one GET of ``[start, end)`` (to the end of the object)."""
        last = "" if end is None else str(end - 1)
        try:
            r = self.s3.get_object(Bucket=self.bucket, Key=self.key, IfMatch=self.etag,
                                   Range=f"bytes={start}-{last}")
        except (ClientError, BotoCoreError) as exc:
            raise store_error(exc, self.vpath) from exc
        return r["Body"]

    def read(self, n: int = -1) -> bytes:
        if self.pos >= self.end:
            return b""
        if self._body is None or self._body_pos != self.pos:
            self._close_body()
            end = self.end if self.end < self.size else None
            self._body, self._body_pos = self._stream(self.pos, end), self.pos
        left = self.end - self.pos
        want = left if n is None or n < 0 else min(n, left)
        try:
            data: bytes = self._body.read(want)
        except (BotoCoreError, OSError) as exc:
            raise store_error(exc, self.vpath) from exc
        if self._tap is not None:
            self._tap.feed(self.pos, data)
        self.pos += len(data)
        self._body_pos = self.pos
        return data

    def read_range(self, offset: int, count: int) -> bytes:
        """``count`` bytes from ``offset`` by one ranged GET (short if the object is)."""
        if count <= 0:
            return b""
        body = self._stream(offset, offset + count)
        try:
            data: bytes = body.read(count)
            return data
        except (BotoCoreError, OSError) as exc:
            raise store_error(exc, self.vpath) from exc
        finally:
            body.close()

    def tap(self, h: Any, start: int, stop: int) -> "RangeTap":
        """Bound the reads to ``[start, stop)`` and feed them to ``h`` as they pass."""
        self._close_body()
        self.end = stop
        self._tap = RangeTap(self, h, start)
        return self._tap

    def hash_whole(self, h: Any) -> None:
        """Feed the whole object to ``h`` through its own GET (``read`` may be in use
        on another thread)."""
        body = self._stream(0)
        try:
            for chunk in body.iter_chunks(1 << 20):
                h.update(chunk)
        finally:
            body.close()

    def _close_body(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None

    def close(self) -> None:
        self._close_body()
        super().close()


class RangeTap:
    """The digest of a range, fed by the reads that send it (the handlers use it like
    :class:`pyftp.digests.FileHasher`: ``result``, ``cancel``, ``hashed``). A read out
    of order stops the feed, so ``hashed`` falls short and the get fails."""

    def __init__(self, reader: ObjectReader, h: Any, start: int) -> None:
        self.reader, self.h, self.next, self.hashed = reader, h, start, 0
        self.broken = False

    def feed(self, pos: int, data: bytes) -> None:
        if self.broken or pos != self.next:
            self.broken = True
            return
        self.h.update(data)
        self.next += len(data)
        self.hashed += len(data)

    def result(self) -> Any:
        return self.h

    def cancel(self) -> None:
        self.reader._tap = None
