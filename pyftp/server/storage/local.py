"""The served folder: everything the server does to files, through the jail.

Every path a client names is normalised against the session's directory and walked by
descriptors from the root (:mod:`.jail`); each operation then acts relative to the
folder descriptor the walk found, never on a path string. ``OSError`` becomes the pyftp
error of its errno, with the client's virtual path in the message and never a real one.
Uploads (:mod:`.uploads`) start here and own their partial file by descriptor.

Import rule: errors, protocol, digests. Never transport (no sockets here).
"""
from __future__ import annotations

import builtins
import errno
import operator
import os
import posixpath
import stat as stat_
import threading
from collections import OrderedDict
from typing import Any, BinaryIO, Callable, Iterator, TypeVar, cast

from ...records import dataclass
from ... import digests
from ...errors import (AlreadyExistsError, BadRequestError, BusyError, IsDirectoryError,
                       NoSpaceError, NotDirectoryError, NotEmptyError, NotFoundError,
                       PermissionDeniedError, TooLargeError)
from ...protocol import is_partial_name, partial_name, wire_mtime
from .base import Entry, Names, StorageBackend, check_token, normalize, vparts
from .jail import (DIR_FLAGS, Outside, Place, disk_usage, open_root, os_error,
                   rename_noreplace, scan_tree, walk)
from .uploads import Claim, Claims, Upload, clean_partials

__all__ = ["Storage", "Upload", "Resolved", "DigestCache", "entry_for", "MAX_NEW_LEVELS"]

#: ``mkdir -p`` creates at most this many folders in one request
MAX_NEW_LEVELS = 256
_FILE_FLAGS = os.O_NOFOLLOW | os.O_CLOEXEC | getattr(os, "O_NONBLOCK", 0)
_os_error = os_error


@dataclass(frozen=True)
class Resolved:
    """A client path after the jail: its virtual form and its real location."""

    vpath: str
    real: str


_by_name = operator.itemgetter("name")
#: what a folder scan gives per entry: the entry, or its name (ls with names)
_S = TypeVar("_S", Entry, str)


def _name_of(shown: str) -> str:
    """A names listing's item without the ``/`` that marks a folder."""
    return shown[:-1] if shown.endswith("/") else shown


def entry_for(name: str, st: os.stat_result) -> Entry | None:
    """The wire form of one listing entry, or None for what pyftp does not serve."""
    if stat_.S_ISDIR(st.st_mode):
        kind, size = "dir", 0
    elif stat_.S_ISREG(st.st_mode):
        kind, size = "file", st.st_size
    else:
        return None  # sockets, FIFOs, devices: never served
    return {"name": name, "type": kind, "size": size, "mtime": wire_mtime(st.st_mtime_ns)}


class DigestCache:
    """Digests the server already knows, keyed by algorithm and file identity.

    The key holds inode, size, mtime and ctime in nanoseconds, so any write to the file
    (which changes mtime and ctime) makes the old digest unreachable.
    """

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._items: OrderedDict[tuple[Any, ...], str] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(st: os.stat_result) -> tuple[int, int, int, int, int]:
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def get(self, st: os.stat_result, algorithm: str = "sha256") -> str | None:
        k = (algorithm, *self.key(st))
        with self._lock:
            value = self._items.get(k)
            if value is not None:
                self._items.move_to_end(k)
            return value

    def put(self, st: os.stat_result, digest: str, algorithm: str = "sha256") -> None:
        k = (algorithm, *self.key(st))
        with self._lock:
            self._items[k] = digest
            self._items.move_to_end(k)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


def _lstat(place: Place, vpath: str) -> os.stat_result:
    try:
        return place.lstat()
    except OSError as exc:
        raise _os_error(exc, vpath) from exc


