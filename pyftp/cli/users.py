"""``pyftp-server user add|del|list``: manage a users file.

Import rule: may import anything in pyftp; nothing imports cli.
"""
from __future__ import annotations

import argparse
import sys

from .args import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK

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
