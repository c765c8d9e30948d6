"""What every shell command stands on: :class:`ShellBase`, the session's state and the
helpers all the command mixins share (output, paths, the connection, argument parsing).

:class:`~pyftp.shell.runner.Runner` fills the state in; each mixin of commands
(:mod:`.remote`, :mod:`.local`, :mod:`.transfers`, ...) derives from ShellBase, so a
type checker sees every attribute and helper a ``do_`` method uses. The few helpers one
mixin offers another are declared here for the checker only, never defined twice.

Import rule: client, sync, errors, ui and the shell's own modules (commands, parsing).
"""
from __future__ import annotations

import json
import os
import posixpath
import re
from collections import deque

from ..hints import TYPE_CHECKING, LEAN

from .. import sync
from ..client import Client
from ..errors import NotFoundError
from ..ui import Line, Reporter, safe_name
from .commands import Fields, UsageError
from .parsing import Args, glob_literal, glob_pattern, has_glob, parse_args

if TYPE_CHECKING or not LEAN:  # names for annotations; see pyftp.hints
    from typing import IO, Any, Callable, TypeAlias

if TYPE_CHECKING:
    from rich.console import Console

    from ..ui import PlainConsole
    from .cache import ListingCache

#: a command word: what cmd.Cmd takes for one (its identchars)
_WORD = re.compile(r"[A-Za-z0-9_]*")

#: where results and messages go: rich at a terminal, plain lines to a pipe
AnyConsole: TypeAlias = "Console | PlainConsole"
#: answers fetched ahead, keyed by (command, remote folder, what the line names),
#: each a deque of answers in line order (see :mod:`.batch`)
Ahead: TypeAlias = "dict[tuple[object, ...], deque[Any]]"


def shown_local(path: str, folder: str) -> str:
    """``path`` as the user would type it in the local folder ``folder`` (absolute):
    relative to it if inside, else as it is (what os.path.relpath says, without its
    ~20 us a file of a long batch when the path is plainly inside)."""
    inside = folder.rstrip("/") + "/"
    if (len(path) > len(inside) and path.startswith(inside) and path[:2] != "//"
            and os.path.normpath(path) == path):
        return path[len(inside):]
    shown = os.path.relpath(path, folder)
    return path if shown.startswith("..") else shown


