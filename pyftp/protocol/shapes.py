"""The checked messages of each op, as types: a request's arguments, a reply's fields.

:func:`~.schema.validate_request` returns the known fields of a request after checking
each against :data:`~.schema.COMMANDS`, and :func:`~.schema.read_reply` a reply after
checking it against :data:`~.schema.REPLIES`; these TypedDicts name those shapes for
type checkers (a key of a ``total=False`` class may be absent). :data:`ARGS` and
:data:`REPLY_SHAPES` map each op to its shape; a test keeps them in step with the
declarations they type.

Import rule: the standard library only. No sockets, no files.
"""
from __future__ import annotations

from typing import Any, TypedDict

__all__ = ["HelloArgs", "PathArgs", "LsArgs", "NoArgs", "MkdirArgs", "MvArgs", "GetArgs",
           "PutArgs", "ARGS", "HelloReply", "CwdReply", "StatReply", "PathReply", "MvReply",
           "HashReply", "GetReply", "DigestReply", "PutReply", "PutFinalReply", "DfReply", "EmptyReply",
           "REPLY_SHAPES"]


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
    names: bool


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


class _PutArgsRequired(PathArgs):
    total: int


class PutArgs(_PutArgsRequired, total=False):
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
    "put": PutArgs, "hash": PathArgs, "upper": NoArgs, "df": NoArgs, "quit": NoArgs,
}


# ------------------------------------------------------------------ replies
class HelloReply(TypedDict, total=False):
    version: int
    server: str
    features: list[str]
    digest: str  #: the negotiated digest; absent from a version 1 server


class CwdReply(TypedDict):
    """cd, pwd."""

    cwd: str


class StatReply(TypedDict):
    entry: dict[str, Any]  #: a listing entry, read by the client's Entry.from_wire


class PathReply(TypedDict, total=False):
    """mkdir, rm, rmdir: the virtual path acted on."""

    path: str


class MvReply(TypedDict, total=False):
    src: str
    dst: str


class DigestReply(TypedDict, total=False):
    """get.digest: ``sha256`` (version 1) or ``digest`` + ``algorithm`` (negotiated)."""

    sha256: str
    digest: str
    algorithm: str


class HashReply(DigestReply, total=False):
    total: int
    path: str


class _GetRequired(TypedDict):
    size: int
    offset: int
    total: int


class GetReply(_GetRequired, total=False):
    mtime: float
    version: str


class _PutRequired(TypedDict):
    offset: int


class PutReply(_PutRequired, total=False):
    prefix_sha256: str
    prefix_digest: str
    token: str


class PutFinalReply(HashReply, total=False):
    """put.final: the same fields as a hash reply."""


class DfReply(TypedDict):
    """df: bytes of the share's file system (free: what the server may still write)."""

    total: int
    free: int


class EmptyReply(TypedDict):
    """ls (its payload is the listing), upper (the text), quit."""


#: each reply's shape (the keys of REPLIES, in order)
REPLY_SHAPES: dict[str, type] = {
    "hello": HelloReply, "ls": EmptyReply, "stat": StatReply, "cd": CwdReply,
    "pwd": CwdReply, "mkdir": PathReply, "rm": PathReply, "rmdir": PathReply,
    "mv": MvReply, "hash": HashReply, "get": GetReply, "get.digest": DigestReply,
    "put": PutReply, "put.final": PutFinalReply, "upper": EmptyReply, "df": DfReply,
    "quit": EmptyReply,
}
