"""``pyftp``: the client console script; the one place that turns exceptions into exit
codes and one-line messages, so no traceback ever reaches a user.

Import rule: may import anything in pyftp; nothing imports cli. Heavy modules are
imported inside functions so ``pyftp --version`` stays fast.
"""
from __future__ import annotations

import argparse
import gc
import os
import sys

from ..hints import TYPE_CHECKING, LEAN

from .._version import __version__
from .args import (EXIT_CONNECT, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_PROTOCOL,
                   EXIT_USAGE, RawHelpFormatter, above_zero, parse_duration, parse_size,
                   whole_number)

if TYPE_CHECKING or not LEAN:  # names for annotations; see pyftp.hints
    from typing import Callable

if TYPE_CHECKING:
    from ..shell.base import AnyConsole
    from ..shell.runner import Runner

# ---------------------------------------------------------------------- client
CLIENT_EXIT_CODES = """\
exit codes:
  0    every command succeeded
  1    an operation failed: a remote or local file problem, a folder/glob/mirror job
       with failed files, or a connection that dropped and stayed away after
       --retries attempts (run the same command again: it resumes)
  2    usage error (bad option, unknown command, missing argument)
  3    could not connect or log in
  4    protocol error from the peer (not a pyftp server, or a broken one)
  130  interrupted (Ctrl-C)
"""

#: kept in step with the shell's table by a test (importing the shell here would slow
#: down pyftp --version)
CLIENT_COMMANDS = """\
shell commands (for -c, -b and the prompt; 'help COMMAND' there explains one):
  remote   ls [-1ahlrtS], cd [PATH|-], pwd, mkdir [-p], rm [-rf], rmdir, mv [-f],
           stat, hash, df [-h], upper
  local    lls [-l], lcd, lpwd, lmkdir [-p], lrm, !COMMAND
  transfer get [-r] [--checksum] [-p -a], put [-r] [-f] [-p -a], reget, reput,
           cat, get FILE -, mget [-r], mput [-r] [-f], mirror [-R] [--delete]
           [--checksum] [--dry-run]; wildcards (*, ?, [...]) in get, put, ls, rm,
           hash, stat, cat
  session  open [-u USER] [-p PORT] [USER@]HOST[:PORT][/PATH], close, help,
           quit (also exit, bye, Ctrl-D); ';' separates commands, '#' comments
"""

CLIENT_EPILOG = CLIENT_COMMANDS + "\n" + CLIENT_EXIT_CODES + """
environment:
  PYFTP_HOST, PYFTP_PORT, PYFTP_USER   defaults for HOST, PORT and --user
  PYFTP_PASSWORD                       the password for --user (else you are asked)

examples:
  pyftp 127.0.0.1                                  the interactive shell
  pyftp 127.0.0.1:6971 -c "put dist/app.whl; ls -l"
  pyftp --json ci.example:6971 -b deploy.pyftp      one JSON object per command
  printf 'cd /in\\n-mkdir logs\\nput a.log logs/\\n' | pyftp HOST -b -
  pyftp HOST -c "put -r build /ci/build-42"        a folder tree (get -r pulls one)
  pyftp HOST -c "mirror -R --delete site /www"     send only what changed, drop extras
  pyftp HOST -c "mirror -R --dry-run site /www"    print the plan, change nothing
"""


