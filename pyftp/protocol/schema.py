"""The pyftp message schema: every operation declared once, with its fields.

:data:`COMMANDS` declares every request (fields, help line); the server's handlers, the
client's methods and the shell's commands are all named after it. :data:`REPLIES` declares
every success reply and :data:`SUBFRAMES` the ``data``/``verify`` frames of a put, read
through :func:`read_reply` and :func:`read_subframe`; the naming rule for partial files lives here
too, because both ends must recognise the same hidden names.

Import rule: imports only :mod:`pyftp.errors` and :mod:`.frames`. No sockets, no files.
"""
from __future__ import annotations

import re

from ..hints import TYPE_CHECKING, LEAN, overload

from ..records import dataclass, field
from ..errors import BadRequestError, ProtocolError, error_for_code
from .frames import MAX_SIZE, JSONObject

if TYPE_CHECKING or not LEAN:  # names for annotations; see pyftp.hints
    from typing import Any, Callable, Literal, Mapping

if TYPE_CHECKING:
    from .shapes import DigestReply, GetReply, HelloReply, PutFinalReply, PutReply

__all__ = [
    "VERSION", "DEFAULT_PORT", "FEATURES", "Field", "Command", "COMMANDS", "MAX_PATH",
    "validate_request", "raise_for_reply", "ok", "partial_name", "is_partial_name",
    "os_bytes", "PARTIAL_SUFFIX", "REPLIES", "SUBFRAMES", "read_reply", "read_subframe",
    "PIPELINE_OPS", "NEGOTIATED_FEATURES", "MAX_DIGESTS", "digest_fields", "digest_in",
]

#: protocol version spoken in ``hello``
VERSION = 1
DEFAULT_PORT = 6971
#: what this implementation offers, sent in the hello reply
FEATURES = ["sha256", "resume", "mtime", "pipelining", "sha256_trailer", "resume_token",
            "ls_names", "df"]
#: added to FEATURES only for a session whose hello negotiated a digest (section 14):
#: a client that negotiates nothing sees exactly the version 1 reply
NEGOTIATED_FEATURES = ["digests", "ranges"]
#: the most digest names a hello may offer
MAX_DIGESTS = 8

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Field:
    """One request field: its JSON type and whether it must be present."""

    name: str
    kind: str  # "path" | "str" | "int" | "bool" | "sha256" | "digest" | "number" | "names"
    required: bool = False


@dataclass(frozen=True)
class Command:
    """One operation of the protocol, declared once and used everywhere."""

    name: str
    help: str
    fields: tuple[Field, ...] = ()
    payload: bool = False  # the request carries a payload (upper)
    #: ops a read-only session may not run (answered permission_denied before payload)
    writes: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def _path(name: str = "path", required: bool = True) -> Field:
    return Field(name, "path", required)


COMMANDS: dict[str, Command] = {c.name: c for c in (
    Command("hello", "open the session: protocol version and credentials",
            (Field("version", "int", True), Field("client", "str"), Field("user", "str"),
             Field("password", "str"), Field("digests", "names"))),
    Command("ls", "list a directory (payload: JSON array of entries, or of names)",
            (_path(required=False), Field("names", "bool"))),
    Command("stat", "describe one file or directory", (_path(),)),
    Command("cd", "change the session's directory", (_path(),)),
    Command("pwd", "show the session's directory"),
    Command("mkdir", "create a directory", (_path(), Field("parents", "bool")), writes=True),
    Command("rm", "remove a file", (_path(),), writes=True),
    Command("rmdir", "remove an empty directory", (_path(),), writes=True),
    Command("mv", "rename or move a file or directory",
            (_path("src"), _path("dst"), Field("overwrite", "bool")), writes=True),
    Command("get", "download a file from an offset (a range, with length)",
            (_path(), Field("offset", "int"), Field("length", "int"))),
    Command("put", "upload a file (then a data frame)",
            (_path(), Field("total", "int", True), Field("sha256", "sha256"),
             Field("overwrite", "bool"), Field("resume", "bool"), Field("mtime", "number"),
             Field("trailer", "bool"), Field("token", "str"), Field("digest", "digest")),
            writes=True),
    Command("hash", "the digest (SHA-256, or the negotiated one) of a file", (_path(),)),
    Command("upper", "upper-case the UTF-8 text in the payload", payload=True),
    Command("df", "total and free bytes of the share (feature df; 7.14)"),
    Command("quit", "end the session"),
)}

