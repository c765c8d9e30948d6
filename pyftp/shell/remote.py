"""The commands on the server's side that move no file content: ls, cd, pwd, mkdir, rm,
rmdir, mv, stat, hash, upper.

Import rule: client, errors, ui and the shell's own modules.
"""
from __future__ import annotations

import posixpath
import shlex
from typing import Any

from rich.table import Table
from rich.text import Text

from ..client import Client
from ..errors import AlreadyExistsError, NotFoundError
from ..ui import format_mtime, human_size, listing, safe_name
from .commands import SHELL_COMMANDS, UsageError
from .jobs import _hint_force


def _entry_json(e: Any) -> dict:
    return {"name": e.name, "type": e.type, "size": e.size, "mtime": e.mtime}


class RemoteMixin:
    """Shell's remote commands (one ``do_`` per command of the table)."""

    def _remote_is_dir(self, c: Client, path: str) -> bool:
        try:
            return c.stat(path).is_dir
        except NotFoundError:
            return False

    # ------------------------------------------------------------------ remote folders
    def do_ls(self, arg: str) -> dict:
        """ls [-l] [PATH]: list a remote folder."""
        a = self._args("ls", arg)
        c = self._require_client()
        path = a.args[0] if a.args else "."
        entries = c.ls(path)
        if len(entries) != 1 or entries[0].name != posixpath.basename(path.rstrip("/")):
            self.cache.put(self._abs(path), entries)  # a folder: completion can reuse it
        self._print(listing(entries, long="-l" in a.opts, plain=not self.console.is_terminal))
        return {"path": self._abs(path), "entries": [_entry_json(e) for e in entries]}

    def do_cd(self, arg: str) -> dict:
        """cd [PATH]: change the remote folder."""
        a = self._args("cd", arg)
        c = self._require_client()
        self.cwd = c.cd(a.args[0] if a.args else "/")
        return {"cwd": self.cwd}

    def do_pwd(self, arg: str) -> dict:
        """pwd: show the remote folder."""
        self._args("pwd", arg)
        self.cwd = self._require_client().pwd()
        self._print(Text(safe_name(self.cwd)))
        return {"cwd": self.cwd}

    def do_mkdir(self, arg: str) -> dict:
        """mkdir [-p] PATH...: create remote folders."""
        a = self._args("mkdir", arg)
        c = self._require_client()
        made = []
        for p in a.args:
            made.append(c.mkdir(p, parents="-p" in a.opts))
            self._changed(p)
            self._note(Text(f"created {safe_name(made[-1])}"))
        return {"paths": made}

    def do_rm(self, arg: str) -> dict:
        """rm PATH...: remove remote files."""
        a = self._args("rm", arg)
        c = self._require_client()
        for p in a.args:
            c.rm(p)
            self._changed(p)
            self._note(Text(f"removed {safe_name(self._abs(p))}"))
        return {"paths": [self._abs(p) for p in a.args]}

    def do_rmdir(self, arg: str) -> dict:
        """rmdir PATH...: remove empty remote folders."""
        a = self._args("rmdir", arg)
        c = self._require_client()
        for p in a.args:
            c.rmdir(p)
            self._changed(p)
            self._note(Text(f"removed folder {safe_name(self._abs(p))}"))
        return {"paths": [self._abs(p) for p in a.args]}

    def do_mv(self, arg: str) -> dict:
        """mv [-f] SRC DST: rename or move a remote file or folder."""
        a = self._args("mv", arg)
        c = self._require_client()
        src, dst = a.args
        if dst.endswith("/") or self._remote_is_dir(c, dst):
            dst = posixpath.join(dst, posixpath.basename(src.rstrip("/")))
        try:
            c.mv(src, dst, overwrite="-f" in a.opts)
        except AlreadyExistsError as exc:
            raise AlreadyExistsError(_hint_force(exc.message, "mv")) from exc
        self._changed(src, dst)
        self._note(Text(f"moved {safe_name(self._abs(src))} -> {safe_name(self._abs(dst))}"))
        return {"src": self._abs(src), "dst": self._abs(dst)}

    def do_stat(self, arg: str) -> dict:
        """stat PATH: type, size and modification time of a remote path."""
        a = self._args("stat", arg)
        e = self._require_client().stat(a.args[0])
        path = self._abs(a.args[0])
        table = Table(box=None, show_header=False, pad_edge=False)
        table.add_column(style="dim")
        table.add_column()
        table.add_row("path", Text(safe_name(path)))
        table.add_row("type", "folder" if e.is_dir else "file")
        if not e.is_dir:
            table.add_row("size", f"{human_size(e.size)} ({e.size} bytes)")
        table.add_row("modified", format_mtime(e.mtime))
        self._print(table)
        return {"path": path, "type": e.type, "size": e.size, "mtime": e.mtime}

    def do_hash(self, arg: str) -> dict:
        """hash PATH: SHA-256 of a remote file, in sha256sum's format."""
        a = self._args("hash", arg)
        digest = self._require_client().hash(a.args[0])
        self._print(Text(f"{digest}  {safe_name(a.args[0])}"))
        return {"path": self._abs(a.args[0]), "sha256": digest}

    def do_upper(self, arg: str) -> dict:
        """upper TEXT: the server's upper-case echo."""
        try:
            text = " ".join(shlex.split(arg))
        except ValueError:  # an apostrophe in plain text: take the words as typed
            text = arg.strip()
        if not text:
            raise UsageError(f"usage: {SHELL_COMMANDS['upper'].usage}")
        result = self._require_client().upper(text)
        self._print(Text(result))
        return {"text": result}