def client_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pyftp", usage="pyftp [OPTIONS] [[USER@]HOST[:PORT][/PATH]] [-c COMMANDS | -b FILE]",
        description="The pyftp client. With HOST alone: the interactive shell (type help "
                    "there). With -c or -b: run commands and exit, for scripts and CI. "
                    "Results go to stdout; progress and messages to stderr.",
        epilog=CLIENT_EPILOG, formatter_class=RawHelpFormatter)
    p.add_argument("target", nargs="?", metavar="[USER@]HOST[:PORT][/PATH]",
                   help="server to connect to (default port 6971), and the folder to start "
                        "in; also pyftp://USER@HOST:PORT/PATH, and [::1]:PORT for IPv6")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("-c", dest="commands", metavar="COMMANDS",
                      help="run these ';'-separated shell commands, then exit")
    mode.add_argument("-b", dest="batch", metavar="FILE",
                      help="run the commands in FILE, one per line ('-' reads stdin; '#' "
                           "starts a comment, also after a command). Each command is echoed "
                           "as 'pyftp> cmd' on stderr (not with -q). The first failure stops "
                           "the run, unless its line starts with '-'")
    p.add_argument("-u", "--user", metavar="NAME",
                   help="log in as NAME; the password comes from PYFTP_PASSWORD or a prompt, "
                        "never from the command line")
    out = p.add_argument_group("output")
    out.add_argument("--json", action="store_true",
                     help="print one JSON object per command on stdout (NDJSON)")
    out.add_argument("-q", "--quiet", action="store_true",
                     help="no progress and no confirmations; errors and requested output "
                          "(ls, hash, ...) only")
    out.add_argument("--no-progress", action="store_true", help="no progress display")
    net = p.add_argument_group("connection")
    net.add_argument("-p", "--port", type=whole_number(1, 65535), metavar="PORT",
                     help="the server's port (default 6971, or the one in the address)")
    net.add_argument("--timeout", type=above_zero(parse_duration), default=30.0,
                     metavar="S", help="give up on a silent server after S seconds (default 30)")
    net.add_argument("--hello-timeout", type=above_zero(parse_duration), default=5.0,
                     metavar="S", help="give up when the peer has not answered the greeting "
                                       "within S seconds (default 5, at most --timeout): "
                                       "it is not a pyftp server, or a TLS one (exit 4)")
    net.add_argument("--limit-rate", type=above_zero(parse_size), metavar="RATE",
                     help="at most RATE bytes per second, e.g. 500K or 10M (as in curl)")
    net.add_argument("--tls", action="store_true", help="connect with TLS")
    net.add_argument("--cafile", metavar="FILE",
                     help="trust the certificates in FILE (implies --tls)")
    net.add_argument("--insecure", action="store_true",
                     help="TLS without checking the certificate (implies --tls)")
    xfer = p.add_argument_group("transfers")
    xfer.add_argument("--retries", type=whole_number(0), default=3, metavar="N",
                      help="when the connection drops during get, put, get -r, put -r, "
                           "mget, mput or mirror, reconnect and continue up to N times, "
                           "waiting 5 s, 25 s, then 30 s each time: about a minute in all "
                           "by default, as lftp is patient (default 3; 0: never)")
    xfer.add_argument("--no-resume", action="store_true",
                      help="do not continue partial files left by an interrupted transfer: "
                           "start every file from zero (also per command: get --no-resume)")
    xfer.add_argument("--digest", type=_digest_name, default=None, metavar="{sha256,blake3}",
                      help="verify transfers with this digest (default: BLAKE3 when both "
                           "ends have it, else SHA-256)")
    p.add_argument("--version", action="version", version=version_line())
    return p


def split_target(text: str, default_port: int) -> tuple[str, int]:
    """'host', 'host:port', '[::1]:port' -> (host, port). Raises ValueError."""
    from ..shell.parsing import parse_target
    return parse_target(text, default_port)


def exit_code_for(exc: BaseException | None) -> int:
    """The one mapping from what went wrong to the documented exit code."""
    from ..errors import (AuthFailedError, AuthRequiredError, CancelledError, ConnectError,
                         ProtocolError, UnsupportedVersionError)
    from ..shell.commands import UsageError
    if exc is None:
        return EXIT_OK
    if isinstance(exc, (KeyboardInterrupt, CancelledError)):
        return EXIT_INTERRUPTED
    if isinstance(exc, UsageError):
        return EXIT_USAGE
    if isinstance(exc, (ProtocolError, UnsupportedVersionError)):
        return EXIT_PROTOCOL
    if isinstance(exc, (ConnectError, AuthFailedError, AuthRequiredError)):
        return EXIT_CONNECT
    return EXIT_FAILED


class _Usage(Exception):
    """A usage problem found before any command runs (exit 2)."""


