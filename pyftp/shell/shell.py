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

Every transfer goes through :mod:`pyftp.sync`: ``get``/``put`` through ``get_file`` /
``put_file``, and ``get -r``, ``put -r``, ``mget``, ``mput`` and ``mirror`` through its
pipelined tree, glob and mirror jobs. So each one continues partial files (unless
``--no-resume``) and rides out a dropped connection (``retries``), and the shell adds
only parsing, the bars (:func:`pyftp.ui.job_display`) and the report: one line per
file, the job's summary, and one red line per failed file, after which the command
fails as a whole (:class:`JobError`, exit 1 in the one-shot modes).

Ctrl-C during a command cancels it and returns to the prompt. The client drops a
connection interrupted mid-transfer (it cannot be reused out of step), so the shell
reconnects at once; the partial file stays hidden and a rerun of the same get/put
continues it. The shell never calls ``os.chdir``: ``lcd`` moves :attr:`Shell.local_cwd`.

Import rule: client, sync, errors, protocol, ui. Nothing imports repl but cli.
"""
from __future__ import annotations

import cmd
import difflib
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

from .. import sync
from ..client import Client
from ..errors import (AlreadyExistsError, CancelledError, ConnectError, IsDirectoryError,
                     LocalError, NotFoundError, PyftpError, RemoteError, TransportError)
from ..protocol import DEFAULT_PORT
from ..ui import (Trimmed, error_text, format_mtime, human_size, job_display, listing,
                 make_reporter, print_error, safe_name, transfer_summary)

__all__ = ["Shell", "ShellCommand", "SHELL_COMMANDS", "ALIASES", "Outcome", "UsageError",
           "JobError", "ListingCache", "parse_target", "split_commands", "split_partial",
           "history_path", "CACHE_SECONDS"]

#: how long a cached remote listing serves tab completion before it is fetched again
CACHE_SECONDS = 30.0


class UsageError(PyftpError):
    """A command was typed wrong: unknown word, bad option, missing or extra argument."""


class JobError(PyftpError):
    """A folder, glob or mirror job ran to its end, but some of its steps failed.

    Each failed file was already printed on its own line; ``fields`` holds the job's
    counts for the --json failure object. Rerunning the command retries what failed
    (and continues partial files).
    """

    def __init__(self, message: str, fields: dict) -> None:
        super().__init__(message)
        self.fields = fields


# --------------------------------------------------------------------------- the table
@dataclass(frozen=True)
class ShellCommand:
    """One shell command, declared once: syntax, help, and how to complete it.

    ``flags`` is a getopt spec (``"lp"``; ``"u:"`` takes a value) and ``long`` the
    long options (``"dry-run"``). ``complete`` names the kind of each positional
    argument for tab completion (``remote``, ``remote_dir``, ``local``, ``local_dir``,
    ``command``); with ``repeat`` the last kind applies to every further argument, and
    ``alt_complete`` = (flag, kinds) replaces the kinds when that flag is given
    (``mirror -R`` swaps the sides). ``forms`` are further (usage, help) lines, e.g.
    ``get -r``; ``options`` explain each flag in ``help COMMAND``. ``connected``
    commands need a server.
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
    long: tuple[str, ...] = ()
    forms: tuple[tuple[str, str], ...] = ()
    options: tuple[tuple[str, str], ...] = ()
    alt_complete: tuple[str, tuple[str, ...]] | None = None

    def usage_text(self) -> str:
        """Every form of the command on one line, for usage errors."""
        return " or ".join([self.usage, *(u for u, _h in self.forms)])


