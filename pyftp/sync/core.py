"""Folders, globs, mirror and retries on top of :class:`pyftp.client.Client`.

This module's one job is to turn "copy this tree", "copy what these patterns match" and
"make that side look like this one" into pipelined :class:`~pyftp.client.Client` calls
that survive dropped connections. Every file still moves through the client's verified,
atomic path (hidden partial file, SHA-256 check, rename), so nothing here can publish a
half-written file under its real name; this module adds what a batch needs on top:

* walking both sides (remote listings pipelined level by level; the local side with
  ``os.scandir``, never following a symlink out of the tree or into a folder loop),
* a plan (:class:`Action` list) that ``dry_run`` returns without changing anything,
* retries: a dropped connection is reopened with :meth:`Client.reconnect` after a
  growing back-off, and the files not yet finished are sent again, continuing their
  partial files,
* one :class:`SyncReport` per job: files sent, skipped, deleted, bytes, errors.

Nothing is printed here: progress leaves through ``on_progress(done, total)`` (bytes of
the file being moved), ``on_job(JobProgress)`` (the whole job) and ``on_event(kind,
path, detail)`` (one line's worth per file, folder or retry); the shell renders them.

Import rule: beside client. Imports client, errors and protocol only; never ui, repl,
cli or server.
"""
from __future__ import annotations

import fnmatch
import glob
import os
import posixpath
import stat as stat_
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

from .. import digests
from ..client import Client, Entry, TransferResult
from ..errors import (AlreadyExistsError, BusyError, LocalError, NotDirectoryError,
                     NotFoundError, RemoteError, TransportError)
from ..protocol import is_partial_name, mtime_ns

__all__ = [
    "Action", "JobProgress", "SyncReport", "RetriesExhaustedError", "get_tree", "put_tree",
    "mirror", "mget", "mput", "get_file", "put_file", "expand_remote", "expand_local",
    "walk_local", "walk_remote", "display_name", "MTIME_TOLERANCE", "MAX_DEPTH",
]

#: two modification times this close (in seconds) count as equal. pyftp keeps mtimes to
#: the microsecond on both sides (the wire carries 6 decimals), so the only differences
#: left after a transfer are float rounding (< 2 µs); one millisecond also absorbs file
#: systems that store milliseconds. Pass ``mtime_tolerance=2`` for FAT-like disks.
MTIME_TOLERANCE = 0.001
#: folders nested deeper than this are not entered (a server-side symlink loop that the
#: listing cannot reveal would otherwise go on until paths hit the length limit)
MAX_DEPTH = 64
#: the longest wait between two retries, in seconds
MAX_BACKOFF = 30.0

ProgressCallback = Callable[[int, int], object]
EventCallback = Callable[[str, str, str], object]


# ---------------------------------------------------------------------- results

@dataclass(frozen=True)
class Action:
    """One step of a plan. ``path`` is relative to the job's roots, '/'-separated.

    ``kind`` is one of ``mkdir``, ``send``, ``skip``, ``delete`` (a file), ``rmdir``,
    ``ignore`` (not copied: special file, symlink out of the tree) or ``conflict``.
    """

    kind: str
    path: str
    size: int = 0
    reason: str = ""

    def describe(self) -> str:
        """One human line for the plan (names that are not UTF-8 shown as \\xNN)."""
        extra = f" ({self.reason})" if self.reason else ""
        size = f" {self.size} B" if self.kind == "send" else ""
        return f"{self.kind} {display_name(self.path)}{size}{extra}"


@dataclass(frozen=True)
class JobProgress:
    """Where a whole job stands; given to ``on_job`` when a file starts and ends."""

    files_done: int
    files_total: int
    bytes_done: int
    bytes_total: int
    current: str  #: the file moving now (or just finished), relative to the roots


@dataclass
class SyncReport:
    """What a tree, glob or mirror job did (or, with ``dry_run``, would do).

    ``sent``, ``skipped``, ``deleted`` and ``dirs_created`` hold relative paths;
    ``ignored`` and ``errors`` hold ``(path, reason)`` pairs. ``bytes_sent`` counts the
    bytes that crossed the wire (less than ``bytes_total`` when partial files were
    continued); ``bytes_total`` is the size of the files sent.
    """

    source: str
    dest: str
    direction: str  #: "get" (server to here) or "put" (here to server)
    dry_run: bool = False
    plan: list[Action] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    dirs_created: list[str] = field(default_factory=list)
    ignored: list[tuple[str, str]] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    bytes_sent: int = 0
    bytes_total: int = 0
    retries: int = 0
    results: list[TransferResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every planned step succeeded (ignored entries are not errors)."""
        return not self.errors

    def summary(self) -> str:
        """One line: what was sent, skipped and deleted, and the bytes."""
        verb = "would send" if self.dry_run else "sent"
        if self.dry_run:
            files = sum(1 for a in self.plan if a.kind == "send")
            size = sum(a.size for a in self.plan if a.kind == "send")
            skipped = sum(1 for a in self.plan if a.kind == "skip")
            deleted = sum(1 for a in self.plan if a.kind in ("delete", "rmdir"))
            moved = f"{_human(size)}"
        else:
            files, skipped, deleted = len(self.sent), len(self.skipped), len(self.deleted)
            moved = _human(self.bytes_sent)
            if self.bytes_sent != self.bytes_total:
                moved += f" of {_human(self.bytes_total)}, the rest resumed"
        parts = [f"{verb} {files} file{'s' * (files != 1)} ({moved})", f"skipped {skipped}",
                 f"{'would delete' if self.dry_run else 'deleted'} {deleted}"]
        if self.ignored:
            parts.append(f"ignored {len(self.ignored)}")
        if self.errors:
            parts.append(f"{len(self.errors)} error{'s' * (len(self.errors) != 1)}")
        if self.retries:
            parts.append(f"{self.retries} retr{'ies' if self.retries != 1 else 'y'}")
        return ", ".join(parts)

    def merge(self, other: "SyncReport", prefix: str = "") -> None:
        """Fold another job's report into this one (paths prefixed with ``prefix/``)."""
        def p(path: str) -> str:
            return f"{prefix}/{path}" if prefix and path else (prefix or path)
        self.plan += [Action(a.kind, p(a.path), a.size, a.reason) for a in other.plan]
        self.sent += [p(x) for x in other.sent]
        self.skipped += [p(x) for x in other.skipped]
        self.deleted += [p(x) for x in other.deleted]
        self.dirs_created += [p(x) for x in other.dirs_created]
        self.ignored += [(p(x), why) for x, why in other.ignored]
        self.errors += [(p(x), why) for x, why in other.errors]
        self.bytes_sent += other.bytes_sent
        self.bytes_total += other.bytes_total
        self.retries += other.retries
        self.results += other.results


class RetriesExhaustedError(TransportError):
    """The connection kept failing after every retry. ``report`` says what got done;
    running the same job again continues from there (partial files are kept)."""

    def __init__(self, message: str, report: SyncReport) -> None:
        super().__init__(message)
        self.report = report


def display_name(name: str) -> str:
    """A path safe to print: bytes that were not UTF-8 on disk are shown as \\xNN."""
    return os.fsencode(name).decode("utf-8", "backslashreplace") if _has_surrogates(name) else name


def _has_surrogates(s: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in s)


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


# ---------------------------------------------------------------------- walking

@dataclass(frozen=True)
class LocalFile:
    """A regular file found on this side (``path`` is where its bytes are read)."""

    path: str
    size: int
    mtime: float  #: seconds, from st_mtime_ns


@dataclass
class Tree:
    """One side of a job: files and folders by relative path ('/'-separated)."""

    files: dict[str, Entry | LocalFile] = field(default_factory=dict)
    dirs: dict[str, float] = field(default_factory=dict)  #: relative path -> mtime
    ignored: list[tuple[str, str]] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)


