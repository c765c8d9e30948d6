"""Uploads: who owns which partial file, and one put from its first byte to its publish.

An :class:`Upload` holds two descriptors from start to end: the folder the jail walk
found and the partial file it opened (or created) there. It writes, hashes and
verifies through them, and publishes with a rename relative to the held folder, after
checking that the partial's name still leads to the very file it wrote. So a folder
renamed mid-upload, a second claim through another path, or a name collision cannot
slip other bytes under its digest. :class:`Claims` keeps one upload per partial,
keyed by the folder's identity (st_dev, st_ino) and the partial's name, never by path.

Import rule: errors, protocol, digests. Never transport (no sockets here).
"""
from __future__ import annotations

import errno
import json
import os
import secrets
import stat as stat_
import threading
import time
import abc
from typing import TYPE_CHECKING, Any, Callable

from ...records import dataclass
from ... import digests
from ...errors import AlreadyExistsError, BusyError, ChecksumMismatchError, RemoteError
from ...protocol import is_partial_name, mtime_ns, partial_name
from .jail import open_root, os_error, rename_noreplace, scan_tree

if TYPE_CHECKING:  # pragma: no cover
    from .local import Storage

#: what identifies a partial: (st_dev, st_ino of its folder, name) on a disk,
#: (bucket, hidden key) in an object store
ClaimKey = tuple[Any, ...]
#: a partial's record (:func:`record`), as JSON
Record = dict[str, Any]

__all__ = ["Upload", "UploadBytes", "owns", "record", "Claims", "Claim", "clean_partials",
           "META_MIN", "TAKEOVER_WAIT"]

#: how long a put taking over an upload waits for the cut connection to let go
TAKEOVER_WAIT = 5.0
#: uploads from this size on record their metadata when they start (so a partial
#: survives even a server crash); smaller ones only if they are cut off. The metadata
#: is a create and two renames: for a small file it doubled the cost of a put
META_MIN = 1 << 20
_FILE_FLAGS = os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass
class Claim:
    """One upload in flight, as the other requests see it."""

    total: int
    sha256: str | None
    token: str | None
    owner: Callable[[], object] | None
    upload: "UploadBytes | None" = None
    algorithm: str = "sha256"  #: the algorithm of ``sha256`` (the expected digest)


class Claims:
    """The uploads in flight, one per partial: key (st_dev, st_ino of folder, name)."""

    def __init__(self) -> None:
        self._held: dict[ClaimKey, Claim] = {}
        self._cond = threading.Condition(threading.Lock())

    def take(self, key: ClaimKey, claim: Claim, vpath: str) -> None:
        """Claim ``key``, taking over a dead holder of the same upload, else ``busy``.

        A holder is taken over (its connection cut) only by a put that proves it is
        the same upload: its resume token, or (a v1 put) the same total and SHA-256,
        which pins the content so no foreign bytes can ever be published.
        """
        with self._cond:
            holder = self._held.get(key)
            if holder is not None and holder.owner is not None and _same(holder, claim):
                holder.owner()
                self._cond.wait_for(lambda: key not in self._held, TAKEOVER_WAIT)
                holder = self._held.get(key)
            if holder is not None:
                raise BusyError(f"busy: another upload to {vpath} is in progress; try again later")
            self._held[key] = claim

    def take_when_free(self, key: ClaimKey, claim: Claim, vpath: str, timeout: float) -> None:
        """Claim ``key`` once its holder lets go (a short operation such as a move
        waits its turn instead of failing); ``busy`` after ``timeout`` seconds."""
        with self._cond:
            if not self._cond.wait_for(lambda: key not in self._held, timeout):
                raise BusyError(f"busy: another upload or move to {vpath} is in progress; "
                                "try again later")
            self._held[key] = claim

    def release(self, key: ClaimKey) -> None:
        with self._cond:
            self._held.pop(key, None)
            self._cond.notify_all()

    def reserved(self, but: "UploadBytes | None" = None) -> int:
        """Bytes the uploads in flight (other than ``but``) announced, not yet written."""
        with self._cond:
            ups = [c.upload for c in self._held.values()
                   if c.upload is not None and c.upload is not but]
        return sum(max(0, u.remaining - u.received) for u in ups)

    def in_folder(self, st: os.stat_result) -> bool:
        with self._cond:
            return any(k[:2] == (st.st_dev, st.st_ino) for k in self._held)

    def keys(self) -> set[ClaimKey]:
        with self._cond:
            return set(self._held)


