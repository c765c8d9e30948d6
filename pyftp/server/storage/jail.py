"""The jail: every client path walked component by component from the root's descriptor.

A path is never handed to the kernel whole. The walk opens the root, then each folder
with ``O_NOFOLLOW | O_DIRECTORY`` relative to the one before, so no component can turn
into a link between a check and its use, whoever changes the share meanwhile (a local
process swapping a folder for a symlink included). Symbolic links the admin put inside
the root are followed by reading them and walking their target the same way: one that
leads out is refused. What a walk returns is the descriptor of the folder holding the
last component plus that component's name; every operation then acts relative to it
(``dir_fd=``), never on a path string.

Also here: the OSError -> pyftp error table, an atomic rename that never replaces
(``renameat2(RENAME_NOREPLACE)``, else link + unlink), and the share's disk usage.

Import rule: errors and protocol only. Never transport (no sockets here).
"""
from __future__ import annotations

import ctypes
import errno
import os
import stat as stat_
from collections.abc import Iterator
from typing import Any

from ...errors import (AlreadyExistsError, BadRequestError, BusyError, InternalError,
                       IsDirectoryError, NoSpaceError, NotDirectoryError, NotEmptyError,
                       NotFoundError, PermissionDeniedError, RemoteError, TooLargeError)
from ...protocol import os_bytes

__all__ = ["Place", "Outside", "walk", "open_root", "rename_noreplace", "os_error",
           "disk_usage", "DIR_FLAGS", "MAX_HOPS"]

#: how a folder is opened during a walk: never through a link
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
#: symbolic links followed in one walk before it is called a loop (as the kernel does)
MAX_HOPS = 40

_ERRNO = {
    errno.ENOENT: NotFoundError, errno.EEXIST: AlreadyExistsError,
    errno.EISDIR: IsDirectoryError, errno.ENOTDIR: NotDirectoryError,
    errno.ENOTEMPTY: NotEmptyError, errno.EACCES: PermissionDeniedError,
    errno.EPERM: PermissionDeniedError, errno.EROFS: PermissionDeniedError,
    errno.ENOSPC: NoSpaceError, errno.EDQUOT: NoSpaceError, errno.EFBIG: TooLargeError,
    errno.ENAMETOOLONG: BadRequestError, errno.EINVAL: BadRequestError,
    errno.ELOOP: NotFoundError, errno.EBUSY: BusyError,
    errno.EMFILE: BusyError, errno.ENFILE: BusyError,  # out of descriptors: for now
}
_REASON = {
    NotFoundError: "not found", AlreadyExistsError: "already exists",
    IsDirectoryError: "is a directory", NotDirectoryError: "not a directory",
    NotEmptyError: "directory not empty", PermissionDeniedError: "permission denied",
    NoSpaceError: "no space left on the server", TooLargeError: "file too large",
    BadRequestError: "invalid name", BusyError: "busy",
}


def os_error(exc: OSError, vpath: str) -> RemoteError:
    """Translate an OSError into the pyftp error for it, naming the virtual path."""
    cls = _ERRNO.get(exc.errno or 0, InternalError)
    return cls(f"{_REASON.get(cls, 'server file system error')}: {vpath}")


class Outside(Exception):
    """A symbolic link on the way leads out of the root."""


