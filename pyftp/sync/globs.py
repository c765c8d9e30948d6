"""Glob patterns on either side: :func:`expand_local` (the file system's own glob) and
:func:`expand_remote` (one pipelined listing per wildcard component).

Import rule: client, errors, and this package's walk (for the safe-name rule).
"""
from __future__ import annotations

import fnmatch
import glob
import posixpath

from ..client import Client, Entry
from ..errors import RemoteError
from .walk import safe_remote_name


def has_magic(s: str) -> bool:
    """Whether ``s`` holds a wildcard (``*``, ``?`` or ``[``)."""
    return any(c in s for c in "*?[")


def expand_local(pattern: str) -> list[str]:
    """Local paths matching a glob (``**`` spans folders); a plain name as is.

    As in a shell, ``*`` does not match names that start with a dot.
    """
    if not has_magic(pattern):
        return [pattern]
    return sorted(glob.glob(pattern, recursive=True))


def expand_remote_entries(client: Client, pattern: str,
                          window: int = 64) -> list[tuple[str, Entry | None]]:
    """Like :func:`expand_remote`, with the listing entry of each match (None for a
    pattern without wildcards, which is returned as is)."""
    if not has_magic(pattern):
        return [(pattern, None)]
    absolute = pattern.startswith("/")
    parts = [p for p in pattern.split("/") if p and p != "."]
    found: list[tuple[str, Entry | None]] = [("/" if absolute else "", None)]
    for k, part in enumerate(parts):
        last = k == len(parts) - 1
        if not has_magic(part):
            found = [(posixpath.join(b, part) if b else part, None) for b, _ in found]
            continue
        bases = [b for b, e in found if e is None or e.is_dir]
        listings = client.ls_many([b or "." for b in bases], window=window)
        nxt: list[tuple[str, Entry | None]] = []
        for base, listing in zip(bases, listings):
            if isinstance(listing, RemoteError):
                continue
            for e in listing:
                if not safe_remote_name(e.name):
                    continue
                if e.name.startswith(".") and not part.startswith("."):
                    continue
                if fnmatch.fnmatchcase(e.name, part) and (last or e.is_dir):
                    nxt.append((posixpath.join(base, e.name) if base else e.name, e))
        found = sorted(nxt, key=lambda t: t[0])
    return found


def expand_remote(client: Client, pattern: str, *, window: int = 64) -> list[str]:
    """Remote paths matching a glob (``*``, ``?``, ``[...]`` in any component).

    Each component with a wildcard costs one pipelined listing of the folders matched
    so far. A pattern without wildcards is returned as is (it may not exist).
    """
    return [p for p, _ in expand_remote_entries(client, pattern, window)]
