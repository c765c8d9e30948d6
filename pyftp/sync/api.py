"""The public jobs: :func:`get_tree`, :func:`put_tree`, :func:`mirror`, :func:`mget`,
:func:`mput`, :func:`get_file` and :func:`put_file`. Each reads the sides (walk, globs),
asks :mod:`.plan` what to do, and lets :mod:`.execute` do it.

Nothing is printed here: progress leaves through ``on_progress(done, total)`` (bytes of
the file being moved), ``on_job(JobProgress)`` (the whole job) and ``on_event(kind,
path, detail)`` (one line's worth per file, folder or retry); the shell renders them.

Import rule: client, errors, and the rest of this package.
"""
from __future__ import annotations

import os
import posixpath
import stat as stat_
import time
from collections.abc import Callable

from ..hints import TYPE_CHECKING, LEAN, cast

from ..records import replace
from ..client import Client, TransferResult
from ..errors import (AlreadyExistsError, LocalError, NotDirectoryError, NotFoundError,
                      RemoteError)
from . import execute, localfs
from .execute import Send, call_retrying
from .globs import expand_local, expand_remote_entries
from .options import (MTIME_TOLERANCE, EventCallback, JobCallback, ProgressCallback,
                      RetryPolicy, TransferOptions, make_options)
from .plan import Plan, make_plan
from .report import Action, Problem, SyncReport
from .walk import LocalFile, Tree, local_path, walk_local, walk_remote

if TYPE_CHECKING or not LEAN:  # names for annotations; see pyftp.hints
    from typing import Sequence

Sleep = Callable[[float], object]
FOLDER = "a folder (use -r to copy folders)"
FOLDER_HINT = "copy folders with recursive (-r)"


# ---------------------------------------------------------------------- tree jobs

def _tree_job(client: Client, src: str, dst: str, *, pull: bool, compare: str | None,
              delete: bool, dry_run: bool, overwrite: bool, mtime_tolerance: float,
              opts: TransferOptions) -> SyncReport:
    """The one engine behind get_tree, put_tree and mirror: read both sides, plan,
    then carry the plan out (``compare`` as in :func:`~.plan.make_plan`)."""
    report = SyncReport(src, dst, "get" if pull else "put", dry_run=dry_run)
    source, root_mtime = _read_source(client, src, pull, opts, report)
    target, dst_exists = (_read_target(client, dst, pull, opts, report)
                          if compare is not None or delete else (Tree(), True))
    plan = make_plan(source, target, compare=compare, delete=delete,
                     mtime_tolerance=mtime_tolerance)
    if plan.to_hash:
        local = target if pull else source  # the side walked by walk_local: LocalFiles
        files = [(posixpath.join(src if pull else dst, a.path),
                  cast(LocalFile, local.files[a.path]).path) for a in plan.to_hash]
        changed = execute.checksum_differs(client, [r for r, _l in files],
                                           [loc for _r, loc in files], opts)
        plan.settle_checksums({a.path: c for a, c in zip(plan.to_hash, changed)})
    _note_plan(report, plan, opts)
    if dry_run:
        return report
    sends = [_send_for(src, dst, a, source, pull) for a in plan.sends]
    if pull:
        _carry_out_get(client, dst, plan, sends, report, opts)
        localfs.set_dir_times(dst, source.dirs, root_mtime)
    else:
        if not dst_exists or compare is None:
            call_retrying(client, opts, lambda: execute.mkdir_root(client, dst), report=report)
        _carry_out_put(client, dst, plan, sends, report, opts,
                       overwrite=overwrite or compare is not None)
    return report


def _read_source(client: Client, src: str, pull: bool, opts: TransferOptions,
                 report: SyncReport) -> tuple[Tree, float | None]:
    if pull:
        root = call_retrying(client, opts, lambda: client.stat(src), report=report)
        if not root.is_dir:
            raise NotDirectoryError(f"not a directory: {src} (use get for one file)")
        tree = call_retrying(client, opts, lambda: walk_remote(client, src, window=opts.window),
                             report=report)
        mtime: float | None = root.mtime
    else:
        if not os.path.isdir(src):
            raise LocalError(f"{src} is not a folder" if os.path.exists(src)
                             else f"local folder not found: {src}")
        tree, mtime = walk_local(src), None
    report.ignored += tree.ignored
    report.errors += tree.errors
    for p in tree.ignored:
        opts.event("ignored", p.path, p.message)
    return tree, mtime