class Place:
    """Where a walk ended: an open folder and a name in it ('' = the folder itself).

    ``parts`` is the real location below the root (for messages and tests only; no
    operation uses it). Close it (or use ``with``) when done.
    """

    __slots__ = ("fd", "name", "parts")

    def __init__(self, fd: int, name: str, parts: list[str]) -> None:
        self.fd, self.name, self.parts = fd, name, parts

    def lstat(self) -> os.stat_result:
        if not self.name:
            return os.fstat(self.fd)
        return os.stat(self.name, dir_fd=self.fd, follow_symlinks=False)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> "Place":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_root(root: str) -> int:
    return os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def descend(fd: int, parts: list[str]) -> int:
    """The folder ``parts`` below ``fd``, opened step by step without following links.

    Takes ``fd`` over: it is closed on the way (and on failure)."""
    try:
        for name in parts:
            nfd = os.open(name, DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = nfd
    except BaseException:
        os.close(fd)
        raise
    return fd


def _reopen(root: str, parts: list[str]) -> int:
    """A fresh descriptor of root/parts, walked again (used after a '..')."""
    return descend(open_root(root), parts)


def _below(root: str, target: str) -> list[str]:
    """The components below the root of an absolute link target, or Outside."""
    target = os.path.normpath(target)
    if target != root and not target.startswith(root + os.sep):
        # the root itself may be reached by another spelling (a link above it)
        target = os.path.realpath(target)
        if target != root and not target.startswith(root + os.sep):
            raise Outside(target)
    return [p for p in target[len(root):].split(os.sep) if p]


def walk(root: str, parts: list[str], *, follow: bool) -> Place:
    """Walk ``parts`` (no '', '.' or '..': a normalised virtual path) below ``root``.

    With ``follow`` a link in the last position is followed too (get, ls, cd); without
    it the last component is what is acted on (rm, mv, put's target). A missing last
    component is returned as is (it may be about to be created); a missing folder on
    the way raises FileNotFoundError. Raises :class:`Outside` for a link leading out.
    """
    pending = list(reversed(parts))
    cur: list[str] = []
    fd = open_root(root)
    hops = 0
    try:
        while pending:
            name = pending.pop()
            if name in ("", "."):
                continue
            if name == "..":
                if not cur:
                    raise Outside("..")
                cur.pop()
                os.close(fd)
                fd = -1
                fd = _reopen(root, cur)
                continue
            if not pending and not follow:
                return Place(fd, name, cur + [name])
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                if not pending:
                    return Place(fd, name, cur + [name])
                raise
            if stat_.S_ISLNK(st.st_mode):
                hops += 1
                if hops > MAX_HOPS:
                    raise OSError(errno.ELOOP, "too many levels of symbolic links")
                target = os.readlink(name, dir_fd=fd)
                if target.startswith("/"):
                    below = _below(root, target)
                    os.close(fd)
                    fd = -1
                    fd, cur = open_root(root), []
                    pending.extend(reversed(below))
                else:
                    pending.extend(reversed(target.split("/")))
                continue
            if not pending:
                return Place(fd, name, cur + [name])
            # O_NOFOLLOW: if the name became a link since the stat, this fails
            nfd = os.open(name, DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = nfd
            cur.append(name)
        return Place(fd, "", cur)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        raise


# ------------------------------------------------------------------ renames
_renameat2: Any  # a libc function, or None where libc lacks it
try:
    _renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    _renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                           ctypes.c_uint]
except (OSError, AttributeError):  # pragma: no cover - libc without renameat2
    _renameat2 = None
_RENAME_NOREPLACE = 1


def disk_usage(path: str) -> tuple[int, int]:
    """(total, free) bytes of the file system holding ``path``, as ``df`` shows them;
    free is what an unprivileged writer may still use (df's Avail)."""
    vfs = os.statvfs(path)
    return vfs.f_blocks * vfs.f_frsize, vfs.f_bavail * vfs.f_frsize


def rename_noreplace(src_dir: int, src: str, dst_dir: int, dst: str) -> None:
    """Rename without ever replacing ``dst``: EEXIST if it exists, atomically."""
    if _renameat2 is not None:
        if _renameat2(src_dir, os_bytes(src), dst_dir, os_bytes(dst), _RENAME_NOREPLACE) == 0:
            return
        e = ctypes.get_errno()
        # ENOSYS: an old kernel; EINVAL: a file system without the flag (or a move
        # into itself, which the fallback refuses as well)
        if e not in (errno.ENOSYS, errno.EINVAL):
            raise OSError(e, os.strerror(e))
    st = os.stat(src, dir_fd=src_dir, follow_symlinks=False)
    if stat_.S_ISDIR(st.st_mode):
        # folders cannot be hard-linked: the kernel's rename of a folder onto an
        # existing name fails anyway unless that name is an empty folder
        try:
            os.stat(dst, dir_fd=dst_dir, follow_symlinks=False)
        except FileNotFoundError:
            os.rename(src, dst, src_dir_fd=src_dir, dst_dir_fd=dst_dir)
            return
        raise OSError(errno.EEXIST, "exists")
    os.link(src, dst, src_dir_fd=src_dir, dst_dir_fd=dst_dir, follow_symlinks=False)
    os.unlink(src, dir_fd=src_dir)


def _ident(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def _up(fd: int, names: list[str], idents: list[tuple[int, int] | None], base_fd: int) -> int:
    """The parent of the folder ``fd`` (at ``names``): by '..' if that leads to the
    very folder the walk came down through, else walked again from ``base_fd``.
    Takes ``fd`` over; on failure it is closed."""
    names.pop()
    idents.pop()
    try:
        up = os.open("..", DIR_FLAGS, dir_fd=fd)
    finally:
        os.close(fd)
    if _ident(up) == idents[-1]:
        return up
    os.close(up)  # moved meanwhile: from the top again, by name
    fd = descend(os.dup(base_fd), names)
    idents[1:] = [None] * len(names)  # unknown now: the next '..' re-walks too
    return fd


def scan_tree(base_fd: int) -> Iterator[tuple[int, list[os.DirEntry[str]] | None]]:
    """Yield ``(fd, entries)`` for the folder ``base_fd`` and every folder below it.

    Iterative (a tree a thousand levels deep is no deeper for it than a flat one) and
    by descriptors: each folder is opened with ``O_NOFOLLOW`` from its parent, going
    back up by '..' only to a folder of the identity it came down through, so a folder
    swapped for a link is skipped, never followed, and the work grows with the size of
    the tree, not its size times its depth. Holds one descriptor at a time besides
    ``base_fd``; ``fd`` is valid until the next item is asked for. Unreadable folders
    are yielded with ``entries`` None.
    """
    # depth-first: an entry's parent is on the current path when it is popped
    stack: list[tuple[int, str | None]] = [(0, None)]
    names: list[str] = []
    idents: list[tuple[int, int] | None] = [_ident(base_fd)]
    fd = os.dup(base_fd)
    try:
        while stack:
            depth, name = stack.pop()
            try:
                while len(names) >= depth and names:
                    held, fd = fd, -1  # _up takes it over (closed even on failure)
                    fd = _up(held, names, idents, base_fd)
                if name is not None:
                    nfd = os.open(name, DIR_FLAGS, dir_fd=fd)
                    os.close(fd)
                    fd = nfd
                    names.append(name)
                    idents.append(_ident(fd))
            except OSError:
                # gone, or swapped for a link: skipped, never followed
                if fd >= 0:
                    os.close(fd)
                fd, names, idents = os.dup(base_fd), [], idents[:1]
                continue
            try:
                with os.scandir(fd) as it:
                    entries = list(it)
            except OSError:
                entries = None
            yield fd, entries
            for de in reversed(entries or ()):
                try:
                    if de.is_dir(follow_symlinks=False):
                        stack.append((len(names) + 1, de.name))
                except OSError:
                    pass
    finally:
        if fd >= 0:
            os.close(fd)
