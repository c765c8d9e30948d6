"""The plan of a tree job, decided from the two sides' :class:`~.walk.Tree` alone: what
to send, skip, delete and create. Pure: no client, no file system, no clock, so every
rule here is tested without a server (tests/test_sync_plan.py).

Import rule: this package's report and walk (for types) only.
"""
from __future__ import annotations

from ..hints import TYPE_CHECKING, LEAN

from ..records import dataclass, field
from .report import Action, Problem
from .walk import SideFile, Tree

if TYPE_CHECKING or not LEAN:  # names for annotations; see pyftp.hints
    from typing import Mapping

CONFLICT = ("a folder on one side is a file on the other: not replaced "
            "(mirror with delete replaces it)")
KEPT = "nothing deleted: part of the source could not be read (see the other errors)"


def under(rel: str, roots: tuple[str, ...] | list[str]) -> bool:
    """Whether ``rel`` is one of ``roots`` or inside one of them."""
    return any(rel == r or rel.startswith(r + "/") for r in roots)


@dataclass
class Plan:
    """What a job will do. Paths are relative to the roots; ``files`` holds one ``send``
    or ``skip`` action per source file already decided, ``to_hash`` the files of equal
    size whose digests decide (see :meth:`settle_checksums`)."""

    ignored: list[Action] = field(default_factory=list)
    files: list[Action] = field(default_factory=list)
    to_hash: list[Action] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    mkdirs: list[str] = field(default_factory=list)
    #: deletions that clear the way for a conflict's replacement: before the transfers
    pre_files: list[str] = field(default_factory=list)
    pre_dirs: list[str] = field(default_factory=list)
    #: the other deletions: after the transfers, so a failed run deletes nothing else
    post_files: list[str] = field(default_factory=list)
    post_dirs: list[str] = field(default_factory=list)
    delete_sizes: dict[str, int] = field(default_factory=dict)
    replaces_conflicts: bool = False  #: True: the target's entry in the way is deleted
    problems: list[Problem] = field(default_factory=list)

    @property
    def sends(self) -> list[Action]:
        return sorted((a for a in self.files if a.kind == "send"), key=lambda a: a.path)

    @property
    def skipped(self) -> list[str]:
        return [a.path for a in self.files if a.kind == "skip"]

    def settle_checksums(self, changed: Mapping[str, bool]) -> None:
        """Decide the ``to_hash`` files: ``changed[rel]`` says their digests differ."""
        for a in self.to_hash:
            if changed[a.path]:
                self.files.append(Action("send", a.path, a.size, "checksum differs"))
            else:
                self.files.append(Action("skip", a.path, a.size, "same checksum"))
        self.to_hash = []

    def actions(self) -> list[Action]:
        """Every step, in the order a dry run lists them."""
        out = self.ignored + self.files
        if not self.replaces_conflicts:
            out += [Action("conflict", c, reason=CONFLICT) for c in self.conflicts]
        out += [Action("delete", r, self.delete_sizes.get(r, 0), "not in the source")
                for r in self.pre_files + self.post_files]
        out += [Action("rmdir", r, reason="not in the source")
                for r in self.pre_dirs + self.post_dirs]
        return out + [Action("mkdir", d) for d in self.mkdirs]


def compare_file(s: SideFile, t: SideFile | None, compare: str | None,
                 tolerance: float) -> tuple[str, str]:
    """``(kind, reason)`` for one source file ``s`` against the target's ``t`` (None
    when missing): kind ``send``, ``skip`` or ``hash`` (equal size: digests decide)."""
    if compare is None:
        return "send", ""
    if t is None:
        return "send", "new"
    if t.size != s.size:
        return "send", "size differs"
    if compare == "checksum":
        return "hash", ""
    if abs(t.mtime - s.mtime) > tolerance:
        return "send", "modification time differs"
    return "skip", "same size and time"


def make_plan(source: Tree, target: Tree, *, compare: str | None = None,
              delete: bool = False, mtime_tolerance: float = 0.001) -> Plan:
    """Plan a job that makes ``target`` hold ``source``.

    ``compare`` None sends every file; "mtime" sends files that are new or whose size
    or modification time differ (by more than ``mtime_tolerance`` seconds); "checksum"
    leaves files of equal size to their digests. A folder on one side that is a file on
    the other is a conflict: with ``delete`` the target's entry is removed first;
    without, nothing at or under it is touched. With ``delete`` the target's extras are
    deleted, files before folders, deepest folders first, unless the source could not
    be read completely (as rsync does: what it failed to list would look extra).
    """
    plan = Plan(ignored=[Action("ignore", p.path, reason=p.message) for p in source.ignored])
    plan.conflicts = sorted([d for d in source.dirs if d in target.files]
                            + [f for f in source.files if f in target.dirs])
    blocked = () if delete else tuple(plan.conflicts)
    plan.mkdirs = [d for d in sorted(source.dirs)
                   if d not in target.dirs and not under(d, blocked)]
    for rel in sorted(source.files):
        if under(rel, blocked):
            continue
        s = source.files[rel]
        kind, reason = compare_file(s, target.files.get(rel), compare, mtime_tolerance)
        (plan.to_hash if kind == "hash" else plan.files).append(
            Action(kind, rel, s.size, reason))
    if delete and source.errors:
        delete = False
        plan.problems.append(Problem(".", "kept", KEPT))
    if not delete:
        plan.problems += [Problem(c, "conflict", CONFLICT) for c in plan.conflicts]
    else:
        plan.replaces_conflicts = True
        _plan_deletes(plan, source, target)
    return plan


def _plan_deletes(plan: Plan, source: Tree, target: Tree) -> None:
    # entries the source walk left out on purpose (symlinks, loops) are not "extras"
    kept = tuple(p.path for p in source.ignored)
    extra_files = [r for r in sorted(target.files)
                   if r not in source.files and not under(r, kept)]
    extra_dirs = [r for r in sorted(target.dirs, key=lambda r: (-r.count("/"), r))
                  if r not in source.dirs and not under(r, kept)]
    in_way = tuple(plan.conflicts)
    plan.pre_files = [r for r in extra_files if under(r, in_way)]
    plan.pre_dirs = [r for r in extra_dirs if under(r, in_way)]
    plan.post_files = [r for r in extra_files if not under(r, in_way)]
    plan.post_dirs = [r for r in extra_dirs if not under(r, in_way)]
    plan.delete_sizes = {r: target.files[r].size for r in extra_files}
