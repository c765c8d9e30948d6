"""get, put, mget, mput and mirror. Every transfer goes through :mod:`pyftp.sync`:
``get``/``put`` through ``get_file`` / ``put_file``, and ``get -r``, ``put -r``,
``mget``, ``mput`` and ``mirror`` through its pipelined tree, glob and mirror jobs. So
each one continues partial files (unless ``--no-resume``) and rides out a dropped
connection (``retries``); the shell adds only parsing, the bars and the report.

Import rule: client, sync, errors, ui and the shell's own modules.
"""
from __future__ import annotations

import glob
import os
import posixpath

from ..hints import TYPE_CHECKING, LEAN


from .. import sync
from ..client import Client, TransferResult
from ..errors import AlreadyExistsError, IsDirectoryError
from ..ui import safe_name, transfer_summary
from .commands import SHELL_COMMANDS, Fields, UsageError
from .jobs import JobsMixin, _hint_force, _result_json
from .parsing import Args, glob_literal, glob_pattern, has_glob
from .stream import StreamMixin

if TYPE_CHECKING or not LEAN:  # names for annotations; see pyftp.hints
    from typing import Any, Callable


class TransferMixin(JobsMixin, StreamMixin):
    """Shell's transfer commands."""

    # ------------------------------------------------------------------ transfers
    def _resume(self, a: Args) -> bool:
        return self.resume and "--no-resume" not in a.opts

    def _on_event(self, kind: str, path: str, detail: str) -> None:
        """sync's events while a transfer runs: only retries are worth a live line."""
        if kind == "retry":
            self._info(f"{path + ': ' if path else ''}{detail}")

    def do_get(self, arg: str) -> Fields:
        """get [-r] [--no-resume] REMOTE [LOCAL], get REMOTE -, or get PATTERN... [LOCAL_DIR]."""
        a = self._args("get", arg)
        if "--checksum" in a.opts and "-r" not in a.opts:
            raise UsageError("get --checksum: only with -r (a single file is always verified)")
        c = self._require_client()
        if self._is_tree(a, "get"):
            return self._get_tree(c, a)
        if len(a.args) == 2 and a.args[1] == "-" and not has_glob(a.args[0]):
            return self._stream(c, glob_literal(a.args[0]), "get")
        if len(a.args) > 2 or any(has_glob(w) for w in a.args):
            words, target = self._split_target(a.args, lambda p: os.path.isdir(self._local(p)))
            return self._mget_job(c, {glob_pattern(w): w for w in words},
                                  self._local(target) if target else self.local_cwd,
                                  self._resume(a), recursive=False, typed="get")
        return self._get_single(c, a.args, self._resume(a))

    def do_reget(self, arg: str) -> Fields:
        """reget REMOTE [LOCAL]: continue an interrupted download."""
        return self._get_single(self._require_client(), self._args("reget", arg).args, True)

    def _get_single(self, c: Client, words: list[str], resume: bool) -> Fields:
        remote = glob_literal(words[0])
        local = self._local(glob_literal(words[1])) if len(words) > 1 else self.local_cwd
        return self._get_one(c, remote, local, None, resume,
                             ahead=("get", self.cwd, remote, local))

    def _is_tree(self, a: Args, name: str) -> bool:
        """True for ``get -r``/``put -r``, which take two names at most."""
        if "-r" in a.opts and len(a.args) > 2:
            raise UsageError(f"usage: {SHELL_COMMANDS[name].usage_text()}")
        return "-r" in a.opts

    def _split_target(self, words: list[str], is_dir: Callable[[str], bool]
                      ) -> tuple[list[str], str | None]:
        """PATTERN... [DIR]: the last word is the target folder when it is one (and
        plain); with more than one plain name it has to be."""
        last = words[-1]
        if len(words) > 1 and not has_glob(last) and is_dir(glob_literal(last)):
            return words[:-1], glob_literal(last)
        if len(words) > 1 and not has_glob(last):
            raise UsageError(f"{last}: not a folder; with several names or a pattern, the "
                             "last word must be the folder they go into")
        return words, None

    def _get_one(self, c: Client, remote: str, local: str, size: int | None,
                 resume: bool, ahead: tuple[object, ...] = ()) -> Fields:
        label = f"get {safe_name(posixpath.basename(remote.rstrip('/')) or remote)}"

        def fetch() -> TransferResult:
            with self.reporter.transfer(label, size) as on_progress:
                return sync.get_file(c, remote, local, resume=resume, retries=self.retries,
                                     backoff=self.backoff, on_progress=on_progress,
                                     on_event=self._on_event, sleep=self.sleep)
        try:
            r = self._ahead_or(ahead, fetch)
        except IsDirectoryError as exc:
            raise IsDirectoryError(f"{exc.message} (use get -r to copy a folder)") from exc
        self._note(transfer_summary("get", self._abs(remote), self._shown_local(r.local),
                                    r.total, r.sent, r.offset, r.seconds, r.sha256,
                                    max_rate=self.rate_limit, algorithm=r.algorithm))
        return _result_json(r, self._abs(remote))

    def do_put(self, arg: str) -> Fields:
        """put [-f] [-r] [--no-resume] LOCAL [REMOTE], or put PATTERN... [REMOTE_DIR]."""
        a = self._args("put", arg)
        c = self._require_client()
        if self._is_tree(a, "put"):
            return self._put_tree(c, a)
        if len(a.args) > 2 or any(has_glob(w) for w in a.args):
            words, target = self._split_target(a.args, lambda p: self._remote_is_dir(c, p))
            return self._mput_job(c, {self._local_pattern(glob_pattern(w)): w for w in words},
                                  target or ".", "-f" in a.opts, self._resume(a),
                                  recursive=False, typed="put")
        return self._put_single(c, a.args, "-f" in a.opts, self._resume(a))

    def do_reput(self, arg: str) -> Fields:
        """reput LOCAL [REMOTE]: continue an interrupted upload."""
        return self._put_single(self._require_client(), self._args("reput", arg).args,
                                False, True)

    def _put_single(self, c: Client, words: list[str], force: bool, resume: bool) -> Fields:
        local = self._local(glob_literal(words[0]))
        name = os.path.basename(local.rstrip(os.sep))
        if len(words) > 1:
            remote = glob_literal(words[1])
            if remote.endswith("/") or self._remote_is_dir(c, remote):
                remote = posixpath.join(remote, name)
        else:
            remote = name
        return self._put_one(c, local, remote, force, resume)

    def _local_pattern(self, pattern: str) -> str:
        """A pattern matched against the shell's local folder, never the process's."""
        return os.path.join(glob.escape(self.local_cwd), os.path.expanduser(pattern))

    def _put_one(self, c: Client, local: str, remote: str, force: bool, resume: bool) -> Fields:
        try:
            size: int | None = os.path.getsize(local)
        except OSError:
            size = None  # Client.put explains what is wrong with the file
        label = f"put {safe_name(os.path.basename(local))}"
        try:
            with self.reporter.transfer(label, size) as on_progress:
                r = sync.put_file(c, local, remote, overwrite=force, resume=resume,
                                  retries=self.retries, backoff=self.backoff,
                                  on_progress=on_progress, on_event=self._on_event,
                                  sleep=self.sleep)
        except AlreadyExistsError as exc:
            raise AlreadyExistsError(f"already exists: {self._abs(remote)} "
                                     f"({_hint_force('put')})") from exc
        finally:
            self._changed(remote)
        self._note(transfer_summary("put", self._shown_local(local), self._abs(r.remote),
                                    r.total, r.sent, r.offset, r.seconds, r.sha256,
                                    max_rate=self.rate_limit, algorithm=r.algorithm))
        return _result_json(r, self._abs(r.remote))

    def _get_tree(self, c: Client, a: Args) -> Fields:
        remote = a.args[0]
        if len(a.args) > 1:
            local = self._local(a.args[1])
        else:
            local = self._local(_last_part(posixpath.basename(self._abs(remote)), "get -r",
                                           remote))
        report, seconds = self._run_job("get -r", "get", self._resume(a), lambda kw: sync.get_tree(
            c, remote, local, checksum="--checksum" in a.opts, **kw))
        return self._finish_job("get -r", report, seconds, src=self._remote_under(remote),
                                dst=self._local_under(local))

    def _put_tree(self, c: Client, a: Args) -> Fields:
        local = self._local(a.args[0])
        remote = a.args[1] if len(a.args) > 1 else \
            _last_part(os.path.basename(local), "put -r", a.args[0])
        try:
            report, seconds = self._run_job("put -r", "put", self._resume(a), lambda kw: sync.put_tree(
                c, local, remote, overwrite="-f" in a.opts, **kw))
        finally:
            self._changed(remote)
        return self._finish_job("put -r", report, seconds, src=self._local_under(local),
                                dst=self._remote_under(remote), force_verb="put -r")

    def do_mget(self, arg: str) -> Fields:
        """mget [-r] [--no-resume] PATTERN...: download every remote file matching."""
        a = self._args("mget", arg)
        c = self._require_client()
        return self._mget_job(c, {p: p for p in a.args}, self.local_cwd, self._resume(a),
                              recursive="-r" in a.opts)

    def _mget_job(self, c: Client, patterns: dict[str, str], local_dir: str, resume: bool,
                  *, recursive: bool, typed: str = "mget") -> Fields:
        report, seconds = self._run_job(typed, "get", resume, lambda kw: sync.mget(
            c, list(patterns), local_dir, recursive=recursive, **kw))
        return self._finish_job("mget", report, seconds, src=self._abs,
                                dst=self._local_under(local_dir), patterns=patterns,
                                typed=typed)

    def do_mput(self, arg: str) -> Fields:
        """mput [-r] [-f] [--no-resume] PATTERN...: upload every local file matching."""
        a = self._args("mput", arg)
        c = self._require_client()
        return self._mput_job(c, {self._local_pattern(p): p for p in a.args}, ".",
                              "-f" in a.opts, self._resume(a), recursive="-r" in a.opts)

    def _mput_job(self, c: Client, patterns: dict[str, str], remote_dir: str, force: bool,
                  resume: bool, *, recursive: bool, typed: str = "mput") -> Fields:
        try:
            report, seconds = self._run_job(typed, "put", resume, lambda kw: sync.mput(
                c, list(patterns), remote_dir, recursive=recursive, overwrite=force, **kw))
        finally:
            self._changed(remote_dir)
        return self._finish_job("mput", report, seconds, src=self._shown_local,
                                dst=self._remote_under(remote_dir), patterns=patterns,
                                force_verb=typed, typed=typed)

    def do_mirror(self, arg: str) -> Fields:
        """mirror [-R] [--delete] [--checksum] [--dry-run] [--no-resume] SRC [DST]."""
        a = self._args("mirror", arg)
        c = self._require_client()
        reverse = "-R" in a.opts
        flags: dict[str, Any] = dict(reverse=reverse, delete="--delete" in a.opts,
                                     checksum="--checksum" in a.opts,
                                     dry_run="--dry-run" in a.opts)
        if reverse:
            src = self._local(a.args[0])
            dst = a.args[1] if len(a.args) > 1 else \
                _last_part(os.path.basename(src), "mirror -R", a.args[0])
            show_src, show_dst = self._local_under(src), self._remote_under(dst)
        else:
            src = a.args[0]
            dst = self._local(a.args[1]) if len(a.args) > 1 else self._local(
                _last_part(posixpath.basename(self._abs(src)), "mirror", src))
            show_src, show_dst = self._remote_under(src), self._local_under(dst)
        try:
            report, seconds = self._run_job("mirror", "put" if reverse else "get", self._resume(a),
                                   lambda kw: sync.mirror(c, src, dst, **flags, **kw))
        finally:
            if reverse and not flags["dry_run"]:
                self._changed(dst)
        return self._finish_job("mirror", report, seconds, src=show_src, dst=show_dst)


def _last_part(name: str, command: str, typed: str) -> str:
    """The default target folder name (the source's own name), or a usage error."""
    if name in ("", ".", ".."):
        raise UsageError(f"{command} {typed}: name the target folder too, e.g. "
                         f"{command} {typed} backup")
    return name
