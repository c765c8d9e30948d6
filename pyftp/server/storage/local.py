"""The root jail and everything the server does to files.

Every path a client names goes through :meth:`Storage.resolve`: normalised against the
session's directory, joined to the root, symlinks resolved, and refused unless the
result is inside the root. ``OSError`` becomes the pyftp error of its errno, with the
client's virtual path in the message and never a real one.

Uploads live here too (:class:`Upload`): bytes go to a hidden partial file beside the
target, are hashed as they arrive, and are renamed into place only when complete and
matching. A partial is what a resumed upload continues; listings never show it.

Import rule: errors and protocol (the shared partial-file naming), and transport for its
positional-read helper (pread_into). No sockets, no client or server.
"""
from __future__ import annotations

import errno
import json
import operator
import os
import posixpath
import shutil
import stat as stat_
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

from ...errors import (AlreadyExistsError, BadRequestError, BusyError,
                     ChecksumMismatchError, InternalError, IsDirectoryError,
                     NoSpaceError, NotDirectoryError, NotEmptyError, NotFoundError,
                     PermissionDeniedError, RemoteError, TooLargeError)
from ...protocol import is_partial_name, mtime_ns, os_bytes, partial_name, wire_mtime
from ... import digests

__all__ = ["Storage", "Upload", "Resolved", "DigestCache", "entry_for"]

#: how long a put taking over an upload waits for the cut connection to let go
TAKEOVER_WAIT = 5.0
#: uploads from this size on record their metadata when they start (so a partial
#: survives even a server crash); smaller ones only if they are cut off. The metadata
#: is a create and two renames: for a small file it doubled the cost of a put
META_MIN = 1 << 20


_ERRNO = {
    errno.ENOENT: NotFoundError, errno.EEXIST: AlreadyExistsError,
    errno.EISDIR: IsDirectoryError, errno.ENOTDIR: NotDirectoryError,
    errno.ENOTEMPTY: NotEmptyError, errno.EACCES: PermissionDeniedError,
    errno.EPERM: PermissionDeniedError, errno.EROFS: PermissionDeniedError,
    errno.ENOSPC: NoSpaceError, errno.EDQUOT: NoSpaceError, errno.EFBIG: TooLargeError,
    errno.ENAMETOOLONG: BadRequestError, errno.EINVAL: BadRequestError,
    errno.ELOOP: NotFoundError, errno.EBUSY: BusyError,
}


def _os_error(exc: OSError, vpath: str) -> RemoteError:
    """Translate an OSError into the pyftp error for it, naming the virtual path."""
    cls = _ERRNO.get(exc.errno or 0, InternalError)
    reason = {
        NotFoundError: "not found", AlreadyExistsError: "already exists",
        IsDirectoryError: "is a directory", NotDirectoryError: "not a directory",
        NotEmptyError: "directory not empty", PermissionDeniedError: "permission denied",
        NoSpaceError: "no space left on the server", TooLargeError: "file too large",
        BadRequestError: "invalid name", BusyError: "busy",
    }.get(cls, "server file system error")
    return cls(f"{reason}: {vpath}")


@dataclass(frozen=True)
class Resolved:
    """A client path after the jail: its virtual form and its real location."""

    vpath: str
    real: str


_by_name = operator.itemgetter("name")


def entry_for(name: str, st: os.stat_result) -> dict | None:
    """The wire form of one listing entry, or None for what pyftp does not serve."""
    if stat_.S_ISDIR(st.st_mode):
        kind, size = "dir", 0
    elif stat_.S_ISREG(st.st_mode):
        kind, size = "file", st.st_size
    else:
        return None  # sockets, FIFOs, devices: never served
    return {"name": name, "type": kind, "size": size, "mtime": wire_mtime(st.st_mtime_ns)}


class DigestCache:
    """SHA-256 digests the server already knows, keyed by file identity.

    The key holds inode, size, mtime and ctime in nanoseconds, so any write to the file
    (which changes mtime and ctime) makes the old digest unreachable.
    """

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._items: OrderedDict[tuple, str] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(st: os.stat_result) -> tuple:
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def get(self, st: os.stat_result) -> str | None:
        k = self.key(st)
        with self._lock:
            value = self._items.get(k)
            if value is not None:
                self._items.move_to_end(k)
            return value

    def put(self, st: os.stat_result, digest: str) -> None:
        with self._lock:
            self._items[self.key(st)] = digest
            self._items.move_to_end(self.key(st))
            while len(self._items) > self._size:
                self._items.popitem(last=False)


