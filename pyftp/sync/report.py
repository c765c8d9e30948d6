"""What a sync job did: :class:`SyncReport`, its steps (:class:`Action`), its progress
(:class:`JobProgress`) and its typed problems (:class:`Problem`).

A problem is built where it happens, with a ``kind`` from :data:`PROBLEM_KINDS`, the
path and the exception behind it, so callers (the shell, scripts) decide on the kind or
the error class, never on the wording of ``message``.

Import rule: errors and client (for :class:`TransferResult`) only.
"""
from __future__ import annotations

import os

from ..hints import TYPE_CHECKING, LEAN

from ..records import dataclass, field, replace
from ..client import TransferResult
from ..errors import PyftpError, TransportError

if TYPE_CHECKING or not LEAN:  # names for annotations; see pyftp.hints
    from typing import Iterator

#: every ``Problem.kind``, with what it means
PROBLEM_KINDS: dict[str, str] = {
    "no_match": "a pattern matched nothing (the message names the side)",
    "exists": "the target exists and differs; it is replaced only with overwrite",
    "conflict": "a folder on one side is a file on the other",
    "folder": "a folder was given where files were expected (copy it with recursive)",
    "special": "not a regular file or folder (FIFO, socket, device, unknown type)",
    "outside": "a link or folder that leads outside the tree: not followed",
    "link": "a symlink to a folder, or a dangling one: not followed",
    "loop": "a folder that repeats a parent, or nests too deep: not entered",
    "unsafe": "a name from the server that could climb out of its folder",
    "duplicate": "two sources would land on the same target name",
    "busy": "the server kept saying another upload of the same file is running",
    "kept": "nothing was deleted because part of the source could not be read",
    "failed": "any other error; ``error`` says which",
}


@dataclass(frozen=True)
class Problem:
    """One error or ignored entry of a job.

    ``path`` is relative to the job's roots ('' for the root); ``message`` is one line
    for people, without the path; ``error`` is the exception behind it (its class and
    ``code`` are what to decide on); ``hint`` says what to do about it, if anything.
    It reads as the ``(path, message)`` pair reports held before, so ``for path, why
    in report.errors`` and ``dict(report.errors)`` still work.
    """

    path: str
    kind: str
    message: str
    error: PyftpError | None = None
    hint: str = ""

    def __post_init__(self) -> None:
        if self.kind not in PROBLEM_KINDS:
            raise ValueError(f"unknown problem kind {self.kind!r}")

    def __iter__(self) -> Iterator[str]:
        return iter((self.path, self.message))

    def __getitem__(self, i: int) -> str:  # the (path, reason) pairs reports held before
        return (self.path, self.message)[i]

    def __len__(self) -> int:
        return 2

    @property
    def text(self) -> str:
        """The message with its hint, as one line."""
        return f"{self.message} ({self.hint})" if self.hint else self.message


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
    ``ignored`` and ``errors`` hold :class:`Problem` objects. ``bytes_sent`` counts the
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
    ignored: list[Problem] = field(default_factory=list)
    errors: list[Problem] = field(default_factory=list)
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
        if self.dry_run:
            sends = [a for a in self.plan if a.kind == "send"]
            files, moved = len(sends), human_size(sum(a.size for a in sends))
            skipped = sum(1 for a in self.plan if a.kind == "skip")
            deleted = sum(1 for a in self.plan if a.kind in ("delete", "rmdir"))
        else:
            files, skipped, deleted = len(self.sent), len(self.skipped), len(self.deleted)
            moved = human_size(self.bytes_sent)
            if self.bytes_sent != self.bytes_total:
                moved += f" of {human_size(self.bytes_total)}, the rest resumed"
        verb = "would send" if self.dry_run else "sent"
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
        self.plan += [replace(a, path=p(a.path)) for a in other.plan]
        self.sent += [p(x) for x in other.sent]
        self.skipped += [p(x) for x in other.skipped]
        self.deleted += [p(x) for x in other.deleted]
        self.dirs_created += [p(x) for x in other.dirs_created]
        self.ignored += [replace(x, path=p(x.path)) for x in other.ignored]
        self.errors += [replace(x, path=p(x.path)) for x in other.errors]
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
    if any("\udc80" <= ch <= "\udcff" for ch in name):
        return os.fsencode(name).decode("utf-8", "backslashreplace")
    return name


def human_size(n: int) -> str:
    """Bytes in binary units (B, KiB, MiB, ...), one decimal above bytes."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover
