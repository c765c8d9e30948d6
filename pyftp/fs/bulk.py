"""Many files at once for :class:`~pyftp.fs.PyftpFileSystem`: fsspec's ``get``, ``put``
and ``copy`` through the client's pipelined ``get_many`` and ``put_many``.

fsspec works out which file goes where (globs, lists, recursion, trailing slashes:
its rules, unchanged) and calls ``get_file`` / ``put_file`` / ``cp_file`` once per
file. Inside :meth:`BulkTransfers._collect` those calls only note their pairs (and the
listings made on the way are remembered, so deciding what is a folder costs no extra
round trips); the collected files then travel in one pipelined batch.

Import rule: the public client API (``pyftp.client``, ``pyftp.errors``) and fsspec.
"""
from __future__ import annotations

import contextlib
import os
import posixpath
import tempfile
from typing import Any, Callable, Iterator

from fsspec.callbacks import DEFAULT_CALLBACK

from ..client import Client
from ..errors import NotFoundError
from .files import CopyCache
from .oserrors import raise_first

__all__ = ["BulkTransfers", "BATCH"]

#: files per ``get_many`` / ``put_many`` call of a bulk copy (temporary space is held
#: for one batch at a time)
BATCH = 64


class BulkTransfers:
    """The bulk half of the file system (a mixin: it uses the host's ``_run``,
    ``_copies`` and ``_collecting``)."""

    _collecting: Any
    _copies: CopyCache
    _run: Callable[..., Any]

    @contextlib.contextmanager
    def _collect(self) -> Iterator[tuple[list[tuple[str, str]], list[str]]]:
        """While inside, get_file/put_file/cp_file note their pairs instead of moving
        bytes, and listings are remembered so that deciding what is a folder costs no
        extra round trips."""
        pairs: list[tuple[str, str]] = []
        dirs: list[str] = []
        state = self._collecting
        state.pairs, state.dirs, state.memo = pairs, dirs, {}
        try:
            yield pairs, dirs
        finally:
            state.pairs = state.dirs = state.memo = None

    def get(self, rpath: Any, lpath: Any, recursive: bool = False,
            callback: Any = DEFAULT_CALLBACK, maxdepth: int | None = None,
            **kwargs: Any) -> None:
        with self._collect() as (pairs, _):
            # AbstractFileSystem's, next in the MRO of PyftpFileSystem
            super().get(rpath, lpath, recursive=recursive,  # type: ignore[misc]
                        maxdepth=maxdepth, **kwargs)
        self._get_many(pairs, callback)

    def put(self, lpath: Any, rpath: Any, recursive: bool = False,
            callback: Any = DEFAULT_CALLBACK, maxdepth: int | None = None,
            **kwargs: Any) -> None:
        with self._collect() as (pairs, dirs):
            super().put(lpath, rpath, recursive=recursive,  # type: ignore[misc]
                        maxdepth=maxdepth, **kwargs)
        overwrite = kwargs.get("mode", "overwrite") != "create"
        self._put_many(pairs, dirs, callback, overwrite=overwrite)

    def copy(self, path1: Any, path2: Any, recursive: bool = False,
             maxdepth: int | None = None, on_error: str | None = None, **kwargs: Any) -> None:
        """Copy on the server: each file is downloaded (verified) to a temporary folder
        and uploaded again (verified), :data:`BATCH` files per pipelined round."""
        with self._collect() as (pairs, dirs):
            super().copy(path1, path2, recursive=recursive,  # type: ignore[misc]
                         maxdepth=maxdepth,
                         on_error=on_error, **kwargs)
        # fsspec's rule: a source that vanished is skipped in a recursive copy
        missing_ok = on_error == "ignore" or (on_error is None and recursive)
        self._mkdirs(dirs)
        for start in range(0, len(pairs), BATCH):
            chunk = pairs[start:start + BATCH]
            with tempfile.TemporaryDirectory(prefix="pyftp-fs-") as tmp:
                fetched = [(src, os.path.join(tmp, str(i)), dst)
                           for i, (src, dst) in enumerate(chunk)]
                results = self._get_many([(src, loc) for src, loc, _ in fetched],
                                         missing_ok=missing_ok)
                self._put_many([(loc, dst) for (_, loc, dst), res in zip(fetched, results)
                                if not isinstance(res, NotFoundError)], [])

    def _get_many(self, pairs: list[tuple[str, str]], callback: Any = DEFAULT_CALLBACK, *,
                  missing_ok: bool = False) -> list[Any]:
        if not pairs:
            return []
        for _, local in pairs:
            os.makedirs(os.path.dirname(os.path.abspath(local)), exist_ok=True)
        callback.set_size(len(pairs))
        results: list[Any] = self._run(lambda c: c.get_many(
            pairs, on_file=lambda i, res: callback.relative_update(1)))
        raise_first(results, [r for r, _ in pairs], missing_ok=missing_ok)
        return results

    def _put_many(self, pairs: list[tuple[str, str]], dirs: list[str],
                  callback: Any = DEFAULT_CALLBACK, *, overwrite: bool = True) -> None:
        parents = {posixpath.dirname(r) for _, r in pairs} - {"/"}
        self._mkdirs(sorted(set(dirs) | parents))
        if not pairs:
            return
        for _, remote in pairs:
            self._copies.forget(remote)
        callback.set_size(len(pairs))
        results = self._run(lambda c: c.put_many(
            pairs, overwrite=overwrite, on_file=lambda i, res: callback.relative_update(1)))
        raise_first(results, [r for _, r in pairs])

    def _mkdirs(self, paths: list[str]) -> None:
        if paths:
            def make(c: Client) -> None:
                for p in sorted(set(paths)):
                    c.mkdir(p, parents=True)
            self._run(make)
