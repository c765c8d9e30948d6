"""The checked arguments of each request, as types: what a ``handle_<op>`` receives.

:func:`~.schema.validate_request` returns the known fields of a request after checking
each against :data:`~.schema.COMMANDS`; these TypedDicts name that shape per op for
type checkers (a field that is not ``Required`` may be absent). :data:`ARGS` maps each
op to its shape, and a test keeps it in step with :data:`~.schema.COMMANDS`.

Import rule: the standard library only. No sockets, no files.
"""
from __future__ import annotations

from typing import TypedDict

__all__ = ["HelloArgs", "PathArgs", "LsArgs", "NoArgs", "MkdirArgs", "MvArgs", "GetArgs",
           "PutArgs", "ARGS"]


class _HelloRequired(TypedDict):
    version: int


class HelloArgs(_HelloRequired, total=False):
    client: str
    user: str
    password: str
    digests: list[str]


class PathArgs(TypedDict):
    """stat, cd, rm, rmdir, hash: one path."""

    path: str


class LsArgs(TypedDict, total=False):
    path: str


class NoArgs(TypedDict):
    """pwd, upper, quit."""


class MkdirArgs(PathArgs, total=False):
    parents: bool


class _MvRequired(TypedDict):
    src: str
    dst: str


class MvArgs(_MvRequired, total=False):
    overwrite: bool


class GetArgs(PathArgs, total=False):
    offset: int
    length: int


class _PutRequired(PathArgs):
    total: int


class PutArgs(_PutRequired, total=False):
    sha256: str
    digest: str
    overwrite: bool
    resume: bool
    mtime: float
    trailer: bool
    token: str


#: each op's argument shape (the keys of COMMANDS, in order)
ARGS: dict[str, type] = {
    "hello": HelloArgs, "ls": LsArgs, "stat": PathArgs, "cd": PathArgs, "pwd": NoArgs,
    "mkdir": MkdirArgs, "rm": PathArgs, "rmdir": PathArgs, "mv": MvArgs, "get": GetArgs,
    "put": PutArgs, "hash": PathArgs, "upper": NoArgs, "quit": NoArgs,
}
