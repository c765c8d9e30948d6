"""The commands on the local side: lcd, lpwd, lls. The shell never calls ``os.chdir``:
``lcd`` moves :attr:`Shell.local_cwd`.

Import rule: errors, ui and the shell's own modules.
"""
from __future__ import annotations

import os
import stat as stat_
from dataclasses import dataclass

from rich.text import Text

from ..errors import LocalError
from ..ui import listing, safe_name
from .remote import _entry_json


@dataclass(frozen=True)
class _LocalEntry:
    name: str
    type: str
    size: int
    mtime: float


class LocalMixin:
    """Shell's local commands."""

    # ------------------------------------------------------------------ local side
    def do_lcd(self, arg: str) -> dict:
        """lcd [PATH]: change the local folder."""
        a = self._args("lcd", arg)
        target = self._local(a.args[0]) if a.args else os.path.expanduser("~")
        if not os.path.isdir(target):
            raise LocalError(f"no such local folder: {target}")
        if not os.access(target, os.X_OK):
            raise LocalError(f"permission denied: {target}")
        self.local_cwd = target
        self._note(Text(f"local folder: {safe_name(target)}", style="dim"))
        return {"local_cwd": target}

    def do_lpwd(self, arg: str) -> dict:
        """lpwd: show the local folder."""
        self._args("lpwd", arg)
        self._print(Text(safe_name(self.local_cwd)))
        return {"local_cwd": self.local_cwd}

    def do_lls(self, arg: str) -> dict:
        """lls [-l] [PATH]: list a local folder."""
        a = self._args("lls", arg)
        target = self._local(a.args[0]) if a.args else self.local_cwd
        entries = _local_listing(target)
        self._print(listing(entries, long="-l" in a.opts, plain=not self.console.is_terminal))
        return {"path": target, "entries": [_entry_json(e) for e in entries]}


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
