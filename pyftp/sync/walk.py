"""Walking one side of a job into a :class:`Tree`: the local folder with ``os.scandir``
(never following a symlink out of the tree or into a folder loop), the remote folder
with listings pipelined level by level.

Import rule: client, errors, protocol, and this package's report and options.
"""
from __future__ import annotations

import os
import posixpath
import stat as stat_

from ..records import dataclass, field
from ..client import Client, Entry
from ..errors import LocalError, RemoteError
from ..protocol import is_partial_name
from .options import MAX_DEPTH
from .report import Problem


@dataclass(frozen=True)
class LocalFile:
    """A regular file found on this side (``path`` is where its bytes are read)."""

    path: str
    size: int
    mtime: float  #: seconds, from st_mtime_ns


#: a file found on either side of a job: a remote :class:`~pyftp.Entry` or a local file
SideFile = Entry | LocalFile

#: what a remote folder's listing looked like: (name, type, size, mtime) per entry
_Signature = tuple[tuple[str, str, int, float], ...]


@dataclass
class Tree:
    """One side of a job: files and folders by relative path ('/'-separated)."""

    files: dict[str, SideFile] = field(default_factory=dict)
    dirs: dict[str, float] = field(default_factory=dict)  #: relative path -> mtime
    ignored: list[Problem] = field(default_factory=list)
    errors: list[Problem] = field(default_factory=list)


def inside(real: str, root_real: str) -> bool:
    """Whether the resolved path ``real`` is ``root_real`` or below it."""
    return real == root_real or real.startswith(root_real.rstrip(os.sep) + os.sep)


def local_path(root: str, rel: str) -> str:
    """The local path of the relative '/'-separated ``rel`` under ``root``."""
    return os.path.join(root, *rel.split("/")) if rel else root


def _too_deep(rel: str) -> Problem | None:
    if rel.count("/") + 1 >= MAX_DEPTH:
        return Problem(rel, "loop", f"nested deeper than {MAX_DEPTH} folders")
    return None


def walk_local(root: str | os.PathLike[str]) -> Tree:
    """Every regular file and folder under ``root``, without following symlinks out.

    A symlink to a file inside the tree is read as that file; a symlink to a folder is
    never entered (it could loop or duplicate the tree); one that leads outside the
    tree, dangles, or names a FIFO, socket or device is listed in ``ignored`` and
    never opened. pyftp's own partial files are left out.
    """
    root = os.fspath(root)
    root_real = os.path.realpath(root)
    tree = Tree()
    stack = [""]
    while stack:
        rel_dir = stack.pop()
        try:
            with os.scandir(local_path(root, rel_dir)) as it:
                entries = sorted(it, key=lambda d: d.name)
        except OSError as exc:
            why = f"cannot list folder: {exc.strerror}"
            tree.errors.append(Problem(rel_dir or ".", "failed", why, LocalError(why)))
            continue
        for de in entries:
            if not is_partial_name(de.name):
                rel = f"{rel_dir}/{de.name}" if rel_dir else de.name
                if _add_local(tree, rel, de, root_real):
                    stack.append(rel)
    return tree


def _add_local(tree: Tree, rel: str, de: os.DirEntry[str], root_real: str) -> bool:
    """Put one entry into ``tree``; True when it is a folder to walk into."""
    try:
        if de.is_symlink():
            target = os.path.realpath(de.path)
            if not inside(target, root_real):
                tree.ignored.append(Problem(rel, "outside", "symlink leads outside the "
                                                            "folder: not followed"))
                return False
            st = os.stat(de.path)
            if stat_.S_ISDIR(st.st_mode):
                tree.ignored.append(Problem(rel, "link", "symlink to a folder: not followed"))
                return False
            path = target
        else:
            st = de.stat(follow_symlinks=False)
            path = de.path
    except OSError:
        tree.ignored.append(Problem(rel, "link", "dangling symlink or vanished file"))
        return False
    if stat_.S_ISDIR(st.st_mode):
        tree.dirs[rel] = st.st_mtime_ns / 1e9
        deep = _too_deep(rel)
        if deep:
            tree.ignored.append(deep)
        return deep is None
    if stat_.S_ISREG(st.st_mode):
        tree.files[rel] = LocalFile(path, st.st_size, st.st_mtime_ns / 1e9)
    else:
        tree.ignored.append(Problem(rel, "special",
                                    "not a regular file (FIFO, socket or device)"))
    return False


def safe_remote_name(name: str) -> bool:
    """A name from a server listing that can only ever name a child of its folder."""
    return bool(name) and name not in (".", "..") and "/" not in name and "\x00" not in name


def walk_remote(client: Client, root: str, *, window: int = 64) -> Tree:
    """Every file and folder under the remote folder ``root``, listed level by level.

    All folders of one level are listed in one pipelined batch, so a wide tree costs
    one round trip per level, not per folder. Names a server could use to climb out
    (``..``, ``/``) are refused. A folder whose listing repeats one of its ancestors'
    exactly is a symlink loop on the server and is not entered.
    """
    tree = Tree()
    level = [""]
    signatures: dict[str, _Signature] = {}
    while level:
        listings = client.ls_many([posixpath.join(root, rel) if rel else root for rel in level],
                                  window=window)
        next_level: list[str] = []
        for rel_dir, listing in zip(level, listings):
            if isinstance(listing, RemoteError):
                tree.errors.append(Problem(rel_dir or ".", "failed", str(listing), listing))
                continue
            sig = tuple((e.name, e.type, e.size, e.mtime) for e in listing)
            if sig and rel_dir and _repeats_ancestor(rel_dir, sig, signatures):
                tree.dirs.pop(rel_dir, None)
                tree.ignored.append(Problem(rel_dir, "loop", "repeats a parent folder (a "
                                            "symlink loop on the server): not entered"))
                continue
            signatures[rel_dir] = sig
            for e in listing:
                next_level += _add_remote(tree, rel_dir, e)
        level = next_level
    return tree


def _add_remote(tree: Tree, rel_dir: str, e: Entry) -> list[str]:
    """Put one listed entry into ``tree``; returns the folder to list next, if any."""
    rel = f"{rel_dir}/{e.name}" if rel_dir else e.name
    if not safe_remote_name(e.name):
        tree.ignored.append(Problem(rel, "unsafe", "unsafe name from the server"))
    elif e.is_dir:
        tree.dirs[rel] = e.mtime
        deep = _too_deep(rel)
        if deep is None:
            return [rel]
        tree.ignored.append(deep)
    elif e.type == "file":
        tree.files[rel] = e
    else:
        tree.ignored.append(Problem(rel, "special", f"unknown entry type {e.type!r}"))
    return []


def _repeats_ancestor(rel: str, sig: _Signature, signatures: dict[str, _Signature]) -> bool:
    parts = rel.split("/")
    return any(signatures.get("/".join(parts[:k])) == sig for k in range(len(parts)))