def _inside(real: str, root_real: str) -> bool:
    return real == root_real or real.startswith(root_real.rstrip(os.sep) + os.sep)


def _local_path(root: str, rel: str) -> str:
    return os.path.join(root, *rel.split("/")) if rel else root


def walk_local(root: str | os.PathLike) -> Tree:
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
            with os.scandir(_local_path(root, rel_dir)) as it:
                entries = sorted(it, key=lambda d: d.name)
        except OSError as exc:
            tree.errors.append((rel_dir or ".", f"cannot list folder: {exc.strerror}"))
            continue
        for de in entries:
            if is_partial_name(de.name):
                continue
            rel = f"{rel_dir}/{de.name}" if rel_dir else de.name
            try:
                if de.is_symlink():
                    target = os.path.realpath(de.path)
                    if not _inside(target, root_real):
                        tree.ignored.append((rel, "symlink leads outside the folder: not followed"))
                        continue
                    st = os.stat(de.path)
                    if stat_.S_ISDIR(st.st_mode):
                        tree.ignored.append((rel, "symlink to a folder: not followed"))
                        continue
                    path = target
                else:
                    st = de.stat(follow_symlinks=False)
                    path = de.path
            except OSError:
                tree.ignored.append((rel, "dangling symlink or vanished file"))
                continue
            if stat_.S_ISDIR(st.st_mode):
                tree.dirs[rel] = st.st_mtime_ns / 1e9
                if rel.count("/") + 1 >= MAX_DEPTH:
                    tree.ignored.append((rel, f"nested deeper than {MAX_DEPTH} folders"))
                else:
                    stack.append(rel)
            elif stat_.S_ISREG(st.st_mode):
                tree.files[rel] = LocalFile(path, st.st_size, st.st_mtime_ns / 1e9)
            else:
                tree.ignored.append((rel, "not a regular file (FIFO, socket or device)"))
    return tree


def _safe_remote_name(name: str) -> bool:
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
    signatures: dict[str, tuple] = {}
    while level:
        listings = client.ls_many([posixpath.join(root, rel) if rel else root for rel in level],
                                  window=window)
        next_level: list[str] = []
        for rel_dir, listing in zip(level, listings):
            if isinstance(listing, RemoteError):
                tree.errors.append((rel_dir or ".", str(listing)))
                continue
            sig = tuple((e.name, e.type, e.size, e.mtime) for e in listing)
            if sig and rel_dir and _repeats_ancestor(rel_dir, sig, signatures):
                tree.dirs.pop(rel_dir, None)
                tree.ignored.append((rel_dir, "repeats a parent folder (a symlink loop "
                                              "on the server): not entered"))
                continue
            signatures[rel_dir] = sig
            for e in listing:
                if not _safe_remote_name(e.name):
                    tree.ignored.append((f"{rel_dir}/{e.name}" if rel_dir else e.name,
                                         "unsafe name from the server"))
                    continue
                rel = f"{rel_dir}/{e.name}" if rel_dir else e.name
                if e.is_dir:
                    tree.dirs[rel] = e.mtime
                    if rel.count("/") + 1 >= MAX_DEPTH:
                        tree.ignored.append((rel, f"nested deeper than {MAX_DEPTH} folders"))
                    else:
                        next_level.append(rel)
                elif e.type == "file":
                    tree.files[rel] = e
                else:
                    tree.ignored.append((rel, f"unknown entry type {e.type!r}"))
        level = next_level
    return tree


def _repeats_ancestor(rel: str, sig: tuple, signatures: dict[str, tuple]) -> bool:
    parts = rel.split("/")
    for k in range(len(parts)):
        if signatures.get("/".join(parts[:k])) == sig:
            return True
    return False


# ---------------------------------------------------------------------- globs

def _has_magic(s: str) -> bool:
    return any(c in s for c in "*?[")


def expand_local(pattern: str) -> list[str]:
    """Local paths matching a glob (``**`` spans folders); a plain name as is.

    As in a shell, ``*`` does not match names that start with a dot.
    """
    if not _has_magic(pattern):
        return [pattern]
    return sorted(glob.glob(pattern, recursive=True))


