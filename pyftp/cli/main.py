"""Console entry points: ``pyftp`` (client) and ``pyftp-server``. ``main(argv) -> int``.

This is the one place that turns exceptions into exit codes and one-line messages:
no traceback ever reaches a user.

Import rule: may import anything in pyftp; nothing imports cli. Heavy modules are
imported inside functions so ``pyftp --version`` stays fast.
"""
from __future__ import annotations

import argparse
import os
import sys

from .._version import __version__

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CONNECT, EXIT_PROTOCOL, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130


# ---------------------------------------------------------------------- sizes
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text: str) -> int:
    """'10M' -> 10485760. Accepts K, M, G, T (binary), optional trailing B or iB."""
    t = text.strip().upper()
    for suffix in ("IB", "B"):
        if t.endswith(suffix) and len(t) > len(suffix):
            t = t[: -len(suffix)]
            break
    unit = t[-1:] if t[-1:] in _UNITS and t[-1:] != "" else ""
    number = t[: -1] if unit else t
    try:
        value = float(number)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (try 512K, 10M or 2G)") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"a size cannot be negative: {text!r}")
    return int(value * _UNITS[unit])


def whole_number(low: int, high: int | None = None, hint: str = ""):
    """An argparse type for an integer in ``low..high`` (``high`` None: no upper bound)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < low or (high is not None and value > high):
            span = f"outside {low}..{high}" if high is not None else f"below {low}"
            raise argparse.ArgumentTypeError(f"{value} is {span}{hint}")
        return value
    return parse


#: a port for a server to listen on; 0 picks a free one
parse_port = whole_number(0, 65535, " (0 picks a free one)")
#: a limit counted in whole things (connections, attempts)
parse_count = whole_number(1, hint=": give at least 1")


def above_zero(parse):
    """Wrap a size or duration parser so that 0 is refused (a zero timeout or rate would
    stop everything at once)."""
    def check(text: str):
        value = parse(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be more than zero: {text!r}")
        return value
    check.__name__ = parse.__name__
    return check


def parse_duration(text: str) -> float:
    """'30' or '30s' -> 30.0; also m, h, d."""
    t = text.strip().lower()
    mult = {"s": 1, "m": 60, "h": 3600, "d": 86400}.get(t[-1:], None)
    number = t[:-1] if mult else t
    try:
        value = float(number) * (mult or 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (try 30s, 5m or 24h)") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"a duration cannot be negative: {text!r}")
    return value


# ---------------------------------------------------------------------- server
#: ServerConfig defaults, repeated here so --help shows them (a test keeps them equal)
SERVER_DEFAULTS = {"max_clients": 256, "max_per_ip": 32, "idle_timeout": 300.0,
                   "login_timeout": 30.0, "frame_timeout": 30.0, "max_auth_failures": 3, "shutdown_grace": 5.0,
                   "partial_ttl": 24 * 3600.0, "min_free": 0}


def server_parser() -> argparse.ArgumentParser:
    from ..protocol import DEFAULT_PORT
    d = SERVER_DEFAULTS
    p = argparse.ArgumentParser(
        prog="pyftp-server",
        description="Serve one folder over the pyftp protocol. Clients can never leave it. "
                    "Manage logins with: pyftp-server user {add,del,list} ... --users FILE",
        epilog="Ctrl-C or SIGTERM stops the server cleanly (transfers in flight get a "
               "grace period; unfinished uploads are never published).")
    p.add_argument("--root", required=True, metavar="DIR", help="the folder to serve")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1; 0.0.0.0 or :: for all)")
    p.add_argument("--port", type=parse_port, default=DEFAULT_PORT,
                   help=f"port (default {DEFAULT_PORT}; 0 picks a free one)")
    p.add_argument("--read-only", action="store_true", help="refuse every change")
    sec = p.add_argument_group("security")
    sec.add_argument("--users", metavar="FILE",
                     help="require a login; FILE holds users and password hashes, made "
                          "with 'pyftp-server user add NAME --users FILE' (default: no login)")
    sec.add_argument("--tls-cert", metavar="FILE",
                     help="serve TLS 1.2+ with this PEM certificate (chain)")
    sec.add_argument("--tls-key", metavar="FILE",
                     help="the PEM private key of --tls-cert (if not inside that file)")
    sec.add_argument("--max-auth-failures", type=parse_count, default=d["max_auth_failures"],
                     metavar="N", help="close a connection after N failed logins "
                                       f"(default {d['max_auth_failures']})")
    lim = p.add_argument_group("limits")
    lim.add_argument("--max-clients", type=parse_count, default=d["max_clients"], metavar="N",
                     help=f"connections at once (default {d['max_clients']}); more get 'busy'")
    lim.add_argument("--max-per-ip", type=parse_count, default=d["max_per_ip"], metavar="N",
                     help=f"connections from one address (default {d['max_per_ip']})")
    lim.add_argument("--idle-timeout", type=above_zero(parse_duration), default=d["idle_timeout"],
                     metavar="T", help="close a connection silent this long "
                                       f"(default {d['idle_timeout']:g}s)")
    lim.add_argument("--login-timeout", type=above_zero(parse_duration), default=d["login_timeout"],
                     metavar="T", help="close a connection that has not said hello (and "
                                       f"logged in) within T (default {d['login_timeout']:g}s)")
    lim.add_argument("--frame-timeout", type=above_zero(parse_duration), default=d["frame_timeout"],
                     metavar="T", help="a started frame header must arrive whole within T "
                                       f"(default {d['frame_timeout']:g}s)")
    lim.add_argument("--max-file-size", type=parse_size, default=None, metavar="SIZE",
                     help="largest upload accepted, e.g. 2G (default: no limit)")
    lim.add_argument("--min-free", type=parse_size, default=d["min_free"], metavar="SIZE",
                     help="keep this much disk free: an upload that would eat into it gets "
                          "'no_space' before any byte is sent (default 0: it must fit)")
    lim.add_argument("--limit-rate", type=parse_size, default=None, metavar="RATE",
                     help="bytes per second per connection, e.g. 10M (default: no limit)")
    lim.add_argument("--partial-ttl", type=parse_duration, default=d["partial_ttl"],
                     metavar="T", help="remove unfinished uploads untouched this long "
                                       "(default 24h)")
    lim.add_argument("--shutdown-grace", type=parse_duration, default=d["shutdown_grace"],
                     metavar="T", help="on Ctrl-C/SIGTERM, let transfers in flight finish "
                                       f"for T before cutting them (default {d['shutdown_grace']:g}s)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                   help="what to log on stderr (default info: one line per request)")
    p.add_argument("--version", action="version", version=f"pyftp-server {__version__}")
    return p


def server_main(argv: list[str] | None = None) -> int:
    """``pyftp-server``: serve a folder, or manage a users file (``user ...``)."""
    import logging
    import signal
    import threading

    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["user"]:
        return users_main(argv[1:])
    parser = server_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level.upper()), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s")
    root = os.path.abspath(args.root)
    if not os.path.isdir(root):
        parser.error(f"--root {args.root}: no such folder (create it first: mkdir -p {args.root})")
    for name in ("max_clients", "max_per_ip", "max_auth_failures"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.limit_rate == 0:
        parser.error("--limit-rate must be more than 0 bytes per second")
    from ..errors import PyftpError
    from ..server import Server, ServerConfig
    authenticator, users_note = None, ""
    if args.users:
        try:
            from ..server.auth import Users
            users = Users(args.users)
            authenticator, count = file_authenticator(users), len(users.names)
        except PyftpError as exc:
            print(f"pyftp-server: {exc}", file=sys.stderr)
            return EXIT_USAGE
        users_note = f"; login required, {count} user{'s' if count != 1 else ''}"
        if not count:
            print(f"pyftp-server: warning: {args.users} has no users, so nobody can log in "
                  f"(add one: pyftp-server user add NAME --users {args.users})",
                  file=sys.stderr)
    ssl_context = None
    if args.tls_cert or args.tls_key:
        try:
            ssl_context = server_tls_context(args.tls_cert, args.tls_key)
        except ValueError as exc:
            print(f"pyftp-server: {exc}", file=sys.stderr)
            return EXIT_USAGE
    config = ServerConfig(
        root=root, host=args.host, port=args.port, read_only=args.read_only,
        max_clients=args.max_clients, max_per_ip=args.max_per_ip,
        idle_timeout=args.idle_timeout, login_timeout=args.login_timeout,
        frame_timeout=args.frame_timeout,
        max_file_size=args.max_file_size, limit_rate=args.limit_rate,
        partial_ttl=args.partial_ttl, authenticator=authenticator,
        max_auth_failures=args.max_auth_failures, ssl_context=ssl_context,
        shutdown_grace=args.shutdown_grace, min_free=args.min_free)
    server = Server(config)
    # handlers go in before the startup line: a supervisor may signal as soon as it
    # reads that line, and the default handlers would kill us with a traceback
    stop = threading.Event()

    signals: list[int] = []

    def on_signal(signum, frame):
        # only flags here: the main thread may be inside a print or holding a lock
        signals.append(signum)
        if stop.is_set():
            server.cut()  # a second Ctrl-C/SIGTERM: no more grace
        stop.set()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        server.start()
    except OSError as exc:
        print(f"pyftp-server: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}"
              f"{' (is another server running? try --port 0)' if exc.errno == 98 else ''}",
              file=sys.stderr)
        return EXIT_FAILED
    host, port = server.address
    shown = f"[{host}]" if ":" in host else host
    print(f"pyftp-server {__version__}: serving {root} on {shown}:{port} "
          f"({'read-only' if args.read_only else 'read-write'}"
          f"{'; TLS' if ssl_context else ''}{users_note}; Ctrl-C to stop)",
          file=sys.stderr, flush=True)
    for line in exposure_warnings(host, port, root, users=bool(args.users),
                                  tls=ssl_context is not None, read_only=args.read_only):
        print(f"pyftp-server: warning: {line}", file=sys.stderr, flush=True)
    if args.users:
        from ..server.auth import insecure_mode
        if insecure_mode(args.users):
            print(f"pyftp-server: warning: {args.users} can be read by other local users; "
                  f"protect the password hashes with: chmod 600 {args.users}",
                  file=sys.stderr, flush=True)

    try:
        while not stop.wait(3600):
            pass
    finally:
        print(f"pyftp-server: stopping (transfers in flight get {args.shutdown_grace:g}s; "
              "Ctrl-C again to cut them)",
              file=sys.stderr, flush=True)
        server.shutdown()
        cut = " (a second signal cut the transfers in flight)" if len(signals) > 1 else ""
        print(f"pyftp-server: stopped{cut}", file=sys.stderr, flush=True)
        # a signal from here on must not kill the exit: at interpreter shutdown Python
        # puts back the default handlers (death by signal) but leaves ignored ones be
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    return EXIT_OK


def file_authenticator(users):
    """A ``ServerConfig.authenticator`` checking logins against a :class:`pyftp.auth.Users`."""
    from ..server import Account

    def authenticate(name: str, password: str) -> "Account | None":
        record = users.authenticate(name, password)
        return Account(record.name, record.read_only) if record is not None else None
    return authenticate


def server_tls_context(cert: str | None, key: str | None = None):
    """A server-side ``ssl.SSLContext`` (TLS 1.2 or newer) from PEM files.

    Raises ValueError with a message fit for a user when the files are missing,
    unreadable or do not match.
    """
    import ssl
    if not cert:
        raise ValueError("--tls-key needs --tls-cert FILE too")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(cert, key)
    except ssl.SSLError as exc:  # before OSError: SSLError is one
        raise ValueError(f"TLS: cannot load the certificate {cert}"
                         f"{' and key ' + key if key else ''} ({exc.reason or exc}); both must "
                         "be PEM files and the key must belong to the certificate") from None
    except FileNotFoundError as exc:
        raise ValueError(f"TLS: no such file: {exc.filename or cert}") from None
    except OSError as exc:
        raise ValueError(f"TLS: cannot read {exc.filename or cert}: {exc.strerror or exc}") from None
    return ctx


def exposure_warnings(host: str, port: int, root: str, *, users: bool, tls: bool,
                      read_only: bool) -> list[str]:
    """Why a server bound beyond loopback may be exposed; empty on loopback."""
    import ipaddress
    try:
        addr = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return []  # server.address is always an IP; nothing to judge otherwise
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if addr.is_loopback:
        return []
    where = "all network interfaces" if addr.is_unspecified else host
    out = []
    if not users:
        can = "read" if read_only else "read, overwrite and delete"
        out.append(f"listening on {where} (port {port}) with no --users: anyone who can "
                   f"reach it can {can} every file in {root}. Require a login with --users "
                   "FILE (create it: pyftp-server user add NAME --users FILE), or bind "
                   "--host 127.0.0.1")
    if not tls:
        what = "passwords and files" if users else "files"
        out.append(f"no TLS: {what} cross the network in clear text; add --tls-cert FILE "
                   "--tls-key FILE")
    return out


# ---------------------------------------------------------------------- users
def users_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pyftp-server user",
        description="Manage the users file that 'pyftp-server --users FILE' checks logins "
                    "against. Passwords are read from a prompt (or one line of stdin when "
                    "piped), never from the command line, and stored only as salted scrypt "
                    "hashes in a file of mode 0600.")
    sub = p.add_subparsers(dest="action", metavar="{add,del,list}", required=True)
    add = sub.add_parser("add", help="add a user (asks for the password)")
    add.add_argument("name", metavar="NAME")
    add.add_argument("--read-only", action="store_true",
                     help="this user may list and download, never change anything")
    add.add_argument("--replace", action="store_true",
                     help="set a new password (and flags) for an existing user")
    rm = sub.add_parser("del", help="remove a user")
    rm.add_argument("name", metavar="NAME")
    sub.add_parser("list", help="show the users and whether they are read-only")
    for sp in (add, rm, sub.choices["list"]):
        sp.add_argument("--users", required=True, metavar="FILE", help="the users file")
    return p


def users_main(argv: list[str]) -> int:
    """``pyftp-server user add|del|list ... --users FILE``."""
    from ..server.auth import UsersFileError, add_user, check_user_name, load_users, remove_user
    args = users_parser().parse_args(argv)
    try:
        if args.action == "add":
            check_user_name(args.name)
            password = _read_new_password(args.name)
            add_user(args.users, args.name, password, read_only=args.read_only,
                     replace=args.replace)
            print(f"pyftp-server: user {args.name} "
                  f"{'updated' if args.replace else 'added'} in {args.users}"
                  f"{' (read-only)' if args.read_only else ''}", file=sys.stderr)
        elif args.action == "del":
            remove_user(args.users, args.name)
            print(f"pyftp-server: user {args.name} removed from {args.users}", file=sys.stderr)
        else:
            for name, record in sorted(load_users(args.users).items()):
                print(f"{name}\t{'read-only' if record.read_only else 'read-write'}")
    except UsersFileError as exc:
        print(f"pyftp-server: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK


def _read_new_password(name: str) -> str:
    """A new password: prompted twice on a terminal, else one line of stdin."""
    from ..server.auth import UsersFileError
    if sys.stdin is not None and sys.stdin.isatty():
        import getpass
        first = getpass.getpass(f"password for {name}: ")
        if not first:
            raise UsersFileError("the password is empty; nothing changed")
        if getpass.getpass("again: ") != first:
            raise UsersFileError("the passwords do not match; nothing changed")
        return first
    line = sys.stdin.readline() if sys.stdin is not None else ""
    password = line.rstrip("\r\n")
    if not password:
        raise UsersFileError("no password on stdin (pipe one line, e.g. from a password "
                             "manager, or run in a terminal to be asked)")
    return password


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

CLIENT_EPILOG = CLIENT_EXIT_CODES + """
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
        prog="pyftp", usage="pyftp [OPTIONS] [HOST[:PORT]] [-c COMMANDS | -b FILE]",
        description="The pyftp client. With HOST alone: the interactive shell (type help "
                    "there). With -c or -b: run commands and exit, for scripts and CI. "
                    "Results go to stdout; progress and messages to stderr.",
        epilog=CLIENT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", nargs="?", metavar="HOST[:PORT]",
                   help="server to connect to (default port 6971)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("-c", dest="commands", metavar="COMMANDS",
                      help="run these ';'-separated shell commands, then exit")
    mode.add_argument("-b", dest="batch", metavar="FILE",
                      help="run the commands in FILE, one per line ('-' reads stdin; '#' "
                           "starts a comment). The first failure stops the run, unless its "
                           "line starts with '-'")
    p.add_argument("--user", metavar="NAME",
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
    net.add_argument("--timeout", type=above_zero(parse_duration), default=30.0,
                     metavar="S", help="give up on a silent server after S seconds (default 30)")
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
                           "waiting 0.5 s, 1 s, 2 s, ... in between (default 3; 0: never)")
    xfer.add_argument("--no-resume", action="store_true",
                      help="do not continue partial files left by an interrupted transfer: "
                           "start every file from zero (also per command: get --no-resume)")
    p.add_argument("--version", action="version", version=f"pyftp {__version__}")
    return p


