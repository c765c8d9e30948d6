"""The pyftp wire protocol, sans I/O: :mod:`.frames` (bytes <-> frames, limits),
:mod:`.schema` (every operation declared once, replies, partial-file names) and
:mod:`.shapes` (each op's checked arguments and replies as types).

The shapes are for type checkers and are loaded on first use (``from pyftp.protocol
import GetReply`` still works): building their TypedDicts costs a one-shot ``pyftp``
process more than the rest of the package.

Import rule: imports only :mod:`pyftp.errors`. No sockets, no files, no threads.
"""
from __future__ import annotations

from ..hints import TYPE_CHECKING, LEAN

from .frames import *  # noqa: F401,F403
from .frames import __all__ as _frames_all
from .schema import *  # noqa: F401,F403
from .schema import __all__ as _schema_all

if TYPE_CHECKING or not LEAN:  # names for annotations; see pyftp.hints
    from typing import Any

if TYPE_CHECKING:
    from .shapes import *  # noqa: F401,F403

#: the names of .shapes, kept in step with its __all__ by a test
SHAPES = ("HelloArgs", "PathArgs", "LsArgs", "NoArgs", "MkdirArgs", "MvArgs", "GetArgs",
          "PutArgs", "ARGS", "HelloReply", "CwdReply", "StatReply", "PathReply", "MvReply",
          "HashReply", "GetReply", "DigestReply", "PutReply", "PutFinalReply", "DfReply",
          "EmptyReply", "REPLY_SHAPES")

__all__ = [*_frames_all, *_schema_all, *SHAPES]


def __getattr__(name: str) -> Any:
    if name in SHAPES:
        from . import shapes
        return getattr(shapes, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
