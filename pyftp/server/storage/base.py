"""The storage interface the handlers call, and the factory choosing a backend.

A server serves either a folder (:class:`.local.Storage`) or a prefix of an
S3-compatible bucket (:class:`.s3.S3Storage`, only imported when ``--root s3://...``
is given, so the local server never needs boto3). Both take client paths seen from the
session's directory and raise the same pyftp errors; the handlers never know which one
serves them.

Import rule: errors, protocol, digests. Never transport (no sockets here), never boto3.
"""
from __future__ import annotations

import abc
import os
import posixpath
import re
from typing import TYPE_CHECKING, Any, BinaryIO, Callable, Protocol

from ... import digests
from ...errors import BadRequestError, PermissionDeniedError
from ...protocol import MAX_PATH, is_partial_name, os_bytes

if TYPE_CHECKING:  # pragma: no cover
    from .local import DigestCache
    from .uploads import Claims, UploadBytes

__all__ = ["StorageBackend", "open_storage", "normalize", "vparts", "is_s3_root",
           "parse_s3_root", "check_token", "Entry", "Names", "HashObject", "RangeHasher"]

#: one listing entry as the wire carries it (``name``, ``type``, ``size``, ``mtime``)
Entry = dict[str, Any]
#: the components of a virtual path (a name of its own: in a backend's class body,
#: ``list`` is the method)
Names = list[str]
#: a hashlib or blake3 object (``update``, ``hexdigest``, ``copy``): both untyped here
HashObject = Any


class RangeHasher(Protocol):
    """Hashes a range of a file while the handlers send it (:meth:`StorageBackend.range_hasher`)."""

    hashed: int

    def result(self) -> digests.Hasher: ...

    def cancel(self) -> None: ...

S3_SCHEME = "s3://"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")


def check_token(token: str | None) -> None:
    """A put's resume token must have the form the server hands out (contract C1)."""
    if token is not None and not _TOKEN.match(token):
        raise BadRequestError("put: field 'token' must be 1 to 64 characters from "
                              "A-Z a-z 0-9 _ - (send the token the server gave)")


def normalize(cwd: str, path: str) -> str:
    """The absolute virtual path for ``path`` seen from ``cwd`` (no I/O): ``..`` stops
    at the root, so no client path can name anything above it.

    At most :data:`MAX_PATH` characters: every reply names virtual paths (an ok ``mv``
    names two, each character up to 6 bytes of JSON), and two of that size still fit
    one frame's header.
    """
    if "\x00" in path:
        raise BadRequestError("path contains a NUL byte")
    if "\\" in path:
        raise BadRequestError(f"path contains a backslash: {path!r}; use / between folders")
    try:
        os_bytes(path)
    except UnicodeEncodeError as exc:
        raise BadRequestError("path contains an unpaired surrogate that names no file") from exc
    vpath = posixpath.normpath(posixpath.join(cwd, path))
    # normpath keeps a leading '//' (POSIX allows it) and clamps '..' at '/'
    vpath = "/" + vpath.lstrip("/")
    if len(vpath) > MAX_PATH:
        raise BadRequestError(
            f"path too long: {vpath[:40]}... is {len(vpath)} characters once joined to the "
            f"current directory; paths are at most {MAX_PATH} (cd closer to it, or use "
            "shorter names)")
    return vpath


def vparts(vpath: str) -> list[str]:
    """The components of a normalised path, refusing the names reserved for partials."""
    parts = [p for p in vpath.split("/") if p]
    for part in parts:
        if is_partial_name(part):
            raise PermissionDeniedError(f"permission denied: {vpath} is a reserved name")
    return parts