def _expand_remote(client: Client, pattern: str, window: int) -> list[tuple[str, Entry | None]]:
    if not _has_magic(pattern):
        return [(pattern, None)]
    absolute = pattern.startswith("/")
    parts = [p for p in pattern.split("/") if p and p != "."]
    found: list[tuple[str, Entry | None]] = [("/" if absolute else "", None)]
    for k, part in enumerate(parts):
        last = k == len(parts) - 1
        if not _has_magic(part):
            found = [(posixpath.join(b, part) if b else part, None) for b, _ in found]
            continue
        bases = [b for b, e in found if e is None or e.is_dir]
        listings = client.ls_many([b or "." for b in bases], window=window)
        nxt: list[tuple[str, Entry | None]] = []
        for base, listing in zip(bases, listings):
            if isinstance(listing, RemoteError):
                continue
            for e in listing:
                if not _safe_remote_name(e.name):
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
    return [p for p, _ in _expand_remote(client, pattern, window)]


# ---------------------------------------------------------------------- the engine

@dataclass
class _Opts:
    resume: bool = True
    retries: int = 3
    backoff: float = 0.5
    window: int = 64
    on_progress: ProgressCallback | None = None
    on_job: Callable[[JobProgress], object] | None = None
    on_event: EventCallback | None = None
    sleep: Callable[[float], object] = time.sleep

    def event(self, kind: str, path: str, detail: str = "") -> None:
        if self.on_event:
            self.on_event(kind, path, detail)


def _retrying(client: Client, report: SyncReport, opts: _Opts, work: list,
              run: Callable[[list, Callable[[int], None]], list[int]], what: str) -> None:
    """Run ``work`` until every item is finished, reconnecting after dropped connections.

    ``run(items, done)`` processes ``items`` in order, calls ``done(k)`` for each item
    ``k`` it finished (success or a per-item error already recorded) and returns the
    positions of items to try again later (the server said ``busy``). A
    TransportError ends the attempt; the unfinished items are retried after a growing
    back-off on a new connection. The count of failed attempts starts again whenever
    an attempt finished at least one item, so a long batch survives several drops but
    a dead server is given up on after ``retries`` attempts.
    """
    pending = list(work)
    failures = 0
    while pending:
        finished: set[int] = set()
        again: list[int] = []
        try:
            if not client.connected:
                client.reconnect()
            again = run(pending, finished.add)
            cause = None
        except TransportError as exc:
            cause = exc
        retry_set = set(again)
        if finished - retry_set:
            failures = 0
        left = [it for k, it in enumerate(pending) if k not in finished or k in retry_set]
        if cause is None and not again:
            return
        pending = left
        failures += 1
        reason = str(cause) if cause is not None else "the server is busy with the same file"
        if failures > opts.retries:
            for it in pending:
                report.errors.append((_item_path(it), reason))
            if cause is not None:
                raise _gave_up(cause, opts, report, what, len(pending)) from cause
            return
        delay = min(MAX_BACKOFF, opts.backoff * 2 ** (failures - 1))
        report.retries += 1
        opts.event("retry", "", f"{reason}; retry {failures} of {opts.retries} in {delay:g}s")
        opts.sleep(delay)


def _item_path(item) -> str:
    return item.rel if hasattr(item, "rel") else str(item)


@dataclass
class _Send:
    rel: str
    remote: str
    local: str
    size: int


class _Job:
    """Progress bookkeeping shared by the batch runners."""

    def __init__(self, sends: list[_Send], opts: _Opts) -> None:
        self.opts = opts
        self.files_total = len(sends)
        self.bytes_total = sum(s.size for s in sends)
        self.files_done = 0
        self.bytes_done = 0  # of finished files
        self._current: tuple[str, int] | None = None  # (rel, done bytes)

    def bytes(self, send: _Send, done: int, total: int) -> None:
        opts = self.opts
        if self._current is None or self._current[0] != send.rel:
            self._current = (send.rel, done)
            self._job(send.rel, done)
        else:
            self._current = (send.rel, done)
        if opts.on_progress:
            opts.on_progress(done, total)

    def finished(self, send: _Send, ok: bool) -> None:
        self.files_done += 1
        self.bytes_done += send.size
        self._current = None
        self._job(send.rel, 0)

    def _job(self, rel: str, current_done: int) -> None:
        if self.opts.on_job:
            self.opts.on_job(JobProgress(self.files_done, self.files_total,
                                         min(self.bytes_total, self.bytes_done + current_done),
                                         self.bytes_total, rel))


def _record(report: SyncReport, send: _Send, res, opts: _Opts) -> None:
    if isinstance(res, TransferResult):
        report.sent.append(send.rel)
        report.bytes_sent += res.sent
        report.bytes_total += res.total
        report.results.append(res)
        opts.event("sent", send.rel, f"{res.total} B" + (f", resumed at {res.offset}"
                                                         if res.offset else ""))
    else:
        report.errors.append((send.rel, str(res)))
        opts.event("error", send.rel, str(res))


def _run_gets(client: Client, sends: list[_Send], report: SyncReport, opts: _Opts) -> None:
    job = _Job(sends, opts)

    def run(items: list[_Send], done: Callable[[int], None]) -> list[int]:
        busy: list[int] = []

        def on_file(k: int, res) -> None:
            if isinstance(res, BusyError):
                busy.append(k)
            else:
                _record(report, items[k], res, opts)
                job.finished(items[k], isinstance(res, TransferResult))
            done(k)
        client.get_many([(s.remote, s.local) for s in items], resume=opts.resume,
                        window=opts.window, on_file=on_file,
                        on_bytes=lambda k, d, t: job.bytes(items[k], d, t))
        return busy
    _retrying(client, report, opts, sends, run, "download")


def _run_puts(client: Client, sends: list[_Send], report: SyncReport, opts: _Opts, *,
              overwrite: bool) -> None:
    job = _Job(sends, opts)
    existing: list[_Send] = []

    def run(items: list[_Send], done: Callable[[int], None]) -> list[int]:
        busy: list[int] = []

        def on_file(k: int, res) -> None:
            if isinstance(res, BusyError):
                busy.append(k)
            elif isinstance(res, AlreadyExistsError) and not overwrite:
                existing.append(items[k])  # decided below: identical, or a real conflict
            else:
                _record(report, items[k], res, opts)
                job.finished(items[k], isinstance(res, TransferResult))
            done(k)
        client.put_many([(s.local, s.remote) for s in items], overwrite=overwrite,
                        resume=opts.resume, on_file=on_file,
                        on_bytes=lambda k, d, t: job.bytes(items[k], d, t))
        return busy
    _retrying(client, report, opts, sends, run, "upload")
    if existing:
        # A file that is already there with the same bytes is not an error: it is what
        # a rerun after an interrupted batch (or a lost final reply) finds.
        remote_digests = _with_reconnect(client, opts, report, lambda: client.hash_many(
            [s.remote for s in existing], window=opts.window))
        for s, remote_digest in zip(existing, remote_digests):
            try:
                same = isinstance(remote_digest, str) and remote_digest == _local_sha256(s.local)
            except LocalError as exc:
                report.errors.append((s.rel, str(exc)))
                continue
            if same:
                report.skipped.append(s.rel)
                opts.event("skipped", s.rel, "already on the server, identical")
            else:
                msg = f"already exists on the server and differs: {s.remote} (use overwrite)"
                report.errors.append((s.rel, msg))
                opts.event("error", s.rel, msg)
            job.finished(s, same)


def _with_reconnect(client: Client, opts: _Opts, report: SyncReport | None,
                    call: Callable[[], object]):
    """Run a short idempotent call (listings, hashes, mkdirs), retrying dropped connections."""
    return _call_retrying(client, opts, call, report=report)


def _call_retrying(client: Client, opts: _Opts, call: Callable[[], object], *,
                   what: str = "", report: SyncReport | None = None,
                   retry_busy: bool = False):
    """Run ``call``, reconnecting and retrying with growing back-off when the connection
    drops (and, with ``retry_busy``, when the server answers ``busy``). Past
    ``opts.retries`` a dropped connection becomes RetriesExhaustedError."""
    retryable = (TransportError, BusyError) if retry_busy else (TransportError,)
    failures = 0
    while True:
        try:
            if not client.connected:
                client.reconnect()
            return call()
        except retryable as exc:
            failures += 1
            if failures > opts.retries:
                if isinstance(exc, TransportError):
                    raise _gave_up(exc, opts, report, what) from exc
                raise
            delay = min(MAX_BACKOFF, opts.backoff * 2 ** (failures - 1))
            opts.event("retry", what, f"{exc}; retry {failures} of {opts.retries} in {delay:g}s")
            opts.sleep(delay)


def _gave_up(exc: TransportError, opts: _Opts, report: SyncReport | None,
             what: str = "", left: int | None = None) -> RetriesExhaustedError:
    tries = f"{opts.retries} retr{'ies' if opts.retries != 1 else 'y'}"
    undone = f"; {left} file(s) not done" if left else ""
    return RetriesExhaustedError(
        f"{what + ': ' if what else ''}gave up after {tries} ({exc}){undone}; "
        "run the same command again to resume", report or SyncReport("", "", ""))


def _local_sha256(path: str) -> str:
    try:
        return digests.hash_file(path)
    except OSError as exc:
        raise LocalError(f"cannot read {path}: {exc.strerror}") from exc


def _same_time(a: float, b: float, tolerance: float) -> bool:
    return abs(a - b) <= tolerance


