"""Carrying out a plan on a :class:`~pyftp.client.Client`: pipelined batches of gets and
puts, remote folders and deletions, and the one retry loop that reconnects after a
dropped connection and continues what was not finished.

Every file still moves through the client's verified, atomic path (hidden partial,
digest check, rename), so nothing here can publish a half-written file.

Import rule: client, errors, and this package's options, report, plan and localfs.
"""
from __future__ import annotations

import posixpath

from ..hints import TYPE_CHECKING, LEAN

from ..records import dataclass
from ..client import Client, TransferResult
from ..errors import (AlreadyExistsError, BusyError, ConnectError, LocalError,
                      NotFoundError, PyftpError, RemoteError, TransportError)
from .localfs import local_sha256
from .options import TransferOptions
from .plan import under
from .report import JobProgress, Problem, RetriesExhaustedError, SyncReport

if TYPE_CHECKING or not LEAN:  # names for annotations; see pyftp.hints
    from typing import Callable, TypeVar
    _T = TypeVar("_T")

BUSY = "the server is busy with the same file"
EXISTS_HINT = "use overwrite to replace it"


@dataclass
class Send:
    """One file to move: ``rel`` names it in the report."""

    rel: str
    remote: str
    local: str
    size: int


# ---------------------------------------------------------------------- retries

def _reason(exc: BaseException | None) -> str:
    """Why the job waits, in the words of a retry line."""
    if exc is None or isinstance(exc, BusyError):
        return BUSY
    text = str(exc).removeprefix("connection lost: ")
    return text if isinstance(exc, ConnectError) else f"connection lost ({text})"


def _wait(opts: TransferOptions, failures: int, reason: str, what: str) -> None:
    opts.event("retry", what, opts.retry.retry_line(reason, failures))
    opts.sleep(opts.retry.delay(failures))


def gave_up(exc: TransportError, opts: TransferOptions, report: SyncReport | None,
            what: str = "", left: int = 0) -> RetriesExhaustedError:
    """The error a job raises when the connection stayed away past every retry."""
    undone = f"; {left} file(s) not done" if left else ""
    return RetriesExhaustedError(
        f"{what + ': ' if what else ''}{opts.retry.gave_up_line(str(exc))}{undone}; "
        "run the same command again to resume", report or SyncReport("", "", ""))




def call_retrying(client: Client, opts: TransferOptions, call: Callable[[], _T], *,
                  what: str = "", report: SyncReport | None = None,
                  retry_busy: bool = False) -> _T:
    """Run one idempotent ``call`` (a listing, hashes, mkdirs, a single transfer),
    reconnecting and retrying under ``opts.retry`` when the connection drops (and,
    with ``retry_busy``, when the server answers ``busy``). Past the last retry a
    dropped connection becomes :class:`RetriesExhaustedError`."""
    retryable = (TransportError, BusyError) if retry_busy else (TransportError,)
    failures = 0
    while True:
        try:
            if not client.connected:
                client.reconnect()
            return call()
        except retryable as exc:
            failures += 1
            if failures > opts.retry.retries:
                if isinstance(exc, TransportError):
                    raise gave_up(exc, opts, report, what) from exc
                raise
            _wait(opts, failures, _reason(exc), what)


def run_batch(client: Client, report: SyncReport, opts: TransferOptions, work: list[Send],
              run: Callable[[list[Send], Callable[[int], None]], list[int]], what: str) -> None:
    """Run ``work`` until every item is finished, reconnecting after dropped connections.

    ``run(items, done)`` processes ``items`` in order, calls ``done(k)`` for each item
    ``k`` it finished (success or a per-item problem already recorded) and returns the
    positions of items to try again later (the server said ``busy``). A
    TransportError ends the attempt; the unfinished items are retried under
    ``opts.retry`` on a new connection. The count of failed attempts starts again
    whenever an attempt finished an item, so a long batch survives several drops but a
    dead server is given up on after ``retries`` attempts.
    """
    pending = list(work)
    failures = 0
    while pending:
        finished: set[int] = set()
        again: list[int] = []
        cause: TransportError | None = None
        try:
            if not client.connected:
                client.reconnect()
            again = run(pending, finished.add)
        except TransportError as exc:
            cause = exc
        if cause is None and not again:
            return
        retry_set = set(again)
        if finished - retry_set:
            failures = 0
        pending = [it for k, it in enumerate(pending) if k not in finished or k in retry_set]
        failures += 1
        if failures > opts.retry.retries:
            _give_up_on(pending, cause, report)
            if cause is not None:
                raise gave_up(cause, opts, report, what, len(pending)) from cause
            return
        report.retries += 1
        _wait(opts, failures, _reason(cause), "")