def _read_target(client: Client, dst: str, pull: bool, opts: TransferOptions,
                 report: SyncReport) -> tuple[Tree, bool]:
    """The receiving side, when the job compares or deletes; and whether it exists."""
    tree, exists = Tree(), True
    if pull:
        exists = os.path.isdir(dst)
        if os.path.exists(dst) and not exists:
            raise LocalError(f"{dst} exists and is not a folder")
        if exists:
            tree = walk_local(dst)
    else:
        try:
            st = call_retrying(client, opts, lambda: client.stat(dst), report=report)
            if not st.is_dir:
                raise NotDirectoryError(f"not a directory: {dst}")
            tree = call_retrying(client, opts, lambda: walk_remote(
                client, dst, window=opts.window), report=report)
        except NotFoundError:
            exists = False
    report.errors += [replace(p, message=f"receiving side: {p.message}") for p in tree.errors]
    return tree, exists


def _note_plan(report: SyncReport, plan: Plan, opts: TransferOptions) -> None:
    report.skipped += plan.skipped
    report.errors += plan.problems
    report.plan += plan.actions()
    for p in plan.problems:
        if p.kind == "kept":
            opts.event("error", p.path, p.message)


def _send_for(src: str, dst: str, a: Action, source: Tree, pull: bool) -> Send:
    if pull:
        return Send(a.path, posixpath.join(src, a.path), local_path(dst, a.path), a.size)
    local = cast(LocalFile, source.files[a.path]).path  # a link's target
    return Send(a.path, posixpath.join(dst, a.path), local, a.size)


def _carry_out_get(client: Client, dst: str, plan: Plan, sends: list[Send],
                   report: SyncReport, opts: TransferOptions) -> None:
    try:
        os.makedirs(dst, exist_ok=True)
    except OSError as exc:
        raise LocalError(f"cannot create {dst}: {exc.strerror}") from exc
    localfs.delete(dst, plan.pre_files, plan.pre_dirs, report, opts)
    failed = localfs.make_dirs(dst, plan.mkdirs, report, opts)
    kept, checked = [], {}  # no download may land outside dst through a symlinked folder
    for s in execute.drop_under(sends, failed, report):
        parent = os.path.dirname(s.local)
        if parent not in checked:
            checked[parent] = localfs.inside_target(dst, s.local)
        if checked[parent]:
            kept.append(s)
        else:
            report.errors.append(Problem(s.rel, "outside", "its local folder leads outside "
                                         "the target folder (a symlink?): not written"))
    if kept:
        execute.run_gets(client, kept, report, opts)
    localfs.delete(dst, plan.post_files, plan.post_dirs, report, opts)


def _carry_out_put(client: Client, dst: str, plan: Plan, sends: list[Send],
                   report: SyncReport, opts: TransferOptions, *, overwrite: bool) -> None:
    execute.delete(client, dst, plan.pre_files, plan.pre_dirs, report, opts)
    if plan.mkdirs:
        failed = execute.mkdirs(client, dst, plan.mkdirs, report, opts)
        sends = execute.drop_under(sends, failed, report)
    if sends:
        execute.run_puts(client, sends, report, opts, overwrite=overwrite)
    execute.delete(client, dst, plan.post_files, plan.post_dirs, report, opts)


# ---------------------------------------------------------------------- public jobs

