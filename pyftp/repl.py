"""The pyftp shell: one command table, run the same way at a prompt, in ``-c`` and in ``-b``.

:class:`Shell` is a :class:`cmd.Cmd` with one ``do_<command>`` per entry of
:data:`SHELL_COMMANDS`. :meth:`Shell.execute` runs one command line and is the one
place where the shell turns an exception into a red line (and, with ``--json``, into a
``{"command":..., "ok": false, ...}`` object); the prompt loop and the one-shot CLI both
go through it, so a command behaves the same in all three modes. It returns an
:class:`Outcome`; the CLI picks exit codes from it.

Remote paths are tab-completed from listings cached per folder (dropped after any change
the shell makes, and after :data:`CACHE_SECONDS`); local paths from the local folder.
Names with spaces complete with backslashes or inside the quote the user opened, as in
bash. History persists in ``$XDG_STATE_HOME/pyftp/history``.

Ctrl-C during a command cancels it and returns to the prompt. The client drops a
connection interrupted mid-transfer (it cannot be reused out of step), so the shell
reconnects at once; the partial file stays hidden and a rerun of the same get/put
continues it. The shell never calls ``os.chdir``: ``lcd`` moves :attr:`Shell.local_cwd`.

Import rule: client, errors, protocol, ui. Nothing imports repl but cli.
"""
from __future__ import annotations

import cmd
import difflib
import fnmatch
import getopt
import glob
import json
import os
import posixpath
import re
import shlex
import stat as stat_
import sys
import time
from dataclasses import dataclass, field
from typing import IO, Any, Callable, Iterable

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .client import Client, Entry
from .errors import (AlreadyExistsError, CancelledError, ConnectError, LocalError,
                     NotFoundError, PyftpError, RemoteError, TransportError)
from .protocol import DEFAULT_PORT
from .ui import (Trimmed, error_text, format_mtime, human_size, listing, make_reporter,
                 print_error, safe_name, transfer_summary)

__all__ = ["Shell", "ShellCommand", "SHELL_COMMANDS", "ALIASES", "Outcome", "UsageError",
           "ListingCache", "parse_target", "split_commands", "split_partial", "history_path",
           "CACHE_SECONDS"]

#: how long a cached remote listing serves tab completion before it is fetched again
CACHE_SECONDS = 30.0


class UsageError(PyftpError):
    """A command was typed wrong: unknown word, bad option, missing or extra argument."""


# --------------------------------------------------------------------------- the table
@dataclass(frozen=True)
class ShellCommand:
    """One shell command, declared once: syntax, help, and how to complete it.

    ``flags`` is a getopt spec (``"lp"``; ``"u:"`` takes a value). ``complete`` names
    the kind of each positional argument for tab completion (``remote``,
    ``remote_dir``, ``local``, ``local_dir``, ``command``); with ``repeat`` the last
    kind applies to every further argument. ``connected`` commands need a server.
    """

    name: str
    usage: str
    help: str
    min_args: int = 0
    max_args: int | None = 0
    flags: str = ""
    complete: tuple[str, ...] = ()
    repeat: bool = False
    connected: bool = True