def _same(holder: Claim, claim: Claim) -> bool:
    if holder.total != claim.total:
        return False
    # the holder's token is its upload's (fresh or resumed), not the one it presented
    held = holder.upload.token if holder.upload is not None else holder.token
    if claim.token is not None and claim.token == held:
        return True
    return (claim.sha256 is not None and claim.sha256 == holder.sha256
            and claim.algorithm == holder.algorithm)


def owns(up: "UploadBytes", meta: Record) -> bool:
    """Resume only the upload's own bytes: its token, or the same digest.

    A trailer put has no digest to pin the content, so only the token the first put
    was given proves the partial is its own, and it never resumes a partial pinned by
    a digest; a put's digest pins the whole content, so the server's final check can
    never publish foreign bytes. A digest recorded in another algorithm pins nothing
    for this one. ``meta`` is the partial's record (:func:`record`: both backends keep
    the same fields).
    """
    if meta.get("total") != up.total:
        return False
    pinned = meta.get("sha256") is not None or meta.get("digest") is not None
    if up.trailer and pinned:
        return False  # a partial pinned by its digest, which a trailer put lacks
    same_algorithm: bool = meta.get("algorithm", "sha256") == up.algorithm
    recorded = None
    if same_algorithm:
        recorded = meta.get("sha256" if up.algorithm == "sha256" else "digest")
    if up.expected is not None and recorded is not None and recorded != up.expected:
        return False
    if up._asked_token is not None and meta.get("token") == up._asked_token:
        # only in the algorithm it was begun in: the prefix digest a resume hands out,
        # in SHA-256, of a BLAKE3 upload's kept bytes would let whoever holds the token
        # extend them unseen (SHA-256 length extension)
        return same_algorithm
    return not up.trailer and up.expected is not None and recorded == up.expected


def record(up: "UploadBytes") -> Record:
    """The partial's record of an upload (total, expected digest, token): SHA-256 in
    the version 1 form, another algorithm named beside its digest."""
    if up.algorithm == "sha256":
        return {"total": up.total, "sha256": up.expected, "token": up.token}
    return {"total": up.total, "algorithm": up.algorithm, "digest": up.expected,
            "token": up.token}


class UploadBytes(abc.ABC):
    """What the handlers read of any backend's upload while bytes flow."""

    total: int
    offset: int
    vpath: str
    #: the expected digest, in :attr:`algorithm` (the session's, protocol section 14)
    expected: str | None
    algorithm: str
    token: str
    trailer: bool
    received: int
    #: the digest of the kept bytes of a resumed trailer upload, for the client to check
    prefix_sha256: str | None
    _asked_token: str | None
    _hash: Any  # a hashlib or blake3 object (untyped)

    @property
    def remaining(self) -> int:
        return self.total - self.offset

    @property
    def hasher(self) -> Any:
        """The running digest of the upload: a receiver may feed it on another thread
        (then it writes with ``hashed=True``) so hashing overlaps the socket and disk."""
        return self._hash

    @abc.abstractmethod
    def write(self, data: bytes | memoryview, *, hashed: bool = False) -> None:
        """Store received bytes (and, unless ``hashed``, feed the running digest)."""

    @abc.abstractmethod
    def restart(self) -> None:
        """Start from byte 0 (the client's prefix differed from the kept one)."""

    @abc.abstractmethod
    def commit(self) -> str:
        """Verify and publish; return the digest."""

    @abc.abstractmethod
    def abort(self) -> None:
        """Stop without publishing (keeping what may be resumed)."""

    @abc.abstractmethod
    def discard(self) -> None:
        """Remove what this upload stored."""

    def verify(self, size: int, digest: str) -> None:
        """Refuse (and discard) an upload whose size or digest is not the announced one."""
        if size != self.total:
            self.discard()
            raise ChecksumMismatchError(f"checksum mismatch: {self.vpath} has {size} "
                                        f"bytes, expected {self.total}; upload it again")
        if self.expected and digest != self.expected:
            self.discard()
            raise ChecksumMismatchError(
                f"checksum mismatch: {self.vpath} arrived with "
                f"{digests.label(self.algorithm)} {digest[:12]}..., "
                f"expected {self.expected[:12]}...; upload it again")


