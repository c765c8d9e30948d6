"""One listing entry as the client sees it (:class:`Entry`).

Import rule: errors only.
"""
from __future__ import annotations

from ..hints import TYPE_CHECKING, LEAN

from ..records import dataclass
from ..errors import ProtocolError

if TYPE_CHECKING or not LEAN:  # names for annotations; see pyftp.hints
    from typing import Any, Mapping

__all__ = ["Entry"]


@dataclass(frozen=True)
class Entry:
    """One file or directory on the server."""

    name: str
    type: str  # "file" or "dir"
    size: int
    mtime: float

    @property
    def is_dir(self) -> bool:
        return self.type == "dir"

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> Entry:
        name, kind, size, mtime = d.get("name"), d.get("type"), d.get("size", 0), d.get("mtime", 0.0)
        if (type(name) is str and type(kind) is str and type(size) is int
                and type(mtime) in (float, int)):
            # the common case, without the frozen __init__'s four object.__setattr__
            # calls: half the cost of a big listing on the client
            entry = object.__new__(cls)
            entry.__dict__.update(name=name, type=kind, size=size, mtime=float(mtime))
            return entry
        try:
            return cls(str(d["name"]), str(d["type"]), int(d.get("size", 0)),
                       float(d.get("mtime", 0.0)))
        except (KeyError, TypeError, ValueError) as exc:
            raise ProtocolError(f"malformed listing entry from the server: {d!r:.80}") from exc