def get_tree(client: Client, remote_dir: str, local_dir: str | os.PathLike[str], *,
             checksum: bool = False, resume: bool = True, retries: int | None = None,
             backoff: float | None = None, retry: RetryPolicy | None = None,
             window: int = 64, mtime_tolerance: float = MTIME_TOLERANCE,
             on_progress: ProgressCallback | None = None, on_job: JobCallback | None = None,
             on_event: EventCallback | None = None, sleep: Sleep = time.sleep) -> SyncReport:
    """Copy the remote folder ``remote_dir`` into ``local_dir`` (``get -r``).

    ``local_dir`` receives the *contents* of ``remote_dir`` and is created if needed,
    with every subfolder (empty ones too). A local file that is already identical (same
    size and modification time; same SHA-256 with ``checksum``) is skipped, so a rerun
    sends only what is missing or changed; other existing files are replaced, as
    :meth:`Client.get` does. File and folder modification times are kept. Every file
    is verified by SHA-256 before it takes its name; requests are pipelined
    (``window`` in flight), so many small files cost about one round trip per
    ``window`` files. Dropped connections are retried under ``retry`` (a
    :class:`RetryPolicy`; ``retries`` and ``backoff`` override its fields), continuing
    partial files. Per-file problems are collected in the report, not raised.
    """
    opts = make_options(resume=resume, retry=retry, retries=retries, backoff=backoff,
                        window=window, on_progress=on_progress, on_job=on_job,
                        on_event=on_event, sleep=sleep)
    return _tree_job(client, remote_dir, os.fspath(local_dir), pull=True,
                     compare="checksum" if checksum else "mtime", delete=False,
                     dry_run=False, overwrite=True, mtime_tolerance=mtime_tolerance,
                     opts=opts)


def put_tree(client: Client, local_dir: str | os.PathLike[str], remote_dir: str, *,
             overwrite: bool = False, resume: bool = True, retries: int | None = None,
             backoff: float | None = None, retry: RetryPolicy | None = None,
             window: int = 64, on_progress: ProgressCallback | None = None,
             on_job: JobCallback | None = None, on_event: EventCallback | None = None,
             sleep: Sleep = time.sleep) -> SyncReport:
    """Copy the local folder ``local_dir`` into the remote ``remote_dir`` (``put -r``).

    ``remote_dir`` receives the *contents* of ``local_dir`` and is created (with
    parents) if needed, with every subfolder. File modification times are kept (the
    protocol cannot set a folder's). Symlinks are never followed out of the tree;
    special files are listed in ``report.ignored``. A file that already exists on the
    server is skipped when its SHA-256 is the same, and is an ``exists`` problem when
    it differs, unless ``overwrite``. Retries as in :func:`get_tree`.
    """
    opts = make_options(resume=resume, retry=retry, retries=retries, backoff=backoff,
                        window=window, on_progress=on_progress, on_job=on_job,
                        on_event=on_event, sleep=sleep)
    return _tree_job(client, os.fspath(local_dir), remote_dir, pull=False, compare=None,
                     delete=False, dry_run=False, overwrite=overwrite,
                     mtime_tolerance=MTIME_TOLERANCE, opts=opts)


def mirror(client: Client, src: str | os.PathLike[str],
           dst: str | os.PathLike[str] | None = None, *,
           reverse: bool = False, delete: bool = False, checksum: bool = False,
           dry_run: bool = False, resume: bool = True, retries: int | None = None,
           backoff: float | None = None, retry: RetryPolicy | None = None,
           window: int = 64, mtime_tolerance: float = MTIME_TOLERANCE,
           on_progress: ProgressCallback | None = None, on_job: JobCallback | None = None,
           on_event: EventCallback | None = None, sleep: Sleep = time.sleep) -> SyncReport:
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
    opts = make_options(resume=resume, retry=retry, retries=retries, backoff=backoff,
                        window=window, on_progress=on_progress, on_job=on_job,
                        on_event=on_event, sleep=sleep)
    return _tree_job(client, src, os.fspath(dst), pull=not reverse,
                     compare="checksum" if checksum else "mtime", delete=delete,
                     dry_run=dry_run, overwrite=True, mtime_tolerance=mtime_tolerance,
                     opts=opts)


