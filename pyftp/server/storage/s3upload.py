"""Uploads into an object store: nothing is visible until it is complete and verified.

A put smaller than one part is held in memory, hashed, and published by one PutObject
(create-only with ``If-None-Match: *`` unless overwriting). A larger put streams into a
multipart upload at the hidden key ``dir/.NAME.pyftp-part``, hashed as it passes; its
claim is the sidecar object ``dir/.NAME.pyftp-part.json`` (total, expected digest and
its algorithm, token, upload id, lease), created create-only and renewed by compare-and-swap (``If-Match``) after
every part, so two servers never extend one upload. Publishing completes the upload at
the hidden key, copies it to the name with the digest (under the key of the upload's
algorithm, ``pyftp-sha256`` or ``pyftp-blake3``) and mtime as metadata (one atomic
step: the name shows the old object or the new one, whole) and deletes the hidden
object and the sidecar.

Resume on any server: the sidecar names the upload; the kept length is the parts stored
contiguously from part 1. Parts of an unfinished upload cannot be read back, so the
resuming server completes the kept parts at the hidden key, reads them once to hash
them, and starts a new upload whose first parts are copies of those ranges: the
published object is still hashed end to end by the server that publishes it.

Import rule: errors, protocol, digests, boto3 (through :mod:`.s3`). Never transport.
"""
from __future__ import annotations

import concurrent.futures
import json
import secrets
import time
import uuid
from typing import Any, Callable, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from ... import digests
from ...errors import AlreadyExistsError, BusyError, IsDirectoryError, RemoteError, TooLargeError
from ...protocol import is_partial_name, mtime_ns, partial_name
from .base import check_token
from .s3 import S3Storage
from .s3objects import MTIME_KEY, Answer, code_of, digest_key, store_error
from .uploads import Claim, Record, UploadBytes, owns, record

_R = TypeVar("_R")

__all__ = ["begin_upload", "clean_partials", "abort_uploads_at", "move_file", "S3Upload",
           "PART_SIZE", "LEASE"]

#: bytes per part of a multipart upload (S3's minimum is 5 MiB but for the last)
PART_SIZE = 8 << 20
#: parts in flight to the store at once, per upload (memory: this many x PART_SIZE)
PARTS_IN_FLIGHT = 3
#: a claim not renewed for this long may be taken by another server's new put
LEASE = 30.0
_SERVER_ID = uuid.uuid4().hex[:12]
_COPY_MAX = 5 << 30


def _bare(etag: str) -> str:
    return etag.strip('"')  # Ceph 16 matches If-Match only without the quotes


def _taken(exc: ClientError) -> bool:
    return code_of(exc) in ("PreconditionFailed", "412", "ConditionalRequestConflict")


def begin_upload(store: S3Storage, cwd: str, path: str, total: int,
                 sha256: str | None = None, *, overwrite: bool = False, resume: bool = True,
                 mtime: float | None = None, owner: Callable[[], object] | None = None,
                 trailer: bool = False, token: str | None = None,
                 algorithm: str = "sha256") -> "S3Upload":
    """Check everything a put needs before any payload, claim the name, return the
    upload (same contract as :meth:`.local.Storage.begin_upload`)."""
    check_token(token)
    vpath, parts = store.parts(cwd, path)
    try:
        store._writable(vpath)
        if not parts:
            raise IsDirectoryError("is a directory: /")
        if store.max_file_size is not None and total > store.max_file_size:
            raise TooLargeError(f"too large: {vpath} is {total} bytes; this server "
                                f"accepts files up to {store.max_file_size} bytes")
        store._need_folder(parts[:-1], "/" + "/".join(parts[:-1]))
        # quick: a folder pyftp made has a marker; one only implied by other tools' keys
        # is not looked for here (a listing costs ~45 ms per put on Ceph 16)
        kind, _h = store.kind(parts, quick=True)
        if kind == "dir":
            raise IsDirectoryError(f"is a directory: {vpath}")
        if kind == "file" and not overwrite:
            raise AlreadyExistsError(f"already exists: {vpath} (use overwrite to replace it)")
        hidden = store.dir_prefix(parts[:-1]) + partial_name(parts[-1])
        key = (store.bucket, hidden)
        claim = Claim(total, sha256, token, owner, algorithm=algorithm)
        store.claims.take(key, claim, vpath)
    except (ClientError, BotoCoreError) as exc:
        raise store_error(exc, vpath) from exc
    up = S3Upload(store, vpath, store.key(parts), hidden, total, sha256, overwrite=overwrite,
                  mtime=mtime, trailer=trailer, token=token, algorithm=algorithm)
    claim.upload = up
    try:
        up.open(resume and (sha256 is not None or trailer))
    except (ClientError, BotoCoreError) as exc:
        up.release()
        raise store_error(exc, vpath) from exc
    except BaseException:
        up.release()
        raise
    return up