def main(argv: list[str] | None = None) -> int:
    """``pyftp``: the shell, or one-shot commands with -c / -b. Returns the exit code."""
    # Start-up builds tens of thousands of objects that live until the process ends:
    # cyclic collections while the modules load only walk them again, and cost a
    # one-shot run several ms. Collection resumes once the shell is ready.
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        return _main(argv, gc_was_on)
    finally:
        if gc_was_on:
            gc.enable()


def _main(argv: list[str] | None, gc_was_on: bool) -> int:
    parser = client_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error argparse printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        return _client(args, gc_was_on)
    except _Usage as exc:
        print(f"pyftp: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("\npyftp: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # the reader of stdout went away (pyftp -c ls | head -1): nothing left to say
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return EXIT_FAILED


def _read_commands(args: argparse.Namespace) -> list[tuple[int, str]]:
    """(line number, command) pairs from -c or -b; comments and blank lines dropped."""
    if args.commands is not None:
        from ..shell.parsing import split_commands
        return list(enumerate(split_commands(args.commands), 1))
    try:
        if args.batch == "-":
            text = sys.stdin.read()
        else:
            with open(args.batch, encoding="utf-8-sig", errors="surrogateescape") as f:
                text = f.read()
    except OSError as exc:
        raise _Usage(f"cannot read the batch file {args.batch}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise _Usage(f"the batch file is not text: {exc}") from None
    from ..shell.parsing import strip_comment
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line.startswith("!"):  # a local shell command keeps its own '#'
            line = strip_comment(line)
        if line:
            out.append((number, line))
    return out


def _client(args: argparse.Namespace, gc_on: bool = True) -> int:
    one_shot = args.commands is not None or args.batch is not None
    target = args.target or os.environ.get("PYFTP_HOST") or None
    if args.port and not target:
        raise _Usage(f"--port {args.port}: name the server too, e.g. pyftp -p {args.port} HOST")
    interactive_stdin = sys.stdin is not None and sys.stdin.isatty() and args.batch != "-"
    commands = _read_commands(args) if one_shot else []
    if one_shot and not commands:
        raise _Usage("no commands to run (the -c text or the batch file is empty)")
    shell = _make_shell(args, one_shot, interactive_stdin)
    if gc_on:
        gc.enable()  # the modules are loaded (see main)
    if target:
        import shlex
        port = f"-p {args.port} " if args.port else ""
        opened = shell.execute(f"open {port}-- {shlex.quote(target)}", prefix="pyftp: ")
        if not opened.ok:
            return exit_code_for(opened.error)
    if args.limit_rate:
        from ..ui import human_size
        shell.info(f"transfers limited to {human_size(args.limit_rate)}/s")
    if not one_shot:
        from ..shell.shell import Shell
        assert isinstance(shell, Shell)  # without -c or -b, _make_shell made the prompt
        return shell.run()
    try:
        return _run_commands(shell, args, commands)
    finally:
        shell.close()


def _run_commands(shell: Runner, args: argparse.Namespace,
                  commands: list[tuple[int, str]]) -> int:
    """-c and -b: each command in turn; the first failure stops the run (exit code).

    Runs of get, ls, hash or stat lines are fetched ahead, pipelined
    (:meth:`Runner.prefetch`); each line still reports in turn.
    """
    lines = [(line[1:].lstrip(), True) if line.startswith("-") else (line, False)
             for _number, line in commands]
    covered = 0  # lines still covered by the last look-ahead
    for index, (number, _typed) in enumerate(commands):
        line, ignore = lines[index]
        if covered <= 0:
            covered = shell.prefetch(lines[index:])
        covered -= 1
        where = f"line {number}: " if args.batch is not None else ""
        if args.batch is not None and not args.quiet:  # as sftp -b does
            print(f"pyftp> {line}", file=sys.stderr, flush=True)
        outcome = shell.execute(line, prefix=f"pyftp: {where}")
        if shell.finished:  # quit ends a batch early, as in sftp
            break
        if outcome.ok or (ignore and not isinstance(outcome.error, KeyboardInterrupt)):
            continue
        shell.discard_ahead()
        if covered > 0:
            print(f"pyftp: not run: {covered} later line{'s' * (covered != 1)} of the "
                  "pipelined run (the first failure stops the run)", file=sys.stderr)
        return exit_code_for(outcome.error)
    return EXIT_OK


def _make_shell(args: argparse.Namespace, one_shot: bool, interactive_stdin: bool) -> Runner:
    """The shell the options describe: consoles, progress mode, login, connector. A
    one-shot run gets the bare :class:`Runner`: the prompt's modules (cmd, readline,
    completion) are not even loaded."""
    port_text = os.environ.get("PYFTP_PORT", "")
    if port_text and not (port_text.isdigit() and 0 < int(port_text) < 65536):
        raise _Usage(f"PYFTP_PORT={port_text!r} is not a port number (1-65535)")
    from ..protocol import DEFAULT_PORT
    default_port = int(port_text) if port_text else DEFAULT_PORT
    user = args.user or os.environ.get("PYFTP_USER") or None
    password = os.environ.get("PYFTP_PASSWORD")
    if user and password is None:
        if not interactive_stdin:
            raise _Usage(f"--user {user} needs a password: set PYFTP_PASSWORD (there is no "
                         "terminal to ask on)")
        password = _ask_password(f"password for {user}: ")

    from ..client import Client
    make: Callable[..., Runner]
    if one_shot:
        from ..shell.runner import Runner
        make = Runner
    else:
        from ..shell.shell import Shell
        make = Shell
    console, err_console = _consoles()
    if args.quiet or args.no_progress:
        progress = "off"
    elif not one_shot and sys.stderr.isatty():
        progress = "rich"
    else:
        progress = "tqdm" if sys.stderr.isatty() else "lines"
    tls = args.tls or bool(args.cafile) or args.insecure

    # a rerun of a cut upload resumes: the server's resume tokens outlive this process
    from ..client.upload import default_token_file
    token_file = default_token_file()

    def connector(host: str, port: int, user: str | None, password: str | None) -> Client:
        return Client(host, port, user=user, password=password, timeout=args.timeout,
                      hello_timeout=args.hello_timeout,
                      limit_rate=args.limit_rate, tls=tls, cafile=args.cafile,
                      insecure=args.insecure, resume_tokens=token_file, digest=args.digest)

    return make(console=console, err_console=err_console, progress=progress,
                progress_stream=sys.stderr, json_output=args.json, quiet=args.quiet,
                interactive=not one_shot, connector=connector, user=user,
                password=password, default_port=default_port,
                getpass=_ask_password if interactive_stdin else None,
                ask=input if interactive_stdin else None, rate_limit=args.limit_rate,
                retries=args.retries, resume=not args.no_resume)


def _consoles() -> tuple[AnyConsole, AnyConsole]:
    """Consoles for results (stdout) and messages (stderr): rich at a terminal; plain
    lines to a pipe or a file, where rich would only cost time (it is not even
    imported). A pipe gets long lines unwrapped, so scripts can cut and grep them."""
    from ..ui import PlainConsole
    out_tty, err_tty = sys.stdout.isatty(), sys.stderr.isatty()
    if out_tty or err_tty:
        from rich.console import Console
    console = Console(file=sys.stdout, highlight=False) if out_tty else \
        PlainConsole(sys.stdout)
    err_console = Console(file=sys.stderr, highlight=False) if err_tty else \
        PlainConsole(sys.stderr, width=80)
    return console, err_console


def _digest_name(text: str) -> str:
    """``--digest``: a digest this build can compute, else a usage error saying why."""
    import argparse
    from .. import digests
    if text not in digests.KNOWN:
        raise argparse.ArgumentTypeError(f"invalid choice: {text!r} (choose from sha256, blake3)")
    if text not in digests.ALGORITHMS:
        raise argparse.ArgumentTypeError(f"{text} is not available in this build "
                                         "(pip install blake3)")
    return text


def version_line() -> str:
    """``pyftp --version``: the version and the digests this build can verify with."""
    from .. import digests
    line = f"pyftp {__version__} (digests: {', '.join(digests.ALGORITHMS)}"
    if "blake3" not in digests.ALGORITHMS:
        line += "; BLAKE3 unavailable: pip install blake3"
    return line + ")"


def _ask_password(prompt: str) -> str:
    import getpass
    return getpass.getpass(prompt)
