"""The command runner: one command table, run the same way at a prompt, in ``-c`` and in
``-b``. :class:`Runner` is what ``pyftp -c`` and ``pyftp -b`` use; the interactive
:class:`~pyftp.shell.shell.Shell` (a prompt with completion and history) is a Runner
too, so a command behaves the same in all three modes, and a one-shot run never loads
the prompt's modules (cmd, readline, completion).

:meth:`Runner.execute` runs one command line and is the one place where a command's
exception becomes a red line (and, with ``--json``, a ``{"command":..., "ok": false,
...}`` object). It returns an :class:`Outcome`; the CLI picks exit codes from it.

Every transfer goes through :mod:`pyftp.sync`: ``get``/``put`` through ``get_file`` /
``put_file``, and ``get -r``, ``put -r``, ``mget``, ``mput`` and ``mirror`` through its
pipelined tree, glob and mirror jobs. So each one continues partial files (unless
``--no-resume``) and rides out a dropped connection (``retries``), and the runner adds
only parsing, the bars (:func:`pyftp.ui.job_display`) and the report: one line per
file, the job's summary, and one red line per failed file, after which the command
fails as a whole (:class:`JobError`, exit 1 in the one-shot modes).

Ctrl-C during a command cancels it. The client drops a connection interrupted
mid-transfer (it cannot be reused out of step), so an interactive session reconnects at
once; the partial file stays hidden and a rerun of the same get/put continues it.
Nothing here calls ``os.chdir``: ``lcd`` moves :attr:`Runner.local_cwd`.

The ``do_`` methods live in mixins by responsibility (:mod:`.remote`, :mod:`.local`,
:mod:`.transfers`, :mod:`.jobs`, :mod:`.stream`, :mod:`.help`, :mod:`.batch`); all of
them stand on :class:`~pyftp.shell.base.ShellBase`, the session's state and shared
helpers.

Import rule: client, sync, errors, protocol, ui and the shell's own modules, but never
:mod:`.shell` or :mod:`.completion` (the prompt's). Nothing imports it but the shell
and cli.
"""
from __future__ import annotations

import os
import sys
import time

from ..hints import TYPE_CHECKING, LEAN

from .. import sync
from ..client import Client
from ..errors import (AuthRequiredError, CancelledError, ConnectError, LocalError,
                     RemoteError, TransportError)
from ..protocol import DEFAULT_PORT
from ..records import dataclass, field
from ..ui import PlainConsole, error_text, make_reporter, print_error, safe_name
from .commands import ALIASES, SHELL_COMMANDS, Fields, JobError, UsageError
from .help import HelpMixin
from .cache import CACHE_SECONDS, ListingCache
from .batch import BatchMixin
from .jobs import JobsMixin, _report_counts
from .local import LocalMixin
from .parsing import parse_server, strip_comment
from .remote import RemoteMixin
from .stream import StreamMixin
from .transfers import TransferMixin

if TYPE_CHECKING or not LEAN:  # names for annotations; see pyftp.hints
    from typing import IO, Callable

if TYPE_CHECKING:
    from .base import AnyConsole

__all__ = ["Runner", "Outcome"]


@dataclass
class Outcome:
    """What running one command line did. ``error`` is None when it succeeded."""

    command: str
    ok: bool
    error: BaseException | None = None
    fields: Fields = field(default_factory=dict)


#: table names that are not method names
_METHODS = {"!": "shell"}


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


def _default_connector(host: str, port: int, user: str | None,
                       password: str | None) -> Client:
    return Client(host, port, user=user, password=password)