# To add a command (mirror, get -r, ...): add its row here and a ``do_<name>`` method
# on Shell returning its JSON fields; parsing, help, completion, errors, --json and the
# one-shot modes then come for free. A new flag on an existing command is one letter in
# its ``flags`` and a branch in its ``do_`` method.
SHELL_COMMANDS: dict[str, ShellCommand] = {c.name: c for c in (
    ShellCommand("open", "open [-u USER] HOST[:PORT]",
                 f"connect to a server (default port {DEFAULT_PORT})", 1, 1, "u:",
                 connected=False),
    ShellCommand("close", "close", "disconnect from the server", connected=False),
    ShellCommand("ls", "ls [-l] [PATH]", "list a remote folder (-l: sizes and times)",
                 0, 1, "l", ("remote",)),
    ShellCommand("cd", "cd [PATH]", "change the remote folder (no PATH: the top)",
                 0, 1, "", ("remote_dir",)),
    ShellCommand("pwd", "pwd", "show the remote folder"),
    ShellCommand("lcd", "lcd [PATH]", "change the local folder (no PATH: home)",
                 0, 1, "", ("local_dir",), connected=False),
    ShellCommand("lls", "lls [-l] [PATH]", "list a local folder", 0, 1, "l", ("local",),
                 connected=False),
    ShellCommand("lpwd", "lpwd", "show the local folder", connected=False),
    ShellCommand("get", "get REMOTE [LOCAL]",
                 "download a file (verified; an interrupted one resumes when run again)",
                 1, 2, "", ("remote", "local")),
    ShellCommand("put", "put [-f] LOCAL [REMOTE]",
                 "upload a file (published only once verified; -f replaces an existing one)",
                 1, 2, "f", ("local", "remote")),
    ShellCommand("mget", "mget PATTERN...", "download every file matching the patterns",
                 1, None, "", ("remote",), repeat=True),
    ShellCommand("mput", "mput [-f] PATTERN...", "upload every local file matching the patterns",
                 1, None, "f", ("local",), repeat=True),
    ShellCommand("mkdir", "mkdir [-p] PATH...", "create folders (-p: with parents, no error "
                 "if they exist)", 1, None, "p", ("remote_dir",), repeat=True),
    ShellCommand("rm", "rm PATH...", "remove files", 1, None, "", ("remote",), repeat=True),
    ShellCommand("rmdir", "rmdir PATH...", "remove empty folders", 1, None, "",
                 ("remote_dir",), repeat=True),
    ShellCommand("mv", "mv [-f] SRC DST", "rename or move (into DST if it is a folder; "
                 "-f replaces an existing file)", 2, 2, "f", ("remote", "remote")),
    ShellCommand("stat", "stat PATH", "show type, size and time of a remote path",
                 1, 1, "", ("remote",)),
    ShellCommand("hash", "hash PATH", "SHA-256 of a remote file, computed by the server",
                 1, 1, "", ("remote",)),
    ShellCommand("upper", "upper TEXT", "the server's upper-case echo of TEXT", 1, None),
    ShellCommand("help", "help [COMMAND]", "list the commands, or explain one", 0, 1, "",
                 ("command",), connected=False),
    ShellCommand("quit", "quit", "close the connection and leave (also exit, Ctrl-D)",
                 connected=False),
)}

#: other words for the same command
ALIASES = {"exit": "quit", "?": "help"}


@dataclass
class Outcome:
    """What running one command line did. ``error`` is None when it succeeded."""

    command: str
    ok: bool
    error: BaseException | None = None
    fields: dict = field(default_factory=dict)


@dataclass
class _Args:
    opts: dict
    args: list


@dataclass(frozen=True)
class _LocalEntry:
    name: str
    type: str
    size: int
    mtime: float


