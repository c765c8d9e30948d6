"""Ranged reads for :class:`~pyftp.fs.PyftpFileSystem`: ``cat_file`` with ``start`` /
``end``, ``cat_ranges`` and the block reads of the buffered file, each through the
server's verified ranged ``get`` (protocol section 14) when it has one.

A range is checked against the server's digest of exactly that range, and against the
version of the file it was meant to come from (size and mtime as the server reported
them while sending): bytes of two versions never end up side by side in one answer.
Many ranges travel pipelined on one connection (``cat_ranges``: two round trips for
any number, one to learn the sizes, one for the bytes). A server without ranged reads
gets the old way: one verified download of the whole file, ranges served from it.

Import rule: the public client API (``pyftp.client``, ``pyftp.errors``) and fsspec.
"""
from __future__ import annotations

import errno
import io
from typing import Any, Callable

from ..client import Client, Entry, RangeInfo
from ..errors import PyftpError, RemoteError
from .oserrors import as_oserror

__all__ = ["RangedReads", "has_ranges", "check_version"]


def has_ranges(c: Client) -> bool:
    """Whether the server on the other end of ``c`` offers ranged reads."""
    return "ranges" in c.server_info.get("features", ())


def check_version(got: RangeInfo, size: int, mtime: Any, path: str,
                  version: str | None = None) -> None:
    """Raise ESTALE when a range came from another version of the file than the one
    of ``size``, ``mtime`` and the server's ``version`` tag (None: not known, not
    compared). The tag catches a replacement that was given the old size and mtime."""
    if got.total != size or (mtime is not None and got.mtime is not None
                             and got.mtime != mtime) or (
            version is not None and got.version is not None and got.version != version):
        raise OSError(errno.ESTALE, f"changed while being read ({size} bytes, now "
                      f"{got.total}); open it again", path)


class RangedReads:
    """The reading half of the file system (a mixin: it uses the host's ``_run``,
    ``_strip_protocol``, ``info`` and ``local_copy``)."""

    _run: Callable[..., Any]
    _strip_protocol: Callable[[Any], Any]
    info: Callable[..., dict[str, Any]]
    local_copy: Callable[..., Any]

    def read_range_into(self, path: str, start: int, into: memoryview,
                        details: dict[str, Any] | None = None,
                        version: str | None = None) -> RangeInfo | None:
        """Fill ``into`` with the bytes of remote ``path`` from ``start`` by one verified
        ranged read; None (and nothing read) when the server has no ranged reads.
        ``details`` (the file's ``info``) and ``version`` (the tag of an earlier range):
        raise ESTALE if the file changed since."""
        def ranged(c: Client) -> RangeInfo | None:
            return c.get_range_into(path, start, into) if has_ranges(c) else None
        got: RangeInfo | None = self._run(ranged, path)
        if got is not None and details is not None:
            check_version(got, details["size"], details.get("mtime"), path, version)
        return got

    def cat_file(self, path: str, start: int | None = None, end: int | None = None,
                 **kwargs: Any) -> bytes:
        """The file's bytes ``[start:end]`` (as in slices). The whole file is one
        ``get`` (one round trip, the whole file's digest checked); a part of it is a
        ``stat`` (for its size) and one ranged ``get``."""
        path = self._strip_protocol(path)
        if start in (None, 0) and end is None:
            def whole(c: Client) -> bytes:
                out = io.BytesIO()
                c.getfo(path, out)
                return out.getvalue()
            data: bytes = self._run(whole, path)
            return data
        info = self.info(path)
        if info["type"] != "file":
            raise IsADirectoryError(errno.EISDIR, "is a directory", path)
        first, last, _ = slice(start, end).indices(info["size"])
        buf = bytearray(max(0, last - first))
        if self.read_range_into(path, first, memoryview(buf), info) is None:
            copy = self.local_copy(path, info)
            return bytes(copy.read(first, last))
        return bytes(buf)

    def cat_ranges(self, paths: list[str], starts: Any, ends: Any, max_gap: Any = None,
                   on_error: str = "return", **kwargs: Any) -> list[Any]:
        """Byte ranges of one or more files, pipelined on one connection: the sizes of
        the files in one round trip, the ranges in the next. ``starts`` / ``ends`` as
        fsspec takes them (ints or lists; None and negatives count as in slices)."""
        if max_gap is not None:
            raise NotImplementedError("cat_ranges: max_gap is not supported by pyftp://")
        if not isinstance(paths, list):
            raise TypeError("cat_ranges: paths must be a list")
        starts = starts if isinstance(starts, list) else [starts] * len(paths)
        ends = ends if isinstance(ends, list) else [ends] * len(paths)
        if not len(starts) == len(ends) == len(paths):
            raise ValueError("cat_ranges: paths, starts and ends differ in length")
        names = [self._strip_protocol(p) for p in paths]
        out: list[Any] | None = self._run(lambda c: _cat_ranges(c, names, starts, ends))
        if out is None:  # an older server: fsspec's way, a cat_file each
            fallback: list[Any] = super().cat_ranges(  # type: ignore[misc]  # fsspec's
                paths, starts, ends, on_error=on_error, **kwargs)
            return fallback
        for i, res in enumerate(out):
            if isinstance(res, PyftpError):
                out[i] = res = as_oserror(res, names[i])
            if isinstance(res, Exception) and on_error != "return":
                raise res
        return out


def _cat_ranges(c: Client, paths: list[str], starts: list[Any],
                ends: list[Any]) -> list[Any] | None:
    """The ranges on one connection: each one's bytes or its error, in order; None on
    a server without ranged reads."""
    if not has_ranges(c):
        return None
    unique = sorted(set(paths))
    stats = dict(zip(unique, c.call_many([{"op": "stat", "path": p} for p in unique])))
    out: list[Any] = [None] * len(paths)
    reads: list[tuple[str, int, bytearray]] = []
    where: list[tuple[int, Entry]] = []
    for i, (path, start, end) in enumerate(zip(paths, starts, ends)):
        stat = stats[path]
        if isinstance(stat, RemoteError):
            out[i] = stat
            continue
        entry = Entry.from_wire(stat["entry"])
        if entry.is_dir:
            out[i] = IsADirectoryError(errno.EISDIR, "is a directory", path)
            continue
        first, last, _ = slice(start, end).indices(entry.size)
        reads.append((path, first, bytearray(max(0, last - first))))
        where.append((i, entry))
    versions: dict[str, str | None] = {}  # every range of a path from one version
    for (i, entry), (path, _, buf), got in zip(where, reads, c.get_ranges_into(reads)):
        if isinstance(got, PyftpError):
            out[i] = got
            continue
        try:
            check_version(got, entry.size, entry.mtime, path,
                          versions.setdefault(path, got.version))
        except OSError as exc:
            out[i] = exc
            continue
        out[i] = bytes(buf)
    return out