def _give_up_on(pending: list[Send], cause: TransportError | None,
                report: SyncReport) -> None:
    for it in pending:
        if cause is None:
            report.errors.append(Problem(it.rel, "busy", BUSY, BusyError(BUSY),
                                         "run it again when the other upload is done"))
        else:
            report.errors.append(Problem(it.rel, "failed", str(cause), cause))


# ---------------------------------------------------------------------- batches

class _Job:
    """Progress bookkeeping shared by the batch runners."""

    def __init__(self, sends: list[Send], opts: TransferOptions) -> None:
        self.opts = opts
        self.files_total = len(sends)
        self.bytes_total = sum(s.size for s in sends)
        self.files_done = 0
        self.bytes_done = 0  # of finished files
        self._current: str | None = None

    def bytes(self, send: Send, done: int, total: int) -> None:
        if self._current != send.rel:
            self._current = send.rel
            self._job(send.rel, done)
        if self.opts.on_progress:
            self.opts.on_progress(done, total)

    def finished(self, send: Send) -> None:
        self.files_done += 1
        self.bytes_done += send.size
        self._current = None
        self._job(send.rel, 0)

    def _job(self, rel: str, current_done: int) -> None:
        if self.opts.on_job:
            self.opts.on_job(JobProgress(self.files_done, self.files_total,
                                         min(self.bytes_total, self.bytes_done + current_done),
                                         self.bytes_total, rel))


def record(report: SyncReport, send: Send, res: object, opts: TransferOptions) -> None:
    """Note one file's outcome: a TransferResult, or the error it ended with."""
    if isinstance(res, TransferResult):
        report.sent.append(send.rel)
        report.bytes_sent += res.sent
        report.bytes_total += res.total
        report.results.append(res)
        opts.event("sent", send.rel, f"{res.total} B" + (f", resumed at {res.offset}"
                                                         if res.offset else ""))
    else:
        error = res if isinstance(res, PyftpError) else None
        report.errors.append(Problem(send.rel, "failed", str(res), error))
        opts.event("error", send.rel, str(res))


def run_gets(client: Client, sends: list[Send], report: SyncReport,
             opts: TransferOptions) -> None:
    """Download ``sends`` pipelined, retrying dropped connections."""
    job = _Job(sends, opts)

    def run(items: list[Send], done: Callable[[int], None]) -> list[int]:
        busy: list[int] = []

        def on_file(k: int, res: object) -> None:
            if isinstance(res, BusyError):
                busy.append(k)
            else:
                record(report, items[k], res, opts)
                job.finished(items[k])
            done(k)
        client.get_many([(s.remote, s.local) for s in items], resume=opts.resume,
                        window=opts.window, on_file=on_file,
                        on_bytes=lambda k, d, t: job.bytes(items[k], d, t))
        return busy
    run_batch(client, report, opts, sends, run, "download")


def run_puts(client: Client, sends: list[Send], report: SyncReport, opts: TransferOptions,
             *, overwrite: bool) -> None:
    """Upload ``sends`` pipelined, retrying dropped connections. Without ``overwrite``
    a file already on the server is skipped when identical and a problem otherwise."""
    job = _Job(sends, opts)
    existing: list[tuple[Send, AlreadyExistsError]] = []

    def run(items: list[Send], done: Callable[[int], None]) -> list[int]:
        busy: list[int] = []

        def on_file(k: int, res: object) -> None:
            if isinstance(res, BusyError):
                busy.append(k)
            elif isinstance(res, AlreadyExistsError) and not overwrite:
                existing.append((items[k], res))  # identical, or a real conflict: below
            else:
                record(report, items[k], res, opts)
                job.finished(items[k])
            done(k)
        client.put_many([(s.local, s.remote) for s in items], overwrite=overwrite,
                        resume=opts.resume, on_file=on_file,
                        on_bytes=lambda k, d, t: job.bytes(items[k], d, t))
        return busy
    run_batch(client, report, opts, sends, run, "upload")
    if existing:
        _settle_existing(client, existing, report, opts, job)


