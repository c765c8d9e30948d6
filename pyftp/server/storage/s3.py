"""A bucket prefix of an S3-compatible object store, served like a folder.

The same operations, errors and jail as :class:`.local.Storage`: a client path is
normalised (``..`` stops at the root) and becomes the key ``PREFIX + a/b``, so no path
can name a key outside the prefix; the names reserved for partials are refused. Folders
are prefixes, made to exist while empty by a marker object ``a/``. The digest and mtime
of a file live in its metadata, one key per algorithm (``x-amz-meta-pyftp-sha256``,
``-pyftp-blake3``) and ``-pyftp-mtime-ns``, so ``hash`` and the digest frame cost no
re-read; a file whose metadata lacks the session's algorithm is read once to hash it.
Reading objects is in :mod:`.s3objects`, uploads in :mod:`.s3upload`; docs/storage.md
says what is atomic here and what is not.

Import rule: errors, protocol, digests, boto3. Never transport (no sockets here).
"""
from __future__ import annotations

import functools
import os
import posixpath
from typing import TYPE_CHECKING, BinaryIO, Callable, Concatenate, ParamSpec, TypeVar, cast

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ... import digests
from ...errors import (AlreadyExistsError, BadRequestError, BusyError, IsDirectoryError,
                       NotDirectoryError, NotEmptyError, NotFoundError, PermissionDeniedError,
                       RemoteError)
from ...protocol import is_partial_name, os_bytes, wire_mtime
from .base import (Entry, HashObject, Names, RangeHasher, StorageBackend, normalize,
                   vparts)
from .local import MAX_NEW_LEVELS, DigestCache
from .s3objects import (MISSING, MTIME_KEY, Answer, ObjectReader, S3Client, SeenObjects,
                        code_of, make_stat, recorded, store_error)
from .uploads import Claims

if TYPE_CHECKING:  # pragma: no cover
    from .uploads import UploadBytes

__all__ = ["S3Storage"]

#: files up to this size are fetched whole into an anonymous in-memory file
SMALL_READ = 256 * 1024
_NAME_MAX = 255
_P = ParamSpec("_P")
_R = TypeVar("_R")


def _guarded(method: Callable[Concatenate[S3Storage, str, _P], _R]
             ) -> Callable[Concatenate[S3Storage, str, _P], _R]:
    """Store failures become pyftp errors (never a botocore traceback to a client)."""
    @functools.wraps(method)
    def wrapper(self: S3Storage, cwd: str, /, *args: _P.args, **kw: _P.kwargs) -> _R:
        try:
            return method(self, cwd, *args, **kw)
        except (ClientError, BotoCoreError) as exc:
            first = args[0] if args else "/"
            raise store_error(exc, first if isinstance(first, str) else "/") from exc
    return wrapper