#: longest path (in characters) a request may carry
MAX_PATH = 4096


def _check(field_: Field, value: Any) -> bool:
    kind = field_.kind
    if kind in ("path", "str"):
        return isinstance(value, str) and (kind == "str" or 0 < len(value) <= MAX_PATH)
    if kind == "int":
        return type(value) is int and 0 <= value <= MAX_SIZE
    if kind == "bool":
        return type(value) is bool
    if kind == "number":
        return type(value) in (int, float) and 0 <= value < 2**40
    if kind in ("sha256", "digest"):
        return isinstance(value, str) and bool(_SHA256.match(value))
    if kind == "names":
        return (isinstance(value, list) and 0 < len(value) <= MAX_DIGESTS
                and all(isinstance(v, str) and 0 < len(v) <= 32 for v in value))
    raise AssertionError(kind)


def validate_request(fields: Mapping[str, Any]) -> tuple[Command, JSONObject]:
    """Check a request header against :data:`COMMANDS`.

    Returns the command and the known fields (unknown fields are ignored, so newer
    clients can add optional ones). Raises BadRequestError naming the bad field.
    """
    op = fields.get("op")
    if not isinstance(op, str) or op not in COMMANDS:
        shown = op if isinstance(op, str) and len(op) < 40 else "?"
        raise BadRequestError(f"unknown op {shown!r}; known ops: {', '.join(COMMANDS)}")
    cmd = COMMANDS[op]
    args: JSONObject = {}
    for f in cmd.fields:
        if f.name not in fields or fields[f.name] is None:
            if f.required:
                raise BadRequestError(f"{op}: missing field {f.name!r}")
            continue
        if not _check(f, fields[f.name]):
            raise BadRequestError(f"{op}: field {f.name!r} must be {_DESCRIBE[f.kind]}")
        args[f.name] = fields[f.name]
    if not cmd.payload and fields.get("size", 0):
        raise BadRequestError(f"{op} takes no payload")
    return cmd, args


_DESCRIBE = {
    "path": f"a non-empty string of at most {MAX_PATH} characters",
    "str": "a string",
    "int": "a non-negative integer",
    "bool": "true or false",
    "number": "a non-negative number",
    "sha256": "64 lower-case hex digits",
    "digest": "64 lower-case hex digits",
    "names": f"a list of 1 to {MAX_DIGESTS} names (strings of 1 to 32 characters)",
}


def ok(**fields: Any) -> JSONObject:
    """A success reply header."""
    return {"ok": True, **fields}


def raise_for_reply(fields: Mapping[str, Any]) -> Mapping[str, Any]:
    """Return a success reply unchanged; raise the matching error for an error reply."""
    status = fields.get("ok")
    if status is True:
        return fields
    if status is False:
        raise error_for_code(fields.get("error"), fields.get("message", ""))
    raise ProtocolError("reply has no boolean 'ok' field")