def _no_match(pattern: str, side: str) -> Problem:
    message = f"no {side} file matches"
    error = NotFoundError(f"{message} {pattern}") if side == "remote" else \
        LocalError(f"{message} {pattern}")
    return Problem(pattern, "no_match", message, error)


def _queue(report: SyncReport, sends: list[Send], seen: dict[str, str], send: Send,
           target: str, norm: Callable[[str], str], verb: str) -> None:
    """Queue one matched file, once per target name: one file matched by two patterns
    moves once; two files that would land on the same name are a problem."""
    if target not in seen:
        seen[target] = send.rel
        sends.append(send)
        report.plan.append(Action("send", send.rel, send.size))
    elif norm(seen[target]) != norm(send.rel):
        report.errors.append(Problem(send.rel, "duplicate", f"same name as {seen[target]}: "
                                     f"not {verb} twice to {target}"))


def mget(client: Client, patterns: Sequence[str], local_dir: str | os.PathLike[str] = ".", *,
         recursive: bool = False, resume: bool = True, retries: int | None = None,
         backoff: float | None = None, retry: RetryPolicy | None = None,
         window: int = 64, on_progress: ProgressCallback | None = None,
         on_job: JobCallback | None = None, on_event: EventCallback | None = None,
         sleep: Sleep = time.sleep) -> SyncReport:
    """Download every remote file matching the glob ``patterns`` into ``local_dir``.

    Each file lands under its own name in ``local_dir``. A matched folder is copied
    as a tree with ``recursive`` and is a ``folder`` problem in ``ignored`` otherwise.
    A pattern that matches nothing is a ``no_match`` error in the report. Paths in the
    report are remote paths.
    """
    local_dir = os.fspath(local_dir)
    opts = make_options(resume=resume, retry=retry, retries=retries, backoff=backoff,
                        window=window, on_progress=on_progress, on_job=on_job,
                        on_event=on_event, sleep=sleep)
    report = SyncReport(" ".join(patterns), local_dir, "get")
    if not os.path.isdir(local_dir):
        raise LocalError(f"local folder not found: {local_dir}")
    sends: list[Send] = []
    seen: dict[str, str] = {}
    for pattern in patterns:
        matches = call_retrying(client, opts, lambda: expand_remote_entries(
            client, pattern, opts.window), report=report)
        if not matches:
            report.errors.append(_no_match(pattern, "remote"))
            opts.event("error", pattern, "no remote file matches")
        for path, entry in matches:
            if entry is None:
                try:
                    entry = call_retrying(client, opts, lambda: client.stat(path),
                                          report=report)
                except RemoteError as exc:
                    report.errors.append(Problem(path, "failed", str(exc), exc))
                    opts.event("error", path, str(exc))
                    continue
            name = posixpath.basename(path.rstrip("/"))
            target = os.path.join(local_dir, name)
            if entry.is_dir:
                if recursive:
                    report.merge(_tree_job(client, path, target, pull=True, compare="mtime",
                                           delete=False, dry_run=False, overwrite=True,
                                           mtime_tolerance=MTIME_TOLERANCE, opts=opts), path)
                else:
                    _folder(report, path, opts)
            else:
                _queue(report, sends, seen, Send(path, path, target, entry.size), target,
                       posixpath.normpath, "downloaded")
    if sends:
        execute.run_gets(client, sends, report, opts)
    return report


def _folder(report: SyncReport, path: str, opts: TransferOptions) -> None:
    report.ignored.append(Problem(path, "folder", FOLDER, hint=FOLDER_HINT))
    opts.event("ignored", path, FOLDER)


