"""The commands on the server's side that move no file content: ls, cd, pwd, mkdir, rm,
rmdir, mv, stat, hash, upper.

Import rule: client, errors, ui and the shell's own modules.
"""
from __future__ import annotations

import posixpath
import shlex

from ..hints import TYPE_CHECKING, LEAN

from ..records import replace
from .. import sync
from ..client import Client, Entry
from ..errors import AlreadyExistsError, IsDirectoryError, NotFoundError, RemoteError
from ..ui import Line, Rows, error_text, format_mtime, human_size, listing, print_error, safe_name
from .base import ShellBase
from .commands import SHELL_COMMANDS, Fields, JobError, UsageError
from .jobs import _hint_force, digest_json
from .parsing import glob_literal, has_glob

if TYPE_CHECKING or not LEAN:  # names for annotations; see pyftp.hints
    from typing import Any


def _ls_order(entries: list[Entry], opts: dict[str, str]) -> list[Entry]:
    """ls's order: as the server lists (by name), or -t newest / -S largest first; -r flips."""
    if "-t" in opts:
        entries = sorted(entries, key=lambda e: e.mtime, reverse=True)
    elif "-S" in opts:
        entries = sorted(entries, key=lambda e: e.size, reverse=True)
    return list(reversed(entries)) if "-r" in opts else list(entries)


def _entry_json(e: Any) -> Fields:
    return {"name": e.name, "type": e.type, "size": e.size, "mtime": e.mtime}