class Upload(UploadBytes):
    """One put in progress: a claimed partial held by descriptor, and a running hash."""

    def __init__(self, storage: Storage, vpath: str, dir_fd: int, name: str, total: int,
                 sha256: str | None, *, overwrite: bool, mtime: float | None,
                 trailer: bool, token: str | None, key: ClaimKey,
                 algorithm: str = "sha256") -> None:
        self.storage = storage
        self.vpath = vpath
        #: the folder, held from the walk to the publish (owned: closed by release)
        self.dir_fd = dir_fd
        self.name = name
        self.partial = partial_name(name)
        self.meta = self.partial + ".json"
        self.total = total
        #: the expected digest, in :attr:`algorithm` (the session's)
        self.expected = sha256
        self.algorithm = algorithm
        self.overwrite = overwrite
        self.mtime = mtime
        #: the digest arrives after the data (set :attr:`expected` before commit)
        self.trailer = trailer
        self.key = key
        #: the token the client must present to resume this partial (feature resume_token)
        self.token = secrets.token_urlsafe(24)
        self._asked_token = token
        #: SHA-256 of the kept bytes of a resumed trailer upload, for the client to check
        self.prefix_sha256: str | None = None
        self.offset = 0
        self.received = 0
        self._fd: int | None = None
        self._ident: tuple[int, int] | None = None
        self._hash = digests.new(algorithm)
        self._released = False
        self._meta_written = True  # until open() starts a new partial without it

    # ------------------------------------------------------------------ start
    def open(self, resume: bool) -> None:
        """Continue this upload's own partial if it proves it owns it, else start anew."""
        meta = self._read_meta() if resume else None
        if meta is not None and owns(self, meta):
            try:
                fd = os.open(self.partial, os.O_RDWR | _FILE_FLAGS, dir_fd=self.dir_fd)
            except OSError:
                fd = None
            if fd is not None:
                st = os.fstat(fd)
                if stat_.S_ISREG(st.st_mode) and st.st_size <= self.total:
                    digests.hash_into(self._hash, fd, 0, st.st_size)
                    self._fd, self.offset = fd, st.st_size
                    self._ident = (st.st_dev, st.st_ino)
                    if self._asked_token is not None and meta.get("token") == self._asked_token:
                        self.token = self._asked_token
                    else:
                        # owned by its digest: the token is the owner's secret, never
                        # handed to whoever knows the digest (it gets a fresh one)
                        self._write_meta()
                    if self.trailer:
                        self.prefix_sha256 = self._hash.copy().hexdigest()
                    return
                os.close(fd)
        self._unlink(self.partial)  # whatever was there (a link even) is not followed
        self._fd = os.open(self.partial, os.O_RDWR | os.O_CREAT | os.O_EXCL | _FILE_FLAGS,
                           0o644, dir_fd=self.dir_fd)
        st = os.fstat(self._fd)
        self._ident = (st.st_dev, st.st_ino)
        self._meta_written = False
        if self.total >= META_MIN:
            self._write_meta()
        else:
            self._unlink(self.meta)  # an older upload's metadata must not describe this one

    def _read_meta(self) -> Record | None:
        try:
            fd = os.open(self.meta, os.O_RDONLY | _FILE_FLAGS, dir_fd=self.dir_fd)
        except OSError:
            return None
        try:
            with os.fdopen(fd, "rb") as f:
                meta = json.loads(f.read(4096))
        except (OSError, ValueError):
            return None
        return meta if isinstance(meta, dict) else None

    def _write_meta(self) -> None:
        tmp = self.meta + ".tmp"
        self._unlink(tmp)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _FILE_FLAGS, 0o644,
                     dir_fd=self.dir_fd)
        with os.fdopen(fd, "w") as f:
            json.dump(record(self), f)
        os.replace(tmp, self.meta, src_dir_fd=self.dir_fd, dst_dir_fd=self.dir_fd)
        self._meta_written = True

    def _unlink(self, name: str) -> None:
        try:
            os.unlink(name, dir_fd=self.dir_fd)
        except FileNotFoundError:
            pass

    def restart(self) -> None:
        """Empty a resumed partial and start from byte 0 (the client's prefix differed)."""
        assert self._fd is not None
        try:
            os.ftruncate(self._fd, 0)
        except OSError as exc:
            raise os_error(exc, self.vpath) from exc
        self._hash = digests.new(self.algorithm)
        self.offset = self.received = 0
        self.prefix_sha256 = None

    # ------------------------------------------------------------------ bytes
    def write(self, data: bytes | memoryview, *, hashed: bool = False) -> None:
        """Write received bytes at their place in the partial and (unless ``hashed``)
        feed the hash. Through the held descriptor: never a path."""
        fd = self._fd
        assert fd is not None
        view = memoryview(data)
        if not hashed:
            self._hash.update(view)
        pos = self.offset + self.received
        try:
            while view:
                n = os.pwrite(fd, view, pos)
                view, pos = view[n:], pos + n
        except OSError as exc:
            raise os_error(exc, self.vpath) from exc
        self.received += len(data)

    # ------------------------------------------------------------------ end
    def commit(self) -> str:
        """Verify the whole file and publish it under its name; return its SHA-256.

        The bytes checked are the held file's; the rename is relative to the held
        folder, and only after the partial's name is seen to lead to that same file.
        If the folder was renamed meanwhile, the file is published where the folder
        now is (and :attr:`vpath` becomes that place, for the reply).
        """
        assert self._fd is not None
        digest: str = self._hash.hexdigest()
        try:
            st = os.fstat(self._fd)
            self.verify(st.st_size, digest)
            if self.mtime is not None:
                ns = mtime_ns(self.mtime)
                os.utime(self._fd, ns=(ns, ns))
            self._publish()
            self.vpath = self._where()
            if self._meta_written:
                self._unlink(self.meta)
            # the digest cache is not seeded with ``digest``: it is that of the bytes
            # received, and a local process may have written into the partial since
            # (the stat key already includes that write); the first hash or get of the
            # file hashes what is on disk
        except OSError as exc:
            raise os_error(exc, self.vpath) from exc
        finally:
            self.release()
        return digest

    def _publish(self) -> None:
        if not self._still_mine():
            self._fd_close()
            raise BusyError(f"busy: the partial upload of {self.vpath} was replaced by "
                            "someone else while it ran; nothing was published, upload it again")
        try:
            if self.overwrite:
                os.rename(self.partial, self.name, src_dir_fd=self.dir_fd,
                          dst_dir_fd=self.dir_fd)
            else:
                rename_noreplace(self.dir_fd, self.partial, self.dir_fd, self.name)
        except OSError as exc:
            # the name exists now, or became a non-empty folder: this partial could
            # never be published, and a resume would only fail the same way again
            self.discard()
            if exc.errno == errno.EEXIST:
                raise AlreadyExistsError(f"already exists: {self.vpath} (created while "
                                         "uploading)") from exc
            raise

    def _where(self) -> str:
        """The virtual path the file was published under: the put's own, unless its
        folder was moved meanwhile; then where the folder is now (the reply must not
        vouch for a file another client may have put at the old path)."""
        parent = self.vpath.rpartition("/")[0] or "/"
        try:
            mine = os.fstat(self.dir_fd)
            with self.storage.place("/", parent)[1] as place:
                st = place.lstat()
            if (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino):
                return self.vpath
        except (OSError, RemoteError):
            pass
        try:
            rel = os.path.relpath(os.readlink(f"/proc/self/fd/{self.dir_fd}"), self.storage.root)
        except (OSError, ValueError):
            return self.vpath
        if rel == ".." or rel.startswith("../"):
            return self.vpath  # moved out of the share (only a local process can)
        return "/" + self.name if rel == "." else f"/{rel}/{self.name}"

    def _still_mine(self) -> bool:
        try:
            st = os.stat(self.partial, dir_fd=self.dir_fd, follow_symlinks=False)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) == self._ident and stat_.S_ISREG(st.st_mode)

    def abort(self) -> None:
        """Stop without publishing; keep the partial so its owner can resume it."""
        self._fd_close()
        if self.offset + self.received == 0 or (self.expected is None and not self.trailer):
            self.discard()  # nothing worth keeping, or nothing to verify a resume with
        elif not self._meta_written and self._still_mine():
            try:
                self._write_meta()  # a small upload was cut: now it is worth resuming
            except OSError:
                self.discard()
        self.release()

    def discard(self) -> None:
        """Remove this upload's partial (only if the name still leads to it)."""
        if self._still_mine():
            for name in (self.partial, self.meta):
                try:
                    self._unlink(name)
                except OSError:
                    pass
        self._fd_close()

    def _fd_close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._fd_close()
            self.storage.claims.release(self.key)
            os.close(self.dir_fd)


def clean_partials(root_path: str, claims: Claims, ttl: float, now: float | None = None) -> int:
    """Remove partial uploads untouched for ``ttl`` seconds; return how many.

    Walks the tree iteratively by descriptors (any depth), never one in flight.
    """
    now = time.time() if now is None else now
    active = claims.keys()
    removed = 0
    root = open_root(root_path)
    try:
        for fd, entries in scan_tree(root):
            dst = os.fstat(fd)
            for de in entries or ():
                name = de.name
                if not is_partial_name(name):
                    continue
                base = _partial_base(name)
                if (dst.st_dev, dst.st_ino, base) in active:
                    continue
                try:
                    if now - de.stat(follow_symlinks=False).st_mtime > ttl:
                        os.unlink(name, dir_fd=fd)
                        removed += 1
                except OSError:
                    pass
    finally:
        os.close(root)
    return removed


def _partial_base(name: str) -> str:
    """The partial a reserved name belongs to (its metadata files map to it)."""
    for tail in (".json.tmp", ".json"):
        if name.endswith(tail):
            return name[: -len(tail)]
    return name