class S3Storage(StorageBackend):
    """``s3://BUCKET/PREFIX`` served like a folder. Thread-safe: one boto3 client."""

    def __init__(self, bucket: str, prefix: str = "", *, endpoint: str | None = None,
                 read_only: bool = False, max_file_size: int | None = None,
                 client: S3Client = None) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.root = f"s3://{bucket}/{prefix}"
        self.read_only = read_only
        self.max_file_size = max_file_size
        self.min_free = 0
        self.digests = DigestCache()
        self.claims = Claims()
        self.seen = SeenObjects()
        self.s3 = client or boto3.session.Session().client(
            "s3", endpoint_url=endpoint,
            config=Config(s3={"addressing_style": "path"}, max_pool_connections=64,
                          retries={"max_attempts": 4, "mode": "standard"}))
        try:
            self.s3.head_bucket(Bucket=bucket)
        except ClientError as exc:
            if code_of(exc) in MISSING:
                raise ValueError(f"no bucket {bucket!r} in the object store; create it "
                                 f"first (aws s3 mb s3://{bucket})") from None
            raise ValueError(f"the object store refused bucket {bucket!r} "
                             f"({code_of(exc)}); check the credentials") from None
        except BotoCoreError as exc:
            raise ValueError(f"cannot reach the object store: {exc}; give --s3-endpoint "
                             "URL or set AWS_ENDPOINT_URL") from None

    # ------------------------------------------------------------------ names
    def parts(self, cwd: str, path: str) -> tuple[str, Names]:
        vpath = normalize(cwd, path)
        parts = vparts(vpath)
        for p in parts:
            if len(os_bytes(p)) > _NAME_MAX:
                raise BadRequestError(f"invalid name: {vpath}")
        if len(os_bytes(self.key(parts))) > 1000:
            raise BadRequestError(f"invalid name: {vpath} (too long for the object store)")
        return vpath, parts

    def key(self, parts: Names) -> str:
        return self.prefix + "/".join(parts)

    def dir_prefix(self, parts: Names) -> str:
        return self.prefix + "".join(p + "/" for p in parts)

    # ------------------------------------------------------------------ objects
    def head(self, key: str) -> Answer | None:
        try:
            h: Answer = self.s3.head_object(Bucket=self.bucket, Key=key)
            return h
        except ClientError as exc:
            if code_of(exc) in MISSING:
                return None
            raise

    def is_dir(self, parts: Names, *, quick: bool = False) -> bool:
        """A folder exists if its marker does (a HEAD, ~3 ms on Ceph 16), or, unless
        ``quick``, any key under it (a listing: ~45 ms, for folders other tools made)."""
        if not parts:
            return True
        if self.head(self.dir_prefix(parts)) is not None:
            return True
        if quick:
            return False
        r = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=self.dir_prefix(parts),
                                    MaxKeys=1)
        return int(r.get("KeyCount", 0)) > 0

    def kind(self, parts: Names, *, quick: bool = False) -> tuple[str | None, Answer | None]:
        """("file", head) or ("dir", None) or (None, None)."""
        if parts:
            h = self.head(self.key(parts))
            if h is not None:
                return "file", h
        return ("dir", None) if self.is_dir(parts, quick=quick) else (None, None)

    def _need_folder(self, parts: Names, vpath: str) -> None:
        """The folder a new name goes in must exist (as on a disk)."""
        if not parts:
            return
        kind, _h = self.kind(parts)
        if kind == "file":
            raise NotDirectoryError(f"not a directory: {vpath}")
        if kind is None:
            raise self.missing(parts, vpath)

    def missing(self, parts: Names, vpath: str) -> RemoteError:
        """The error for a path naming nothing: ``not_a_directory`` when a folder on
        its way is a file (as a disk says), else ``not_found``. Only on that path."""
        for i in range(1, len(parts)):
            if self.head(self.key(parts[:i])) is not None:
                return NotDirectoryError(f"not a directory: {vpath}")
        return NotFoundError(f"not found: {vpath}")

    def folder_mtime(self, parts: Names) -> float:
        """A folder's wire mtime: when its marker was made (the root, or a folder only
        implied by other tools' keys, has none: 0). One HEAD per folder, remembered."""
        if not parts:
            return 0.0
        marker = self.dir_prefix(parts)
        ns = self.seen.folder(marker)
        if ns is None:
            h = self.head(marker)
            ns = int(h["LastModified"].timestamp() * 1e9) if h is not None else 0
            self.seen.put_folder(marker, ns)
        return wire_mtime(ns)

    def info(self, key: str, h: Answer) -> tuple[int, int, dict[str, str], str]:
        """(size, mtime_ns, {algorithm: digest}, etag) of a HEAD or GET answer."""
        meta = h.get("Metadata") or {}
        try:
            mtime_ns = int(meta[MTIME_KEY])
        except (KeyError, ValueError):
            mtime_ns = int(h["LastModified"].timestamp() * 1e9)
        known = recorded(meta)
        etag = h.get("ETag", "")
        self.seen.put(key, etag, known, mtime_ns)
        return h["ContentLength"], mtime_ns, known, etag

    def _file_entry(self, name: str, key: str, h: Answer) -> Entry:
        size, mtime_ns, _known, _etag = self.info(key, h)
        return {"name": name, "type": "file", "size": size, "mtime": wire_mtime(mtime_ns)}

    # ------------------------------------------------------------------ queries
    @_guarded
    def stat(self, cwd: str, path: str) -> Entry:
        vpath, parts = self.parts(cwd, path)
        kind, h = self.kind(parts)
        name = posixpath.basename(vpath) or "/"
        if kind == "file" and h is not None:
            return self._file_entry(name, self.key(parts), h)
        if kind == "dir":
            return {"name": name, "type": "dir", "size": 0, "mtime": self.folder_mtime(parts)}
        raise self.missing(parts, vpath)

    @_guarded
    def chdir(self, cwd: str, path: str) -> str:
        vpath, parts = self.parts(cwd, path)
        kind, _h = self.kind(parts)
        if kind == "file":
            raise NotDirectoryError(f"not a directory: {vpath}")
        if kind is None:
            raise self.missing(parts, vpath)
        return vpath

    @_guarded
    def list(self, cwd: str, path: str) -> list[Entry]:
        vpath, parts = self.parts(cwd, path)
        dp = self.dir_prefix(parts)
        entries, seen = [], False
        for page in self.s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=dp, Delimiter="/"):
            for cp in page.get("CommonPrefixes", ()):
                seen = True
                name = cp["Prefix"][len(dp):-1]
                if name and not is_partial_name(name):
                    entries.append({"name": name, "type": "dir", "size": 0,
                                    "mtime": self.folder_mtime([*parts, name])})
            for obj in page.get("Contents", ()):
                seen = True
                name = obj["Key"][len(dp):]
                if not name or is_partial_name(name):
                    continue  # the folder's marker, partial uploads
                known = self.seen.get(obj["Key"], obj["ETag"])
                if known is None:
                    h = self.head(obj["Key"])
                    if h is None:
                        continue  # removed meanwhile
                    entries.append(self._file_entry(name, obj["Key"], h))
                else:
                    entries.append({"name": name, "type": "file", "size": obj["Size"],
                                    "mtime": wire_mtime(known[1])})
        if not seen and parts:
            h = self.head(self.key(parts))
            if h is None:
                raise self.missing(parts, vpath)
            return [self._file_entry(parts[-1], self.key(parts), h)]  # like ls FILE
        entries.sort(key=lambda e: e["name"])
        return entries

    @_guarded
    def open_read(self, cwd: str, path: str) -> tuple[BinaryIO, os.stat_result, str]:
        """(file, stat, vpath): a small object fetched whole into an in-memory file
        (``pread`` works on it), a large one as a reader streaming ranged GETs."""
        vpath, parts = self.parts(cwd, path)
        key = self.key(parts)
        h = self.head(key) if parts else None
        if h is None:
            if self.is_dir(parts):
                raise IsDirectoryError(f"is a directory: {vpath}")
            raise self.missing(parts, vpath)
        size, mtime_ns, known, etag = self.info(key, h)
        st = make_stat(size, mtime_ns, hash((key, etag)) & ((1 << 63) - 1))
        for algorithm, digest in known.items():
            self.digests.put(st, digest, algorithm)
        if size <= SMALL_READ:
            return self._fetch_small(key, etag, size, vpath), st, vpath
        reader = ObjectReader(self.s3, self.bucket, key, etag, size, vpath)  # no fileno
        return cast(BinaryIO, reader), st, vpath

    def _fetch_small(self, key: str, etag: str, size: int, vpath: str) -> BinaryIO:
        r = self.s3.get_object(Bucket=self.bucket, Key=key, IfMatch=etag)
        data = r["Body"].read()
        if len(data) != size:
            raise BusyError(f"busy: {vpath} changed while being read; try again")
        fd = os.memfd_create("pyftp-get", os.MFD_CLOEXEC)
        f = os.fdopen(fd, "w+b", buffering=0)
        f.write(data)
        f.seek(0)
        return f

    def digest(self, f: BinaryIO, st: os.stat_result, algorithm: str = "sha256") -> str:
        """From the metadata (through the cache :meth:`open_read` filled); else the
        object is read once and the digest kept in this server's cache (not written
        back: a metadata rewrite is a copy, which would cut readers of the old ETag)."""
        known = self.digests.get(st, algorithm)
        if known is not None:
            return known
        h = digests.new(algorithm)
        if isinstance(f, ObjectReader):
            f.hash_whole(h)
        else:
            digests.hash_into(h, f.fileno())
        digest: str = h.hexdigest()
        self.digests.put(st, digest, algorithm)
        return digest

    @_guarded
    def hash(self, cwd: str, path: str, algorithm: str = "sha256") -> tuple[str, int, str]:
        f, st, vpath = self.open_read(cwd, path)
        with f:
            return self.digest(f, st, algorithm), st.st_size, vpath

    def read_range(self, f: BinaryIO, offset: int, count: int) -> bytes:
        if isinstance(f, ObjectReader):
            return f.read_range(offset, count)
        return super().read_range(f, offset, count)

    def range_hasher(self, f: BinaryIO, h: HashObject, start: int,
                     stop: int) -> RangeHasher:
        if isinstance(f, ObjectReader):
            return f.tap(h, start, stop)
        return super().range_hasher(f, h, start, stop)

    # ------------------------------------------------------------------ folders
    @_guarded
    def mkdir(self, cwd: str, path: str, parents: bool = False) -> str:
        vpath, parts = self.parts(cwd, path)
        self._writable(vpath)
        if parents:
            return self._makedirs(vpath, parts)
        if not parts:
            raise AlreadyExistsError(f"already exists: {vpath}")
        self._need_folder(parts[:-1], "/" + "/".join(parts[:-1]))
        if self.kind(parts)[0] is not None:
            raise AlreadyExistsError(f"already exists: {vpath}")
        self._put_marker(parts, vpath)
        return vpath

    def _put_marker(self, parts: Names, vpath: str) -> None:
        try:
            self.s3.put_object(Bucket=self.bucket, Key=self.dir_prefix(parts), Body=b"",
                               IfNoneMatch="*")
        except ClientError as exc:
            if code_of(exc) in ("PreconditionFailed", "412"):
                raise AlreadyExistsError(f"already exists: {vpath}") from None
            raise

    def _makedirs(self, vpath: str, parts: Names) -> str:
        """mkdir -p: the missing levels get a marker each, at most MAX_NEW_LEVELS."""
        missing = []
        for i in range(len(parts), 0, -1):
            kind, _h = self.kind(parts[:i])
            if kind == "file":
                raise AlreadyExistsError(
                    f"already exists and is not a directory: /{'/'.join(parts[:i])}")
            if kind == "dir":
                break
            missing.append(i)
        if len(missing) > MAX_NEW_LEVELS:
            raise BadRequestError(f"mkdir: {vpath} would create more than {MAX_NEW_LEVELS} "
                                  "folders in one request; create it in steps")
        for i in reversed(missing):
            try:
                self._put_marker(parts[:i], vpath)
            except AlreadyExistsError:
                pass
        return vpath

    @_guarded
    def rm(self, cwd: str, path: str) -> str:
        vpath, parts = self.parts(cwd, path)
        self._writable(vpath)
        kind, _h = self.kind(parts)
        if kind == "dir":
            raise IsDirectoryError(f"is a directory: {vpath} (use rmdir)")
        if kind is None:
            raise self.missing(parts, vpath)
        self.s3.delete_object(Bucket=self.bucket, Key=self.key(parts))
        return vpath

    def _contents(self, parts: Names) -> tuple[bool, Names] | None:
        """(empty but for its marker and partials, those keys), or None if missing."""
        dp = self.dir_prefix(parts)
        keys: list[str] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=dp):
            for obj in page.get("Contents", ()):
                rest = obj["Key"][len(dp):]
                if rest and ("/" in rest or not is_partial_name(rest)):
                    return False, keys
                keys.append(obj["Key"])
        return (True, keys) if keys else None

    @_guarded
    def rmdir(self, cwd: str, path: str) -> str:
        vpath, parts = self.parts(cwd, path)
        self._writable(vpath)
        if not parts:
            raise PermissionDeniedError("permission denied: the root folder cannot be removed")
        if self.head(self.key(parts)) is not None:
            raise NotDirectoryError(f"not a directory: {vpath} (use rm)")
        found = self._contents(parts)
        if found is None:
            raise self.missing(parts, vpath)
        empty, keys = found
        if not empty:
            raise NotEmptyError(f"directory not empty: {vpath}")
        dp = self.dir_prefix(parts)
        if any(k[1].startswith(dp) and "/" not in k[1][len(dp):] for k in self.claims.keys()):
            raise BusyError(f"busy: an upload into {vpath} is in progress; try again later")
        from .s3upload import abort_uploads_at
        for k in keys:
            if k != dp:
                abort_uploads_at(self, k)
        for k in sorted(keys, key=len, reverse=True):  # the marker last
            self.s3.delete_object(Bucket=self.bucket, Key=k)
        self.seen.forget_folder(dp)
        return vpath

    # ------------------------------------------------------------------ mv
    @_guarded
    def mv(self, cwd: str, src: str, dst: str, overwrite: bool = False) -> tuple[str, str]:
        svpath, sparts = self.parts(cwd, src)
        dvpath, dparts = self.parts(cwd, dst)
        self._writable(svpath)
        if not sparts or not dparts:
            raise PermissionDeniedError("permission denied: the root folder cannot be moved")
        kind, h = self.kind(sparts)
        if kind is None:
            raise self.missing(sparts, svpath)
        if dvpath == svpath:
            return svpath, dvpath
        if dvpath.startswith(svpath + "/"):
            raise BadRequestError(f"cannot move {svpath} into itself ({dvpath})")
        self._need_folder(dparts[:-1], "/" + "/".join(dparts[:-1]))
        dkind, _dh = self.kind(dparts)
        if dkind == "dir" and (kind == "file" or overwrite):
            raise IsDirectoryError(f"is a directory: {dvpath}; a directory is never replaced")
        if dkind is not None and not overwrite:
            raise AlreadyExistsError(f"already exists: {dvpath} (pass overwrite to replace it)")
        if kind == "file":
            from .s3upload import move_file
            move_file(self, sparts, dparts, dvpath, overwrite)
            return svpath, dvpath
        found = self._contents(sparts)
        if found is not None and not found[0]:
            raise PermissionDeniedError(
                f"permission denied: {svpath} is a folder with contents, and this server "
                "keeps files in an object store, where a folder cannot be moved in one "
                "step; move its files one by one")
        self._put_marker(dparts, dvpath)
        self.rmdir("/", svpath)
        return svpath, dvpath

    # ------------------------------------------------------------------ uploads
    def begin_upload(self, cwd: str, path: str, total: int, sha256: str | None = None,
                     *, overwrite: bool = False, resume: bool = True,
                     mtime: float | None = None,
                     owner: Callable[[], object] | None = None,
                     trailer: bool = False, token: str | None = None,
                     algorithm: str = "sha256") -> UploadBytes:
        from .s3upload import begin_upload
        return begin_upload(self, cwd, path, total, sha256, overwrite=overwrite,
                            resume=resume, mtime=mtime, owner=owner, trailer=trailer,
                            token=token, algorithm=algorithm)

    def clean_partials(self, ttl: float, now: float | None = None) -> int:
        from .s3upload import clean_partials
        return clean_partials(self, ttl, now)

    def disk_usage(self) -> tuple[int, int] | None:
        return None  # a bucket has no capacity to report