class RemoteMixin(ShellBase):
    """Shell's remote commands (one ``do_`` per command of the table)."""

    def do_ls(self, arg: str) -> Fields:
        """ls [-1ahlrtS] [PATH|PATTERN...]: list a remote folder, or what patterns match."""
        a = self._args("ls", arg)
        c = self._require_client()
        shown: str | list[str]
        if len(a.args) <= 1 and not any(has_glob(w) for w in a.args):
            path = glob_literal(a.args[0]) if a.args else "."
            if self._ls_names_only(a.opts):
                names = self._ahead_or(("ls", self.cwd, path, True), lambda: c.names(path))
                if "-r" in a.opts:
                    names.reverse()
                printable = all(map(str.isprintable, names))  # the usual case: no escapes
                self._print(Line("\n".join(names if printable else map(safe_name, names))))
                return {"path": self._abs(path), "names": names}
            entries: list[Entry] = self._ahead_or(("ls", self.cwd, path, False),
                                                  lambda: c.ls(path))
            if len(entries) != 1 or entries[0].name != posixpath.basename(path.rstrip("/")):
                self.cache.put(self._abs(path), entries)  # a folder: completion can reuse it
            shown = self._abs(path)
        else:
            paths = [p for w in a.args for p in self._matches(c, w)]
            entries = [replace(c.stat(p), name=p) for p in paths]
            shown = [self._abs(p) for p in paths]
        entries = _ls_order(entries, a.opts)
        plain = "-1" in a.opts or not self.console.is_terminal
        self._print(listing(entries, long="-l" in a.opts, plain=plain))
        return {"path": shown, "entries": [_entry_json(e) for e in entries]}

    def _ls_names_only(self, opts: dict[str, str]) -> bool:
        """True when ``ls`` prints names alone, one per line (a pipe, or ``-1``, without
        ``-l``/``-t``/``-S`` or ``--json``): then the server need not read each file's
        size and time (:meth:`Client.names`), which is most of a long listing's cost."""
        plain = "-1" in opts or not self.console.is_terminal
        return plain and not self.json_output and not {"-l", "-t", "-S"} & set(opts)

    def do_cd(self, arg: str) -> Fields:
        """cd [PATH|-]: change the remote folder (-: back to the previous one)."""
        a = self._args("cd", arg)
        c = self._require_client()
        target = a.args[0] if a.args else "/"
        if target == "-":
            if self.previous_cwd is None:
                raise UsageError("cd -: no previous folder yet")
            target = self.previous_cwd
        before, self.cwd = self.cwd, c.cd(target)
        if self.cwd != before:
            self.previous_cwd = before
        if a.args and a.args[0] == "-":
            self._print(Line(safe_name(self.cwd)))
        return {"cwd": self.cwd}

    def do_pwd(self, arg: str) -> Fields:
        """pwd: show the remote folder."""
        self._args("pwd", arg)
        self.cwd = self._require_client().pwd()
        self._print(Line(safe_name(self.cwd)))
        return {"cwd": self.cwd}

    def do_mkdir(self, arg: str) -> Fields:
        """mkdir [-p] PATH...: create remote folders."""
        a = self._args("mkdir", arg)
        c = self._require_client()
        made = []
        for p in a.args:
            made.append(c.mkdir(p, parents="-p" in a.opts))
            self._changed(p)
            self._note(Line(f"created {safe_name(made[-1])}"))
        return {"paths": made}

    def do_rm(self, arg: str) -> Fields:
        """rm [-rf] PATH|PATTERN...: remove remote files (-r: folder trees too).

        Every name is tried; the command fails at the end if one of them failed.
        """
        a = self._args("rm", arg)
        c = self._require_client()
        force, recursive = "-f" in a.opts, "-r" in a.opts
        removed: list[str] = []
        failed: list[tuple[str, BaseException]] = []
        for word in a.args:
            try:
                paths = self._matches(c, word, missing_ok=force)
            except NotFoundError as exc:
                failed.append((word, exc))
                continue
            for p in paths:
                try:
                    self._remove(c, p, recursive)
                except NotFoundError as exc:
                    if not force:
                        failed.append((p, exc))
                    continue
                except RemoteError as exc:
                    failed.append((p, exc))
                    continue
                finally:
                    self._changed(p)
                removed.append(self._abs(p))
                self._note(Line(f"removed {safe_name(removed[-1])}"))
        fields: Fields = {"paths": removed}
        if failed and len(failed) + len(removed) == 1:
            raise failed[0][1]
        if failed:
            for _path, why in failed:
                print_error(self.err_console, error_text(why), prefix=f"{self._prefix}rm: ")
            fields["errors"] = [{"path": p, "message": error_text(e)} for p, e in failed]
            raise JobError(f"rm: removed {len(removed)}, {len(failed)} failed (see the lines "
                           "above)", fields)
        return fields

    def _remove(self, c: Client, path: str, recursive: bool) -> None:
        """Remove one remote file, or with ``recursive`` a folder and all it holds."""
        try:
            c.rm(path)
            return
        except IsDirectoryError as exc:
            if not recursive:
                raise IsDirectoryError(f"is a directory: {self._abs(path)} (use rm -r to "
                                       "remove it with everything in it)") from exc
        tree = sync.walk_remote(c, path)
        if tree.errors:
            rel, why = tree.errors[0]
            raise RemoteError(f"cannot list {posixpath.join(self._abs(path), rel)}: {why}")
        # one pipelined run (the server answers in order): the files, then the folders
        # deepest first, so each folder is empty when its turn comes
        folders = sorted((r for r in tree.dirs if r), key=lambda r: -r.count("/"))
        requests = [{"op": "rm", "path": posixpath.join(path, rel)} for rel in sorted(tree.files)]
        requests += [{"op": "rmdir", "path": posixpath.join(path, rel)} for rel in folders]
        requests.append({"op": "rmdir", "path": path})
        for request, reply in zip(requests, c.call_many(requests)):
            # a file gone meanwhile is as good as removed; anything else stops here
            if isinstance(reply, RemoteError) and not (
                    isinstance(reply, NotFoundError) and request["path"] != path):
                raise reply

    def do_rmdir(self, arg: str) -> Fields:
        """rmdir PATH...: remove empty remote folders."""
        a = self._args("rmdir", arg)
        c = self._require_client()
        for p in a.args:
            c.rmdir(p)
            self._changed(p)
            self._note(Line(f"removed folder {safe_name(self._abs(p))}"))
        return {"paths": [self._abs(p) for p in a.args]}

    def do_mv(self, arg: str) -> Fields:
        """mv [-f] SRC DST: rename or move a remote file or folder."""
        a = self._args("mv", arg)
        c = self._require_client()
        src, dst = a.args
        if dst.endswith("/") or self._remote_is_dir(c, dst):
            dst = posixpath.join(dst, posixpath.basename(src.rstrip("/")))
        try:
            c.mv(src, dst, overwrite="-f" in a.opts)
        except AlreadyExistsError as exc:
            raise AlreadyExistsError(f"already exists: {self._abs(dst)} "
                                     f"({_hint_force('mv')})") from exc
        self._changed(src, dst)
        self._note(Line(f"moved {safe_name(self._abs(src))} -> {safe_name(self._abs(dst))}"))
        return {"src": self._abs(src), "dst": self._abs(dst)}

    def do_stat(self, arg: str) -> Fields:
        """stat PATH|PATTERN...: type, size and modification time of remote paths."""
        a = self._args("stat", arg)
        c = self._require_client()
        results = []
        for p in (p for w in a.args for p in self._matches(c, w)):
            e = self._ahead_or(("stat", self.cwd, p), lambda: c.stat(p))
            path = self._abs(p)
            table = Rows([("", "left", "dim"), ("", "left", None)])
            table.add_row("path", Line(safe_name(path)))
            table.add_row("type", "folder" if e.is_dir else "file")
            if not e.is_dir:
                table.add_row("size", f"{human_size(e.size)} ({e.size} bytes)")
            table.add_row("modified", format_mtime(e.mtime))
            self._print(table)
            results.append({"path": path, "type": e.type, "size": e.size, "mtime": e.mtime})
        return results[0] if len(results) == 1 else {"paths": results}

    def do_hash(self, arg: str) -> Fields:
        """hash PATH|PATTERN...: digests of remote files (the session's: BLAKE3 or
        SHA-256), in the format of b3sum and sha256sum."""
        a = self._args("hash", arg)
        c = self._require_client()
        results = []
        for p in (p for w in a.args for p in self._matches(c, w)):
            digest = self._ahead_or(("hash", self.cwd, p), lambda: c.hash(p))
            self._print(Line(f"{digest}  {safe_name(p)}"))
            results.append({"path": self._abs(p), **digest_json(digest, c.algorithm)})
        return results[0] if len(results) == 1 else {"files": results}

    def do_df(self, arg: str) -> Fields:
        """df [-h]: size, used and free space of the server's share."""
        a = self._args("df", arg)
        c = self._require_client()
        usage = c.df()  # an older server or a bucket: RemoteError "unsupported: ..."
        human = "-h" in a.opts
        # no Used column: the wire says only total and free (what the server may still
        # write), and their difference also counts the space reserved for root
        table = Rows([("Size" if human else "1K-blocks", "right", None),
                      ("Avail", "right", None)], show_header=True, header_style="bold")
        table.add_row(*(human_size(n) if human else str(n // 1024) for n in usage))
        self._print(table)
        return {"total": usage.total, "free": usage.free}

    def do_upper(self, arg: str) -> Fields:
        """upper TEXT: the server's upper-case echo."""
        try:
            text = " ".join(shlex.split(arg))
        except ValueError:  # an apostrophe in plain text: take the words as typed
            text = arg.strip()
        if not text:
            raise UsageError(f"usage: {SHELL_COMMANDS['upper'].usage}")
        result = self._require_client().upper(text)
        self._print(Line(result))
        return {"text": result}