def _sync(client: Client, src: str, dst: str, *, pull: bool, compare: str | None,
          delete: bool, dry_run: bool, overwrite: bool, mtime_tolerance: float,
          opts: _Opts) -> SyncReport:
    """The one engine behind get_tree, put_tree and mirror.

    ``compare`` None sends every file; "mtime" sends files whose size or mtime differ;
    "checksum" sends files whose SHA-256 differs.
    """
    src, dst = os.fspath(src), os.fspath(dst)
    report = SyncReport(src, dst, "get" if pull else "put", dry_run=dry_run)
    # ---- the source side
    if pull:
        root_entry = _with_reconnect(client, opts, report, lambda: client.stat(src))
        if not root_entry.is_dir:
            raise NotDirectoryError(f"not a directory: {src} (use get for one file)")
        source = _with_reconnect(client, opts, report,
                                 lambda: walk_remote(client, src, window=opts.window))
    else:
        if not os.path.isdir(src):
            raise LocalError(f"{src} is not a folder" if os.path.exists(src)
                             else f"local folder not found: {src}")
        source = walk_local(src)
        root_entry = None
    report.ignored += source.ignored
    for rel, why in source.ignored:
        report.plan.append(Action("ignore", rel, reason=why))
        opts.event("ignored", rel, why)
    report.errors += source.errors
    # ---- the receiving side (only needed to compare or delete)
    target = Tree()
    dst_exists = True
    if compare is not None or delete:
        if pull:
            dst_exists = os.path.isdir(dst)
            if os.path.exists(dst) and not dst_exists:
                raise LocalError(f"{dst} exists and is not a folder")
            if dst_exists:
                target = walk_local(dst)
        else:
            try:
                st = _with_reconnect(client, opts, report, lambda: client.stat(dst))
                if not st.is_dir:
                    raise NotDirectoryError(f"not a directory: {dst}")
                target = _with_reconnect(client, opts, report,
                                         lambda: walk_remote(client, dst, window=opts.window))
            except NotFoundError:
                dst_exists = False
        report.errors += [(r, f"receiving side: {why}") for r, why in target.errors]
    # ---- the plan
    # A folder on one side that is a file on the other is a conflict: with delete the
    # receiving side's entry is removed first; without, nothing at or under it is touched.
    conflicts = sorted([d for d in source.dirs if d in target.files]
                       + [f for f in source.files if f in target.dirs])
    blocked = () if delete else tuple(conflicts)
    mkdirs = [d for d in sorted(source.dirs) if d not in target.dirs and not _under(d, blocked)]
    sends: list[_Send] = []
    to_hash: list[tuple[str, object, object]] = []
    for rel in sorted(source.files):
        s = source.files[rel]
        if _under(rel, blocked):
            continue
        t = target.files.get(rel)
        reason = "" if compare is None else "new"
        if compare is not None and t is not None:
            if t.size != s.size:
                reason = "size differs"
            elif compare == "checksum":
                to_hash.append((rel, s, t))
                continue
            elif not _same_time(t.mtime, s.mtime, mtime_tolerance):
                reason = "modification time differs"
            else:
                report.skipped.append(rel)
                report.plan.append(Action("skip", rel, s.size, "same size and time"))
                continue
        sends.append(_send_for(src, dst, rel, s, pull))
        report.plan.append(Action("send", rel, s.size, reason))
    if to_hash:
        changed = _checksum_differs(client, to_hash, src, dst, pull, opts)
        for rel, s, _t in to_hash:
            if changed[rel]:
                sends.append(_send_for(src, dst, rel, s, pull))
                report.plan.append(Action("send", rel, s.size, "checksum differs"))
            else:
                report.skipped.append(rel)
                report.plan.append(Action("skip", rel, s.size, "same checksum"))
    sends.sort(key=lambda x: x.rel)
    # extras: on the receiving side and not in the source; files before folders,
    # deepest folders first. Those in the way of a conflict go before the transfers,
    # the rest after them, so a run that fails half way has deleted nothing else.
    if delete and source.errors:
        # as rsync does: a source that could not be read completely would make whatever
        # it failed to list look like an extra, so nothing is deleted at all
        delete = False
        msg = "nothing deleted: part of the source could not be read (see the other errors)"
        report.errors.append((".", msg))
        opts.event("error", ".", msg)
    # entries the source walk left out on purpose (symlinks, loops) are not "extras"
    kept = tuple(rel for rel, _why in source.ignored)
    extra_files = ([r for r in sorted(target.files) if r not in source.files
                    and not _under(r, kept)] if delete else [])
    extra_dirs = ([r for r in sorted(target.dirs, key=lambda r: (-r.count("/"), r))
                   if r not in source.dirs and not _under(r, kept)] if delete else [])
    in_way = tuple(conflicts)
    pre_files = [r for r in extra_files if _under(r, in_way)]
    pre_dirs = [r for r in extra_dirs if _under(r, in_way)]
    post_files = [r for r in extra_files if not _under(r, in_way)]
    post_dirs = [r for r in extra_dirs if not _under(r, in_way)]
    if not delete:
        msg = ("a folder on one side is a file on the other: not replaced "
               "(mirror with delete replaces it)")
        for c in conflicts:
            report.errors.append((c, msg))
            report.plan.append(Action("conflict", c, reason=msg))
    for r in pre_files + post_files:
        report.plan.append(Action("delete", r, target.files[r].size, "not in the source"))
    for r in pre_dirs + post_dirs:
        report.plan.append(Action("rmdir", r, reason="not in the source"))
    report.plan += [Action("mkdir", d) for d in mkdirs]
    if dry_run:
        return report
    # ---- doing it
    if pull:
        try:
            os.makedirs(dst, exist_ok=True)
        except OSError as exc:
            raise LocalError(f"cannot create {dst}: {exc.strerror}") from exc
        dst_real = os.path.realpath(dst)
        _delete_local(dst, pre_files, pre_dirs, report, opts)
        failed = _mkdirs_local(dst, dst_real, mkdirs, report, opts)
        sends = _drop_under(sends, failed, report)
        sends = _drop_outside(dst_real, sends, report)
        if sends:
            _run_gets(client, sends, report, opts)
        _delete_local(dst, post_files, post_dirs, report, opts)
        _set_local_dir_times(dst, source.dirs, root_entry.mtime if root_entry else None)
    else:
        if not dst_exists or compare is None:
            _with_reconnect(client, opts, report, lambda: _mkdir_remote_root(client, dst))
        _delete_remote(client, dst, pre_files, pre_dirs, report, opts)
        if mkdirs:
            remote_dirs = [posixpath.join(dst, d) for d in mkdirs]
            failed = _with_reconnect(client, opts, report, lambda: _mkdir_remote(
                client, remote_dirs, mkdirs, report, opts))
            sends = _drop_under(sends, failed, report)
        if sends:
            _run_puts(client, sends, report, opts, overwrite=overwrite or compare is not None)
        _delete_remote(client, dst, post_files, post_dirs, report, opts)
    return report


def _under(rel: str, roots: tuple[str, ...]) -> bool:
    return any(rel == r or rel.startswith(r + "/") for r in roots)


def _drop_under(sends: list[_Send], bad_dirs: list[str], report: SyncReport) -> list[_Send]:
    if not bad_dirs:
        return sends
    roots = tuple(bad_dirs)
    kept = []
    for s in sends:
        if _under(s.rel, roots):
            report.errors.append((s.rel, "its folder could not be created"))
        else:
            kept.append(s)
    return kept


def _send_for(src: str, dst: str, rel: str, s, pull: bool) -> _Send:
    if pull:
        return _Send(rel, posixpath.join(src, rel), _local_path(dst, rel), s.size)
    return _Send(rel, posixpath.join(dst, rel), s.path, s.size)


def _checksum_differs(client: Client, pairs: list[tuple[str, object, object]], src: str,
                      dst: str, pull: bool, opts: _Opts) -> dict[str, bool]:
    remote_paths = [posixpath.join(src if pull else dst, rel) for rel, _s, _t in pairs]
    digests = _with_reconnect(client, opts, None, lambda: client.hash_many(remote_paths,
                                                                     window=opts.window))
    out: dict[str, bool] = {}
    for (rel, s, t), remote_digest in zip(pairs, digests):
        local = t if pull else s
        try:
            local_digest = _local_sha256(local.path)  # type: ignore[attr-defined]
        except LocalError:
            out[rel] = True
            continue
        out[rel] = not isinstance(remote_digest, str) or remote_digest != local_digest
    return out


