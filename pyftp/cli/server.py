"""``pyftp-server``: parse the options, build the ServerConfig, serve until a signal.

Import rule: may import anything in pyftp; nothing imports cli.
"""
from __future__ import annotations

import argparse
import os
import sys
from types import FrameType

from ..hints import TYPE_CHECKING

from .._version import __version__
from .args import (EXIT_FAILED, EXIT_OK, EXIT_USAGE, above_zero, parse_count, parse_duration,
                   parse_port, parse_size)
from .users import users_main

if TYPE_CHECKING:  # pragma: no cover
    from ..server import Server, ServerConfig

# ---------------------------------------------------------------------- server
#: ServerConfig defaults, repeated here so --help shows them (a test keeps them equal)
SERVER_DEFAULTS = {"max_clients": 256, "max_per_ip": 32, "idle_timeout": 300.0,
                   "login_timeout": 30.0, "frame_timeout": 30.0, "max_auth_failures": 3, "auth_fail_cap": 60.0,
                   "shutdown_grace": 5.0,
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
    p.add_argument("--root", required=True, metavar="DIR",
                   help="the folder to serve, or s3://BUCKET[/PREFIX] (an S3-compatible "
                        "store; needs pip install 'pyftp[s3]'; credentials as the AWS tools "
                        "take them)")
    p.add_argument("--s3-endpoint", metavar="URL", default=None,
                   help="the object store's URL for an s3:// root (default: "
                        "AWS_ENDPOINT_URL or the AWS profile's)")
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
    sec.add_argument("--auth-fail-cap", type=above_zero(parse_duration),
                     default=d["auth_fail_cap"], metavar="T",
                     help="failed logins are throttled across connections, per address and "
                          "user: the delay doubles from 1s up to T, beyond which a login is "
                          f"refused unchecked (default {d['auth_fail_cap']:g}s)")
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
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["user"]:
        return users_main(argv[1:])
    parser = server_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level.upper()), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s")
    root = _checked_root(parser, args)
    try:
        config, users_note = _build_config(args, root)
    except _UsageError as exc:
        print(f"pyftp-server: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return _run(config, args, users_note)


class _UsageError(Exception):
    """Set-up that cannot go on (users file, TLS files): exit 2 with this message."""


def _checked_root(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str:
    """The served folder, absolute; the option values argparse cannot check alone."""
    root: str
    if args.root.startswith("s3://"):
        root = args.root
    elif args.s3_endpoint:
        parser.error("--s3-endpoint needs an s3://BUCKET[/PREFIX] --root")
    else:
        root = os.path.abspath(args.root)
    if not root.startswith("s3://") and not os.path.isdir(root):
        parser.error(f"--root {args.root}: no such folder (create it first: mkdir -p {args.root})")
    for name in ("max_clients", "max_per_ip", "max_auth_failures"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.limit_rate == 0:
        parser.error("--limit-rate must be more than 0 bytes per second")
    return root


def _build_config(args: argparse.Namespace, root: str) -> tuple[ServerConfig, str]:
    """(ServerConfig, the login note of the start-up line) from the parsed options."""
    from ..errors import PyftpError
    from ..server import ServerConfig
    from ..server.tls import file_authenticator, server_tls_context
    authenticator, users_note = None, ""
    if args.users:
        try:
            from ..server.auth import Users
            users = Users(args.users)
            authenticator, count = file_authenticator(users), len(users.names)
        except PyftpError as exc:
            raise _UsageError(str(exc)) from exc
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
            raise _UsageError(str(exc)) from exc
    config = ServerConfig(
        root=root, host=args.host, port=args.port, read_only=args.read_only,
        max_clients=args.max_clients, max_per_ip=args.max_per_ip,
        idle_timeout=args.idle_timeout, login_timeout=args.login_timeout,
        frame_timeout=args.frame_timeout,
        max_file_size=args.max_file_size, limit_rate=args.limit_rate,
        partial_ttl=args.partial_ttl, authenticator=authenticator,
        max_auth_failures=args.max_auth_failures, auth_fail_cap=args.auth_fail_cap,
        ssl_context=ssl_context, shutdown_grace=args.shutdown_grace, min_free=args.min_free,
        s3_endpoint=args.s3_endpoint)
    return config, users_note


def _run(config: ServerConfig, args: argparse.Namespace, users_note: str) -> int:
    """Start, announce, serve until SIGTERM/SIGINT (a second one cuts transfers), stop."""
    import select
    import signal
    from ..errors import PyftpError
    from ..server import Server
    try:
        server = Server(config)
    except (RuntimeError, ValueError, PyftpError) as exc:  # the store cannot be served
        print(f"pyftp-server: --root {config.root}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    # handlers go in before the startup line: a supervisor may signal as soon as it
    # reads that line, and the default handlers would kill us with a traceback
    signals: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        # no locks here (not even an Event's): the handler runs in the main thread,
        # which may hold that very lock at the moment the signal lands
        signals.append(signum)
        if len(signals) > 1:
            server.cut()  # a second Ctrl-C/SIGTERM: no more grace
    # the wake-up pipe: a signal that lands between the check and the wait below still
    # ends the wait, since its byte is already in the pipe
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        server.start()
    except OSError as exc:
        print(f"pyftp-server: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}"
              f"{' (is another server running? try --port 0)' if exc.errno == 98 else ''}",
              file=sys.stderr)
        return EXIT_FAILED
    _announce(server, args, users_note)
    try:
        while not signals:
            select.select([wake_r], [], [], 3600)
            while select.select([wake_r], [], [], 0)[0]:
                os.read(wake_r, 512)
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


def _announce(server: Server, args: argparse.Namespace, users_note: str) -> None:
    """The start-up line (tests and supervisors read the port from it) and warnings."""
    from ..server.tls import exposure_warnings
    host, port = server.address
    shown = f"[{host}]" if ":" in host else host
    tls = server.config.ssl_context is not None
    print(f"pyftp-server {__version__}: serving {server.config.root} on {shown}:{port} "
          f"({'read-only' if args.read_only else 'read-write'}"
          f"{'; TLS' if tls else ''}{users_note}; Ctrl-C to stop)",
          file=sys.stderr, flush=True)
    for line in exposure_warnings(host, port, server.config.root, users=bool(args.users),
                                  tls=tls, read_only=args.read_only):
        print(f"pyftp-server: warning: {line}", file=sys.stderr, flush=True)
    if args.users:
        from ..server.auth import insecure_mode
        if insecure_mode(args.users):
            print(f"pyftp-server: warning: {args.users} can be read by other local users; "
                  f"protect the password hashes with: chmod 600 {args.users}",
                  file=sys.stderr, flush=True)
