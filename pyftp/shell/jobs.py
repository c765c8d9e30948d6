"""Running and reporting many-file jobs (folder, glob and mirror): the per-file and overall
bars while one runs, then one line per file, the job's summary, and one red line per
failed file, after which the command fails as a whole (:class:`JobError`, exit 1 in
the one-shot modes).

Import rule: sync, errors, ui and :mod:`pyftp.shell.commands`.
"""
from __future__ import annotations

from ..hints import TYPE_CHECKING, LEAN

from .. import sync
from ..errors import LocalError, NotFoundError
from ..ui import Line, job_display, print_error, safe_name, transfer_summary
from .base import ShellBase
from .commands import Fields, JobError

if TYPE_CHECKING or not LEAN:  # names for annotations; see pyftp.hints
    from typing import Any, Callable


class JobsMixin(ShellBase):
    """Shell's many-file jobs: run one, then report it."""

    # ---- the parts every folder, glob and mirror job shares
    def _run_job(self, label: str, verb: str, resume: bool,
                 job: Callable[[dict[str, Any]], sync.SyncReport]) -> tuple[sync.SyncReport, float]:
        """Run a sync job with the shell's retry settings and a per-file + overall bar."""
        started = self.clock()
        with job_display(self.reporter, label, verb, per_file=self._per_file()) as display:
            report = job(dict(resume=resume, retries=self.retries, backoff=self.backoff,
                              sleep=self.sleep, on_progress=display.on_progress,
                              on_job=display.on_job, on_event=self._on_event))
        return report, self.clock() - started

    def _job_fields(self, name: str, report: sync.SyncReport, seconds: float) -> Fields:
        """The --json fields of a finished job (before its plan and outcome)."""
        fields = _report_counts(report)
        if name.endswith(" -r"):
            fields["recursive"] = True  # "command" is the plain word: get or put
        fields["seconds"] = round(seconds, 3)
        fields["files"] = [_result_json(r, self._abs(r.remote)) for r in report.results]
        if name in ("mget", "mput"):  # the shapes these commands always had
            fields["count"], fields["size"] = len(report.results), report.bytes_total
        return fields

    def _finish_job(self, name: str, report: sync.SyncReport, seconds: float, *,
                    src: Callable[[str], str], dst: Callable[[str], str],
                    patterns: dict[str, str] | None = None, force_verb: str = "",
                    typed: str = "") -> Fields:
        """Print what a job did (files, deletions, skips, errors, the summary line) and
        return its JSON fields, or raise :class:`JobError` when a step failed.

        ``src`` and ``dst`` turn the report's paths (relative to the job's folders) into
        what the user should read; ``patterns`` maps the patterns sync saw back to the
        ones typed; ``typed`` names the command typed (``get *.txt`` is an ``mget`` job).
        """
        word = typed or name
        pull = report.direction == "get"
        fields = self._job_fields(name, report, seconds)
        if report.dry_run:
            fields["plan"] = [{"action": x.kind, "path": x.path, "size": x.size,
                               "reason": x.reason} for x in report.plan]
            for x in _plan_order(report.plan):
                if x.kind != "skip":  # counted in the summary; one line each is noise
                    self._print(Line(safe_name(x.describe())))
        for r in report.results if self._per_file() else ():
            remote, local = self._abs(r.remote), self._shown_local(r.local)
            source, target = (remote, local) if pull else (local, remote)
            self._note(transfer_summary("get" if pull else "put", source, target, r.total,
                                        r.sent, r.offset, r.seconds, r.sha256,
                                        max_rate=self.rate_limit, algorithm=r.algorithm))
        for d in report.deleted:
            self._note(Line(f"deleted {safe_name(dst(d))}"))
        if not report.dry_run:
            for p in report.ignored:
                if p.kind == "folder":
                    self._info(f"skipping folder {safe_name(src(p.path))} (use {name} -r to "
                               "copy folders)")
                else:
                    self._info(f"skipping {safe_name(src(p.path))} ({p.message})")
        patterns = patterns or {}
        unmatched = [patterns.get(p.path, p.path) for p in report.errors
                     if p.kind == "no_match"]
        nothing_else = not (report.sent or report.skipped or report.deleted
                            or len(report.errors) > len(unmatched))
        if name in ("mget", "mput") and nothing_else:
            # a glob that found nothing to copy is one plain error, as it always was
            if unmatched:
                cls = NotFoundError if name == "mget" else LocalError
                what = "nothing matches" if name == "mget" else "no local file matches"
                raise cls(f"{'not found: ' if name == 'mget' else ''}{what} "
                          f"{' '.join(unmatched)}")
            if report.ignored:
                raise (NotFoundError if name == "mget" else LocalError)(
                    f"{'not found: ' if name == 'mget' else ''}no files match "
                    f"{' '.join(patterns.values())} (only folders; use {name} -r)")
        summary = report.summary()
        if name != "mirror":
            summary = summary.replace(", deleted 0", "")
        if not report.ok:
            conflicts = {x.path for x in report.plan if x.kind == "conflict"}
            for p in report.errors:
                if report.dry_run and p.path in conflicts:
                    continue  # already a line of the plan
                if p.kind == "no_match":
                    shown, why = patterns.get(p.path, p.path), "nothing matches"
                elif p.kind == "exists" and force_verb:
                    shown, why = src(p.path), f"{p.message} ({_hint_force(force_verb)})"
                else:
                    shown, why = src(p.path), p.text
                print_error(self.err_console, f"{safe_name(shown)}: {why}",
                            prefix=f"{self._prefix}{word}: ")
            raise JobError(f"{word}: {summary}; fix what the lines above say and run it "
                           "again (what is done is not sent again)", fields)
        if report.dry_run:
            nothing = not any(x.kind in ("send", "delete", "rmdir", "mkdir")
                              for x in report.plan)
            self._print(Line(f"{name}: " + ("nothing to do, " if nothing else "") + summary))
        elif name == "mirror":
            fields["up_to_date"] = not (report.sent or report.deleted or report.dirs_created)
            self._note(Line(f"{name}: " + ("up to date, " if fields["up_to_date"] else "")
                            + summary, style="bold"))
        else:
            self._note(Line(f"{word}: {summary}", style="bold"))
        return fields

    def _per_file(self) -> bool:
        """Whether a job shows each file (a bar while it moves, a line when done): in
        scripts and logs, and with -v. At a prompt a job of thousands of files would
        scroll them all past; it shows one overall bar and its summary instead."""
        return not self.interactive or self.verbose