class Storage(StorageBackend):
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
        #: the uploads in flight, one per partial (see :class:`.uploads.Claims`)
        self.claims = Claims()

    # ------------------------------------------------------------------ the jail
    def place(self, cwd: str, path: str, *, follow: bool = True) -> tuple[str, Place]:
        """Walk a client path by descriptors: (virtual path, the open :class:`Place`).

        With ``follow=False`` the last component is not resolved (rm, rmdir, mv and
        upload targets act on a symlink itself, never on what it points to), but the
        folders leading to it still are. The caller closes the place.
        """
        vpath = normalize(cwd, path)
        parts = vparts(vpath)
        try:
            return vpath, walk(self.root, parts, follow=follow)
        except Outside:
            raise PermissionDeniedError(
                f"permission denied: {vpath} leads outside the served folder") from None
        except OSError as exc:
            raise _os_error(exc, vpath) from exc

    def resolve(self, cwd: str, path: str, *, follow: bool = True) -> Resolved:
        """The real location a client path walks to (for tests and messages; every
        operation acts on the walk's descriptors, never on this string)."""
        vpath, place = self.place(cwd, path, follow=follow)
        with place:
            return Resolved(vpath, os.path.join(self.root, *place.parts))

    # ------------------------------------------------------------------ queries
    def stat(self, cwd: str, path: str) -> Entry:
        vpath, place = self.place(cwd, path)
        with place:
            entry = entry_for(posixpath.basename(vpath) or "/", _lstat(place, vpath))
        if entry is None:
            raise NotFoundError(f"not a regular file or directory: {vpath}")
        return entry

    def chdir(self, cwd: str, path: str) -> str:
        # a cwd grown by relative cd's past the path limit is refused by normalize (it
        # is sent back in replies, and would no longer fit a frame)
        vpath, place = self.place(cwd, path)
        with place:
            if not stat_.S_ISDIR(_lstat(place, vpath).st_mode):
                raise NotDirectoryError(f"not a directory: {vpath}")
        return vpath

    def list(self, cwd: str, path: str) -> list[Entry]:
        """The entries of a directory, sorted by name; partials and escapes left out."""
        entries = self._scan(cwd, path, _entries, _same)
        entries.sort(key=_by_name)
        return entries

    def list_names(self, cwd: str, path: str) -> Names:
        """The names a directory listing would show, sorted, a folder's ending in ``/``.

        What :meth:`list` shows, without a stat per entry: the directory's own type
        records say file or folder (only a link is walked, to see where it leads).
        """
        names = self._scan(cwd, path, _names, _name_in)
        names.sort(key=_name_of)  # by name: "a" before "a.txt" whatever the suffix
        return names

    def _scan(self, cwd: str, path: str, scan: Callable[[str, int, Names], builtins.list[_S]],
              one: Callable[[Entry], _S]) -> builtins.list[_S]:
        vpath, place = self.place(cwd, path)
        with place:
            return _scan_place(self.root, place, vpath, scan, one)

    def open_read(self, cwd: str, path: str) -> tuple[BinaryIO, os.stat_result, str]:
        """Open a regular file for reading; return (file, stat, virtual path)."""
        vpath, place = self.place(cwd, path)
        with place:
            if not place.name:
                raise IsDirectoryError(f"is a directory: {vpath}")
            try:
                fd = os.open(place.name, os.O_RDONLY | _FILE_FLAGS, dir_fd=place.fd)
            except OSError as exc:
                raise _os_error(exc, vpath) from exc
        # fstat before fdopen: fdopen raises (and leaks the fd) on a directory
        st = os.fstat(fd)
        if stat_.S_ISDIR(st.st_mode):
            os.close(fd)
            raise IsDirectoryError(f"is a directory: {vpath}")
        if not stat_.S_ISREG(st.st_mode):
            os.close(fd)
            raise PermissionDeniedError(f"not a regular file: {vpath}")
        return os.fdopen(fd, "rb", buffering=0), st, vpath

    def digest(self, f: BinaryIO, st: os.stat_result, algorithm: str = "sha256") -> str:
        """The digest of an open file, from the cache when the file is unchanged."""
        known = self.digests.get(st, algorithm)
        if known is not None:
            return known
        h = digests.new(algorithm)
        # pread: its own read position, so a concurrent sendfile of the same file is unaffected
        pos = digests.hash_into(h, f.fileno())
        digest: str = h.hexdigest()
        if pos == st.st_size:
            self.digests.put(st, digest, algorithm)
        return digest

    def hash(self, cwd: str, path: str, algorithm: str = "sha256") -> tuple[str, int, str]:
        f, st, vpath = self.open_read(cwd, path)
        with f:
            return self.digest(f, st, algorithm), st.st_size, vpath

    # ------------------------------------------------------------------ changes
    def mkdir(self, cwd: str, path: str, parents: bool = False) -> str:
        vpath = self.normalize(cwd, path)
        self._writable(vpath)
        if parents:
            return self._makedirs(cwd, path)
        _vp, place = self.place(cwd, path, follow=False)
        with place:
            if not place.name:
                raise AlreadyExistsError(f"already exists: {vpath}")
            try:
                os.mkdir(place.name, dir_fd=place.fd)
            except OSError as exc:
                raise _os_error(exc, vpath) from exc
        return vpath

    def _makedirs(self, cwd: str, path: str) -> str:
        """mkdir -p, one folder at a time from the root, at most MAX_NEW_LEVELS new."""
        vpath = normalize(cwd, path)
        parts = vparts(vpath)
        made = 0
        fd = open_root(self.root)
        try:
            for i, name in enumerate(parts):
                try:
                    nfd = os.open(name, DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    # refused before the first new folder: a refused request changes nothing
                    if made + len(parts) - i > MAX_NEW_LEVELS:
                        raise BadRequestError(
                            f"mkdir: {vpath} would create more than {MAX_NEW_LEVELS} folders "
                            "in one request; create it in steps") from None
                    try:
                        os.mkdir(name, dir_fd=fd)
                        made += 1
                    except FileExistsError:
                        pass
                    nfd = self._descend(fd, name, parts[:i + 1])
                except OSError as exc:
                    if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                        raise
                    nfd = self._through_link(parts[:i + 1])
                os.close(fd)
                fd = nfd
        except OSError as exc:
            raise _os_error(exc, vpath) from exc
        finally:
            os.close(fd)
        return vpath

    def _descend(self, fd: int, name: str, parts: Names) -> int:
        try:
            return os.open(name, DIR_FLAGS, dir_fd=fd)
        except OSError as exc:
            if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            return self._through_link(parts)

    def _through_link(self, parts: Names) -> int:
        """A folder reached through an admin's link while making folders."""
        shown = "/".join(parts)
        _vp, place = self.place("/", "/" + shown)
        with place:
            if not place.name:
                return os.dup(place.fd)
            try:
                return os.open(place.name, DIR_FLAGS, dir_fd=place.fd)
            except NotADirectoryError:
                raise AlreadyExistsError(
                    f"already exists and is not a directory: /{shown}") from None

    def rm(self, cwd: str, path: str) -> str:
        vpath, place = self.place(cwd, path, follow=False)
        self._writable(vpath)
        with place:
            if not place.name or stat_.S_ISDIR(_lstat(place, vpath).st_mode):
                raise IsDirectoryError(f"is a directory: {vpath} (use rmdir)")
            try:
                os.unlink(place.name, dir_fd=place.fd)
            except OSError as exc:
                raise _os_error(exc, vpath) from exc
        return vpath

    def rmdir(self, cwd: str, path: str) -> str:
        vpath, place = self.place(cwd, path, follow=False)
        self._writable(vpath)
        with place:
            if not place.name:
                raise PermissionDeniedError("permission denied: the root folder cannot be removed")
            if not stat_.S_ISDIR(_lstat(place, vpath).st_mode):
                raise NotDirectoryError(f"not a directory: {vpath} (use rm)")
            try:
                fd = os.open(place.name, DIR_FLAGS, dir_fd=place.fd)
                try:
                    self._empty_of_partials(fd, vpath)
                finally:
                    os.close(fd)
                os.rmdir(place.name, dir_fd=place.fd)
            except OSError as exc:
                raise _os_error(exc, vpath) from exc
        return vpath

    def _empty_of_partials(self, fd: int, vpath: str) -> None:
        """Remove the leftover partials of a folder about to go, or raise why not."""
        # partial uploads are server bookkeeping: they do not make a folder "not empty"
        names = os.listdir(fd)
        if any(not is_partial_name(n) for n in names):
            raise NotEmptyError(f"directory not empty: {vpath}")
        if self.claims.in_folder(os.fstat(fd)):
            # an upload in flight would lose its partial and fail at the very end
            raise BusyError(f"busy: an upload into {vpath} is in progress; try again later")
        for n in names:
            try:
                os.unlink(n, dir_fd=fd)
            except FileNotFoundError:
                pass

    def mv(self, cwd: str, src: str, dst: str, overwrite: bool = False) -> tuple[str, str]:
        svpath, s = self.place(cwd, src, follow=False)
        try:
            dvpath, d = self.place(cwd, dst, follow=False)
        except BaseException:
            s.close()
            raise
        with s, d:
            self._writable(svpath)
            if not s.name or not d.name:
                raise PermissionDeniedError("permission denied: the root folder cannot be moved")
            sst = _lstat(s, svpath)
            if stat_.S_ISLNK(sst.st_mode) or (stat_.S_ISDIR(sst.st_mode)
                                               and _holds_symlink(s)):
                raise PermissionDeniedError(
                    f"permission denied: {svpath} is or holds a symbolic link; links are set "
                    "up by the server's admin and cannot be moved by clients")
            if dvpath == svpath:
                return svpath, dvpath
            if dvpath.startswith(svpath + "/"):
                raise BadRequestError(f"cannot move {svpath} into itself ({dvpath})")
            try:
                if overwrite:
                    self._replace(s, d, dvpath)
                else:
                    rename_noreplace(s.fd, s.name, d.fd, d.name)
            except OSError as exc:
                if exc.errno == errno.EEXIST:
                    raise AlreadyExistsError(
                        f"already exists: {dvpath} (pass overwrite to replace it)") from exc
                raise _os_error(exc, f"{svpath} -> {dvpath}") from exc
        return svpath, dvpath

    @staticmethod
    def _replace(s: Place, d: Place, dvpath: str) -> None:
        try:
            dst = d.lstat()
        except FileNotFoundError:
            dst = None
        if dst is not None and stat_.S_ISDIR(dst.st_mode):
            raise IsDirectoryError(f"is a directory: {dvpath}; a directory is never replaced")
        os.rename(s.name, d.name, src_dir_fd=s.fd, dst_dir_fd=d.fd)

    # ------------------------------------------------------------------ uploads
    def begin_upload(self, cwd: str, path: str, total: int, sha256: str | None = None,
                     *, overwrite: bool = False, resume: bool = True,
                     mtime: float | None = None,
                     owner: Callable[[], object] | None = None,
                     trailer: bool = False, token: str | None = None,
                     algorithm: str = "sha256") -> Upload:
        """Check everything a put needs before any payload, and claim the partial.

        Raises ``exists``, ``busy``, ``too_large``, ``no_space`` and friends here, so
        the client learns of them before it sends a byte.

        ``owner`` cuts the connection that makes this claim: a later put proving it is
        the same upload (its ``token``, or for a v1 put the same total and SHA-256)
        cuts it and continues the partial, which is what a client retrying after its
        connection died silently needs. ``token`` (feature ``resume_token``) is also
        what a trailer put must present to be offered a partial; :attr:`Upload.token`
        is the one to hand back to the client. ``sha256`` is the expected digest in
        ``algorithm`` (the session's, section 14 of the protocol).
        """
        check_token(token)
        vpath, place = self.place(cwd, path, follow=False)
        try:
            self._writable(vpath)
            if not place.name:
                raise IsDirectoryError("is a directory: /")
            if self.max_file_size is not None and total > self.max_file_size:
                raise TooLargeError(f"too large: {vpath} is {total} bytes; this server "
                                    f"accepts files up to {self.max_file_size} bytes")
            self._check_target(place, vpath, overwrite)
            up = self._claim(place, vpath, total, sha256, overwrite=overwrite, mtime=mtime,
                             owner=owner, trailer=trailer, token=token, algorithm=algorithm)
        except BaseException:
            place.close()
            raise
        try:
            up.open(resume and (sha256 is not None or trailer))
            self._check_space(up)
        except OSError as exc:
            up.abort()
            raise _os_error(exc, vpath) from exc
        except BaseException:
            up.abort()
            raise
        return up

    @staticmethod
    def _check_target(place: Place, vpath: str, overwrite: bool) -> None:
        try:
            st = place.lstat()
        except FileNotFoundError:
            return
        except OSError as exc:
            # a name the file system cannot hold (too long, say) is refused now, not
            # after the client has sent every byte
            raise _os_error(exc, vpath) from exc
        if stat_.S_ISDIR(st.st_mode):
            raise IsDirectoryError(f"is a directory: {vpath}")
        if not overwrite:
            raise AlreadyExistsError(f"already exists: {vpath} (use overwrite to replace it)")

    def _claim(self, place: Place, vpath: str, total: int, sha256: str | None,
               **kw: Any) -> Upload:
        """Claim the partial, keyed by what it is (folder identity + name), not by path:
        a second put reaching the same partial by any path gets ``busy``."""
        dst = os.fstat(place.fd)
        key = (dst.st_dev, dst.st_ino, partial_name(place.name))
        claim = Claim(total, sha256, kw["token"], kw.pop("owner"), algorithm=kw["algorithm"])
        self.claims.take(key, claim, vpath)
        # the upload owns the folder's descriptor from here on
        fd, place.fd = place.fd, -1
        up = Upload(self, vpath, fd, place.name, total, sha256, key=key, **kw)
        claim.upload = up
        return up

    def _check_space(self, up: Upload) -> None:
        """Free space minus the reserve minus what the other uploads in flight announced."""
        vfs = os.statvfs(up.dir_fd)
        room = vfs.f_bavail * vfs.f_frsize - self.min_free - self.claims.reserved(up)
        if up.remaining > room:
            raise NoSpaceError(f"no space: {up.vpath} needs {up.remaining} bytes, the server "
                               f"has {max(0, room)} free for it (uploads in flight count)")

    def clean_partials(self, ttl: float, now: float | None = None) -> int:
        """Remove partial uploads untouched for ``ttl`` seconds; return how many."""
        return clean_partials(self.root, self.claims, ttl, now)

    def disk_usage(self) -> tuple[int, int] | None: return disk_usage(self.root)


def _same(entry: Entry) -> Entry:
    return entry


def _name_in(entry: Entry) -> str:
    return str(entry["name"])


def _scan_place(root: str, place: Place, vpath: str, scan: Callable[[str, int, Names], list[_S]],
                one: Callable[[Entry], _S]) -> list[_S]:
    """``scan(root, fd, parts)`` of the folder at ``place``; of a file, ``one`` of its
    entry (like ``ls FILE``)."""
    try:
        fd = os.open(place.name, DIR_FLAGS, dir_fd=place.fd) if place.name \
            else os.dup(place.fd)
    except NotADirectoryError:
        entry = entry_for(posixpath.basename(vpath), _lstat(place, vpath))
        if entry is None:
            raise NotFoundError(f"not a regular file or directory: {vpath}") from None
        return [one(entry)]
    except OSError as exc:
        raise _os_error(exc, vpath) from exc
    try:
        return scan(root, fd, place.parts)
    except OSError as exc:
        raise _os_error(exc, vpath) from exc
    finally:
        os.close(fd)



def _entries(root: str, fd: int, parts: Names) -> list[Entry]:
    """The listing entries of the open folder ``fd`` (at ``parts`` below the root)."""
    return cast("list[Entry]", _scan_folder(root, fd, parts, names_only=False))


def _names(root: str, fd: int, parts: Names) -> list[str]:
    """:func:`_entries`' names alone (a folder's with ``/``), from the type records."""
    return cast("list[str]", _scan_folder(root, fd, parts, names_only=True))


def _scan_folder(root: str, fd: int, parts: Names, names_only: bool) -> list[Entry | str]:
    """What a listing shows of the open folder ``fd``: partials, specials and escapes
    left out. ``names_only``: names (a folder's with ``/``), with no stat but for links."""
    shown: list[Entry | str] = []
    with os.scandir(fd) as it:
        if names_only:
            return _scan_names(root, parts, it)
        for de in it:
            if is_partial_name(de.name):
                continue
            try:
                item = _shown(root, parts, de, names_only)
            except (OSError, Outside):
                continue  # vanished, dangling or outside: nothing to show
            if item is not None:
                shown.append(item)
    return shown


def _scan_names(root: str, parts: Names, it: Iterator[os.DirEntry[str]]) -> list[Entry | str]:
    """:func:`_scan_folder`'s names-only form, the loop of a long ``ls`` to a pipe: the
    type records answer for files and folders; anything else takes :func:`_shown`."""
    shown: list[Entry | str] = []
    add = shown.append
    for de in it:
        name = de.name
        if name[0] == "." and is_partial_name(name):
            continue
        if de.is_file(follow_symlinks=False):
            add(name)
        elif de.is_dir(follow_symlinks=False):
            add(name + "/")
        else:  # a link (described by what it leads to, inside the root) or a special
            try:
                item = _shown(root, parts, de, True)
            except (OSError, Outside):
                continue
            if item is not None:
                add(item)
    return shown


def _shown(root: str, parts: Names, de: os.DirEntry[str], names_only: bool) -> Entry | str | None:
    name = de.name
    if de.is_symlink():
        # walked like any path: a link leading out is never described
        with walk(root, parts + [name], follow=True) as target:
            entry = entry_for(name, target.lstat())
    elif not names_only:
        entry = entry_for(name, de.stat(follow_symlinks=False))
    else:  # the folder's type records say file or folder: no stat
        if de.is_dir(follow_symlinks=False):
            return name + "/"
        return name if de.is_file(follow_symlinks=False) else None
    if entry is None or not names_only:
        return entry
    return name + "/" if entry["type"] == "dir" else name


def _holds_symlink(place: Place) -> bool:
    """True if the folder at ``place`` holds a symbolic link anywhere below it.

    No request creates links, so keeping every link where the admin put it means a
    client can never move one into a checked path. Iterative, by descriptors.
    """
    try:
        fd = os.open(place.name, DIR_FLAGS, dir_fd=place.fd)
    except OSError:
        return True  # cannot look inside: do not move what we cannot vouch for
    try:
        for _fd, entries in scan_tree(fd):
            if entries is None:
                return True
            for de in entries:
                if de.is_symlink():
                    return True
    finally:
        os.close(fd)
    return False
