"""``PyftpFileSystem``: fsspec's ``AbstractFileSystem`` on a pyftp server (``pyftp://``).

Every path is absolute on the server (``/reports/a.csv``); each operation borrows a
pooled connection (:mod:`.pool`) and maps pyftp's error classes to the builtin
``OSError`` subclasses fsspec callers expect. Bulk ``get``, ``put`` and ``copy`` come
from :mod:`.bulk`, ``cat_file`` and ``cat_ranges`` from :mod:`.reads`.

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
from typing import Any, BinaryIO, Callable

from fsspec.callbacks import DEFAULT_CALLBACK
from fsspec.spec import AbstractFileSystem

from ..client import Client
from ..errors import IsDirectoryError, NotFoundError, PyftpError
from ..protocol import DEFAULT_PORT
from . import pool as pools
from .oserrors import as_oserror
from .bulk import BulkTransfers
from .reads import RangedReads
from .files import (Copy, CopyCache, PyftpReadFile, PyftpWriteFile, download_into,
                    download_to_temp)

__all__ = ["PyftpFileSystem"]


class PyftpFileSystem(BulkTransfers, RangedReads, AbstractFileSystem):  # type: ignore[misc]  # fsspec is untyped
    """Files on a pyftp server, for fsspec: ``pyftp://[user@]host[:port]/path``.

    Options (as keyword arguments, ``storage_options`` or in the URL): ``host``,
    ``port`` (6971), ``user`` (or ``username``), ``password``, ``tls`` (True, or an
    ``ssl.SSLContext``), ``cafile``, ``insecure``, ``timeout`` (seconds, 30),
    ``copy_ttl`` (on a server without ranged reads: seconds a verified download of a
    whole file is shared by readers of the same file version, 5; 0: never).
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

    def find(self, path: str, maxdepth: int | None = None, withdirs: bool = False,
             detail: bool = False, **kwargs: Any) -> Any:
        """Everything below ``path``, listed a level at a time with the listings of a
        level pipelined (one round trip per level, not one per folder)."""
        path = self._strip_protocol(path)
        try:
            top = self.info(path)
        except (FileNotFoundError, NotADirectoryError):
            return {} if detail else []
        out: dict[str, dict[str, Any]] = {}
        if top["type"] != "directory":
            out[path] = top
        elif withdirs:
            out[path] = top
        level, depth = ([path] if top["type"] == "directory" else []), 1
        while level and (maxdepth is None or depth <= maxdepth):
            deeper: list[str] = []
            for folder, entries in zip(level, self._run(lambda c: _ls_many(c, level))):
                if isinstance(entries, PyftpError):
                    continue  # removed while we walked: like fsspec's walk, skip it
                for e in entries:
                    info = _info(posixpath.join(folder, e.name), e)
                    if info["type"] == "directory":
                        deeper.append(info["name"])
                        if not withdirs:
                            continue
                    out[info["name"]] = info
            level, depth = deeper, depth + 1
        memo = getattr(self._collecting, "memo", None)
        if memo is not None:
            memo.update(out)
        names = sorted(out)
        return {n: out[n] for n in names} if detail else names

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

    def _stream(self, rpath: str, outfile: BinaryIO) -> None:
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


def _ls_many(c: Client, paths: list[str]) -> list[Any]:
    if hasattr(c, "ls_many"):
        return list(c.ls_many(paths))
    out: list[Any] = []
    for p in paths:
        try:
            out.append(c.ls(p))
        except PyftpError as exc:
            out.append(exc)
    return out


def _info(path: str, entry: Any) -> dict[str, Any]:
    kind = "directory" if entry.type == "dir" else "file"
    return {"name": path, "size": entry.size if kind == "file" else 0, "type": kind,
            "mtime": entry.mtime}


def _has_magic(path: str) -> bool:
    return any(ch in path for ch in "*?[")