def mput(client: Client, patterns: Sequence[str], remote_dir: str = ".", *,
         recursive: bool = False, overwrite: bool = False, resume: bool = True,
         retries: int | None = None, backoff: float | None = None,
         retry: RetryPolicy | None = None, window: int = 64,
         on_progress: ProgressCallback | None = None, on_job: JobCallback | None = None,
         on_event: EventCallback | None = None, sleep: Sleep = time.sleep) -> SyncReport:
    """Upload every local file matching the glob ``patterns`` into ``remote_dir``.

    Each file keeps its name. A matched folder is copied as a tree with ``recursive``
    and is a ``folder`` problem in ``ignored`` otherwise; special files are ignored
    too. Existing remote files are handled as in :func:`put_tree`. Paths in the report
    are the local paths as matched.
    """
    opts = make_options(resume=resume, retry=retry, retries=retries, backoff=backoff,
                        window=window, on_progress=on_progress, on_job=on_job,
                        on_event=on_event, sleep=sleep)
    report = SyncReport(" ".join(patterns), remote_dir, "put")
    sends: list[Send] = []
    seen: dict[str, str] = {}
    for pattern in patterns:
        matches = expand_local(pattern)
        if not matches or (len(matches) == 1 and not os.path.lexists(matches[0])):
            report.errors.append(_no_match(pattern, "local"))
            opts.event("error", pattern, "no local file matches")
            continue
        for path in matches:
            remote = posixpath.join(remote_dir, os.path.basename(os.path.normpath(path)))
            try:
                st = os.stat(path)
            except OSError as exc:
                why = f"cannot read: {exc.strerror}"
                report.errors.append(Problem(path, "failed", why, LocalError(f"{why} {path}")))
                continue
            if stat_.S_ISDIR(st.st_mode):
                if recursive:
                    report.merge(_tree_job(client, path, remote, pull=False, compare=None,
                                           delete=False, dry_run=False, overwrite=overwrite,
                                           mtime_tolerance=MTIME_TOLERANCE, opts=opts), path)
                else:
                    _folder(report, path, opts)
            elif not stat_.S_ISREG(st.st_mode):
                report.ignored.append(Problem(path, "special", "not a regular file (FIFO, "
                                              "socket or device)"))
            else:
                _queue(report, sends, seen, Send(path, remote, path, st.st_size), remote,
                       os.path.normpath, "uploaded")
    if sends:
        execute.run_puts(client, sends, report, opts, overwrite=overwrite)
    return report


def get_file(client: Client, remote: str, local: str | os.PathLike[str] | None = None, *,
             resume: bool = True, retries: int | None = None, backoff: float | None = None,
             retry: RetryPolicy | None = None, on_progress: ProgressCallback | None = None,
             on_event: EventCallback | None = None,
             sleep: Sleep = time.sleep) -> TransferResult:
    """:meth:`Client.get` that reconnects and continues after a dropped connection.

    Retried under ``retry`` (see :class:`RetryPolicy`). Errors the server answered
    (not found, ...) are raised at once.
    """
    opts = make_options(resume=resume, retry=retry, retries=retries, backoff=backoff,
                        window=1, on_progress=on_progress, on_event=on_event, sleep=sleep)
    return call_retrying(client, opts, lambda: client.get(
        remote, local, on_progress=on_progress, resume=resume), what=f"get {remote}",
        retry_busy=True)


def put_file(client: Client, local: str | os.PathLike[str], remote: str | None = None, *,
             overwrite: bool = False, resume: bool = True, retries: int | None = None,
             backoff: float | None = None, retry: RetryPolicy | None = None,
             on_progress: ProgressCallback | None = None,
             on_event: EventCallback | None = None,
             sleep: Sleep = time.sleep) -> TransferResult:
    """:meth:`Client.put` that reconnects and continues after a dropped connection.

    The server keeps the partial upload, so each retry sends only the rest. A
    ``busy`` answer (the previous connection's upload not yet given up by the server)
    is retried too. If the file turns out to be published already with the same
    SHA-256 (the final reply was lost with the connection), that counts as success.
    """
    opts = make_options(resume=resume, retry=retry, retries=retries, backoff=backoff,
                        window=1, on_progress=on_progress, on_event=on_event, sleep=sleep)
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
            digest = localfs.local_sha256(local, client.algorithm)
            if client.hash(name) != digest:
                raise
            size = os.path.getsize(local)
            return TransferResult(name, local, size, 0, size, digest, 0.0, client.algorithm)
    return call_retrying(client, opts, once, what=f"put {local}", retry_busy=True)