def _mkdirs_local(dst: str, dst_real: str, rels: list[str], report: SyncReport,
                  opts: _Opts) -> list[str]:
    failed: list[str] = []
    for rel in rels:
        if _under(rel, tuple(failed)):
            continue
        path = _local_path(dst, rel)
        try:
            os.makedirs(path, exist_ok=True)
            real = os.path.realpath(path)
            if not _inside(real, dst_real) or not os.path.isdir(real):
                raise LocalError("a symlink or file in the way leads outside the folder")
        except (OSError, LocalError) as exc:
            why = exc.strerror if isinstance(exc, OSError) else str(exc)
            report.errors.append((rel, f"cannot create folder: {why}"))
            failed.append(rel)
            continue
        report.dirs_created.append(rel)
        opts.event("mkdir", rel, "")
    return failed


def _drop_outside(dst_real: str, sends: list[_Send], report: SyncReport) -> list[_Send]:
    """No download may land outside the local folder through a symlinked subfolder."""
    checked: dict[str, bool] = {}
    kept = []
    for s in sends:
        parent = os.path.dirname(s.local)
        if parent not in checked:
            real = os.path.realpath(parent)
            checked[parent] = _inside(real, dst_real) and os.path.isdir(real)
        if checked[parent]:
            kept.append(s)
        else:
            report.errors.append((s.rel, "its local folder leads outside the target folder "
                                         "(a symlink?): not written"))
    return kept


def _delete_local(dst: str, files: list[str], dirs: list[str], report: SyncReport,
                  opts: _Opts) -> None:
    for rel in files:
        try:
            os.unlink(_local_path(dst, rel))
        except OSError as exc:
            report.errors.append((rel, f"cannot delete: {exc.strerror}"))
            continue
        report.deleted.append(rel)
        opts.event("deleted", rel, "")
    for rel in dirs:
        path = _local_path(dst, rel)
        try:
            for name in os.listdir(path):
                if is_partial_name(name):  # an interrupted download's leftovers
                    os.unlink(os.path.join(path, name))
            os.rmdir(path)
        except OSError as exc:
            report.errors.append((rel, f"cannot delete folder: {exc.strerror}"))
            continue
        report.deleted.append(rel + "/")
        opts.event("deleted", rel + "/", "")


def _set_local_dir_times(dst: str, dirs: dict[str, float], root_mtime: float | None) -> None:
    """Folder mtimes change while files land in them, so they are set last, deepest first."""
    for rel in sorted(dirs, key=lambda r: -r.count("/")):
        _utime(_local_path(dst, rel), dirs[rel])
    if root_mtime is not None:
        _utime(dst, root_mtime)


def _utime(path: str, mtime: float) -> None:
    try:
        ns = mtime_ns(mtime)
        os.utime(path, ns=(ns, ns), follow_symlinks=False)
    except (OSError, ValueError, OverflowError, NotImplementedError):
        pass


def _mkdir_remote_root(client: Client, path: str) -> None:
    """Create the remote target folder with its parents; an existing folder is fine."""
    reply = client.call_many([{"op": "mkdir", "path": path, "parents": True}])[0]
    if isinstance(reply, AlreadyExistsError) and client.stat(path).is_dir:
        return  # "/" (or the cwd when it is "/") always exists
    if isinstance(reply, RemoteError):
        raise reply


def _mkdir_remote(client: Client, paths: list[str], rels: list[str], report: SyncReport,
                  opts: _Opts) -> list[str]:
    replies = client.call_many([{"op": "mkdir", "path": p, "parents": True} for p in paths],
                               window=opts.window)
    failed: list[str] = []
    for rel, reply in zip(rels, replies):
        if isinstance(reply, RemoteError):
            report.errors.append((rel, f"cannot create folder: {reply}"))
            failed.append(rel)
        else:
            report.dirs_created.append(rel)
            opts.event("mkdir", rel, "")
    return failed


def _delete_remote(client: Client, dst: str, files: list[str], dirs: list[str],
                   report: SyncReport, opts: _Opts) -> None:
    if not files and not dirs:
        return
    reqs = [{"op": "rm", "path": posixpath.join(dst, r)} for r in files]
    reqs += [{"op": "rmdir", "path": posixpath.join(dst, r)} for r in dirs]
    names = files + [d + "/" for d in dirs]
    # rm and rmdir are idempotent enough to repeat after a drop: not_found means done
    replies = _with_reconnect(client, opts, report,
                              lambda: client.call_many(reqs, window=opts.window))
    for name, reply in zip(names, replies):
        if isinstance(reply, NotFoundError):
            reply = {}
        if isinstance(reply, RemoteError):
            report.errors.append((name, f"cannot delete: {reply}"))
        else:
            report.deleted.append(name)
            opts.event("deleted", name, "")


# ---------------------------------------------------------------------- public jobs

def _opts(resume: bool, retries: int, backoff: float, window: int, on_progress, on_job,
          on_event, sleep) -> _Opts:
    if retries < 0:
        raise ValueError("retries must be 0 or more")
    return _Opts(resume, retries, backoff, window, on_progress, on_job, on_event, sleep)


