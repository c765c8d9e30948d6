"""The local side of carrying out a plan: creating folders, deleting extras, keeping
downloads inside the target folder, folder times and local digests.

Import rule: errors, protocol, digests, and this package's report, options and walk.
"""
from __future__ import annotations

import os

from .. import digests
from ..errors import LocalError
from ..protocol import is_partial_name, mtime_ns
from .options import TransferOptions
from .plan import under
from .report import Problem, SyncReport
from .walk import inside, local_path


def local_sha256(path: str, algorithm: str = "sha256") -> str:
    """The digest of a local file in ``algorithm`` (the client's session's, so it
    compares with the server's ``hash``); LocalError (saying which file) when it cannot
    be read."""
    try:
        return digests.hash_file(path, algorithm=algorithm)
    except OSError as exc:
        raise LocalError(f"cannot read {path}: {exc.strerror}") from exc


def _failed(report: SyncReport, rel: str, why: str, exc: BaseException | None = None
            ) -> None:
    error = exc if isinstance(exc, LocalError) else LocalError(why)
    report.errors.append(Problem(rel, "failed", why, error))


def make_dirs(dst: str, rels: list[str], report: SyncReport, opts: TransferOptions
              ) -> list[str]:
    """Create the folders ``rels`` under ``dst``; returns those that failed. A folder
    that would resolve outside ``dst`` (a symlink in the way) counts as failed."""
    dst_real = os.path.realpath(dst)
    failed: list[str] = []
    for rel in rels:
        if under(rel, failed):
            continue
        path = local_path(dst, rel)
        try:
            os.makedirs(path, exist_ok=True)
            real = os.path.realpath(path)
            if not inside(real, dst_real) or not os.path.isdir(real):
                raise LocalError("a symlink or file in the way leads outside the folder")
        except LocalError as exc:
            report.errors.append(Problem(rel, "outside", f"cannot create folder: {exc}", exc))
            failed.append(rel)
            continue
        except OSError as exc:
            _failed(report, rel, f"cannot create folder: {exc.strerror}")
            failed.append(rel)
            continue
        report.dirs_created.append(rel)
        opts.event("mkdir", rel, "")
    return failed


def inside_target(dst: str, local: str) -> bool:
    """Whether the folder a download lands in resolves inside ``dst`` (no symlinked
    subfolder leads it elsewhere)."""
    real = os.path.realpath(os.path.dirname(local))
    return inside(real, os.path.realpath(dst)) and os.path.isdir(real)


def delete(dst: str, files: list[str], dirs: list[str], report: SyncReport,
           opts: TransferOptions) -> None:
    """Delete the files, then the (empty) folders, relative to ``dst``."""
    for rel in files:
        try:
            os.unlink(local_path(dst, rel))
        except OSError as exc:
            _failed(report, rel, f"cannot delete: {exc.strerror}")
            continue
        report.deleted.append(rel)
        opts.event("deleted", rel, "")
    for rel in dirs:
        path = local_path(dst, rel)
        try:
            for name in os.listdir(path):
                if is_partial_name(name):  # an interrupted download's leftovers
                    os.unlink(os.path.join(path, name))
            os.rmdir(path)
        except OSError as exc:
            _failed(report, rel, f"cannot delete folder: {exc.strerror}")
            continue
        report.deleted.append(rel + "/")
        opts.event("deleted", rel + "/", "")


def set_dir_times(dst: str, dirs: dict[str, float], root_mtime: float | None) -> None:
    """Folder mtimes change while files land in them, so they are set last, deepest first."""
    for rel in sorted(dirs, key=lambda r: -r.count("/")):
        _utime(local_path(dst, rel), dirs[rel])
    if root_mtime is not None:
        _utime(dst, root_mtime)


def _utime(path: str, mtime: float) -> None:
    try:
        ns = mtime_ns(mtime)
        os.utime(path, ns=(ns, ns), follow_symlinks=False)
    except (OSError, ValueError, OverflowError, NotImplementedError):
        pass