class Runner(BatchMixin, TransferMixin, JobsMixin, StreamMixin, LocalMixin, RemoteMixin,
             HelpMixin):
    """The engine of ``pyftp -c`` and ``pyftp -b``, and of the interactive shell.

    Everything it touches is passed in: ``console`` (results, stdout), ``err_console``
    (errors, progress, notes; defaults to ``console``),
    ``connector(host, port, user, password) -> Client`` for ``open``,
    ``getpass(prompt)`` for passwords, ``ask(prompt)`` for a user name when a server
    wants a login, ``clock``. ``progress`` is a
    :func:`pyftp.ui.make_reporter` mode. With ``json_output`` each command writes one
    JSON object to ``console``'s file and nothing else goes to stdout. Transfers
    continue partial files unless ``resume`` is False, and retry a dropped connection
    ``retries`` times under :class:`pyftp.sync.RetryPolicy` (``backoff`` None: its
    default, about a minute in all over 3 retries) with ``sleep``. ``cat`` and
    ``get FILE -`` write to ``binary_out`` (default: ``console.file.buffer``).
    """

    def __init__(self, client: Client | None = None, *, console: AnyConsole | None = None,
                 err_console: AnyConsole | None = None, progress: str = "off",
                 progress_stream: IO[str] | None = None, json_output: bool = False,
                 quiet: bool = False, interactive: bool = False,
                 connector: Callable[..., Client] = _default_connector,
                 user: str | None = None, password: str | None = None,
                 default_port: int = DEFAULT_PORT,
                 getpass: Callable[[str], str] | None = None,
                 ask: Callable[[str], str] | None = None,
                 rate_limit: float | None = None,
                 local_cwd: str | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 cache_seconds: float = CACHE_SECONDS, retries: int = 3,
                 resume: bool = True, backoff: float | None = None,
                 sleep: Callable[[float], object] = time.sleep,
                 binary_out: IO[bytes] | None = None) -> None:
        if err_console is None and console is not None:
            err_console = console
        if console is None or err_console is None:
            from rich.console import Console
            console = console or Console(highlight=False)
            err_console = err_console or Console(stderr=True, highlight=False)
        self.console = console
        self.err_console = err_console
        #: where cat and get FILE - write the bytes (stdout's binary layer by default)
        self.binary_out = binary_out or getattr(console.file, "buffer", None)
        # rich bars draw on a rich console only (a plain one writes a pipe or a log)
        bar_console = None if isinstance(err_console, PlainConsole) else err_console
        self.reporter = make_reporter(progress, console=bar_console,
                                      stream=progress_stream or sys.stderr, clock=clock,
                                      max_rate=rate_limit)
        self.json_output = json_output
        self.quiet = quiet
        #: the --limit-rate transfers run under (no speed shown is above it)
        self.rate_limit = rate_limit
        self.interactive = interactive
        self.connector = connector
        self.user = user
        self.password = password
        self.default_port = default_port
        self.getpass = getpass
        self.ask = ask
        self.clock = clock
        self.local_cwd = os.path.abspath(local_cwd or os.getcwd())
        self.cache = ListingCache(cache_seconds, clock)
        if retries < 0:
            raise ValueError("retries must be 0 or more")
        self.retries = retries
        self.resume = resume
        self.backoff = backoff
        self.sleep = sleep
        self.client: Client | None = None
        self.ahead = {}
        self.verbose = False
        self.cwd = "/"
        #: the remote folder before the last cd (cd - goes back to it)
        self.previous_cwd: str | None = None
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
        word: str | None
        arg: str | None
        if line.startswith("!"):  # the rest of the line belongs to the local shell
            word, arg = "!", line[1:]
        else:
            line = strip_comment(line)
            if not line:
                return Outcome("", True)
            word, arg, _ = self.parseline(line)
        name = ALIASES.get(word or "", word or "")
        self._prefix = prefix  # for the lines a job prints about each failed file
        try:
            spec = SHELL_COMMANDS.get(name)
            if spec is None:
                raise UsageError(self._unknown(word or line.split()[0]))
            fields = getattr(self, "do_" + _METHODS.get(name, name))(arg or "") or {}
        except (Exception, KeyboardInterrupt) as exc:
            self._failed(name or (word or "?"), exc, prefix)
            self._update_prompt()
            return Outcome(name, False, exc)
        self._update_prompt()
        if self.json_output:
            self._emit_json({"command": name, "ok": True, **fields})
        return Outcome(name, True, None, fields)

    @property
    def finished(self) -> bool:
        """True once quit (or exit, or Ctrl-D) ran: the session is over."""
        return self._quit

    def info(self, text: str) -> None:
        """Show a diagnostic line on stderr (dim), unless --quiet: for the CLI's notes."""
        self._info(text)

    def close(self) -> None:
        """Close the connection, if any (the end of a -c or -b run)."""
        self._close_client()

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
        if word.startswith("l"):  # a local command mistyped: never suggest a remote one
            names = [n for n in names if n.startswith("l")]
        import difflib  # only for a mistyped command
        close = difflib.get_close_matches(word, names, n=1)
        hint = f"; did you mean {close[0]}?" if close else "; type help for the list"
        return f"unknown command: {safe_name(word)}{hint}"

    # ------------------------------------------------------------------ state
    def _attach(self, client: Client) -> None:
        self.cache.clear()
        self.previous_cwd = None  # a folder of another session means nothing here
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

    def do_open(self, arg: str) -> Fields:
        """open [-u USER] [-p PORT] [USER@]HOST[:PORT][/PATH]: connect to a server."""
        a = self._args("open", arg)
        try:
            name = parse_server(a.args[0])
        except ValueError as exc:
            raise UsageError(f"open: {exc}") from None
        port_text = a.opts.get("-p")
        if port_text is not None and not (port_text.isdigit() and 0 < int(port_text) < 65536):
            raise UsageError(f"open: bad port {port_text!r}: give a number from 1 to 65535")
        port = int(port_text) if port_text else name.port or self.default_port
        host = name.host
        user = a.opts.get("-u", name.user or self.user)
        password = self.password if user == self.user else None
        if user is not None and password is None:
            password = self._ask_password(user, host)
        self._close_client()
        try:
            client = self.connector(host, port, user, password)
        except AuthRequiredError as exc:
            if user is not None:
                raise
            if self.getpass is None or self.ask is None:
                if not self.interactive:
                    raise  # the server's own hint names pyftp's --user
                raise AuthRequiredError(f"{host} wants a login: open -u USER "
                                        f"{a.args[0]}") from exc
            # the server wants a login: ask for it, as sftp and ftp do
            user = self.ask(f"user for {host}: ").strip()
            if not user:
                raise
            password = self._ask_password(user, host)
            client = self.connector(host, port, user, password)
        self.user = user
        self.password = password
        self._attach(client)
        if name.path:  # the start folder; cd - goes back to where the server put us
            start, self.cwd = self.cwd, client.cd(name.path)
            self.previous_cwd = start if start != self.cwd else None
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

    def do_close(self, arg: str) -> Fields:
        """close: disconnect from the server."""
        self._args("close", arg)
        if self.client is None:
            self._info("not connected")
            return {}
        address = self.client.address
        self._close_client()
        self._info(f"closed the connection to {address}")
        return {}

    def do_quit(self, arg: str) -> Fields:
        """quit: close the connection and leave."""
        self._args("quit", arg)
        self._close_client()
        self._quit = True
        return {}