class S3Upload(UploadBytes):
    """One put in progress into the store; the handlers drive it like a local upload."""

    def __init__(self, store: S3Storage, vpath: str, target: str, hidden: str, total: int,
                 sha256: str | None, *, overwrite: bool, mtime: float | None,
                 trailer: bool, token: str | None, algorithm: str = "sha256") -> None:
        self.store, self.s3, self.bucket = store, store.s3, store.bucket
        self.vpath, self.target, self.hidden = vpath, target, hidden
        self.side = hidden + ".json"
        self.total, self.expected, self.algorithm = total, sha256, algorithm
        self.overwrite, self.mtime, self.trailer = overwrite, mtime, trailer
        self.token = secrets.token_urlsafe(24)
        self._asked_token = token
        self.prefix_sha256: str | None = None
        self.offset = self.received = 0
        self._hash = digests.new(algorithm)
        self._buf = bytearray()
        self._parts: list[Answer] = []
        self._pending: list[tuple[int, concurrent.futures.Future[Answer]]] = []
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self.upload_id: str | None = None
        self._side_etag: str | None = None
        self.small = total < PART_SIZE
        self._released = False
        self.claim_key = (store.bucket, hidden)

    # ------------------------------------------------------------------ claim
    def _read_side(self) -> tuple[Record, str] | None:
        try:
            r = self.s3.get_object(Bucket=self.bucket, Key=self.side)
            meta = json.loads(r["Body"].read(65536))
        except ClientError as exc:
            if code_of(exc) in ("NoSuchKey", "404"):
                return None
            raise
        except ValueError:
            return {}, ""
        return (meta if isinstance(meta, dict) else {}), r["ETag"]

    def _write_side(self, *, lease: float | None = None, fresh: bool = False) -> None:
        """Write the sidecar create-only (``fresh``) or as a compare-and-swap of the one
        this upload last wrote; raise ``busy`` if another server got there first."""
        body = json.dumps({**record(self), "upload_id": self.upload_id, "server": _SERVER_ID,
                           "lease": time.time() + LEASE if lease is None else lease})
        cond = {"IfNoneMatch": "*"} if fresh or not self._side_etag \
            else {"IfMatch": _bare(self._side_etag)}
        try:
            r = self.s3.put_object(Bucket=self.bucket, Key=self.side, Body=body.encode(),
                                   **cond)
        except ClientError as exc:
            if _taken(exc):
                raise BusyError(f"busy: another upload to {self.vpath} is in progress "
                                "(on this or another server); try again later") from None
            raise
        self._side_etag = r["ETag"]

    # ------------------------------------------------------------------ start
    def open(self, resume: bool) -> None:
        if self.small:
            return  # held in memory, published by one PutObject: nothing to claim
        found = self._read_side()
        if found is not None:
            meta, etag = found
            self._side_etag = etag
            if resume and owns(self, meta) and isinstance(meta.get("upload_id"), str):
                if self._asked_token is not None and meta.get("token") == self._asked_token:
                    self.token = self._asked_token
                # else owned by its digest: the token is the owner's secret, never handed
                # to whoever knows the digest (the sidecar takes this put's fresh one)
                self.upload_id = meta["upload_id"]
                self._write_side()  # take it over (compare-and-swap)
                if self._continue():
                    return
            elif meta.get("lease", 0) > time.time() and meta.get("server") != _SERVER_ID:
                raise BusyError(f"busy: another upload to {self.vpath} is in progress "
                                "(on another server); try again later")
            elif isinstance(meta.get("upload_id"), str):
                self._abort_id(meta["upload_id"])
        self._start()

    def _start(self) -> None:
        r = self.s3.create_multipart_upload(Bucket=self.bucket, Key=self.hidden)
        old = self.upload_id
        self.upload_id = r["UploadId"]
        try:
            self._write_side(fresh=self._side_etag is None)
        except BaseException:
            self._abort_id(self.upload_id)
            self.upload_id = old
            raise
        self._parts, self.offset = [], 0

    def _continue(self) -> bool:
        """Take over the sidecar's upload from its kept parts; False if it is gone."""
        kept = []
        try:
            pages = self.s3.get_paginator("list_parts").paginate(
                Bucket=self.bucket, Key=self.hidden, UploadId=self.upload_id)
            for page in pages:
                kept.extend(page.get("Parts", ()))
        except ClientError as exc:
            if code_of(exc) in ("NoSuchKey", "NoSuchUpload", "404"):
                return False
            raise
        kept.sort(key=lambda p: p["PartNumber"])
        n = 0
        while n < len(kept) and kept[n]["PartNumber"] == n + 1 and kept[n]["Size"] == PART_SIZE \
                and (n + 1) * PART_SIZE <= self.total:
            n += 1
        if n == 0:
            self._parts, self.offset = [], 0
            return True
        self._rebase([{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in kept[:n]])
        return True

    def _rebase(self, parts: list[Answer]) -> None:
        """Hash the kept parts (complete them, read them once) and restart the upload
        with copies of them, so the rest can follow and all of it is verified."""
        self.s3.complete_multipart_upload(Bucket=self.bucket, Key=self.hidden,
                                          UploadId=self.upload_id,
                                          MultipartUpload={"Parts": parts})
        body = self.s3.get_object(Bucket=self.bucket, Key=self.hidden)
        etag, kept = body["ETag"], body["ContentLength"]
        for chunk in body["Body"].iter_chunks(1 << 20):
            self._hash.update(chunk)
        r = self.s3.create_multipart_upload(Bucket=self.bucket, Key=self.hidden)
        self.upload_id = r["UploadId"]
        self._write_side()
        self._parts = []
        for i in range(len(parts)):
            c = self.s3.upload_part_copy(
                Bucket=self.bucket, Key=self.hidden, UploadId=self.upload_id,
                PartNumber=i + 1, CopySource={"Bucket": self.bucket, "Key": self.hidden},
                CopySourceIfMatch=_bare(etag),
                CopySourceRange=f"bytes={i * PART_SIZE}-{(i + 1) * PART_SIZE - 1}")
            self._parts.append({"PartNumber": i + 1, "ETag": c["CopyPartResult"]["ETag"]})
        self.offset = kept
        if self.trailer:
            self.prefix_sha256 = self._hash.copy().hexdigest()

    def restart(self) -> None:
        """Start from byte 0 (the client's prefix differed from the kept one)."""
        self._guard(self._restart)

    def _restart(self) -> None:
        self._stop_parts()
        if not self.small:
            self._abort_id(self.upload_id)
            self._start()
        self._hash = digests.new(self.algorithm)
        self._buf.clear()
        self.offset = self.received = 0
        self.prefix_sha256 = None

    # ------------------------------------------------------------------ bytes
    def write(self, data: bytes | memoryview, *, hashed: bool = False) -> None:
        if not hashed:
            self._hash.update(data)
        self._buf += data
        self.received += len(data)
        while not self.small and len(self._buf) >= PART_SIZE:
            self._guard(self._queue_part, PART_SIZE)

    def _queue_part(self, size: int) -> None:
        """Send the next part on a worker thread; a few are in flight at once, so the
        socket keeps flowing while the store stores (one stream reached ~30 MiB/s)."""
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(
                PARTS_IN_FLIGHT, thread_name_prefix="pyftp-s3-part")
        n = len(self._parts) + len(self._pending) + 1
        body = bytes(self._buf[:size])
        del self._buf[:size]
        self._pending.append((n, self._pool.submit(
            self.s3.upload_part, Bucket=self.bucket, Key=self.hidden,
            UploadId=self.upload_id, PartNumber=n, Body=body)))
        self._settle(PARTS_IN_FLIGHT - 1)

    def _settle(self, keep: int) -> None:
        """Wait until at most ``keep`` parts are in flight, renewing the lease."""
        while len(self._pending) > keep:
            n, fut = self._pending.pop(0)
            self._parts.append({"PartNumber": n, "ETag": fut.result()["ETag"]})
            self._write_side()  # renew the lease; busy if another server took the upload

    def _stop_parts(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._pending.clear()

    def _guard(self, fn: Callable[..., _R], *args: Any) -> _R:
        try:
            return fn(*args)
        except (ClientError, BotoCoreError) as exc:
            raise store_error(exc, self.vpath) from exc

    # ------------------------------------------------------------------ end
    def commit(self) -> str:
        """Verify the whole file and publish it under its name; return its digest."""
        try:
            return self._guard(self._commit)
        finally:
            self.release()

    def _commit(self) -> str:
        digest: str = self._hash.hexdigest()
        self.verify(self.offset + self.received, digest)
        ns = time.time_ns() if self.mtime is None else mtime_ns(self.mtime)
        meta = {digest_key(self.algorithm): digest, MTIME_KEY: str(ns)}
        if self.small:
            self._publish_small(meta)
        else:
            self._publish_large(meta)
        h = self.store.head(self.target)
        if h is not None:
            self.store.info(self.target, h)
        return digest

    def _publish_small(self, meta: dict[str, str]) -> None:
        cond = {} if self.overwrite else {"IfNoneMatch": "*"}
        try:
            self.s3.put_object(Bucket=self.bucket, Key=self.target, Body=bytes(self._buf),
                               Metadata=meta, **cond)
        except ClientError as exc:
            if _taken(exc):
                raise AlreadyExistsError(f"already exists: {self.vpath} (created while "
                                         "uploading)") from None
            raise

    def _publish_large(self, meta: dict[str, str]) -> None:
        if self._buf or not (self._parts or self._pending):
            self._queue_part(len(self._buf))
        self._settle(0)
        self._stop_parts()
        found = self._read_side()
        if found is None or found[1] != self._side_etag:
            raise BusyError(f"busy: the partial upload of {self.vpath} was taken over by "
                            "another put while it ran; nothing was published, upload it again")
        self.s3.complete_multipart_upload(Bucket=self.bucket, Key=self.hidden,
                                          UploadId=self.upload_id,
                                          MultipartUpload={"Parts": self._parts})
        if not self.overwrite and self.store.head(self.target) is not None:
            self.discard()
            raise AlreadyExistsError(f"already exists: {self.vpath} (created while uploading)")
        # the one step that makes the name appear: whole, with its digest and mtime
        self.s3.copy({"Bucket": self.bucket, "Key": self.hidden}, self.bucket, self.target,
                     ExtraArgs={"Metadata": meta, "MetadataDirective": "REPLACE"})
        self._delete(self.hidden)
        self._delete(self.side)

    def _delete(self, key: str) -> None:
        try:
            self.s3.delete_object(Bucket=self.bucket, Key=key)
        except (ClientError, BotoCoreError):
            pass  # left for the janitor; never visible

    def _abort_id(self, upload_id: str | None) -> None:
        if upload_id is None:
            return
        try:
            self.s3.abort_multipart_upload(Bucket=self.bucket, Key=self.hidden,
                                           UploadId=upload_id)
        except (ClientError, BotoCoreError):
            pass  # gone already (NoSuchUpload/NoSuchKey) or left for the janitor

    def abort(self) -> None:
        """Stop without publishing; keep the stored parts so the put can resume."""
        self._stop_parts()
        try:
            if self.small or self.offset + self.received == 0 \
                    or (self.expected is None and not self.trailer):
                self.discard()
            elif self._side_etag is not None:
                try:
                    self._write_side(lease=0.0)  # free now: the token may resume anywhere
                except (RemoteError, ClientError, BotoCoreError):
                    pass  # taken over meanwhile: the new holder's
        finally:
            self.release()

    def discard(self) -> None:
        """Remove this upload's parts and sidecar (only while the sidecar is ours)."""
        self._stop_parts()
        self._buf.clear()
        if self.small or self.upload_id is None:
            return
        try:
            found = self._read_side()
        except (ClientError, BotoCoreError):
            return
        if found is not None and found[1] == self._side_etag:
            self._abort_id(self.upload_id)
            self._delete(self.hidden)
            self._delete(self.side)

    def release(self) -> None:
        self._stop_parts()
        if not self._released:
            self._released = True
            self.store.claims.release(self.claim_key)


#: how long a move waits for another move or upload to the same name to finish
MOVE_WAIT = 5.0


def move_file(store: S3Storage, sparts: list[str], dparts: list[str], dvpath: str,
              overwrite: bool) -> None:
    """Copy + delete a file, holding the destination's name the way an upload does: on
    this server by its claim, across servers by a create-only sidecar with a lease. So
    two moves onto one new name never both succeed: the second finds the first's file
    and gets ``exists``. Not atomic: for a moment both names exist (a crash between the
    steps leaves both)."""
    hidden = store.dir_prefix(dparts[:-1]) + partial_name(dparts[-1])
    key = (store.bucket, hidden)
    store.claims.take_when_free(key, Claim(0, None, None, None), dvpath, MOVE_WAIT)
    try:
        etag = _hold_name(store, hidden + ".json", dvpath)
        try:
            kind, _h = store.kind(dparts)
            if kind == "dir":
                raise IsDirectoryError(f"is a directory: {dvpath}; a directory is never "
                                       "replaced")
            if kind is not None and not overwrite:
                raise AlreadyExistsError(f"already exists: {dvpath} (pass overwrite to "
                                         "replace it)")
            store.s3.copy({"Bucket": store.bucket, "Key": store.key(sparts)}, store.bucket,
                          store.key(dparts))
            store.s3.delete_object(Bucket=store.bucket, Key=store.key(sparts))
        finally:
            try:
                store.s3.delete_object(Bucket=store.bucket, Key=hidden + ".json",
                                       IfMatch=_bare(etag))
            except (ClientError, BotoCoreError):
                pass  # left to its lease (30 s) and the janitor; the move's outcome stands
    finally:
        store.claims.release(key)


def _hold_name(store: S3Storage, side: str, vpath: str) -> str:
    """Create the sidecar ``side`` create-only (a live upload or a move on another
    server holds it: wait for it, a bounded time); return its ETag."""
    body = json.dumps({"move": True, "server": _SERVER_ID,
                       "lease": time.time() + LEASE}).encode()
    deadline = time.monotonic() + MOVE_WAIT
    while True:
        try:
            etag: str = store.s3.put_object(Bucket=store.bucket, Key=side, Body=body,
                                            IfNoneMatch="*")["ETag"]
            return etag
        except ClientError as exc:
            if not _taken(exc):
                raise
        _drop_if_stale(store, side)
        if time.monotonic() > deadline:
            raise BusyError(f"busy: another upload or move to {vpath} is in progress (on "
                            "this or another server); try again later")
        time.sleep(0.02)  # another server's move takes a few requests: poll, bounded


def _drop_if_stale(store: S3Storage, side: str) -> None:
    """Delete a move's sidecar whose lease has passed (its server died mid-move)."""
    try:
        r = store.s3.get_object(Bucket=store.bucket, Key=side)
        meta = json.loads(r["Body"].read(65536))
        if isinstance(meta, dict) and meta.get("move") and meta.get("lease", 0) < time.time():
            store.s3.delete_object(Bucket=store.bucket, Key=side, IfMatch=_bare(r["ETag"]))
    except (ClientError, ValueError):
        pass  # gone meanwhile, or taken: the caller tries again


def abort_uploads_at(store: S3Storage, key: str) -> None:
    """Abort every multipart upload at ``key`` (a partial in a folder being removed)."""
    r = store.s3.list_multipart_uploads(Bucket=store.bucket, Prefix=key)
    for u in r.get("Uploads", ()):
        if u["Key"] == key:
            try:
                store.s3.abort_multipart_upload(Bucket=store.bucket, Key=key,
                                                UploadId=u["UploadId"])
            except ClientError:
                pass


def clean_partials(store: S3Storage, ttl: float, now: float | None = None) -> int:
    """Abort multipart uploads and delete hidden objects untouched for ``ttl`` seconds
    whose claim is not live; return how many. Safe on several servers at once."""
    now = time.time() if now is None else now
    active = {k for b, k in store.claims.keys() if b == store.bucket}
    s3, bucket, removed = store.s3, store.bucket, 0

    def live(hidden: str) -> bool:
        if hidden in active:
            return True
        try:
            meta = json.loads(s3.get_object(Bucket=bucket, Key=hidden + ".json")["Body"].read())
            return float(meta.get("lease", 0)) > now
        except (ClientError, ValueError, AttributeError):
            return False
    for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket,
                                                                     Prefix=store.prefix):
        for u in page.get("Uploads", ()):
            if now - u["Initiated"].timestamp() > ttl and not live(u["Key"]):
                try:
                    s3.abort_multipart_upload(Bucket=bucket, Key=u["Key"],
                                              UploadId=u["UploadId"])
                    removed += 1
                except ClientError:
                    pass
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                             Prefix=store.prefix):
        for obj in page.get("Contents", ()):
            key = obj["Key"]
            name = key.rsplit("/", 1)[-1]
            base = key[:-5] if key.endswith(".json") else key
            if not is_partial_name(name) or now - obj["LastModified"].timestamp() <= ttl \
                    or live(base):
                continue
            s3.delete_object(Bucket=bucket, Key=key)
            removed += 1
    return removed