def _hint_force(verb: str) -> str:
    """What to do about a target that exists (an ``exists`` problem or
    AlreadyExistsError), in the words of the command that met it."""
    return f"use {verb} -f to replace it"


def _result_json(r: Any, path: str) -> Fields:
    return {"path": path, "local": r.local, "size": r.total,
            **digest_json(r.sha256, getattr(r, "algorithm", "sha256")),
            "seconds": round(r.seconds, 3), "resumed_from": r.offset}


def digest_json(digest: str, algorithm: str) -> Fields:
    """A digest in ``--json`` output: ``algorithm`` and ``digest``, plus the version 1
    key ``sha256`` when it is one (never a BLAKE3 value under that name)."""
    out = {"algorithm": algorithm, "digest": digest}
    if algorithm == "sha256":
        out["sha256"] = digest
    return out


def _report_counts(report: sync.SyncReport) -> Fields:
    """The --json fields of a folder, glob or mirror job: counts, bytes, errors."""
    return {"source": report.source, "dest": report.dest, "direction": report.direction,
            "dry_run": report.dry_run, "sent": len(report.sent),
            "skipped": len(report.skipped), "deleted": len(report.deleted),
            "dirs_created": len(report.dirs_created), "ignored": len(report.ignored),
            "bytes_sent": report.bytes_sent, "bytes_total": report.bytes_total,
            "retries": report.retries, "summary": report.summary(),
            "errors": [{"path": p.path, "kind": p.kind, "message": p.text}
                       for p in report.errors]}


_PLAN_ORDER = {"mkdir": 0, "send": 1, "delete": 2, "rmdir": 3, "conflict": 4, "ignore": 5,
               "skip": 6}


def _plan_order(plan: list[sync.Action]) -> list[sync.Action]:
    """A plan in reading order: folders made, files sent, extras removed, problems."""
    return sorted(plan, key=lambda a: _PLAN_ORDER.get(a.kind, 9))