def split_target(text: str, default_port: int) -> tuple[str, int]:
    """'host', 'host:port', '[::1]:port' -> (host, port). Raises ValueError."""
    from ..shell import parse_target
    return parse_target(text, default_port)


def exit_code_for(exc: BaseException | None) -> int:
    """The one mapping from what went wrong to the documented exit code."""
    from ..errors import (AuthFailedError, AuthRequiredError, CancelledError, ConnectError,
                         ProtocolError, UnsupportedVersionError)
    from ..shell import UsageError
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
    parser = client_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error argparse printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        return _client(args)
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


def _read_commands(args) -> list[tuple[int, str]]:
    """(line number, command) pairs from -c or -b; comments and blank lines dropped."""
    if args.commands is not None:
        from ..shell import split_commands
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
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if line and not line.startswith("#"):
            out.append((number, line))
    return out


def _client(args) -> int:
    one_shot = args.commands is not None or args.batch is not None
    target = args.target or os.environ.get("PYFTP_HOST") or None
    port_text = os.environ.get("PYFTP_PORT", "")
    if port_text and not (port_text.isdigit() and 0 < int(port_text) < 65536):
        raise _Usage(f"PYFTP_PORT={port_text!r} is not a port number (1-65535)")
    from ..protocol import DEFAULT_PORT
    default_port = int(port_text) if port_text else DEFAULT_PORT
    user = args.user or os.environ.get("PYFTP_USER") or None
    password = os.environ.get("PYFTP_PASSWORD")
    interactive_stdin = sys.stdin is not None and sys.stdin.isatty() and args.batch != "-"
    if user and password is None:
        if not interactive_stdin:
            raise _Usage(f"--user {user} needs a password: set PYFTP_PASSWORD (there is no "
                         "terminal to ask on)")
        import getpass
        password = getpass.getpass(f"password for {user}: ")
    commands = _read_commands(args) if one_shot else []
    if one_shot and not commands:
        raise _Usage("no commands to run (the -c text or the batch file is empty)")

    from rich.console import Console

    from ..client import Client
    from ..shell import Shell
    stdout_tty = sys.stdout.isatty()
    err_tty = sys.stderr.isatty()
    # a pipe gets long lines unwrapped, so scripts can cut and grep them
    console = Console(file=sys.stdout, highlight=False, width=None if stdout_tty else 100_000)
    err_console = Console(file=sys.stderr, highlight=False)
    if args.quiet or args.no_progress:
        progress = "off"
    elif not one_shot and err_tty:
        progress = "rich"
    else:
        progress = "tqdm" if err_tty else "lines"
    tls = args.tls or bool(args.cafile) or args.insecure

    def connector(host: str, port: int, user: str | None, password: str | None) -> Client:
        return Client(host, port, user=user, password=password, timeout=args.timeout,
                      limit_rate=args.limit_rate, tls=tls, cafile=args.cafile,
                      insecure=args.insecure)

    shell = Shell(console=console, err_console=err_console, progress=progress,
                  progress_stream=sys.stderr, json_output=args.json, quiet=args.quiet,
                  interactive=not one_shot, connector=connector, user=user,
                  password=password, default_port=default_port,
                  getpass=_ask_password if interactive_stdin else None,
                  retries=args.retries, resume=not args.no_resume)
    if target:
        import shlex
        opened = shell.execute(f"open {shlex.quote(target)}", prefix="pyftp: ")
        if not opened.ok:
            return exit_code_for(opened.error)
    if args.limit_rate:
        from ..ui import human_size
        shell._info(f"transfers limited to {human_size(args.limit_rate)}/s")
    if not one_shot:
        return shell.run()
    try:
        for number, line in commands:
            ignore = line.startswith("-")
            if ignore:
                line = line[1:].lstrip()
            where = f"line {number}: " if args.batch is not None else ""
            outcome = shell.execute(line, prefix=f"pyftp: {where}")
            if shell.finished:  # quit ends a batch early, as in sftp
                break
            if outcome.ok or (ignore and not isinstance(outcome.error, KeyboardInterrupt)):
                continue
            return exit_code_for(outcome.error)
    finally:
        shell._close_client()
    return EXIT_OK


def _ask_password(prompt: str) -> str:
    import getpass
    return getpass.getpass(prompt)