class StorageBackend(abc.ABC):
    """What the handlers call. Every method takes the session's cwd and a client path.

    Attributes every backend has: ``root`` (what it serves, for messages), ``read_only``,
    ``max_file_size``, ``digests`` (a :class:`.local.DigestCache` the handlers consult
    with the ``st`` that :meth:`open_read` returns) and ``claims`` (the uploads in flight
    on this server).
    """

    root: str
    read_only: bool
    max_file_size: int | None
    min_free: int
    digests: DigestCache
    claims: Claims

    def normalize(self, cwd: str, path: str) -> str:
        return normalize(cwd, path)

    def _writable(self, vpath: str) -> None:
        if self.read_only:
            raise PermissionDeniedError(f"permission denied: the server is read-only ({vpath})")

    @abc.abstractmethod
    def stat(self, cwd: str, path: str) -> Entry:
        """The listing entry of one path (``name``, ``type``, ``size``, ``mtime``)."""

    @abc.abstractmethod
    def chdir(self, cwd: str, path: str) -> str:
        """The new cwd, or ``not_found``/``not_a_directory``."""

    @abc.abstractmethod
    def list(self, cwd: str, path: str) -> list[Entry]:
        """A folder's entries sorted by name (partials hidden), or ``[entry]`` of a file."""

    def list_names(self, cwd: str, path: str) -> Names:
        """The names a listing would show, sorted, a folder's ending in ``/`` (``ls``
        with ``names``; a backend may override it with a cheaper scan)."""
        return [e["name"] + "/" if e["type"] == "dir" else e["name"]
                for e in self.list(cwd, path)]

    @abc.abstractmethod
    def open_read(self, cwd: str, path: str) -> tuple[BinaryIO, os.stat_result, str]:
        """(file, stat, virtual path): ``file`` supports ``fileno`` for files up to the
        handlers' small size, and ``seek``/``read`` (or ``fileno``) for ``sendfile``."""

    @abc.abstractmethod
    def digest(self, f: BinaryIO, st: os.stat_result, algorithm: str = "sha256") -> str:
        """The digest in ``algorithm`` of a file opened by :meth:`open_read`."""

    @abc.abstractmethod
    def hash(self, cwd: str, path: str, algorithm: str = "sha256") -> tuple[str, int, str]:
        """(digest in ``algorithm``, size, virtual path) of a file."""

    def read_range(self, f: BinaryIO, offset: int, count: int) -> bytes:
        """``count`` bytes of a file opened by :meth:`open_read`, from ``offset`` (short
        if the file is)."""
        return os.pread(f.fileno(), count, offset)

    def range_hasher(self, f: BinaryIO, h: HashObject, start: int,
                     stop: int) -> RangeHasher:
        """Something hashing ``[start, stop)`` of ``f`` into ``h`` while the handlers
        send that range: ``result()`` (wait, return ``h``), ``cancel()``, ``hashed``."""
        return digests.FileHasher(f.fileno(), h, start, stop)

    @abc.abstractmethod
    def mkdir(self, cwd: str, path: str, parents: bool = False) -> str: ...

    @abc.abstractmethod
    def rm(self, cwd: str, path: str) -> str: ...

    @abc.abstractmethod
    def rmdir(self, cwd: str, path: str) -> str: ...

    @abc.abstractmethod
    def mv(self, cwd: str, src: str, dst: str, overwrite: bool = False) -> tuple[str, str]: ...

    @abc.abstractmethod
    def begin_upload(self, cwd: str, path: str, total: int, sha256: str | None = None,
                     *, overwrite: bool = False, resume: bool = True,
                     mtime: float | None = None,
                     owner: Callable[[], object] | None = None,
                     trailer: bool = False, token: str | None = None,
                     algorithm: str = "sha256") -> UploadBytes:
        """Check everything a put needs before any payload and claim the target;
        return an upload (``offset``, ``token``, ``prefix_sha256``, ``remaining``,
        ``hasher``, ``write``, ``restart``, ``commit``, ``abort``, ``discard``).
        ``sha256`` is the expected digest in ``algorithm``, and so are the upload's
        ``prefix_sha256`` and the digest ``commit`` returns."""

    @abc.abstractmethod
    def clean_partials(self, ttl: float, now: float | None = None) -> int:
        """Remove abandoned partial uploads older than ``ttl`` seconds; return how many."""

    @abc.abstractmethod
    def disk_usage(self) -> tuple[int, int] | None:
        """(total bytes, free bytes) of what holds the files, or None when the backend
        cannot say (an object store has no size)."""

    def close(self) -> None:
        """Let go of connections to a store (nothing for a folder)."""


def is_s3_root(root: str) -> bool:
    return root.startswith(S3_SCHEME)


def parse_s3_root(root: str) -> tuple[str, str]:
    """``s3://BUCKET[/PREFIX]`` -> (bucket, prefix ending in ``/`` or empty)."""
    rest = root[len(S3_SCHEME):]
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise ValueError(f"{root}: name a bucket, as in s3://BUCKET or s3://BUCKET/PREFIX")
    parts = [p for p in prefix.split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise ValueError(f"{root}: the prefix may not contain . or .. components")
    return bucket, "".join(p + "/" for p in parts)


def open_storage(root: str, *, read_only: bool = False, max_file_size: int | None = None,
                 min_free: int = 0, s3_endpoint: str | None = None) -> StorageBackend:
    """The backend for ``root``: ``s3://BUCKET[/PREFIX]`` or a folder."""
    if is_s3_root(root):
        try:
            from .s3 import S3Storage
        except ImportError as exc:
            if "boto3" in str(exc) or "botocore" in str(exc):
                raise RuntimeError(
                    "serving s3://... needs boto3: install the extra with "
                    "pip install 'pyftp[s3]'") from exc
            raise
        bucket, prefix = parse_s3_root(root)
        return S3Storage(bucket, prefix, endpoint=s3_endpoint, read_only=read_only,
                         max_file_size=max_file_size)
    from .local import Storage
    return Storage(root, read_only=read_only, max_file_size=max_file_size, min_free=min_free)
