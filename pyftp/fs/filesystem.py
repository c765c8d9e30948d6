"""``PyftpFileSystem``: fsspec's ``AbstractFileSystem`` on a pyftp server (``pyftp://``).

Every path is absolute on the server (``/reports/a.csv``); each operation borrows a
pooled connection (:mod:`.pool`) and maps pyftp's error classes to the builtin
``OSError`` subclasses fsspec callers expect. Bulk ``get``, ``put`` and ``copy`` first
let fsspec work out which file goes where (globs, lists, recursion, trailing slashes:
its rules, unchanged), collecting the pairs instead of moving each file at once, then
send the collected files through the client's pipelined ``get_many`` / ``put_many``.

Import rule: the public client API (``pyftp.client``, ``pyftp.errors``), the
protocol's constants, and fsspec.
"""
from __future__ import annotations

import contextlib
import datetime
import errno
import os
import posixpath
import tempfile
import threading
from typing import IO, Any, Callable, Iterator

from fsspec.callbacks import DEFAULT_CALLBACK
from fsspec.spec import AbstractFileSystem

from ..client import Client
from ..errors import (AlreadyExistsError, AuthFailedError, IsDirectoryError, NotDirectoryError,
                      NotEmptyError, NotFoundError, PermissionDeniedError, PyftpError)
from ..protocol import DEFAULT_PORT
from . import pool as pools
from .files import (Copy, CopyCache, PyftpReadFile, PyftpWriteFile, download_into,
                    download_to_temp)

__all__ = ["PyftpFileSystem", "BATCH"]

#: files per ``get_many`` / ``put_many`` call of a bulk copy (temporary space is held
#: for one batch at a time)
BATCH = 64


