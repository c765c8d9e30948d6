"""The commands on the local side: lcd, lpwd, lls, lmkdir, lrm, and ``!COMMAND``. The
shell never calls ``os.chdir``: ``lcd`` moves :attr:`Shell.local_cwd`, and ``!`` runs
its command there.

Import rule: errors, ui and the shell's own modules.
"""
from __future__ import annotations

import os
import stat as stat_

from ..hints import TYPE_CHECKING, LEAN



from ..records import dataclass
from ..errors import LocalError
from ..ui import Line, listing, safe_name
from .base import ShellBase
from .commands import Fields
from .remote import _entry_json

if TYPE_CHECKING or not LEAN:  # names for annotations; see pyftp.hints
    from typing import Callable


@dataclass(frozen=True)
class _LocalEntry:
    name: str
    type: str
    size: int
    mtime: float


class LocalMixin(ShellBase):
    """Shell's local commands."""

    # ------------------------------------------------------------------ local side
    def do_lcd(self, arg: str) -> Fields:
        """lcd [PATH]: change the local folder."""
        a = self._args("lcd", arg)
        target = self._local(a.args[0]) if a.args else os.path.expanduser("~")
        if not os.path.isdir(target):
            raise LocalError(f"no such local folder: {target}")
        if not os.access(target, os.X_OK):
            raise LocalError(f"permission denied: {target}")
        self.local_cwd = target
        self._note(Line(f"local folder: {safe_name(target)}", style="dim"))
        return {"local_cwd": target}

    def do_lpwd(self, arg: str) -> Fields:
        """lpwd: show the local folder."""
        self._args("lpwd", arg)
        self._print(Line(safe_name(self.local_cwd)))
        return {"local_cwd": self.local_cwd}

    def do_lls(self, arg: str) -> Fields:
        """lls [-l] [PATH]: list a local folder."""
        a = self._args("lls", arg)
        target = self._local(a.args[0]) if a.args else self.local_cwd
        entries = _local_listing(target)
        self._print(listing(entries, long="-l" in a.opts, plain=not self.console.is_terminal))
        return {"path": target, "entries": [_entry_json(e) for e in entries]}

    def do_lmkdir(self, arg: str) -> Fields:
        """lmkdir [-p] PATH...: create local folders."""
        a = self._args("lmkdir", arg)
        make = (lambda t: os.makedirs(t, exist_ok=True)) if "-p" in a.opts else os.mkdir
        return self._each_local(a.args, make, "cannot create", "created local folder")

    def do_lrm(self, arg: str) -> Fields:
        """lrm PATH...: remove local files (never a folder)."""
        def remove(target: str) -> None:
            if os.path.isdir(target) and not os.path.islink(target):
                raise LocalError(f"{target} is a folder: lrm removes files only")
            os.unlink(target)
        return self._each_local(self._args("lrm", arg).args, remove, "cannot remove",
                                "removed local")

    def _each_local(self, words: list[str], act: Callable[[str], object], failed: str,
                    done: str) -> Fields:
        """``act`` on each local path in turn; the first OSError stops with a LocalError."""
        paths = []
        for word in words:
            target = self._local(word)
            try:
                act(target)
            except OSError as exc:
                raise LocalError(f"{failed} {target}: {exc.strerror}") from exc
            paths.append(target)
            self._note(Line(f"{done} {safe_name(self._shown_local(target))}"))
        return {"paths": paths}

    def do_shell(self, arg: str) -> Fields:
        """!COMMAND: run COMMAND with the user's shell in the local folder."""
        command = arg.strip()
        shell = os.environ.get("SHELL") or "/bin/sh"
        argv = [shell, "-c", command] if command else [shell]
        with self.reporter.paused():
            try:
                import subprocess  # only for !cmd: a one-shot run need not load it
                status = subprocess.call(argv, cwd=self.local_cwd)
            except OSError as exc:
                raise LocalError(f"cannot run {shell}: {exc.strerror}") from exc
        if status != 0:
            raise LocalError(f"!{command}: exited with status {status}")
        return {"status": status}


def _local_listing(target: str) -> list[_LocalEntry]:
    try:
        st = os.stat(target)
    except OSError as exc:
        raise LocalError(f"cannot list {target}: {exc.strerror}") from exc
    if not stat_.S_ISDIR(st.st_mode):
        return [_LocalEntry(os.path.basename(target), "file", st.st_size, st.st_mtime)]
    out = []
    try:
        with os.scandir(target) as it:
            for d in it:
                try:
                    s = d.stat()
                except OSError:
                    continue
                is_dir = stat_.S_ISDIR(s.st_mode)
                out.append(_LocalEntry(d.name, "dir" if is_dir else "file",
                                       0 if is_dir else s.st_size, s.st_mtime))
    except OSError as exc:
        raise LocalError(f"cannot list {target}: {exc.strerror}") from exc
    return sorted(out, key=lambda e: e.name)