def _settle_existing(client: Client, existing: list[tuple[Send, AlreadyExistsError]],
                     report: SyncReport, opts: TransferOptions, job: _Job) -> None:
    # A file that is already there with the same bytes is not an error: it is what a
    # rerun after an interrupted batch (or a lost final reply) finds.
    remote_digests = call_retrying(client, opts, lambda: client.hash_many(
        [s.remote for s, _e in existing], window=opts.window), report=report)
    for (s, exc), remote_digest in zip(existing, remote_digests):
        try:
            same = isinstance(remote_digest, str) and remote_digest == local_sha256(s.local, client.algorithm)
        except LocalError as err:
            report.errors.append(Problem(s.rel, "failed", str(err), err))
            continue
        if same:
            report.skipped.append(s.rel)
            opts.event("skipped", s.rel, "already on the server, identical")
        else:
            msg = f"already exists on the server and differs: {s.remote}"
            report.errors.append(Problem(s.rel, "exists", msg, exc, EXISTS_HINT))
            opts.event("error", s.rel, f"{msg} ({EXISTS_HINT})")
        job.finished(s)


# ---------------------------------------------------------------------- remote steps

def drop_under(sends: list[Send], bad_dirs: list[str], report: SyncReport) -> list[Send]:
    """The sends not inside a folder that could not be created (those are problems)."""
    kept = []
    for s in sends:
        if bad_dirs and under(s.rel, bad_dirs):
            report.errors.append(Problem(s.rel, "failed", "its folder could not be created"))
        else:
            kept.append(s)
    return kept


def checksum_differs(client: Client, remote_paths: list[str], local_paths: list[str],
                     opts: TransferOptions) -> list[bool]:
    """For each pair, whether the remote and local digests differ (an unreadable local
    file or a remote error counts as differing: the transfer then says why)."""
    remote = call_retrying(client, opts, lambda: client.hash_many(remote_paths,
                                                                  window=opts.window))
    out = []
    for local, remote_digest in zip(local_paths, remote):
        try:
            out.append(not isinstance(remote_digest, str)
                       or remote_digest != local_sha256(local, client.algorithm))
        except LocalError:
            out.append(True)
    return out


def mkdir_root(client: Client, path: str) -> None:
    """Create the remote target folder with its parents; an existing folder is fine."""
    reply = client.call_many([{"op": "mkdir", "path": path, "parents": True}])[0]
    if isinstance(reply, AlreadyExistsError) and client.stat(path).is_dir:
        return  # "/" (or the cwd when it is "/") always exists
    if isinstance(reply, RemoteError):
        raise reply


def mkdirs(client: Client, dst: str, rels: list[str], report: SyncReport,
           opts: TransferOptions) -> list[str]:
    """Create the remote folders ``rels`` under ``dst``; returns those that failed."""
    replies = call_retrying(client, opts, lambda: client.call_many(
        [{"op": "mkdir", "path": posixpath.join(dst, r), "parents": True} for r in rels],
        window=opts.window), report=report)
    failed: list[str] = []
    for rel, reply in zip(rels, replies):
        if isinstance(reply, RemoteError):
            report.errors.append(Problem(rel, "failed", f"cannot create folder: {reply}",
                                         reply))
            failed.append(rel)
        else:
            report.dirs_created.append(rel)
            opts.event("mkdir", rel, "")
    return failed


def delete(client: Client, dst: str, files: list[str], dirs: list[str],
           report: SyncReport, opts: TransferOptions) -> None:
    """Delete remote files, then folders, relative to ``dst``."""
    if not files and not dirs:
        return
    reqs = [{"op": "rm", "path": posixpath.join(dst, r)} for r in files]
    reqs += [{"op": "rmdir", "path": posixpath.join(dst, r)} for r in dirs]
    names = files + [d + "/" for d in dirs]
    # rm and rmdir are idempotent enough to repeat after a drop: not_found means done
    replies = call_retrying(client, opts, lambda: client.call_many(reqs, window=opts.window),
                            report=report)
    for name, reply in zip(names, replies):
        if isinstance(reply, RemoteError) and not isinstance(reply, NotFoundError):
            report.errors.append(Problem(name, "failed", f"cannot delete: {reply}", reply))
        else:
            report.deleted.append(name)
            opts.event("deleted", name, "")