class PyftpFileSystem(AbstractFileSystem):  # type: ignore[misc]  # fsspec is untyped
    """Files on a pyftp server, for fsspec: ``pyftp://[user@]host[:port]/path``.

    Options (as keyword arguments, ``storage_options`` or in the URL): ``host``,
    ``port`` (6971), ``user`` (or ``username``), ``password``, ``tls`` (True, or an
    ``ssl.SSLContext``), ``cafile``, ``insecure``, ``timeout`` (seconds, 30),
    ``copy_ttl`` (seconds a verified download is shared by readers of the same file
    version, 5; 0: never).
    """

    protocol = "pyftp"
    root_marker = "/"

    def __init__(self, host: str = "127.0.0.1", port: int = DEFAULT_PORT, *,
                 user: str | None = None, username: str | None = None,
                 password: str | None = None, tls: Any = False, cafile: str | None = None,
                 insecure: bool = False, timeout: float | None = 30.0, copy_ttl: float = 5.0,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if user and username and user != username:
            raise ValueError(f"user={user!r} and username={username!r} disagree; give one")
        self.host, self.port = host, int(port)
        self.user = user or username or None
        self._login = dict(user=self.user, password=password, tls=tls, cafile=cafile,
                           insecure=insecure, timeout=timeout)
        # the pool is shared by every instance reaching the same login, in this process
        self._pool_key = (self.host, self.port, self.user, password, tls, cafile, insecure)
        self._collecting = threading.local()
        self._copies = CopyCache(copy_ttl)

    # ------------------------------------------------------------------ paths
    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        path = os.fspath(path)
        if path.startswith("pyftp://"):
            rest = path[len("pyftp://"):]
            path = rest[rest.index("/"):] if "/" in rest else "/"
        elif path.startswith("pyftp::"):
            path = path[len("pyftp::"):]
        return "/" + path.strip("/")

    @staticmethod
    def _get_kwargs_from_urls(path: str) -> dict[str, Any]:
        if not path.startswith("pyftp://"):
            return {}
        netloc = path[len("pyftp://"):].split("/", 1)[0]
        return parse_netloc(netloc)

    def unstrip_protocol(self, name: str) -> str:
        login = f"{self.user}@" if self.user else ""
        return f"pyftp://{login}{self.host}:{self.port}{self._strip_protocol(name)}"

    # ------------------------------------------------------------------ connections
    def _connect(self) -> Client:
        return Client(self.host, self.port, **self._login)

    def _run(self, fn: Callable[[Client], Any], path: Any = None, *, retry: bool = True) -> Any:
        """``fn(client)`` on a pooled connection, pyftp errors turned into OSErrors."""
        try:
            return pools.pool_for(self._pool_key, self._connect).run(fn, retry=retry)
        except PyftpError as exc:
            mapped = as_oserror(exc, path)
            if mapped is exc:
                raise
            raise mapped from exc

    def close_connections(self) -> None:
        """Close the idle pooled connections to this server (this process only)."""
        pools.close_pool(self._pool_key)

    # ------------------------------------------------------------------ listing
    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        path = self._strip_protocol(path)
        memo = getattr(self._collecting, "memo", None)

        def listing(c: Client) -> list[dict[str, Any]]:
            entries = c.ls(path)
            name = posixpath.basename(path)
            if len(entries) == 1 and entries[0].type != "dir" and entries[0].name == name:
                # ls of a file answers that file; a folder holding one file of its own
                # name looks the same, so ask which it is
                if c.stat(path).type != "dir":
                    return [_info(path, entries[0])]
            return [_info(posixpath.join(path, e.name), e) for e in entries]
        out = self._run(listing, path)
        if memo is not None:
            memo.update((o["name"], o) for o in out)
        return out if detail else [o["name"] for o in out]

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        path = self._strip_protocol(path)
        memo = getattr(self._collecting, "memo", None)
        if memo is not None and path in memo:
            cached: dict[str, Any] = memo[path]
            return cached
        out = _info(path, self._run(lambda c: c.stat(path), path))
        if memo is not None:
            memo[path] = out
        return out

    def exists(self, path: str, **kwargs: Any) -> bool:
        """Whether ``path`` exists. Unlike fsspec's default, a server that cannot be
        reached or refuses the login raises, rather than answering False."""
        try:
            self.info(path)
        except (FileNotFoundError, NotADirectoryError):
            return False
        return True

    def modified(self, path: str) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(self.info(path)["mtime"], datetime.timezone.utc)

    def checksum(self, path: str) -> int:
        """The SHA-256 of the file, computed by the server, as an int."""
        path = self._strip_protocol(path)
        return int(self._run(lambda c: c.hash(path), path), 16)

    # ------------------------------------------------------------------ changes
    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        path = self._strip_protocol(path)

        def make(c: Client) -> None:
            try:
                c.mkdir(path)
            except NotFoundError:
                if not create_parents:
                    raise
                c.mkdir(path, parents=True)
        self._run(make, path)

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        path = self._strip_protocol(path)
        if exist_ok:
            self._run(lambda c: c.mkdir(path, parents=True), path)
        else:
            self.mkdir(path, create_parents=True)

    def rmdir(self, path: str) -> None:
        path = self._strip_protocol(path)
        self._copies.forget(path)
        self._run(lambda c: c.rmdir(path), path)

    def rm_file(self, path: str) -> None:
        path = self._strip_protocol(path)
        self._copies.forget(path)

        def remove(c: Client) -> None:
            try:
                c.rm(path)
            except IsDirectoryError:
                c.rmdir(path)
        self._run(remove, path)

    _rm = rm_file

    def mv(self, path1: Any, path2: Any, recursive: bool = False, maxdepth: int | None = None,
           **kwargs: Any) -> None:
        """One server-side rename for one path; fsspec's copy-then-delete for the rest."""
        if not (isinstance(path1, str) and isinstance(path2, str)) or _has_magic(path1):
            super().mv(path1, path2, recursive=recursive, maxdepth=maxdepth, **kwargs)
            return None
        src, dst = self._strip_protocol(path1), self._strip_protocol(path2)
        if src == dst:
            return None
        self._copies.forget(src)
        self._copies.forget(dst)

        def move(c: Client) -> None:
            target = dst
            with contextlib.suppress(NotFoundError):
                if c.stat(dst).type == "dir":
                    target = posixpath.join(dst, posixpath.basename(src))
            try:
                c.mv(src, target, overwrite=True)
            except NotFoundError:
                if not c.exists(src):
                    raise
                c.mkdir(posixpath.dirname(target), parents=True)
                c.mv(src, target, overwrite=True)
        self._run(move, src)
        return None

    # ------------------------------------------------------------------ whole files
    def local_copy(self, path: str, details: dict[str, Any] | None = None) -> Copy:
        """A verified local copy of the remote file, shared with other readers of the
        same version for ``copy_ttl`` seconds (``details``: its ``info``, if known)."""
        path = self._strip_protocol(path)
        info = details or self.info(path)
        if info["type"] != "file":
            raise IsADirectoryError(errno.EISDIR, "is a directory", path)
        copy = self._copies.get(path, info["size"], info["mtime"])
        if copy is None:
            f = self._run(lambda c: download_to_temp(c, path), path)
            got = os.fstat(f.fileno()).st_size
            if got != info["size"]:
                f.close()
                raise OSError(errno.ESTALE, f"changed while being read ({info['size']} "
                              f"bytes, now {got}); open it again", path)
            copy = Copy(f, info["size"], info["mtime"])
            self._copies.put(path, copy)
        return copy

    def upload(self, local: str, path: str, *, overwrite: bool = True) -> None:
        """Upload a local file (verified, published atomically), creating parents."""
        path = self._strip_protocol(path)
        self._copies.forget(path)

        def send(c: Client) -> None:
            try:
                c.put(local, path, overwrite=overwrite)
            except NotFoundError:
                c.mkdir(posixpath.dirname(path), parents=True)
                c.put(local, path, overwrite=overwrite)
        self._run(send, path)

    def cat_file(self, path: str, start: int | None = None, end: int | None = None,
                 **kwargs: Any) -> bytes:
        copy = self.local_copy(path)
        first, last, _ = slice(start, end).indices(copy.size)
        return copy.read(first, last)

    def pipe_file(self, path: str, value: bytes, mode: str = "overwrite", **kwargs: Any) -> None:
        with self.open(path, "xb" if mode == "create" else "wb") as f:
            f.write(value)

    def _open(self, path: str, mode: str = "rb", block_size: Any = None,
              autocommit: bool = True, cache_options: Any = None, **kwargs: Any) -> Any:
        path = self._strip_protocol(path)
        if mode == "rb":
            return PyftpReadFile(self, path, block_size=block_size,
                                 cache_options=cache_options, **kwargs)
        return PyftpWriteFile(self, path, mode, block_size=block_size, autocommit=autocommit,
                              **kwargs)

    # ------------------------------------------------------------------ one file each way
    def get_file(self, rpath: str, lpath: Any, callback: Any = DEFAULT_CALLBACK,
                 outfile: Any = None, **kwargs: Any) -> None:
        rpath = self._strip_protocol(rpath)
        if outfile is None and hasattr(lpath, "write"):
            outfile = lpath
        if outfile is not None:
            self._stream(rpath, outfile)
            return
        if self.isdir(rpath):
            os.makedirs(lpath, exist_ok=True)
            return
        batch = getattr(self._collecting, "pairs", None)
        if batch is not None:
            batch.append((rpath, os.fspath(lpath)))
            return
        os.makedirs(os.path.dirname(os.path.abspath(lpath)), exist_ok=True)

        def progress(done: int, total: int) -> None:
            callback.set_size(total)
            callback.absolute_update(done)
        self._run(lambda c: c.get(rpath, lpath, on_progress=progress), rpath)

    def _stream(self, rpath: str, outfile: IO[bytes]) -> None:
        try:
            start: int | None = outfile.tell() if outfile.seekable() else None
        except (AttributeError, OSError):
            start = None

        def stream(c: Client) -> None:
            if start is not None:  # a second attempt starts where the first did
                outfile.seek(start)
                outfile.truncate()
            download_into(c, rpath, outfile)
        # bytes already written to a pipe cannot be taken back: no second attempt there
        self._run(stream, rpath, retry=start is not None)

    def put_file(self, lpath: Any, rpath: str, callback: Any = DEFAULT_CALLBACK,
                 mode: str = "overwrite", **kwargs: Any) -> None:
        rpath = self._strip_protocol(rpath)
        lpath = os.fspath(lpath)
        batch = getattr(self._collecting, "pairs", None)
        if os.path.isdir(lpath):
            if batch is not None:
                self._collecting.dirs.append(rpath)
            else:
                self.makedirs(rpath, exist_ok=True)
            return
        if batch is not None:
            batch.append((lpath, rpath))
            return
        self.upload(lpath, rpath, overwrite=mode != "create")

    def cp_file(self, path1: str, path2: str, **kwargs: Any) -> None:
        src, dst = self._strip_protocol(path1), self._strip_protocol(path2)
        if self.isdir(src):
            batch_dirs = getattr(self._collecting, "dirs", None)
            if batch_dirs is not None:
                batch_dirs.append(dst)
            else:
                self.makedirs(dst, exist_ok=True)
            return
        batch = getattr(self._collecting, "pairs", None)
        if batch is not None:
            batch.append((src, dst))
            return
        with tempfile.TemporaryDirectory(prefix="pyftp-fs-") as tmp:
            local = os.path.join(tmp, "copy")
            self._run(lambda c: c.get(src, local, resume=False), src)
            self.upload(local, dst)

    # ------------------------------------------------------------------ many files
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
            super().get(rpath, lpath, recursive=recursive, maxdepth=maxdepth, **kwargs)
        self._get_many(pairs, callback)

    def put(self, lpath: Any, rpath: Any, recursive: bool = False,
            callback: Any = DEFAULT_CALLBACK, maxdepth: int | None = None,
            **kwargs: Any) -> None:
        with self._collect() as (pairs, dirs):
            super().put(lpath, rpath, recursive=recursive, maxdepth=maxdepth, **kwargs)
        overwrite = kwargs.get("mode", "overwrite") != "create"
        self._put_many(pairs, dirs, callback, overwrite=overwrite)

    def copy(self, path1: Any, path2: Any, recursive: bool = False,
             maxdepth: int | None = None, on_error: str | None = None, **kwargs: Any) -> None:
        """Copy on the server: each file is downloaded (verified) to a temporary folder
        and uploaded again (verified), :data:`BATCH` files per pipelined round."""
        with self._collect() as (pairs, dirs):
            super().copy(path1, path2, recursive=recursive, maxdepth=maxdepth,
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
        _raise_first(results, [r for r, _ in pairs], missing_ok=missing_ok)
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
        _raise_first(results, [r for _, r in pairs])

    def _mkdirs(self, paths: list[str]) -> None:
        if paths:
            def make(c: Client) -> None:
                for p in sorted(set(paths)):
                    c.mkdir(p, parents=True)
            self._run(make)


def parse_netloc(netloc: str) -> dict[str, Any]:
    """``[user[:password]@]host[:port]`` -> the matching keyword arguments."""
    from urllib.parse import unquote
    out: dict[str, Any] = {}
    login, _, hostport = netloc.rpartition("@")
    if login:
        user, sep, password = login.partition(":")
        out["user"] = unquote(user)
        if sep:
            out["password"] = unquote(password)
    if hostport.startswith("["):  # [::1]:6971
        host, _, port = hostport[1:].partition("]")
        port = port[1:]
    else:
        host, _, port = hostport.partition(":")
    if host:
        out["host"] = host
    if port:
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"bad port {port!r} in pyftp://{netloc}: give a number 1-65535")
        out["port"] = int(port)
    return out


def as_oserror(exc: PyftpError, path: Any = None) -> Exception:
    """The builtin OSError fsspec callers expect for a pyftp error (others unchanged)."""
    table: list[tuple[type[PyftpError], type[OSError], int]] = [
        (NotFoundError, FileNotFoundError, errno.ENOENT),
        (AlreadyExistsError, FileExistsError, errno.EEXIST),
        (IsDirectoryError, IsADirectoryError, errno.EISDIR),
        (NotDirectoryError, NotADirectoryError, errno.ENOTDIR),
        (NotEmptyError, OSError, errno.ENOTEMPTY),
        (PermissionDeniedError, PermissionError, errno.EACCES),
        (AuthFailedError, PermissionError, errno.EACCES),
    ]
    for theirs, ours, code in table:
        if isinstance(exc, theirs):
            return ours(code, str(exc), path) if path is not None else ours(code, str(exc))
    return exc


def _raise_first(results: list[Any], paths: list[str], *, missing_ok: bool = False) -> None:
    for result, path in zip(results, paths):
        if missing_ok and isinstance(result, NotFoundError):
            continue
        if isinstance(result, PyftpError):
            raise as_oserror(result, path) from result


def _info(path: str, entry: Any) -> dict[str, Any]:
    kind = "directory" if entry.type == "dir" else "file"
    return {"name": path, "size": entry.size if kind == "file" else 0, "type": kind,
            "mtime": entry.mtime}


def _has_magic(path: str) -> bool:
    return any(ch in path for ch in "*?[")