# --------------------------------------------------------------------------- helpers
def parse_target(text: str, default_port: int = DEFAULT_PORT) -> tuple[str, int]:
    """'host', 'host:port', '[::1]:port', '::1' -> (host, port). Raises ValueError."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest and not rest.startswith(":"):
            raise ValueError(f"bad address {text!r}: expected [HOST]:PORT")
        port = rest[1:]
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        host, port = text, ""
    if not host:
        raise ValueError(f"no host in {text!r}")
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"bad port in {text!r}: give a number from 1 to 65535")
    return host, int(port) if port else default_port


def split_commands(text: str) -> list[str]:
    """Split ``-c`` text at the ``;`` outside quotes: ``put "a;b"; ls`` -> 2 commands."""
    out, cur, quote, i = [], [], None, 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == quote:
                quote = None
            elif ch == "\\" and quote == '"' and i + 1 < len(text):
                cur.append(ch)
                i += 1
                ch = text[i]
        elif ch in "'\"":
            quote = ch
        elif ch == "\\" and i + 1 < len(text):
            cur.append(ch)
            i += 1
            ch = text[i]
        elif ch in ";\n":
            out.append("".join(cur).strip())
            cur = []
            i += 1
            continue
        cur.append(ch)
        i += 1
    out.append("".join(cur).strip())
    return [c for c in out if c]


def split_partial(line: str) -> tuple[list[str], str, int, str | None]:
    """Split an unfinished command line as shlex would, keeping the last word open.

    Returns (finished words, the unquoted current word, the index where the current
    word starts in ``line``, the quote still open or None). Completion needs this
    because readline splits only at spaces and knows nothing of quotes or ``\\ ``.
    """
    words: list[str] = []
    cur: list[str] = []
    start = len(line)
    quote: str | None = None
    in_word = False
    i = 0
    while i < len(line):
        ch = line[i]
        if quote:
            if ch == quote:
                quote = None
            elif ch == "\\" and quote == '"' and i + 1 < len(line) and line[i + 1] in '"\\':
                i += 1
                cur.append(line[i])
            else:
                cur.append(ch)
        elif ch in " \t":
            if in_word:
                words.append("".join(cur))
                cur, in_word = [], False
        else:
            if not in_word:
                in_word, start = True, i
            if ch in "'\"":
                quote = ch
            elif ch == "\\":
                if i + 1 < len(line):
                    i += 1
                    cur.append(line[i])
            else:
                cur.append(ch)
        i += 1
    if not in_word:
        return words, "", len(line), None
    return words, "".join(cur), start, quote


_NEEDS_ESCAPE = re.compile(r"([\s'\"\\])")


def _quote_word(value: str, quote: str | None, final: bool) -> str:
    """``value`` as the user would type it: inside their open quote, or with backslashes."""
    if quote == '"':
        body = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{body}' + ('" ' if final else "")
    if quote == "'" and "'" not in value:
        return f"'{value}" + ("' " if final else "")
    return _NEEDS_ESCAPE.sub(r"\\\1", value) + (" " if final else "")


def _has_glob(text: str) -> bool:
    return any(c in text for c in "*?[")


def history_path() -> str:
    """Where the shell keeps its history: ``$XDG_STATE_HOME/pyftp/history``, or
    ``~/.local/state/pyftp/history`` (the XDG spec ignores a relative XDG_STATE_HOME)."""
    base = os.environ.get("XDG_STATE_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "pyftp", "history")


def _entry_json(e: Any) -> dict:
    return {"name": e.name, "type": e.type, "size": e.size, "mtime": e.mtime}


def _error_code(exc: BaseException) -> str:
    """The stable ``error`` word of a --json failure object."""
    if isinstance(exc, RemoteError):
        return exc.code
    if isinstance(exc, UsageError):
        return "usage"
    if isinstance(exc, ConnectError):
        return "connect_failed"
    if isinstance(exc, TransportError):
        return "connection_lost"
    if isinstance(exc, LocalError):
        return "local_error"
    if isinstance(exc, (KeyboardInterrupt, CancelledError)):
        return "cancelled"
    return "unexpected"


class ListingCache:
    """Remote listings by absolute folder, for tab completion.

    Entries expire after ``ttl`` seconds (changes made by other clients show up), and
    the shell drops a folder's entry whenever one of its own commands changes it.
    """

    def __init__(self, ttl: float = CACHE_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._data: dict[str, tuple[float, list]] = {}
        #: how many listings were fetched from the server (tests watch this)
        self.fetches = 0

    def get(self, folder: str, fetch: Callable[[str], list]) -> list:
        hit = self._data.get(folder)
        now = self.clock()
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        entries = fetch(folder)
        self.fetches += 1
        self._data[folder] = (now, entries)
        return entries

    def put(self, folder: str, entries: list) -> None:
        self._data[folder] = (self.clock(), list(entries))

    def invalidate(self, *paths: str) -> None:
        """Forget the listings of these folders (and of folders inside them)."""
        for p in paths:
            for key in list(self._data):
                if key == p or key.startswith(p.rstrip("/") + "/"):
                    del self._data[key]

    def clear(self) -> None:
        self._data.clear()


def _default_connector(host: str, port: int, user: str | None,
                       password: str | None) -> Client:
    return Client(host, port, user=user, password=password)


# --------------------------------------------------------------------------- the shell
class Shell(cmd.Cmd):
    """The interactive pyftp shell, also the engine of ``pyftp -c`` and ``pyftp -b``.

    Everything it touches is passed in: ``console`` (results, stdout), ``err_console``
    (errors, progress, notes; defaults to ``console``), ``stdin``/``stdout`` for the
    prompt loop, ``connector(host, port, user, password) -> Client`` for ``open``,
    ``getpass(prompt)`` for passwords, ``clock``. ``progress`` is a
    :func:`pyftp.ui.make_reporter` mode. With ``json_output`` each command writes one
    JSON object to ``console``'s file and nothing else goes to stdout.
    """

    intro = None
    doc_header = "commands"

    def __init__(self, client: Client | None = None, *, console: Console | None = None,
                 err_console: Console | None = None, stdin: IO[str] | None = None,
                 stdout: IO[str] | None = None, progress: str = "off",
                 progress_stream: IO[str] | None = None, json_output: bool = False,
                 quiet: bool = False, interactive: bool = False,
                 connector: Callable[..., Client] = _default_connector,
                 user: str | None = None, password: str | None = None,
                 default_port: int = DEFAULT_PORT,
                 getpass: Callable[[str], str] | None = None,
                 local_cwd: str | None = None, history_file: str | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 cache_seconds: float = CACHE_SECONDS) -> None:
        super().__init__(stdin=stdin, stdout=stdout)
        if stdin is not None:
            self.use_rawinput = False
        self.console = console or Console(highlight=False)
        self.err_console = err_console or (self.console if console is not None
                                           else Console(stderr=True, highlight=False))
        self.reporter = make_reporter(progress, console=self.err_console,
                                      stream=progress_stream or sys.stderr, clock=clock)
        self.json_output = json_output
        self.quiet = quiet
        self.interactive = interactive
        self.connector = connector
        self.user = user
        self.password = password
        self.default_port = default_port
        self.getpass = getpass
        self.clock = clock
        self.local_cwd = os.path.abspath(local_cwd or os.getcwd())
        self.history_file = history_file
        self.cache = ListingCache(cache_seconds, clock)
        self.client: Client | None = None
        self.cwd = "/"
        self._quit = False
        self._color_prompt = False
        if client is not None:
            self._attach(client)
        self._update_prompt()

    # ------------------------------------------------------------------ running
    def execute(self, line: str, *, prefix: str = "") -> Outcome:
        """Run one command line; print its result or its one-line error.

        The single place where a command's exception becomes a message (prefixed with
        ``prefix``, e.g. ``pyftp: line 3: ``) and, with --json, a failure object.
        Ctrl-C (KeyboardInterrupt) is caught here too: the command is cancelled.
        """
        line = line.strip()
        if not line or line.startswith("#"):
            return Outcome("", True)
        word, arg, _ = self.parseline(line)
        name = ALIASES.get(word or "", word or "")
        try:
            spec = SHELL_COMMANDS.get(name)
            if spec is None:
                raise UsageError(self._unknown(word or line.split()[0]))
            fields = getattr(self, "do_" + name)(arg or "") or {}
        except (Exception, KeyboardInterrupt) as exc:
            self._failed(name or (word or "?"), exc, prefix)
            self._update_prompt()
            return Outcome(name, False, exc)
        self._update_prompt()
        if self.json_output:
            self._emit_json({"command": name, "ok": True, **fields})
        return Outcome(name, True, None, fields)

    def onecmd(self, line: str) -> bool:
        """cmd.Cmd's hook: run the line; True ends the prompt loop."""
        if line == "EOF":  # Ctrl-D at the prompt
            self.stdout.write("\n")
            line = "quit"
        self.execute(line)
        return self._quit

    @property
    def finished(self) -> bool:
        """True once quit (or exit, or Ctrl-D) ran: the session is over."""
        return self._quit

    def emptyline(self) -> bool:
        """An empty line does nothing (cmd.Cmd would repeat the last command)."""
        return False

    def run(self) -> int:
        """The interactive prompt loop, with history and completion; returns 0."""
        readline = self._setup_readline()
        self._update_prompt()
        try:
            while not self._quit:
                try:
                    self.cmdloop()
                except KeyboardInterrupt:  # Ctrl-C at the prompt: a fresh line, as in bash
                    self.stdout.write("^C\n")
                    self.stdout.flush()
        finally:
            if readline is not None:
                self._save_history(readline)
            self._close_client()
        return 0

    # ------------------------------------------------------------------ output
    def _emit_json(self, obj: dict) -> None:
        f = self.console.file
        f.write(json.dumps(obj, separators=(",", ":")) + "\n")
        f.flush()

    def _print(self, renderable: Any) -> None:
        """A command's result (ls, hash, pwd ...): stdout, unless --json."""
        if not self.json_output:
            with self.reporter.paused():
                if isinstance(renderable, Table):
                    renderable = Trimmed(renderable)
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
                self.err_console.print(Text(text, style="dim"), soft_wrap=True,
                                       highlight=False)

    def _failed(self, name: str, exc: BaseException, prefix: str) -> None:
        text = error_text(exc)
        if isinstance(exc, KeyboardInterrupt):
            text = f"cancelled: {name}"
            if name in ("get", "mget"):
                text += " (the partial download is kept hidden; run it again to resume)"
            elif name in ("put", "mput"):
                text += " (an unfinished upload is never published; run it again to resume)"
        print_error(self.err_console, text, prefix=prefix)
        if self.json_output:
            self._emit_json({"command": name, "ok": False, "error": _error_code(exc),
                             "message": text})
        if isinstance(exc, KeyboardInterrupt) and self.interactive:
            self._reconnect_if_dropped()

    def _reconnect_if_dropped(self) -> None:
        c = self.client
        if c is None or c.connected:
            return
        try:
            c.reconnect()
            self.cwd = c.pwd()
            self._info(f"reconnected to {c.address}")
        except (Exception, KeyboardInterrupt) as exc:
            print_error(self.err_console, f"could not reconnect: {error_text(exc)}; "
                        "use open HOST[:PORT]")

    def _unknown(self, word: str) -> str:
        names = list(SHELL_COMMANDS) + list(ALIASES)
        close = difflib.get_close_matches(word, names, n=1)
        hint = f"; did you mean {close[0]}?" if close else "; type help for the list"
        return f"unknown command: {safe_name(word)}{hint}"

    # ------------------------------------------------------------------ state
    def _attach(self, client: Client) -> None:
        self.cache.clear()
        try:
            self.cwd = client.pwd()
        except BaseException:
            client.close()  # a session that cannot say where it is is no session
            raise
        self.client = client

    def _close_client(self) -> None:
        if self.client is not None:
            try:
                self.client.close()
            except Exception:
                pass
            self.client = None
            self.cache.clear()
            self.cwd = "/"

    def _require_client(self) -> Client:
        c = self.client
        if c is None:
            raise UsageError("not connected: use open HOST[:PORT] first")
        if not c.connected:
            # the last command dropped the connection (network, Ctrl-C): try once more
            c.reconnect()
            self._info(f"reconnected to {c.address}")
        return c

    def _update_prompt(self) -> None:
        if self.client is None:
            where = ""
        else:
            who = f"{self.client.user}@" if self.client.user else ""
            where = f"{who}{self.client.address}:{safe_name(self.cwd)}"
        if self._color_prompt:
            # \001 and \002 tell readline the colour codes take no room on the line
            def c(code: str, s: str) -> str:
                return f"\001\033[{code}m\002{s}\001\033[0m\002"
            self.prompt = c("1;32", "pyftp") + (" " + c("36", where) if where else "") + "> "
        else:
            self.prompt = "pyftp" + (f" {where}" if where else "") + "> "

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

    def _args(self, name: str, arg: str) -> _Args:
        spec = SHELL_COMMANDS[name]
        try:
            words = shlex.split(arg)
        except ValueError as exc:
            raise UsageError(f"{name}: {str(exc).lower()}; quote names with spaces, "
                             f"e.g. {name} \"my file.txt\"") from None
        opts: dict = {}
        if spec.flags:
            try:
                pairs, words = getopt.gnu_getopt(words, spec.flags)
            except getopt.GetoptError as exc:
                raise UsageError(f"{name}: {exc.msg}; usage: {spec.usage}") from None
            opts = dict(pairs)
        if len(words) < spec.min_args or (spec.max_args is not None
                                          and len(words) > spec.max_args):
            raise UsageError(f"usage: {spec.usage}")
        return _Args(opts, words)

    def _remote_is_dir(self, c: Client, path: str) -> bool:
        try:
            return c.stat(path).is_dir
        except NotFoundError:
            return False

    # ------------------------------------------------------------------ connection
    def do_open(self, arg: str) -> dict:
        """open [-u USER] HOST[:PORT]: connect to a server."""
        a = self._args("open", arg)
        try:
            host, port = parse_target(a.args[0], self.default_port)
        except ValueError as exc:
            raise UsageError(f"open: {exc}") from None
        user = a.opts.get("-u", self.user)
        password = self.password if user == self.user else None
        if user is not None and password is None:
            password = self._ask_password(user, host)
        self._close_client()
        client = self.connector(host, port, user, password)
        self.user = user
        self.password = password
        self._attach(client)
        info = client.server_info
        if self.interactive:  # a script knows where it connected; a person likes to see it
            self._info(f"connected to {client.address} ({info.get('server', 'pyftp server')}"
                       f"{', read-only' if 'read_only' in info.get('features', ()) else ''})")
        return {"host": host, "port": port, "server": info.get("server")}

    def _ask_password(self, user: str, host: str) -> str:
        env = os.environ.get("PYFTP_PASSWORD")
        if env is not None:
            return env
        if self.getpass is None:
            raise UsageError(f"a password is needed for {user}: set PYFTP_PASSWORD")
        return self.getpass(f"password for {user}@{host}: ")

    def do_close(self, arg: str) -> dict:
        """close: disconnect from the server."""
        self._args("close", arg)
        if self.client is None:
            self._info("not connected")
            return {}
        address = self.client.address
        self._close_client()
        self._info(f"closed the connection to {address}")
        return {}

    def do_quit(self, arg: str) -> dict:
        """quit: close the connection and leave."""
        self._args("quit", arg)
        self._close_client()
        self._quit = True
        return {}

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

    # ------------------------------------------------------------------ transfers
    def do_get(self, arg: str) -> dict:
        """get REMOTE [LOCAL]: download a file."""
        a = self._args("get", arg)
        c = self._require_client()
        remote = a.args[0]
        local = self._local(a.args[1]) if len(a.args) > 1 else self.local_cwd
        return self._get_one(c, remote, local, None)

    def _get_one(self, c: Client, remote: str, local: str, size: int | None) -> dict:
        label = f"get {safe_name(posixpath.basename(remote.rstrip('/')) or remote)}"
        with self.reporter.transfer(label, size) as on_progress:
            r = c.get(remote, local, on_progress=on_progress)
        shown = os.path.relpath(r.local, self.local_cwd)
        if shown.startswith(".."):
            shown = r.local
        self._note(transfer_summary("get", self._abs(remote), shown, r.total, r.sent,
                                    r.offset, r.seconds, r.sha256))
        return {"path": self._abs(remote), "local": r.local, "size": r.total,
                "sha256": r.sha256, "seconds": round(r.seconds, 3), "resumed_from": r.offset}

    def do_put(self, arg: str) -> dict:
        """put [-f] LOCAL [REMOTE]: upload a file."""
        a = self._args("put", arg)
        c = self._require_client()
        local = self._local(a.args[0])
        name = os.path.basename(local.rstrip(os.sep))
        if len(a.args) > 1:
            remote = a.args[1]
            if remote.endswith("/") or self._remote_is_dir(c, remote):
                remote = posixpath.join(remote, name)
        else:
            remote = name
        return self._put_one(c, local, remote, "-f" in a.opts, "put")

    def _put_one(self, c: Client, local: str, remote: str, force: bool, verb: str) -> dict:
        try:
            size: int | None = os.path.getsize(local)
        except OSError:
            size = None  # Client.put explains what is wrong with the file
        label = f"put {safe_name(os.path.basename(local))}"
        try:
            with self.reporter.transfer(label, size) as on_progress:
                r = c.put(local, remote, on_progress=on_progress, overwrite=force)
        except AlreadyExistsError as exc:
            raise AlreadyExistsError(_hint_force(exc.message, verb)) from exc
        finally:
            self._changed(remote)
        self._changed(r.remote)
        shown = os.path.relpath(local, self.local_cwd)
        if shown.startswith(".."):
            shown = local
        self._note(transfer_summary("put", shown, r.remote, r.total, r.sent, r.offset,
                                    r.seconds, r.sha256))
        return {"path": r.remote, "local": local, "size": r.total, "sha256": r.sha256,
                "seconds": round(r.seconds, 3), "resumed_from": r.offset}

    def do_mget(self, arg: str) -> dict:
        """mget PATTERN...: download every remote file matching the patterns."""
        a = self._args("mget", arg)
        c = self._require_client()
        files: dict[str, Entry] = {}
        for pattern in a.args:
            for path, entry in self._remote_glob(c, pattern):
                if entry.is_dir:
                    self._info(f"skipping folder {safe_name(path)}")
                else:
                    files.setdefault(path, entry)
        if not files:
            raise NotFoundError(f"not found: no files match {' '.join(a.args)} (only folders)")
        total = sum(e.size for e in files.values())
        done = []
        with self.reporter.job("mget", len(files), total):
            for path, entry in files.items():
                done.append(self._get_one(c, path, self.local_cwd, entry.size))
        return {"files": done, "count": len(done), "size": total}

    def _remote_glob(self, c: Client, pattern: str) -> list[tuple[str, Entry]]:
        head, sep, base = pattern.rpartition("/")
        if _has_glob(head):
            raise UsageError(f"wildcards work only in the last part of a path: {pattern}")
        if not _has_glob(base):
            return [(self._abs(pattern), c.stat(pattern))]
        folder = self._abs(head + sep if sep else ".")
        entries = c.ls(folder)
        self.cache.put(folder, entries)
        found = [(posixpath.join(folder, e.name), e) for e in entries
                 if fnmatch.fnmatchcase(e.name, base)
                 and (base.startswith(".") or not e.name.startswith("."))]
        if not found:
            raise NotFoundError(f"not found: nothing matches {pattern}")
        return found

    def do_mput(self, arg: str) -> dict:
        """mput [-f] PATTERN...: upload every local file matching the patterns."""
        a = self._args("mput", arg)
        c = self._require_client()
        files: list[str] = []
        for pattern in a.args:
            full = os.path.join(glob.escape(self.local_cwd), os.path.expanduser(pattern))
            matches = sorted(glob.glob(full)) if _has_glob(pattern) else [self._local(pattern)]
            if not matches:
                raise LocalError(f"no local file matches {pattern}")
            if not os.path.exists(matches[0]):
                raise LocalError(f"no such local file: {matches[0]}")
            for m in matches:
                if os.path.isdir(m):
                    self._info(f"skipping folder {safe_name(m)}")
                elif m not in files:
                    files.append(m)
        if not files:
            raise LocalError(f"no files match {' '.join(a.args)} (only folders)")
        total = sum(_size_or_zero(f) for f in files)
        done = []
        with self.reporter.job("mput", len(files), total):
            for f in files:
                done.append(self._put_one(c, f, os.path.basename(f), "-f" in a.opts, "mput"))
        return {"files": done, "count": len(done), "size": total}

    # ------------------------------------------------------------------ help
    def do_help(self, arg: str) -> dict:
        """help [COMMAND]: list the commands, or explain one."""
        a = self._args("help", arg)
        if a.args:
            name = ALIASES.get(a.args[0], a.args[0])
            spec = SHELL_COMMANDS.get(name)
            if spec is None:
                raise UsageError(self._unknown(a.args[0]))
            text = Text()
            text.append(spec.usage, style="bold")
            text.append(f"\n  {spec.help}")
            self._print(text)
            return {"usage": spec.usage, "help": spec.help}
        table = Table(box=None, show_header=False, pad_edge=False)
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        for spec in SHELL_COMMANDS.values():
            table.add_row(spec.usage, spec.help)
        self._print(table)
        self._print(Text("Quote names with spaces (\"my file.txt\" or my\\ file.txt). Tab "
                         "completes commands and paths; Ctrl-C cancels a transfer; Ctrl-D "
                         "leaves.", style="dim"))
        return {"commands": [{"name": s.name, "usage": s.usage, "help": s.help}
                             for s in SHELL_COMMANDS.values()]}

    # ------------------------------------------------------------------ completion
    def completenames(self, text: str, *ignored: Any) -> list[str]:
        """Complete a command word (with the space after it)."""
        names = sorted(set(SHELL_COMMANDS) | {a for a in ALIASES if a.isalpha()})
        return [n + " " for n in names if n.startswith(text)]

    def complete(self, text: str, state: int):
        """readline's hook; cmd.Cmd would hide errors too, but a completer must never raise."""
        try:
            return super().complete(text, state)
        except Exception:
            return None

    def _complete(self, name: str, text: str, line: str, begidx: int, endidx: int) -> list[str]:
        """Complete the argument under the cursor for command ``name``.

        Returns what replaces ``line[begidx:endidx]``: readline's idea of the word
        (split at spaces only) is narrower than the shell's, so candidates are built
        for the whole shell word and cut to the part readline will replace.
        """
        spec = SHELL_COMMANDS[name]
        words, current, start, quote = split_partial(line[:endidx])
        if current.startswith("-") and spec.flags:
            return []
        position = 0
        needs_value = False
        for w in words[1:]:
            if needs_value:
                needs_value = False
            elif w.startswith("-") and len(w) > 1 and spec.flags:
                needs_value = w[-1] + ":" in spec.flags
            else:
                position += 1
        if needs_value or not spec.complete:
            return []
        if position < len(spec.complete):
            kind = spec.complete[position]
        elif spec.repeat:
            kind = spec.complete[-1]
        else:
            return []
        typed = line[start:begidx]
        out = []
        for value, is_dir in self._candidates(kind, current):
            replacement = _quote_word(value, quote, final=not is_dir)
            if replacement.startswith(typed):
                out.append(replacement[len(typed):])
        return sorted(out)

    def _candidates(self, kind: str, current: str) -> Iterable[tuple[str, bool]]:
        if kind == "command":
            return [(n, False) for n in SHELL_COMMANDS if n.startswith(current)]
        head, sep, base = current.rpartition("/")
        prefix = head + sep
        if kind.startswith("remote"):
            if self.client is None or not self.client.connected:
                return []
            folder = self._abs(prefix or ".")
            try:
                entries = self.cache.get(folder, self.client.ls)
            except PyftpError:
                return []
            items = [(e.name, e.is_dir) for e in entries]
        else:
            folder = self._local(prefix or ".")
            try:
                with os.scandir(folder) as it:
                    items = [(d.name, _is_dir(d)) for d in it]
            except OSError:
                return []
        dirs_only = kind.endswith("_dir")
        return [(prefix + n + ("/" if d else ""), d) for n, d in items
                if n.startswith(base) and n.isprintable()
                and (base.startswith(".") or not n.startswith("."))
                and (d or not dirs_only)]

    # ------------------------------------------------------------------ history
    def _setup_readline(self):
        if not self.use_rawinput or not (self.stdin.isatty() and self.stdout.isatty()):
            return None  # commands piped in: no line editing, and no history to keep
        try:
            import readline
        except ImportError:  # a Python built without readline: no history, no completion
            return None
        readline.set_completer_delims(" \t\n")
        readline.set_history_length(1000)
        err = self.err_console
        self._color_prompt = err.is_terminal and err.color_system is not None and not err.no_color
        path = self.history_file or history_path()
        self.history_file = path
        try:
            readline.read_history_file(path)
        except (FileNotFoundError, PermissionError):
            pass
        except OSError as exc:
            self._info(f"could not read history {path}: {exc.strerror or exc}")
        return readline

    def _save_history(self, readline) -> None:
        path = self.history_file or history_path()
        try:
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            readline.write_history_file(path)
            os.chmod(path, 0o600)  # file names can be private
        except OSError as exc:
            self._info(f"could not save history to {path}: {exc.strerror or exc}")


def _make_completer(name: str):
    def complete(self: Shell, text: str, line: str, begidx: int, endidx: int) -> list[str]:
        return self._complete(name, text, line, begidx, endidx)
    complete.__name__ = f"complete_{name}"
    complete.__doc__ = f"Tab completion for {SHELL_COMMANDS[name].usage}."
    return complete


for _name, _spec in SHELL_COMMANDS.items():
    if _spec.complete:
        setattr(Shell, f"complete_{_name}", _make_completer(_name))


def _hint_force(message: str, verb: str) -> str:
    return re.sub(r"\((use|pass) overwrite to replace it\)", f"(use {verb} -f to replace it)",
                  message)


def _is_dir(d: os.DirEntry) -> bool:
    try:
        return d.is_dir()
    except OSError:
        return False


def _size_or_zero(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


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