def get_tree(client: Client, remote_dir: str, local_dir: str | os.PathLike, *,
             resume: bool = True, retries: int = 3, backoff: float = 0.5, window: int = 64,
             on_progress: ProgressCallback | None = None,
             on_job: Callable[[JobProgress], object] | None = None,
             on_event: EventCallback | None = None,
             sleep: Callable[[float], object] = time.sleep) -> SyncReport:
    """Copy the remote folder ``remote_dir`` into ``local_dir`` (``get -r``).

    ``local_dir`` receives the *contents* of ``remote_dir`` and is created if needed,
    with every subfolder (empty ones too). Existing local files are replaced, as
    :meth:`Client.get` does. File and folder modification times are kept. Every file
    is verified by SHA-256 before it takes its name; requests are pipelined
    (``window`` in flight), so many small files cost about one round trip per
    ``window`` files. Dropped connections are retried ``retries`` times with a
    growing back-off (``backoff``, doubled each time), continuing partial files.
    Per-file problems are collected in the report, not raised.
    """
    opts = _opts(resume, retries, backoff, window, on_progress, on_job, on_event, sleep)
    return _sync(client, remote_dir, os.fspath(local_dir), pull=True, compare=None,
                 delete=False, dry_run=False, overwrite=True, mtime_tolerance=MTIME_TOLERANCE,
                 opts=opts)


def put_tree(client: Client, local_dir: str | os.PathLike, remote_dir: str, *,
             overwrite: bool = False, resume: bool = True, retries: int = 3,
             backoff: float = 0.5, window: int = 64,
             on_progress: ProgressCallback | None = None,
             on_job: Callable[[JobProgress], object] | None = None,
             on_event: EventCallback | None = None,
             sleep: Callable[[float], object] = time.sleep) -> SyncReport:
    """Copy the local folder ``local_dir`` into the remote ``remote_dir`` (``put -r``).

    ``remote_dir`` receives the *contents* of ``local_dir`` and is created (with
    parents) if needed, with every subfolder. File modification times are kept (the
    protocol cannot set a folder's). Symlinks are never followed out of the tree;
    special files are listed in ``report.ignored``. A file that already exists on the
    server is skipped when its SHA-256 is the same, and reported as an error when it
    differs, unless ``overwrite``. Retries as in :func:`get_tree`.
    """
    opts = _opts(resume, retries, backoff, window, on_progress, on_job, on_event, sleep)
    return _sync(client, os.fspath(local_dir), remote_dir, pull=False, compare=None,
                 delete=False, dry_run=False, overwrite=overwrite,
                 mtime_tolerance=MTIME_TOLERANCE, opts=opts)


def mirror(client: Client, src: str | os.PathLike, dst: str | os.PathLike | None = None, *,
           reverse: bool = False, delete: bool = False, checksum: bool = False,
           dry_run: bool = False, resume: bool = True, retries: int = 3,
           backoff: float = 0.5, window: int = 64,
           mtime_tolerance: float = MTIME_TOLERANCE,
           on_progress: ProgressCallback | None = None,
           on_job: Callable[[JobProgress], object] | None = None,
           on_event: EventCallback | None = None,
           sleep: Callable[[float], object] = time.sleep) -> SyncReport:
    """Make ``dst`` look like ``src``, moving only what differs (lftp's ``mirror``).

    Without ``reverse``, ``src`` is a remote folder and ``dst`` a local one (default:
    the remote folder's name in the current directory); with ``reverse`` (``mirror
    -R``) ``src`` is local and ``dst`` remote (default: the local folder's name in the
    remote directory). A file is sent when it is missing, its size differs, or its
    modification time differs by more than ``mtime_tolerance`` seconds; with
    ``checksum`` files of equal size are compared by SHA-256 instead of time. With
    ``delete`` files and then folders on the receiving side that the source does not
    have are removed (after the transfers, so a failed run never deletes first),
    and a file that stands where the source has a folder (or the other way round) is
    replaced. ``dry_run`` only plans: ``report.plan`` lists every step and nothing
    changes on either side. The summary counts files sent, skipped and deleted.
    """
    src = os.fspath(src)
    if dst is None:
        base = posixpath.basename(src.rstrip("/")) if not reverse else \
            os.path.basename(os.path.abspath(src))
        dst = base or "."
    opts = _opts(resume, retries, backoff, window, on_progress, on_job, on_event, sleep)
    return _sync(client, src, os.fspath(dst), pull=not reverse,
                 compare="checksum" if checksum else "mtime", delete=delete, dry_run=dry_run,
                 overwrite=True, mtime_tolerance=mtime_tolerance, opts=opts)


def mget(client: Client, patterns: Sequence[str], local_dir: str | os.PathLike = ".", *,
         recursive: bool = False, resume: bool = True, retries: int = 3,
         backoff: float = 0.5, window: int = 64,
         on_progress: ProgressCallback | None = None,
         on_job: Callable[[JobProgress], object] | None = None,
         on_event: EventCallback | None = None,
         sleep: Callable[[float], object] = time.sleep) -> SyncReport:
    """Download every remote file matching the glob ``patterns`` into ``local_dir``.

    Each file lands under its own name in ``local_dir``. A matched folder is copied
    as a tree with ``recursive`` and listed in ``ignored`` otherwise. A pattern that
    matches nothing is an error in the report. Paths in the report are remote paths.
    """
    local_dir = os.fspath(local_dir)
    opts = _opts(resume, retries, backoff, window, on_progress, on_job, on_event, sleep)
    report = SyncReport(" ".join(patterns), local_dir, "get")
    if not os.path.isdir(local_dir):
        raise LocalError(f"local folder not found: {local_dir}")
    sends: list[_Send] = []
    seen: dict[str, str] = {}
    for pattern in patterns:
        matches = _with_reconnect(client, opts, report,
                                  lambda: _expand_remote(client, pattern, opts.window))
        if not matches:
            report.errors.append((pattern, "no remote file matches"))
            opts.event("error", pattern, "no remote file matches")
            continue
        for path, entry in matches:
            if entry is None:
                try:
                    entry = _with_reconnect(client, opts, report, lambda: client.stat(path))
                except RemoteError as exc:
                    report.errors.append((path, str(exc)))
                    opts.event("error", path, str(exc))
                    continue
            name = posixpath.basename(path.rstrip("/"))
            if entry.is_dir:
                if recursive:
                    report.merge(get_tree(client, path, os.path.join(local_dir, name),
                                          resume=resume, retries=retries, backoff=backoff,
                                          window=window, on_progress=on_progress,
                                          on_job=on_job, on_event=on_event, sleep=sleep), path)
                else:
                    report.ignored.append((path, "a folder (use -r to copy folders)"))
                    opts.event("ignored", path, "a folder (use -r to copy folders)")
                continue
            target = os.path.join(local_dir, name)
            if target in seen:
                if posixpath.normpath(seen[target]) == posixpath.normpath(path):
                    continue  # one file matched by two patterns: fetched once
                msg = f"same name as {seen[target]}: not downloaded twice to {target}"
                report.errors.append((path, msg))
                continue
            seen[target] = path
            sends.append(_Send(path, path, target, entry.size))
            report.plan.append(Action("send", path, entry.size))
    if sends:
        _run_gets(client, sends, report, opts)
    return report


