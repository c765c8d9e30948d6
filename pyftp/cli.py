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

from ._version import __version__

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
def server_parser() -> argparse.ArgumentParser:
    from .protocol import DEFAULT_PORT
    p = argparse.ArgumentParser(
        prog="pyftp-server",
        description="Serve one folder over the pyftp protocol. Clients can never leave it.",
        epilog="Ctrl-C or SIGTERM stops the server cleanly (transfers in flight get a "
               "grace period; unfinished uploads are never published).")
    p.add_argument("--root", required=True, metavar="DIR", help="the folder to serve")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1; 0.0.0.0 or :: for all)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help=f"port (default {DEFAULT_PORT}; 0 picks a free one)")
    p.add_argument("--read-only", action="store_true", help="refuse every change")
    lim = p.add_argument_group("limits")
    lim.add_argument("--max-clients", type=int, default=256, metavar="N",
                     help="connections at once (default 256); more get 'busy'")
    lim.add_argument("--max-per-ip", type=int, default=32, metavar="N",
                     help="connections from one address (default 32)")
    lim.add_argument("--idle-timeout", type=parse_duration, default=300.0, metavar="T",
                     help="close a connection silent this long (default 300s)")
    lim.add_argument("--frame-timeout", type=parse_duration, default=30.0, metavar="T",
                     help="a started frame header must arrive whole within T (default 30s)")
    lim.add_argument("--max-file-size", type=parse_size, default=None, metavar="SIZE",
                     help="largest upload accepted, e.g. 2G (default: no limit)")
    lim.add_argument("--limit-rate", type=parse_size, default=None, metavar="RATE",
                     help="bytes per second per connection, e.g. 10M")
    lim.add_argument("--partial-ttl", type=parse_duration, default=24 * 3600.0, metavar="T",
                     help="remove unfinished uploads untouched this long (default 24h)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                   help="what to log on stderr (default info: one line per request)")
    p.add_argument("--version", action="version", version=f"pyftp-server {__version__}")
    return p


def server_main(argv: list[str] | None = None) -> int:
    import logging
    import signal
    import threading

    parser = server_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level.upper()), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s")
    root = os.path.abspath(args.root)
    if not os.path.isdir(root):
        parser.error(f"--root {args.root}: no such folder (create it first: mkdir -p {args.root})")
    from .server import Server, ServerConfig
    config = ServerConfig(
        root=root, host=args.host, port=args.port, read_only=args.read_only,
        max_clients=args.max_clients, max_per_ip=args.max_per_ip,
        idle_timeout=args.idle_timeout, frame_timeout=args.frame_timeout,
        max_file_size=args.max_file_size, limit_rate=args.limit_rate,
        partial_ttl=args.partial_ttl)
    server = Server(config)
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
          f"({'read-only' if args.read_only else 'read-write'}; Ctrl-C to stop)",
          file=sys.stderr, flush=True)
    if host not in ("127.0.0.1", "::1", "localhost"):
        print("pyftp-server: warning: listening beyond loopback with no users: anyone who "
              "can reach this port can read and write the folder", file=sys.stderr)

    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        while not stop.wait(3600):
            pass
    finally:
        print("pyftp-server: stopping", file=sys.stderr, flush=True)
        server.shutdown()
    return EXIT_OK


# ---------------------------------------------------------------------- client
def client_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pyftp", description="pyftp client")
    p.add_argument("target", nargs="?", help="HOST[:PORT]")
    p.add_argument("-c", dest="commands", help="';'-separated commands to run")
    p.add_argument("--version", action="version", version=f"pyftp {__version__}")
    return p


def split_target(text: str, default_port: int) -> tuple[str, int]:
    """'host', 'host:port', '[::1]:port' -> (host, port)."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        host, port = text, ""
    if not host:
        raise ValueError(f"no host in {text!r}")
    if port and not port.isdigit():
        raise ValueError(f"bad port in {text!r}")
    return host, int(port) if port else default_port


def main(argv: list[str] | None = None) -> int:
    import shlex

    from .errors import ConnectError, LocalError, ProtocolError, PyftpError, RemoteError
    from .protocol import DEFAULT_PORT
    args = client_parser().parse_args(argv)
    if not args.target or not args.commands:
        print("pyftp: give HOST[:PORT] -c 'COMMANDS'", file=sys.stderr)
        return EXIT_USAGE
    from .client import Client
    try:
        host, port = split_target(args.target, DEFAULT_PORT)
    except ValueError as exc:
        print(f"pyftp: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        client = Client(host, port)
    except PyftpError as exc:
        print(f"pyftp: {exc}", file=sys.stderr)
        return EXIT_CONNECT
    with client:
        for line in args.commands.split(";"):
            words = shlex.split(line)
            if not words:
                continue
            cmd, rest = words[0], words[1:]
            try:
                if cmd == "ls":
                    for e in client.ls(*rest[:1]):
                        print(e.name + ("/" if e.is_dir else ""))
                elif cmd == "get":
                    client.get(*rest[:2])
                elif cmd == "put":
                    client.put(*rest[:2])
                elif cmd == "hash":
                    print(client.hash(rest[0]))
                elif cmd == "upper":
                    print(client.upper(" ".join(rest)))
                else:
                    print(f"pyftp: unknown command {cmd!r}", file=sys.stderr)
                    return EXIT_USAGE
            except ProtocolError as exc:
                print(f"pyftp: {exc}", file=sys.stderr)
                return EXIT_PROTOCOL
            except (RemoteError, LocalError, PyftpError) as exc:
                print(f"pyftp: {exc}", file=sys.stderr)
                return EXIT_FAILED
    return EXIT_OK
