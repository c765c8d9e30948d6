"""Ranged reads (protocol section 14): bytes ``[offset, offset + length)`` of a remote
file, received straight into the caller's memory and verified against the server's
digest of exactly that range.

A :class:`RangeRead` is one such read: its ``get`` request with ``length``, and the
receive step that lands the payload in the caller's buffer (no buffer in between:
a Parquet column chunk of tens of MiB is copied once, by the kernel), hashes it as it
lands and compares the digest frame. Like :class:`~.download.Download` it reads the
whole reply even when the file's check fails, so pipelined reads stay in step.

Import rule: errors, protocol, transport, digests. Never server, sync, ui, shell, cli.
"""
from __future__ import annotations

from ..hints import TYPE_CHECKING, LEAN, named_tuple

from .. import digests
from ..errors import ChecksumMismatchError, ProtocolError, PyftpError
from ..protocol import JSONObject, digest_in, read_reply
from ..transport import Channel
from .download import reply_error

if TYPE_CHECKING or not LEAN:  # names for annotations; see pyftp.hints
    from typing import Callable, NamedTuple

__all__ = ["RangeRead", "RangeInfo", "writable_view"]


if TYPE_CHECKING:
    class _RangeInfo(NamedTuple):
        total: int
        mtime: float | None
        version: str | None = None
else:  # the same tuple without loading typing (see pyftp.hints)
    _RangeInfo = named_tuple("RangeInfo", "total mtime version", defaults=(None,),
                             module=__name__)


class RangeInfo(_RangeInfo):
    """What the server said of the file a range came from, when it sent the range:
    ``total``, the file's length; ``mtime``, its modification time (seconds), if the
    server sent one; ``version``, the server's tag of the file's version (section 14),
    if it sent one: ranges with one tag come from one version of the file."""

    __slots__ = ()


def writable_view(into: bytearray | memoryview) -> memoryview:
    """``into`` as a flat writable byte view; ValueError for read-only memory."""
    view = memoryview(into).cast("B")
    if view.readonly:
        raise ValueError("a ranged read needs a writable buffer (a bytearray, say)")
    return view


class RangeRead:
    """One ranged read of ``remote`` from ``offset`` into ``into`` (``len(into)`` bytes)."""

    def __init__(self, remote: str, offset: int, into: memoryview) -> None:
        if type(offset) is not int or offset < 0:
            raise ValueError("a ranged read needs an integer offset >= 0")
        self.remote, self.offset, self.into = remote, offset, into

    @property
    def length(self) -> int:
        return len(self.into)

    def request(self) -> JSONObject:
        return {"op": "get", "path": self.remote, "offset": self.offset,
                "length": self.length}

    def receive(self, chan: Channel, header: JSONObject, next_header: Callable[[], JSONObject],
                timeout: float | None, algorithm: str) -> RangeInfo | PyftpError:
        """Read the reply, the payload (into ``into``) and the digest frame; the range's
        :class:`RangeInfo`, or the per-read error (a refusal, a checksum mismatch).
        A reply that does not add up raises ProtocolError: the stream is lost."""
        if header.get("ok") is not True:
            return reply_error(header)
        reply = read_reply("get", header)
        if (reply["offset"] != self.offset or reply["size"] != self.length
                or chan.decoder.payload_left != self.length):
            raise ProtocolError(f"the server's get reply for {self.remote} does not add up "
                                f"(asked {self.offset}+{self.length}, got {reply['offset']}+"
                                f"{reply['size']})")
        h = digests.new(algorithm)
        chan.recv_payload_to(self.into, timeout=timeout, hasher=h)
        tail = next_header()
        if tail.get("ok") is not True:
            return reply_error(tail)
        expected = digest_in("get", read_reply("get.digest", tail), algorithm)
        got = h.hexdigest()
        if got != expected:
            end = self.offset + self.length
            return ChecksumMismatchError(
                f"checksum mismatch: bytes {self.offset}..{end} of {self.remote} arrived "
                f"with {digests.label(algorithm)} {got[:12]}..., the server has "
                f"{str(expected)[:12]}...")
        return RangeInfo(reply["total"], reply.get("mtime"), reply.get("version"))