class Storage:
    """The served folder. All methods take the session's cwd and a client path."""

    def __init__(self, root: str, *, read_only: bool = False,
                 max_file_size: int | None = None, min_free: int = 0) -> None:
        real = os.path.realpath(root)
        if not os.path.isdir(real):
            raise NotADirectoryError(f"{root} is not a directory")
        self.root = real
        self.read_only = read_only
        self.max_file_size = max_file_size
        self.min_free = min_free
        self.digests = DigestCache()
        #: real path -> (total, sha256, how to cut the connection holding the claim)
        self._uploads: dict[str, tuple[int, str | None, Callable[[], object] | None]] = {}
        self._uploads_lock = threading.Condition(threading.Lock())

    # ------------------------------------------------------------------ the jail
    def normalize(self, cwd: str, path: str) -> str:
        """The absolute virtual path for ``path`` seen from ``cwd`` (no I/O)."""
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
        return "/" + vpath.lstrip("/")

    def resolve(self, cwd: str, path: str, *, follow: bool = True) -> Resolved:
        """Map a client path to a real path inside the root, or raise.

        With ``follow=False`` the last component is not resolved (rm, rmdir, mv and
        upload targets act on a symlink itself, never on what it points to), but the
        folder holding it still is.
        """
        vpath = self.normalize(cwd, path)
        parts = [p for p in vpath.split("/") if p]
        for part in parts:
            if is_partial_name(part):
                raise PermissionDeniedError(f"permission denied: {vpath} is a reserved name")
        if follow or not parts:
            real = self._realpath(parts)
        else:
            parent = self._realpath(parts[:-1])
            self._check_inside(parent, vpath)
            real = os.path.join(parent, parts[-1])
        self._check_inside(real, vpath)
        return Resolved(vpath, real)

    def _realpath(self, parts: list[str]) -> str:
        """``os.path.realpath(root/parts...)``, looking only below the root.

        The root was made real at start, so its own components are not looked up again
        (realpath would lstat each of them on every request); each part below it costs
        one lstat. From the first symlink on, the rest goes to ``os.path.realpath`` whole,
        so links resolve by its rules. A missing part ends the walk with the rest joined
        as written, as realpath does. ``parts`` come from :meth:`normalize`: no '', '.'
        or '..' among them.
        """
        path = self.root
        for i, part in enumerate(parts):
            step = os.path.join(path, part)
            try:
                mode = os.lstat(step).st_mode
            except OSError:
                return os.path.join(step, *parts[i + 1:])
            if stat_.S_ISLNK(mode):
                return os.path.realpath(os.path.join(step, *parts[i + 1:]))
            path = step
        return path

    def _check_inside(self, real: str, vpath: str) -> None:
        if real != self.root and not real.startswith(self.root + os.sep):
            raise PermissionDeniedError(f"permission denied: {vpath} leads outside the served folder")

    def _stat(self, r: Resolved) -> os.stat_result:
        try:
            return os.stat(r.real)
        except OSError as exc:
            raise _os_error(exc, r.vpath) from exc

    def _writable(self, vpath: str) -> None:
        if self.read_only:
            raise PermissionDeniedError(f"permission denied: the server is read-only ({vpath})")

    # ------------------------------------------------------------------ queries
    def stat(self, cwd: str, path: str) -> dict:
        r = self.resolve(cwd, path)
        entry = entry_for(posixpath.basename(r.vpath) or "/", self._stat(r))
        if entry is None:
            raise NotFoundError(f"not a regular file or directory: {r.vpath}")
        return entry

    def chdir(self, cwd: str, path: str) -> str:
        r = self.resolve(cwd, path)
        if not stat_.S_ISDIR(self._stat(r).st_mode):
            raise NotDirectoryError(f"not a directory: {r.vpath}")
        return r.vpath

    def list(self, cwd: str, path: str) -> list[dict]:
        """The entries of a directory, sorted by name; partials and escapes left out."""
        r = self.resolve(cwd, path)
        entries = []
        inside = self.root + os.sep
        try:
            # no stat of the folder first: scandir itself says when it is not one
            with os.scandir(r.real) as it:
                for de in it:
                    name = de.name
                    if is_partial_name(name):
                        continue
                    try:
                        if de.is_symlink():
                            target = os.path.realpath(de.path)
                            if target != self.root and not target.startswith(inside):
                                continue  # never describe anything outside the root
                        est = de.stat()
                    except OSError:
                        continue  # vanished or dangling: nothing to show
                    entry = entry_for(name, est)
                    if entry is not None:
                        entries.append(entry)
        except NotADirectoryError:
            entry = entry_for(posixpath.basename(r.vpath), self._stat(r))
            if entry is None:
                raise NotFoundError(f"not a regular file or directory: {r.vpath}") from None
            return [entry]  # like ls FILE
        except OSError as exc:
            raise _os_error(exc, r.vpath) from exc
        entries.sort(key=_by_name)
        return entries

    def open_read(self, cwd: str, path: str):
        """Open a regular file for reading; return (file, stat, virtual path)."""
        r = self.resolve(cwd, path)
        try:
            fd = os.open(r.real, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        except OSError as exc:
            raise _os_error(exc, r.vpath) from exc
        # fstat before fdopen: fdopen raises (and leaks the fd) on a directory
        st = os.fstat(fd)
        if stat_.S_ISDIR(st.st_mode):
            os.close(fd)
            raise IsDirectoryError(f"is a directory: {r.vpath}")
        if not stat_.S_ISREG(st.st_mode):
            os.close(fd)
            raise PermissionDeniedError(f"not a regular file: {r.vpath}")
        return os.fdopen(fd, "rb", buffering=0), st, r.vpath

    def digest(self, f, st: os.stat_result) -> str:
        """SHA-256 of an open file, from the cache when the file is unchanged."""
        known = self.digests.get(st)
        if known is not None:
            return known
        h = digests.new()
        # pread: its own read position, so a concurrent sendfile of the same file is unaffected
        pos = digests.hash_into(h, f.fileno())
        digest = h.hexdigest()
        if pos == st.st_size:
            self.digests.put(st, digest)
        return digest

    def hash(self, cwd: str, path: str) -> tuple[str, int, str]:
        f, st, vpath = self.open_read(cwd, path)
        with f:
            return self.digest(f, st), st.st_size, vpath

    # ------------------------------------------------------------------ changes
    def mkdir(self, cwd: str, path: str, parents: bool = False) -> str:
        r = self.resolve(cwd, path, follow=False)
        self._writable(r.vpath)
        if r.vpath == "/":
            if parents:
                return "/"  # like mkdir -p: a folder that exists is success
            raise AlreadyExistsError("already exists: /")
        try:
            if parents:
                os.makedirs(r.real, exist_ok=True)
                if not os.path.isdir(r.real):
                    raise AlreadyExistsError(f"already exists and is not a directory: {r.vpath}")
                self.resolve(cwd, path)  # the created chain must still be inside
            else:
                os.mkdir(r.real)
        except OSError as exc:
            raise _os_error(exc, r.vpath) from exc
        return r.vpath

    def rm(self, cwd: str, path: str) -> str:
        r = self.resolve(cwd, path, follow=False)
        self._writable(r.vpath)
        try:
            if os.path.isdir(r.real) and not os.path.islink(r.real):
                raise IsDirectoryError(f"is a directory: {r.vpath} (use rmdir)")
            os.unlink(r.real)
        except OSError as exc:
            raise _os_error(exc, r.vpath) from exc
        return r.vpath

    def rmdir(self, cwd: str, path: str) -> str:
        r = self.resolve(cwd, path, follow=False)
        self._writable(r.vpath)
        if r.vpath == "/":
            raise PermissionDeniedError("permission denied: the root folder cannot be removed")
        try:
            if os.path.islink(r.real) or not os.path.isdir(r.real):
                if not os.path.lexists(r.real):
                    raise NotFoundError(f"not found: {r.vpath}")
                raise NotDirectoryError(f"not a directory: {r.vpath} (use rm)")
            # partial uploads are server bookkeeping: they do not make a folder "not empty"
            names = os.listdir(r.real)
            if any(not is_partial_name(n) for n in names):
                raise NotEmptyError(f"directory not empty: {r.vpath}")
            with self._uploads_lock:
                uploading = any(os.path.dirname(u) == r.real for u in self._uploads)
            if uploading:
                # an upload in flight would lose its partial and fail at the very end
                raise BusyError(f"busy: an upload into {r.vpath} is in progress; try again later")
            for n in names:
                os.unlink(os.path.join(r.real, n))
            os.rmdir(r.real)
        except OSError as exc:
            raise _os_error(exc, r.vpath) from exc
        return r.vpath

    def mv(self, cwd: str, src: str, dst: str, overwrite: bool = False) -> tuple[str, str]:
        s = self.resolve(cwd, src, follow=False)
        d = self.resolve(cwd, dst, follow=False)
        self._writable(s.vpath)
        if s.vpath == "/" or d.vpath == "/":
            raise PermissionDeniedError("permission denied: the root folder cannot be moved")
        if not os.path.lexists(s.real):
            raise NotFoundError(f"not found: {s.vpath}")
        if os.path.islink(s.real) or (os.path.isdir(s.real) and _holds_symlink(s.real)):
            raise PermissionDeniedError(
                f"permission denied: {s.vpath} is or holds a symbolic link; links are set "
                "up by the server's admin and cannot be moved by clients")
        if d.vpath == s.vpath:
            return s.vpath, d.vpath
        if d.vpath.startswith(s.vpath + "/"):
            raise BadRequestError(f"cannot move {s.vpath} into itself ({d.vpath})")
        try:
            if os.path.lexists(d.real):
                if not overwrite:
                    raise AlreadyExistsError(f"already exists: {d.vpath} (pass overwrite to replace it)")
                if os.path.isdir(d.real) and not os.path.islink(d.real):
                    raise IsDirectoryError(f"is a directory: {d.vpath}; a directory is never replaced")
                os.replace(s.real, d.real)
            else:
                os.rename(s.real, d.real)
        except OSError as exc:
            raise _os_error(exc, f"{s.vpath} -> {d.vpath}") from exc
        return s.vpath, d.vpath

    # ------------------------------------------------------------------ uploads
    def begin_upload(self, cwd: str, path: str, total: int, sha256: str | None = None,
                     *, overwrite: bool = False, resume: bool = True,
                     mtime: float | None = None,
                     owner: Callable[[], object] | None = None,
                     trailer: bool = False) -> "Upload":
        """Check everything a put needs before any payload, and claim the target.

        Raises ``exists``, ``busy``, ``too_large``, ``no_space`` and friends here, so
        the client learns of them before it sends a byte.

        ``owner`` cuts the connection that makes this claim. With it, a later put of
        the very same file (same total and SHA-256) does not get ``busy``: it cuts
        this connection and continues its partial. That is what a client retrying
        after its connection died silently needs (the dead session would otherwise
        hold the claim until its idle timeout); other content still gets ``busy``.

        ``trailer``: the SHA-256 comes after the data (protocol feature
        ``sha256_trailer``), so ``sha256`` is None. A partial of the same ``total`` is
        offered for resume with the digest of its bytes (:attr:`Upload.prefix_sha256`)
        for the client to check, and a takeover needs the same total and ``mtime``.
        Publishing still waits for the whole file's digest (:meth:`Upload.commit`).
        """
        r = self.resolve(cwd, path, follow=False)
        self._writable(r.vpath)
        if r.vpath == "/":
            raise IsDirectoryError("is a directory: /")
        if self.max_file_size is not None and total > self.max_file_size:
            raise TooLargeError(f"too large: {r.vpath} is {total} bytes; this server "
                                f"accepts files up to {self.max_file_size} bytes")
        parent = os.path.dirname(r.real)
        pvpath = posixpath.dirname(r.vpath)
        try:
            pst = os.stat(parent)
        except OSError as exc:
            raise _os_error(exc, pvpath) from exc
        if not stat_.S_ISDIR(pst.st_mode):
            raise NotDirectoryError(f"not a directory: {pvpath}")
        try:
            os.lstat(r.real)
        except FileNotFoundError:
            pass
        except OSError as exc:
            # a name the file system cannot hold (too long, say) is refused now, not
            # after the client has sent every byte
            raise _os_error(exc, r.vpath) from exc
        if os.path.isdir(r.real):
            raise IsDirectoryError(f"is a directory: {r.vpath}")
        if os.path.lexists(r.real) and not overwrite:
            raise AlreadyExistsError(f"already exists: {r.vpath} (use overwrite to replace it)")
        # what makes a later put "the very same file" for a takeover; a wrong guess in
        # trailer mode costs only a cut connection, as the digest still gates publishing
        key = sha256 if not trailer or mtime is None else f"trailer:{mtime!r}"
        with self._uploads_lock:
            holder = self._uploads.get(r.real)
            if (holder is not None and holder[2] is not None and key is not None
                    and holder[:2] == (total, key)):
                holder[2]()  # the same file again: take the upload over
                self._uploads_lock.wait_for(lambda: r.real not in self._uploads, TAKEOVER_WAIT)
                holder = self._uploads.get(r.real)
            if holder is not None:
                raise BusyError(f"busy: another upload to {r.vpath} is in progress; try again later")
            self._uploads[r.real] = (total, key, owner)
        try:
            up = Upload(self, r, total, sha256, overwrite, mtime, trailer=trailer)
            up.open(resume and (sha256 is not None or trailer))
            free = shutil.disk_usage(parent).free
            if total - up.offset > free - self.min_free:
                up.abort()
                raise NoSpaceError(f"no space: {r.vpath} needs {total - up.offset} bytes, "
                                   f"the server has {max(0, free - self.min_free)} free")
        except OSError as exc:
            self._release(r.real)
            raise _os_error(exc, r.vpath) from exc
        except BaseException:
            self._release(r.real)
            raise
        return up

    def _release(self, real: str) -> None:
        with self._uploads_lock:
            self._uploads.pop(real, None)
            self._uploads_lock.notify_all()

    def clean_partials(self, ttl: float, now: float | None = None) -> int:
        """Remove partial uploads untouched for ``ttl`` seconds; return how many."""
        now = time.time() if now is None else now
        with self._uploads_lock:
            active = {os.path.join(os.path.dirname(u), partial_name(os.path.basename(u)))
                      for u in self._uploads}
        removed = 0
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                if not is_partial_name(name):
                    continue
                full = os.path.join(dirpath, name)
                busy = any(full.startswith(a) for a in active)
                try:
                    if not busy and now - os.lstat(full).st_mtime > ttl:
                        os.unlink(full)
                        removed += 1
                except OSError:
                    pass
        return removed


def _holds_symlink(real: str) -> bool:
    """True if the tree under ``real`` holds a symbolic link (none is followed).

    The jail checks a path, then uses it. If a client could rename a link that leads
    out (or a folder holding one) into a checked path in between, from a second
    connection, the use would land outside the root. No request creates links, so
    keeping every link where the admin put it closes that race for all operations.
    """
    stack = [real]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                for de in it:
                    if de.is_symlink():
                        return True
                    if de.is_dir(follow_symlinks=False):
                        stack.append(de.path)
        except OSError:
            return True  # cannot look inside: do not move what we cannot vouch for
    return False




class Upload:
    """One put in progress: a claimed target, its partial file and a running hash."""

    def __init__(self, storage: Storage, r: Resolved, total: int, sha256: str | None,
                 overwrite: bool, mtime: float | None, *, trailer: bool = False) -> None:
        self.storage = storage
        #: the digest arrives after the data (set :attr:`expected` before commit)
        self.trailer = trailer
        #: SHA-256 of the kept bytes of a resumed trailer upload, for the client to check
        self.prefix_sha256: str | None = None
        self.vpath = r.vpath
        self.target = r.real
        self.total = total
        self.expected = sha256
        self.overwrite = overwrite
        self.mtime = mtime
        self.partial = os.path.join(os.path.dirname(r.real), partial_name(os.path.basename(r.real)))
        self.meta = self.partial + ".json"
        self.offset = 0
        self.received = 0
        self._fd: int | None = None
        self._hash = digests.new()
        self._released = False
        self._meta_written = True  # until open() starts a new partial without it

    def open(self, resume: bool) -> None:
        """Continue a partial of the very same file (same total and SHA-256), else start."""
        if resume and self._matching_partial():
            fd = os.open(self.partial, os.O_RDWR | os.O_APPEND)
            size = os.fstat(fd).st_size
            if size <= self.total:
                digests.hash_into(self._hash, fd, 0, size)
                self._fd, self.offset = fd, size
                if self.trailer:
                    self.prefix_sha256 = self._hash.copy().hexdigest()
                return
            os.close(fd)
        self._fd = os.open(self.partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self._meta_written = False
        if self.total >= META_MIN:
            self._write_meta()
        else:
            try:  # an older upload's metadata must not describe this partial
                os.unlink(self.meta)
            except FileNotFoundError:
                pass

    def _write_meta(self) -> None:
        tmp = self.meta + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"total": self.total, "sha256": self.expected}, f)
        os.replace(tmp, self.meta)
        self._meta_written = True

    def _matching_partial(self) -> bool:
        try:
            with open(self.meta) as f:
                meta = json.load(f)
        except (OSError, ValueError):
            return False
        # trailer mode knows no digest yet: the same total is enough to offer the
        # partial, because the client checks prefix_sha256 before sending the rest
        return (isinstance(meta, dict) and meta.get("total") == self.total
                and (self.trailer or meta.get("sha256") == self.expected)
                and os.path.isfile(self.partial))

    def restart(self) -> None:
        """Empty a resumed partial and start from byte 0 (the client's prefix differed)."""
        assert self._fd is not None
        try:
            os.ftruncate(self._fd, 0)  # O_APPEND: the next write lands at 0
        except OSError as exc:
            raise _os_error(exc, self.vpath) from exc
        self._hash = digests.new()
        self.offset = self.received = 0
        self.prefix_sha256 = None

    @property
    def remaining(self) -> int:
        return self.total - self.offset

    @property
    def hasher(self):
        """The running SHA-256 of the partial: a receiver may feed it on another thread
        (then it writes with ``hashed=True``) so hashing overlaps the socket and disk."""
        return self._hash

    def write(self, data, *, hashed: bool = False) -> None:
        """Append received bytes to the partial and (unless ``hashed``) to the hash."""
        fd = self._fd
        view = memoryview(data)
        if not hashed:
            self._hash.update(view)
        try:
            while view:
                n = os.write(fd, view)
                view = view[n:]
        except OSError as exc:
            raise _os_error(exc, self.vpath) from exc
        self.received += len(data)

    def commit(self) -> str:
        """Verify the whole file and publish it under its real name; return its SHA-256."""
        assert self._fd is not None
        try:
            os.close(self._fd)
        finally:
            self._fd = None
        digest = self._hash.hexdigest()
        try:
            size = os.path.getsize(self.partial)
            if size != self.total:
                self.discard()
                raise ChecksumMismatchError(f"checksum mismatch: {self.vpath} has {size} bytes, "
                                            f"expected {self.total}; upload it again")
            if self.expected and digest != self.expected:
                self.discard()
                raise ChecksumMismatchError(
                    f"checksum mismatch: {self.vpath} arrived with SHA-256 {digest[:12]}..., "
                    f"expected {self.expected[:12]}...; upload it again")
            if self.mtime is not None:
                ns = mtime_ns(self.mtime)
                os.utime(self.partial, ns=(ns, ns))
            if not self.overwrite and os.path.lexists(self.target):
                self.discard()
                raise AlreadyExistsError(f"already exists: {self.vpath} (created while uploading)")
            try:
                os.replace(self.partial, self.target)
            except OSError:
                # e.g. the name became a non-empty folder meanwhile: this partial could
                # never be published, and a resume would only fail the same way again
                self.discard()
                raise
            if self._meta_written:
                try:
                    os.unlink(self.meta)
                except FileNotFoundError:
                    pass
            self.storage.digests.put(os.stat(self.target), digest)
        except OSError as exc:
            raise _os_error(exc, self.vpath) from exc
        finally:
            self.release()
        return digest

    def abort(self) -> None:
        """Stop without publishing; keep the partial so a later put can resume it."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self.offset + self.received == 0 or (self.expected is None and not self.trailer):
            self.discard()  # nothing worth keeping, or nothing to verify a resume with
        elif not self._meta_written and os.path.exists(self.partial):
            try:
                self._write_meta()  # a small upload was cut: now it is worth resuming
            except OSError:
                self.discard()
        self.release()

    def discard(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        for p in (self.partial, self.meta):
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass

    def release(self) -> None:
        if not self._released:
            self._released = True
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            self.storage._release(self.target)