class ShellBase:
    """The state of a shell session and the helpers every command uses."""

    console: AnyConsole
    err_console: AnyConsole
    binary_out: IO[bytes] | None
    reporter: Reporter
    json_output: bool
    quiet: bool
    interactive: bool
    rate_limit: float | None
    local_cwd: str
    cwd: str
    previous_cwd: str | None
    client: Client | None
    cache: ListingCache
    clock: Callable[[], float]
    retries: int
    resume: bool
    backoff: float | None
    sleep: Callable[[float], object]
    ahead: Ahead
    history_file: str | None
    _color_prompt: bool
    #: what the prompt shows (the interactive shell reads it; kept up to date always)
    prompt: str
    #: -v of the command running now: a job lists each file it moved
    verbose: bool
    #: what starts the lines a job prints about each failed file (``pyftp: line 3: ``)
    _prefix: str

    if TYPE_CHECKING:  # offered by one mixin to the others; defined there only
        @property
        def ahead_held(self) -> bool: ...

        def _ahead_or(self, key: tuple[object, ...], fetch: Callable[[], Any]) -> Any: ...

        def _on_event(self, kind: str, path: str, detail: str) -> None: ...

        def _unknown(self, word: str) -> str: ...

        def _ls_names_only(self, opts: dict[str, str]) -> bool: ...

    # ------------------------------------------------------------------ output
    def parseline(self, line: str) -> tuple[str | None, str | None, str]:
        """(command word, the rest, the line) as the prompt reads it (``?`` means
        help, ``!`` the local shell); the word is the leading letters, digits and
        underscores (as cmd.Cmd reads it). An empty line gives (None, None, "")."""
        line = line.strip()
        if line[:1] == "?":
            line = "help " + line[1:]
        elif line[:1] == "!":
            line = "shell " + line[1:]
        if not line:
            return None, None, line
        m = _WORD.match(line)  # it always matches (perhaps nothing)
        word = m.group() if m else ""
        return word, line[len(word):].strip(), line

    def _emit_json(self, obj: Fields) -> None:
        f = self.console.file
        f.write(json.dumps(obj, separators=(",", ":")) + "\n")
        f.flush()

    def _print(self, renderable: Any) -> None:
        """A command's result (ls, hash, pwd ...): stdout, unless --json."""
        if not self.json_output:
            with self.reporter.paused():
                # a terminal gets word-wrapped lines; a pipe gets each line whole
                self.console.print(renderable, highlight=False,
                                   soft_wrap=not self.console.is_terminal)

    def _note(self, renderable: Any) -> None:
        """A confirmation (uploaded, created ...): stdout, unless --json or --quiet."""
        if not (self.json_output or self.quiet):
            with self.reporter.paused():
                self.console.print(renderable, soft_wrap=True, highlight=False)

    def _info(self, text: str) -> None:
        """A diagnostic (connected, reconnected, skipped): stderr, unless --quiet."""
        if not self.quiet:
            with self.reporter.paused():
                self.err_console.print(Line(text, style="dim"), soft_wrap=True,
                                       highlight=False)

    # ------------------------------------------------------------------ the connection
    def _require_client(self) -> Client:
        c = self.client
        if c is None:
            raise UsageError("not connected: use open HOST[:PORT] first")
        if not c.connected and not self.ahead_held:
            # the last command dropped the connection (network, Ctrl-C): try once more
            c.reconnect()
            self._info(f"reconnected to {c.address}")
        return c

    def _remote_is_dir(self, c: Client, path: str) -> bool:
        try:
            return c.stat(path).is_dir
        except NotFoundError:
            return False

    def _matches(self, c: Client, word: str, *, missing_ok: bool = False) -> list[str]:
        """The remote paths a word names: itself, or what its wildcards match (sorted).

        A pattern that matches nothing is a :class:`NotFoundError` (unless
        ``missing_ok``); ``\\*`` in a word is a plain star.
        """
        if not has_glob(word):
            return [glob_literal(word)]
        found = sync.expand_remote(c, glob_pattern(word))
        if not found and not missing_ok:
            raise NotFoundError(f"not found: nothing matches {safe_name(word)}")
        return found

    # ------------------------------------------------------------------ paths, arguments
    def _abs(self, path: str) -> str:
        """A remote path made absolute against the remote folder (for the cache)."""
        p = posixpath.normpath(posixpath.join(self.cwd, path))
        return "/" + p.lstrip("/")

    def _local(self, path: str) -> str:
        """A local path made absolute against :attr:`local_cwd` (never the process cwd)."""
        return os.path.normpath(os.path.join(self.local_cwd, os.path.expanduser(path)))

    def _changed(self, *remote_paths: str) -> None:
        """Forget cached listings touched by a change: each path's folder and itself."""
        for p in remote_paths:
            a = self._abs(p)
            self.cache.invalidate(posixpath.dirname(a) or "/")
            self.cache.invalidate(a)

    def _args(self, name: str, arg: str) -> Args:
        a = parse_args(name, arg)
        #: -v of the command running now: a job lists each file it moved
        self.verbose = "-v" in a.opts
        return a

    def _shown_local(self, path: str) -> str:
        """A local path as the user would type it: relative to the local folder if inside."""
        return shown_local(path, self.local_cwd)

    def _local_under(self, root: str) -> Callable[[str], str]:
        return lambda rel: self._shown_local(os.path.join(root, *rel.split("/")) if rel
                                             else root)

    def _remote_under(self, root: str) -> Callable[[str], str]:
        return lambda rel: self._abs(posixpath.join(root, rel) if rel else root)