# ------------------------------------------------------------------ replies
# Success replies, declared like the requests. A client reads every reply through
# read_reply(), so a field of the wrong type is one clear ProtocolError instead of a
# TypeError deep in a transfer. Fields not declared here are kept (and ignored), as
# section 4 asks of clients. "get.digest" and "put.final" are the second reply frames
# of those two exchanges.
REPLIES: dict[str, tuple[Field, ...]] = {
    "hello": (Field("version", "int"), Field("server", "str"), Field("features", "list"),
              Field("digest", "str")),
    "ls": (),
    "stat": (Field("entry", "object", True),),
    "cd": (Field("cwd", "str", True),),
    "pwd": (Field("cwd", "str", True),),
    "mkdir": (Field("path", "str"),),
    "rm": (Field("path", "str"),),
    "rmdir": (Field("path", "str"),),
    "mv": (Field("src", "str"), Field("dst", "str")),
    # sha256 (version 1) or digest + algorithm (a negotiated session): digest_in()
    "hash": (Field("sha256", "sha256"), Field("digest", "sha256"), Field("algorithm", "str"),
             Field("total", "int"), Field("path", "str")),
    "get": (Field("size", "int", True), Field("offset", "int", True),
            Field("total", "int", True), Field("mtime", "real"), Field("version", "str")),
    "get.digest": (Field("sha256", "sha256"), Field("digest", "sha256"),
                   Field("algorithm", "str")),
    "put": (Field("offset", "int", True), Field("prefix_sha256", "sha256"),
            Field("prefix_digest", "sha256"), Field("token", "str")),
    "put.final": (Field("total", "int"), Field("sha256", "sha256"), Field("digest", "sha256"),
                  Field("algorithm", "str"), Field("path", "str")),
    "upper": (),
    "df": (Field("total", "int", True), Field("free", "int", True)),
    "quit": (),
}
#: the frames a client sends inside a put exchange (7.11, 13)
SUBFRAMES: dict[str, tuple[Field, ...]] = {
    "data": (Field("size", "int", True), Field("offset", "int")),
    "verify": (Field("sha256", "sha256"), Field("digest", "digest")),
}
#: ops whose reply is one header without payload: what ``call_many`` may pipeline
PIPELINE_OPS = frozenset({"stat", "hash", "mkdir", "rm", "rmdir", "mv", "pwd"})


#: a reply field's check by kind (replies are read once per file of a batch: no if-chain)
_REPLY_CHECKS: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "list": lambda v: isinstance(v, list),
    "real": lambda v: type(v) in (int, float),
    "str": lambda v: isinstance(v, str),
    "int": lambda v: type(v) is int and 0 <= v <= MAX_SIZE,
    "sha256": lambda v: isinstance(v, str) and _SHA256.match(v) is not None,
}


#: REPLIES as (name, required, check) rows, built once
_REPLY_ROWS = {op: tuple((f.name, f.required, _REPLY_CHECKS[f.kind]) for f in fields)
               for op, fields in REPLIES.items()}


# The replies a client reads field by field get their TypedDict; the others a JSONObject.
# mypy calls each Literal overload "overlapping" the str one (a str may be "get"); that
# is the point: a literal op picks its own, so overload-overlap is ignored on each.
@overload
def read_reply(op: Literal["hello"],  # type: ignore[overload-overlap]
               header: Mapping[str, Any]) -> HelloReply: ...


@overload
def read_reply(op: Literal["get"],  # type: ignore[overload-overlap]
               header: Mapping[str, Any]) -> GetReply: ...


@overload
def read_reply(op: Literal["get.digest"],  # type: ignore[overload-overlap]
               header: Mapping[str, Any]) -> DigestReply: ...


@overload
def read_reply(op: Literal["put"],  # type: ignore[overload-overlap]
               header: Mapping[str, Any]) -> PutReply: ...


@overload
def read_reply(op: Literal["put.final"],  # type: ignore[overload-overlap]
               header: Mapping[str, Any]) -> PutFinalReply: ...


@overload
def read_reply(op: str, header: Mapping[str, Any]) -> JSONObject: ...


def read_reply(op: str, header: Mapping[str, Any]) -> Any:
    """A reply to ``op`` (a key of :data:`REPLIES`) with its declared fields checked.

    Raises the error class of an error reply, and :class:`ProtocolError` for a reply
    without a boolean ``ok`` or with a declared field missing or of the wrong type."""
    if header.get("ok") is not True:
        raise_for_reply(header)
    for name, required, check in _REPLY_ROWS[op]:
        value = header.get(name)
        if value is None:
            if required:
                raise ProtocolError(f"the server's {op} reply has no {name!r} field")
        elif not check(value):
            raise ProtocolError(f"the server's {op} reply has a bad {name!r} field: "
                                f"{value!r:.40}")
    return header if type(header) is dict else dict(header)