_NO_RESUME = ("--no-resume", "start from zero instead of continuing a partial file")
# To add a command: add its row here and a ``do_<name>`` method on Shell returning its
# JSON fields; parsing, help, completion, errors, --json and the one-shot modes then
# come for free. A new flag on an existing command is one letter in its ``flags`` (or
# a word in ``long``), a line in ``options`` and a branch in its ``do_`` method.
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
                 1, 2, "r", ("remote", "local"), long=("no-resume",),
                 forms=(("get -r REMOTE_DIR [LOCAL_DIR]",
                         "download a folder and everything in it (default LOCAL_DIR: its "
                         "name)"),),
                 options=(("-r", "copy a folder: subfolders (empty ones too) and "
                                 "modification times; LOCAL_DIR receives its contents"),
                          _NO_RESUME)),
    ShellCommand("put", "put [-f] LOCAL [REMOTE]",
                 "upload a file (published only once verified; -f replaces an existing one)",
                 1, 2, "fr", ("local", "remote"), long=("no-resume",),
                 forms=(("put -r [-f] LOCAL_DIR [REMOTE_DIR]",
                         "upload a folder and everything in it (identical files are "
                         "skipped)"),),
                 options=(("-f", "replace remote files that differ"),
                          ("-r", "copy a folder: subfolders (empty ones too) and "
                                 "modification times; REMOTE_DIR receives its contents; "
                                 "symlinks are never followed out of it"),
                          _NO_RESUME)),
    ShellCommand("mget", "mget [-r] PATTERN...",
                 "download every file matching the patterns (-r: folders too)",
                 1, None, "r", ("remote",), repeat=True, long=("no-resume",),
                 options=(("-r", "copy matching folders with everything in them"),
                          _NO_RESUME)),
    ShellCommand("mput", "mput [-r] [-f] PATTERN...",
                 "upload every local file matching the patterns (-r: folders too)",
                 1, None, "fr", ("local",), repeat=True, long=("no-resume",),
                 options=(("-f", "replace remote files that differ"),
                          ("-r", "copy matching folders with everything in them"),
                          _NO_RESUME)),
    ShellCommand("mirror", "mirror [OPTIONS] REMOTE_DIR [LOCAL_DIR]",
                 "make LOCAL_DIR like REMOTE_DIR, moving only files that differ",
                 1, 2, "R", ("remote_dir", "local_dir"),
                 long=("delete", "checksum", "dry-run", "no-resume"),
                 forms=(("mirror -R [OPTIONS] LOCAL_DIR [REMOTE_DIR]",
                         "make REMOTE_DIR like LOCAL_DIR (push to the server)"),),
                 options=(("-R", "reverse: push the local folder to the server"),
                          ("--delete", "remove what the source does not have, after the "
                                       "transfers"),
                          ("--checksum", "compare files by SHA-256 instead of size and "
                                         "modification time"),
                          ("--dry-run", "print the plan and change nothing"),
                          _NO_RESUME),
                 alt_complete=("-R", ("local_dir", "remote_dir"))),
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
    if isinstance(exc, JobError):
        return "incomplete"
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
    JSON object to ``console``'s file and nothing else goes to stdout. Transfers
    continue partial files unless ``resume`` is False, and retry a dropped connection
    ``retries`` times under :class:`pyftp.sync.RetryPolicy` (``backoff`` None: its
    default, about a minute in all over 3 retries) with ``sleep``.
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
                 cache_seconds: float = CACHE_SECONDS, retries: int = 3,
                 resume: bool = True, backoff: float | None = None,
                 sleep: Callable[[float], object] = time.sleep) -> None:
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
        if retries < 0:
            raise ValueError("retries must be 0 or more")
        self.retries = retries
        self.resume = resume
        self.backoff = backoff
        self.sleep = sleep
        self.client: Client | None = None
        self.cwd = "/"
        self._quit = False
        self._color_prompt = False
        self._prefix = ""
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
        self._prefix = prefix  # for the lines a job prints about each failed file
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
            elif name == "mirror":
                text += " (unfinished files are never published; run it again to resume)"
        fields = getattr(exc, "fields", None) or {}
        report = getattr(exc, "report", None)
        if isinstance(exc, sync.RetriesExhaustedError) and report is not None and (
                report.source or report.dest):  # a job's report, not a single file's
            # what the job finished before the connection stayed away is not lost
            fields = _report_counts(report)
            if report.sent or report.deleted:
                self._info(f"before giving up: {report.summary()}")
        print_error(self.err_console, text, prefix=prefix)
        if self.json_output:
            self._emit_json({"command": name, "ok": False, "error": _error_code(exc),
                             "message": text, **fields})
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
        if spec.flags or spec.long:
            try:
                pairs, words = getopt.gnu_getopt(words, spec.flags, list(spec.long))
            except getopt.GetoptError as exc:
                raise UsageError(f"{name}: {exc.msg}; usage: {spec.usage_text()}") from None
            opts = dict(pairs)
        if len(words) < spec.min_args or (spec.max_args is not None
                                          and len(words) > spec.max_args):
            raise UsageError(f"usage: {spec.usage_text()}")
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
            raise AlreadyExistsError(f"already exists: {self._abs(dst)} "
                                     f"({_hint_force('mv')})") from exc
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
    def _resume(self, a: _Args) -> bool:
        return self.resume and "--no-resume" not in a.opts

    def _on_event(self, kind: str, path: str, detail: str) -> None:
        """sync's events while a transfer runs: only retries are worth a live line."""
        if kind == "retry":
            self._info(f"{path + ': ' if path else ''}{detail}")

    def do_get(self, arg: str) -> dict:
        """get [-r] [--no-resume] REMOTE [LOCAL]: download a file, or a folder with -r."""
        a = self._args("get", arg)
        c = self._require_client()
        if "-r" in a.opts:
            return self._get_tree(c, a)
        remote = a.args[0]
        local = self._local(a.args[1]) if len(a.args) > 1 else self.local_cwd
        return self._get_one(c, remote, local, None, self._resume(a))

    def _get_one(self, c: Client, remote: str, local: str, size: int | None,
                 resume: bool) -> dict:
        label = f"get {safe_name(posixpath.basename(remote.rstrip('/')) or remote)}"
        try:
            with self.reporter.transfer(label, size) as on_progress:
                r = sync.get_file(c, remote, local, resume=resume, retries=self.retries,
                                  backoff=self.backoff, on_progress=on_progress,
                                  on_event=self._on_event, sleep=self.sleep)
        except IsDirectoryError as exc:
            raise IsDirectoryError(f"{exc.message} (use get -r to copy a folder)") from exc
        self._note(transfer_summary("get", self._abs(remote), self._shown_local(r.local),
                                    r.total, r.sent, r.offset, r.seconds, r.sha256))
        return _result_json(r, self._abs(remote))

    def do_put(self, arg: str) -> dict:
        """put [-f] [-r] [--no-resume] LOCAL [REMOTE]: upload a file, or a folder with -r."""
        a = self._args("put", arg)
        c = self._require_client()
        if "-r" in a.opts:
            return self._put_tree(c, a)
        local = self._local(a.args[0])
        name = os.path.basename(local.rstrip(os.sep))
        if len(a.args) > 1:
            remote = a.args[1]
            if remote.endswith("/") or self._remote_is_dir(c, remote):
                remote = posixpath.join(remote, name)
        else:
            remote = name
        return self._put_one(c, local, remote, "-f" in a.opts, self._resume(a))

    def _put_one(self, c: Client, local: str, remote: str, force: bool, resume: bool) -> dict:
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
                                    r.total, r.sent, r.offset, r.seconds, r.sha256))
        return _result_json(r, self._abs(r.remote))

    def _get_tree(self, c: Client, a: _Args) -> dict:
        remote = a.args[0]
        if len(a.args) > 1:
            local = self._local(a.args[1])
        else:
            local = self._local(_last_part(posixpath.basename(self._abs(remote)), "get -r",
                                           remote))
        report, seconds = self._run_job("get -r", "get", self._resume(a), lambda kw: sync.get_tree(
            c, remote, local, **kw))
        return self._finish_job("get -r", report, seconds, src=self._remote_under(remote),
                                dst=self._local_under(local))

    def _put_tree(self, c: Client, a: _Args) -> dict:
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

    def do_mget(self, arg: str) -> dict:
        """mget [-r] [--no-resume] PATTERN...: download every remote file matching."""
        a = self._args("mget", arg)
        c = self._require_client()
        report, seconds = self._run_job("mget", "get", self._resume(a), lambda kw: sync.mget(
            c, a.args, self.local_cwd, recursive="-r" in a.opts, **kw))
        return self._finish_job("mget", report, seconds, src=self._abs,
                                dst=self._local_under(self.local_cwd),
                                patterns={p: p for p in a.args})

    def do_mput(self, arg: str) -> dict:
        """mput [-r] [-f] [--no-resume] PATTERN...: upload every local file matching."""
        a = self._args("mput", arg)
        c = self._require_client()
        # patterns are matched against the shell's local folder, never the process's
        patterns = {os.path.join(glob.escape(self.local_cwd), os.path.expanduser(p)): p
                    for p in a.args}
        try:
            report, seconds = self._run_job("mput", "put", self._resume(a), lambda kw: sync.mput(
                c, list(patterns), ".", recursive="-r" in a.opts, overwrite="-f" in a.opts,
                **kw))
        finally:
            self._changed(".")
        return self._finish_job("mput", report, seconds, src=self._shown_local,
                                dst=self._remote_under("."), patterns=patterns,
                                force_verb="mput")

    def do_mirror(self, arg: str) -> dict:
        """mirror [-R] [--delete] [--checksum] [--dry-run] [--no-resume] SRC [DST]."""
        a = self._args("mirror", arg)
        c = self._require_client()
        reverse = "-R" in a.opts
        flags = dict(reverse=reverse, delete="--delete" in a.opts,
                     checksum="--checksum" in a.opts, dry_run="--dry-run" in a.opts)
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

    # ---- the parts every folder, glob and mirror job shares
    def _run_job(self, label: str, verb: str, resume: bool,
                 job: Callable[[dict], sync.SyncReport]) -> tuple[sync.SyncReport, float]:
        """Run a sync job with the shell's retry settings and a per-file + overall bar."""
        started = self.clock()
        with job_display(self.reporter, label, verb) as display:
            report = job(dict(resume=resume, retries=self.retries, backoff=self.backoff,
                              sleep=self.sleep, on_progress=display.on_progress,
                              on_job=display.on_job, on_event=self._on_event))
        return report, self.clock() - started

    def _finish_job(self, name: str, report: sync.SyncReport, seconds: float, *,
                    src: Callable[[str], str], dst: Callable[[str], str],
                    patterns: dict[str, str] | None = None, force_verb: str = "") -> dict:
        """Print what a job did (files, deletions, skips, errors, the summary line) and
        return its JSON fields, or raise :class:`JobError` when a step failed.

        ``src`` and ``dst`` turn a path of the report into what the user should read
        (the report's paths are relative to the job's folders); ``patterns`` maps the
        patterns sync saw back to the ones the user typed.
        """
        pull = report.direction == "get"
        fields = _report_counts(report)
        if name.endswith(" -r"):
            fields["recursive"] = True  # "command" is the plain word: get or put
        fields["seconds"] = round(seconds, 3)
        fields["files"] = [_result_json(r, self._abs(r.remote)) for r in report.results]
        if name in ("mget", "mput"):  # the shapes these commands always had
            fields["count"], fields["size"] = len(report.results), report.bytes_total
        if report.dry_run:
            fields["plan"] = [{"action": x.kind, "path": x.path, "size": x.size,
                               "reason": x.reason} for x in report.plan]
            for x in _plan_order(report.plan):
                if x.kind != "skip":  # counted in the summary; one line each is noise
                    self._print(Text(safe_name(x.describe())))
        for r in report.results:
            remote, local = self._abs(r.remote), self._shown_local(r.local)
            source, target = (remote, local) if pull else (local, remote)
            self._note(transfer_summary("get" if pull else "put", source, target, r.total,
                                        r.sent, r.offset, r.seconds, r.sha256))
        for d in report.deleted:
            self._note(Text(f"deleted {safe_name(dst(d))}"))
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
                            prefix=f"{self._prefix}{name}: ")
            raise JobError(f"{name}: {summary}; fix what the lines above say and run it "
                           "again (what is done is not sent again)", fields)
        if report.dry_run:
            nothing = not any(x.kind in ("send", "delete", "rmdir", "mkdir")
                              for x in report.plan)
            self._print(Text(f"{name}: " + ("nothing to do, " if nothing else "") + summary))
        elif name == "mirror":
            fields["up_to_date"] = not (report.sent or report.deleted or report.dirs_created)
            self._note(Text(f"{name}: " + ("up to date, " if fields["up_to_date"] else "")
                            + summary, style="bold"))
        else:
            self._note(Text(f"{name}: {summary}", style="bold"))
        return fields

    def _shown_local(self, path: str) -> str:
        """A local path as the user would type it: relative to the local folder if inside."""
        shown = os.path.relpath(path, self.local_cwd)
        return path if shown.startswith("..") else shown

    def _local_under(self, root: str) -> Callable[[str], str]:
        return lambda rel: self._shown_local(os.path.join(root, *rel.split("/")) if rel
                                             else root)

    def _remote_under(self, root: str) -> Callable[[str], str]:
        return lambda rel: self._abs(posixpath.join(root, rel) if rel else root)

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
            for usage, help_ in ((spec.usage, spec.help), *spec.forms):
                text.append(usage, style="bold")
                text.append(f"\n  {help_}\n")
            if spec.options:
                width = max(len(flag) for flag, _h in spec.options)
                text.append("options:")
                for flag, help_ in spec.options:
                    text.append(f"\n  {flag.ljust(width)}  {help_}")
            text.rstrip()
            self._print(text)
            return {"usage": spec.usage, "help": spec.help,
                    "forms": [{"usage": u, "help": h} for u, h in spec.forms],
                    "options": [{"option": o, "help": h} for o, h in spec.options]}
        table = Table(box=None, show_header=False, pad_edge=False)
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        for spec in SHELL_COMMANDS.values():
            table.add_row(spec.usage, spec.help)
            for usage, help_ in spec.forms:
                table.add_row(usage, help_)
        self._print(table)
        self._print(Text("Quote names with spaces (\"my file.txt\" or my\\ file.txt). Tab "
                         "completes commands, options and paths; Ctrl-C cancels a transfer; "
                         "Ctrl-D leaves. Transfers continue partial files (--no-resume "
                         "starts over) and retry a dropped connection "
                         f"{self.retries} time{'s' * (self.retries != 1)} (pyftp --retries "
                         "N). help COMMAND explains its options.", style="dim"))
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
        typed = line[start:begidx]
        has_flags = bool(spec.flags or spec.long)
        if current.startswith("-") and has_flags:
            flags = [f"-{ch}" for ch in spec.flags if ch != ":"] + [f"--{w}" for w in spec.long]
            return sorted(f[len(typed):] + " " for f in flags
                          if f.startswith(current) and f.startswith(typed))
        position = 0
        needs_value = False
        given: set[str] = set()
        for w in words[1:]:
            if needs_value:
                needs_value = False
            elif w.startswith("-") and len(w) > 1 and has_flags:
                needs_value = not w.startswith("--") and w[-1] + ":" in spec.flags
                given.update([w] if w.startswith("--") else (f"-{ch}" for ch in w[1:]))
            else:
                position += 1
        if needs_value or not spec.complete:
            return []
        kinds = spec.complete
        if spec.alt_complete is not None and spec.alt_complete[0] in given:
            kinds = spec.alt_complete[1]
        if position < len(kinds):
            kind = kinds[position]
        elif spec.repeat:
            kind = kinds[-1]
        else:
            return []
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


def _hint_force(verb: str) -> str:
    """What to do about a target that exists (an ``exists`` problem or
    AlreadyExistsError), in the words of the command that met it."""
    return f"use {verb} -f to replace it"


def _last_part(name: str, command: str, typed: str) -> str:
    """The default target folder name (the source's own name), or a usage error."""
    if name in ("", ".", ".."):
        raise UsageError(f"{command} {typed}: name the target folder too, e.g. "
                         f"{command} {typed} backup")
    return name


def _result_json(r: Any, path: str) -> dict:
    return {"path": path, "local": r.local, "size": r.total, "sha256": r.sha256,
            "seconds": round(r.seconds, 3), "resumed_from": r.offset}


def _report_counts(report: sync.SyncReport) -> dict:
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


def _plan_order(plan: list) -> list:
    """A plan in reading order: folders made, files sent, extras removed, problems."""
    return sorted(plan, key=lambda a: _PLAN_ORDER.get(a.kind, 9))


def _is_dir(d: os.DirEntry) -> bool:
    try:
        return d.is_dir()
    except OSError:
        return False


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