def mput(client: Client, patterns: Sequence[str], remote_dir: str = ".", *,
         recursive: bool = False, overwrite: bool = False, resume: bool = True,
         retries: int = 3, backoff: float = 0.5, window: int = 64,
         on_progress: ProgressCallback | None = None,
         on_job: Callable[[JobProgress], object] | None = None,
         on_event: EventCallback | None = None,
         sleep: Callable[[float], object] = time.sleep) -> SyncReport:
    """Upload every local file matching the glob ``patterns`` into ``remote_dir``.

    Each file keeps its name. A matched folder is copied as a tree with ``recursive``
    and listed in ``ignored`` otherwise; special files are ignored too. Existing
    remote files are handled as in :func:`put_tree`. Paths in the report are the local
    paths as matched.
    """
    opts = _opts(resume, retries, backoff, window, on_progress, on_job, on_event, sleep)
    report = SyncReport(" ".join(patterns), remote_dir, "put")
    sends: list[_Send] = []
    seen: dict[str, str] = {}
    for pattern in patterns:
        matches = expand_local(pattern)
        if not matches or (len(matches) == 1 and not os.path.lexists(matches[0])):
            report.errors.append((pattern, "no local file matches"))
            opts.event("error", pattern, "no local file matches")
            continue
        for path in matches:
            name = os.path.basename(os.path.normpath(path))
            try:
                st = os.stat(path)
            except OSError as exc:
                report.errors.append((path, f"cannot read: {exc.strerror}"))
                continue
            if stat_.S_ISDIR(st.st_mode):
                if recursive:
                    report.merge(put_tree(client, path, posixpath.join(remote_dir, name),
                                          overwrite=overwrite, resume=resume, retries=retries,
                                          backoff=backoff, window=window,
                                          on_progress=on_progress, on_job=on_job,
                                          on_event=on_event, sleep=sleep), path)
                else:
                    report.ignored.append((path, "a folder (use -r to copy folders)"))
                    opts.event("ignored", path, "a folder (use -r to copy folders)")
                continue
            if not stat_.S_ISREG(st.st_mode):
                report.ignored.append((path, "not a regular file (FIFO, socket or device)"))
                continue
            remote = posixpath.join(remote_dir, name)
            if remote in seen:
                if os.path.normpath(seen[remote]) == os.path.normpath(path):
                    continue  # one file matched by two patterns: sent once
                report.errors.append((path, f"same name as {seen[remote]}: not uploaded "
                                            f"twice to {remote}"))
                continue
            seen[remote] = path
            sends.append(_Send(path, remote, path, st.st_size))
            report.plan.append(Action("send", path, st.st_size))
    if sends:
        _run_puts(client, sends, report, opts, overwrite=overwrite)
    return report


def get_file(client: Client, remote: str, local: str | os.PathLike | None = None, *,
             resume: bool = True, retries: int = 3, backoff: float = 0.5,
             on_progress: ProgressCallback | None = None,
             on_event: EventCallback | None = None,
             sleep: Callable[[float], object] = time.sleep) -> TransferResult:
    """:meth:`Client.get` that reconnects and continues after a dropped connection.

    Up to ``retries`` attempts after the first, waiting ``backoff`` seconds and
    doubling. Errors the server answered (not found, ...) are raised at once.
    """
    opts = _opts(resume, retries, backoff, 1, on_progress, None, on_event, sleep)
    return _retry_one(client, opts, lambda: client.get(remote, local, on_progress=on_progress,
                                                       resume=resume), f"get {remote}")


def put_file(client: Client, local: str | os.PathLike, remote: str | None = None, *,
             overwrite: bool = False, resume: bool = True, retries: int = 3,
             backoff: float = 0.5, on_progress: ProgressCallback | None = None,
             on_event: EventCallback | None = None,
             sleep: Callable[[float], object] = time.sleep) -> TransferResult:
    """:meth:`Client.put` that reconnects and continues after a dropped connection.

    The server keeps the partial upload, so each retry sends only the rest. A
    ``busy`` answer (the previous connection's upload not yet given up by the server)
    is retried too. If the file turns out to be published already with the same
    SHA-256 (the final reply was lost with the connection), that counts as success.
    """
    opts = _opts(resume, retries, backoff, 1, on_progress, None, on_event, sleep)
    local = os.fspath(local)
    name = remote if remote is not None else os.path.basename(local.rstrip(os.sep))
    attempts = [0]

    def once() -> TransferResult:
        attempts[0] += 1
        try:
            return client.put(local, name, on_progress=on_progress, overwrite=overwrite,
                              resume=resume)
        except AlreadyExistsError:
            if attempts[0] == 1 or overwrite:
                raise
            digest = _local_sha256(local)
            if client.hash(name) != digest:
                raise
            size = os.path.getsize(local)
            return TransferResult(name, local, size, 0, size, digest, 0.0)
    return _retry_one(client, opts, once, f"put {local}")


def _retry_one(client: Client, opts: _Opts, call: Callable[[], TransferResult],
               what: str) -> TransferResult:
    """One file's transfer: retried on dropped connections and on ``busy``."""
    return _call_retrying(client, opts, call, what=what, retry_busy=True)  # type: ignore[return-value]