def digest_fields(hexdigest: str, algorithm: str | None) -> dict[str, str]:
    """The fields naming a digest in a reply: ``{"sha256": H}`` in a version 1 session
    (``algorithm`` None), ``{"algorithm": A, "digest": H}`` in a negotiated one."""
    if algorithm is None:
        return {"sha256": hexdigest}
    return {"algorithm": algorithm, "digest": hexdigest}


@overload
def digest_in(op: str, reply: Mapping[str, Any], algorithm: str | None,
              required: Literal[True] = True) -> str: ...


@overload
def digest_in(op: str, reply: Mapping[str, Any], algorithm: str | None,
              required: bool) -> str | None: ...


def digest_in(op: str, reply: Mapping[str, Any], algorithm: str | None,
              required: bool = True) -> str | None:
    """The digest a reply (read by :func:`read_reply`) carries, in the session's form
    (see :func:`digest_fields`); ProtocolError when it is missing (and ``required``) or
    names another algorithm than the session's."""
    if algorithm is None:
        value = reply.get("sha256")
    else:
        value = reply.get("digest")
        named = reply.get("algorithm")
        if value is not None and named != algorithm:
            raise ProtocolError(f"the server's {op} reply names the digest {str(named):.20} "
                                f"instead of the negotiated {algorithm}")
    if value is None and required:
        raise ProtocolError(f"the server's {op} reply has no digest")
    return value


def _first_bad(fields: tuple[Field, ...], header: Mapping[str, Any],
               check: Callable[[Field, Any], bool]) -> tuple[Field, Any] | None:
    """The first declared field missing (value None) or failing ``check``."""
    for f in fields:
        value = header.get(f.name)
        if value is None:
            if f.required:
                return f, None
        elif not check(f, value):
            return f, value
    return None


def read_subframe(name: str, header: Mapping[str, Any]) -> JSONObject:
    """A ``data`` or ``verify`` frame checked against :data:`SUBFRAMES`; raises
    BadRequestError naming what is wrong."""
    if header.get("op") != name:
        raise BadRequestError(f"expected a {name} frame, got op {str(header.get('op'))[:40]!r}")
    bad = _first_bad(SUBFRAMES[name], header, _check)
    if bad is not None:
        f, value = bad
        if value is None:
            raise BadRequestError(f"{name}: missing field {f.name!r}")
        raise BadRequestError(f"{name}: field {f.name!r} must be {_DESCRIBE[f.kind]}")
    return dict(header)


# ------------------------------------------------------------------ partial files
# Both ends write a transfer in progress to a hidden file beside its target and rename
# it into place only once verified. One naming rule, shared, so that listings and
# clean-ups on either side recognise the same files.
PARTIAL_SUFFIX = ".pyftp-part"
#: the suffix of a partial named by the digest of a long target name. A short name's
#: partial always ends in PARTIAL_SUFFIX, so no name can reach another's partial
_HASHED_SUFFIX = ".pyftp-hpart"
_TAILS = ("", ".json", ".json.tmp")
_PARTIAL_SUFFIXES = tuple(s + t for s in (PARTIAL_SUFFIX, _HASHED_SUFFIX) for t in _TAILS)


def partial_name(name: str) -> str:
    """The hidden partial file for a target called ``name`` (in the same folder).

    ``.NAME.pyftp-part``, or, when that (plus ".json.tmp") would not fit in 255 bytes,
    ``.`` + the full SHA-256 of the name + ``.pyftp-hpart``: a form no short name's
    partial can take, so two targets never share a partial.
    """
    candidate = f".{name}{PARTIAL_SUFFIX}"
    if len(os_bytes(candidate)) + 9 <= 255:  # room for ".json.tmp" within NAME_MAX
        return candidate
    import hashlib  # a name, not file content; rare (names near the length limit)
    return f".{hashlib.sha256(os_bytes(name)).hexdigest()}{_HASHED_SUFFIX}"


def is_partial_name(name: str) -> bool:
    """True for every name :func:`partial_name` can make (and their metadata files)."""
    return name.startswith(".") and name.endswith(_PARTIAL_SUFFIXES)


def os_bytes(name: str) -> bytes:
    """A file name as the OS stores it (names that were not UTF-8 round-trip, PEP 383)."""
    return name.encode("utf-8", "surrogateescape")
