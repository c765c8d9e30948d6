"""The pyftp wire protocol's framing, sans I/O: bytes in, frames out, and back.

A frame is a 4-byte unsigned big-endian length N (1 <= N <= 65536), N bytes of UTF-8
JSON that must be an object (the header), then exactly ``header["size"]`` payload
bytes (no ``size`` means 0). :class:`FrameDecoder` turns bytes into :class:`Header` and
:class:`Data` events; :func:`encode_frame` turns a header into bytes. The payload never
has to pass through the decoder: once a header announced ``size`` bytes, an I/O layer may
move them straight between socket and file and tell the decoder with
:meth:`FrameDecoder.payload_consumed`.

Import rule: imports only :mod:`pyftp.errors`. No sockets, no files, no threads.
"""
from __future__ import annotations

import json
import struct

from ..hints import TYPE_CHECKING, LEAN

from ..records import dataclass
from ..errors import ProtocolError

if TYPE_CHECKING or not LEAN:  # names for annotations; see pyftp.hints
    from typing import Any, Mapping, TypeAlias

__all__ = [
    "MAX_HEADER", "MAX_SIZE", "Header", "Data", "NEED_DATA", "FrameDecoder", "encode_frame",
    "dump_json", "wire_mtime", "mtime_ns", "JSONObject",
]

#: largest header, in bytes (the value of the length prefix)
MAX_HEADER = 65536
#: largest ``size`` a frame may announce (2**53 - 1: exact in every JSON implementation)
MAX_SIZE = 2**53 - 1

_LENGTH = struct.Struct(">I")

#: a frame header as decoded: a JSON object from the peer. Its values stay ``Any``
#: because they are untrusted until checked (schema.validate_request on the server,
#: schema.read_reply on the client), which is where each field gets its real type.
if TYPE_CHECKING or not LEAN:
    JSONObject: TypeAlias = dict[str, Any]
else:  # a lean process never evaluates annotations (pyftp.hints)
    JSONObject = dict


@dataclass(frozen=True)
class Header:
    """A complete frame header. ``size`` payload bytes follow it on the wire."""

    fields: JSONObject

    @property
    def size(self) -> int:
        size: int = self.fields.get("size", 0)  # checked by _parse_header
        return size


@dataclass(frozen=True)
class Data:
    """A piece of the current frame's payload. ``last`` marks its final piece."""

    data: bytes
    last: bool


class _NeedData:
    def __repr__(self) -> str:
        return "NEED_DATA"


#: returned by :meth:`FrameDecoder.next_event` when more bytes must be fed
NEED_DATA = _NeedData()


def encode_frame(header: Mapping[str, Any]) -> bytes:
    """Encode a header (without its payload) as length prefix + JSON.

    Non-ASCII text is written as JSON escapes, so a name that is not valid UTF-8 on the
    server (held as lone surrogates, PEP 383) survives the trip and names the same file.
    """
    body = _ENCODER.encode(header).encode("ascii")
    if not 1 <= len(body) <= MAX_HEADER:
        raise ValueError(f"header of {len(body)} bytes exceeds the {MAX_HEADER}-byte limit")
    return _LENGTH.pack(len(body)) + body


def _parse_header(body: bytes) -> JSONObject:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError("frame header is not valid UTF-8") from exc
    try:
        value = _DECODER.decode(text)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError("frame header is not valid JSON") from exc
    if not isinstance(value, dict):
        raise ProtocolError("frame header must be a JSON object")
    size = value.get("size", 0)
    if type(size) is not int or not 0 <= size <= MAX_SIZE:
        raise ProtocolError("frame 'size' must be an integer from 0 to 2**53-1")
    return value


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


# Built once: json.dumps/json.loads with options build a new encoder/decoder on every
# call, which was a measurable part of a small request's cost (two frames per request)
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def dump_json(value: Any) -> bytes:
    """Compact ASCII JSON, as frames carry it (listing payloads use it too)."""
    return _ENCODER.encode(value).encode("ascii")


def wire_mtime(ns: int) -> float:
    """A modification time in nanoseconds as the wire carries it: seconds, to the microsecond.

    Integer rounding first, one division last: the result is the float nearest to the
    exact microsecond, so :func:`mtime_ns` gives the same instant back (up to 2**32 s,
    the year 2106; past that a float no longer holds microseconds).
    (``round(ns / 1e9, 6)`` goes through a float that holds only about 0.24 us at today's
    dates, and its decimal rounding costs a microsecond or more per call in listings.)
    """
    return (ns + 500) // 1000 / 1e6


def mtime_ns(seconds: Any) -> int:
    """The inverse of :func:`wire_mtime`: a wire mtime as whole nanoseconds for ``os.utime``.

    Raises ValueError, TypeError or OverflowError for what is not a finite number.
    """
    return round(float(seconds) * 1e6) * 1000


class FrameDecoder:
    """Incremental frame parser: ``feed`` bytes, then call ``next_event`` until NEED_DATA.

    Invariant: whenever ``next_event`` returns NEED_DATA, fewer than ``4 + MAX_HEADER``
    bytes are buffered, so a peer can never make the decoder hold more than one header.
    """

    def __init__(self, max_header: int = MAX_HEADER) -> None:
        self.max_header = max_header
        self._buf = bytearray()
        self._payload_left = 0
        self._failed: ProtocolError | None = None

    @property
    def payload_left(self) -> int:
        """Payload bytes of the current frame not yet returned or consumed."""
        return self._payload_left

    @property
    def buffered(self) -> int:
        """Bytes fed but not yet returned as events."""
        return len(self._buf)

    @property
    def in_frame(self) -> bool:
        """True once any byte of a frame has arrived and the frame is not complete."""
        return bool(self._buf) or self._payload_left > 0

    def feed(self, data: bytes) -> None:
        self._buf += data

    def next_event(self) -> Header | Data | _NeedData:
        """Return the next event, or NEED_DATA. Raises ProtocolError on a bad frame."""
        if self._failed is not None:
            raise self._failed
        if self._payload_left:
            if not self._buf:
                return NEED_DATA
            n = min(self._payload_left, len(self._buf))
            chunk = bytes(self._buf[:n])
            del self._buf[:n]
            self._payload_left -= n
            return Data(chunk, last=self._payload_left == 0)
        if len(self._buf) < 4:
            return NEED_DATA
        (length,) = _LENGTH.unpack_from(self._buf)
        if not 1 <= length <= self.max_header:
            hint = ""
            if self._buf[:2] == b"\x16\x03":
                hint = " (this is a TLS handshake: the peer uses TLS and this side does not)"
            self._fail(f"frame header length {length} is outside 1..{self.max_header}{hint}")
        if len(self._buf) < 4 + length:
            return NEED_DATA
        body = bytes(self._buf[4:4 + length])
        del self._buf[:4 + length]
        try:
            fields = _parse_header(body)
        except ProtocolError as exc:
            self._failed = exc
            raise
        self._payload_left = fields.get("size", 0)
        return Header(fields)

    def take_buffered_payload(self, limit: int) -> bytes:
        """Return up to ``limit`` already-buffered payload bytes of the current frame."""
        n = min(limit, self._payload_left, len(self._buf))
        chunk = bytes(self._buf[:n])
        del self._buf[:n]
        self._payload_left -= n
        return chunk

    def payload_consumed(self, n: int) -> None:
        """Record that ``n`` payload bytes were read from the socket directly.

        Only valid while nothing is buffered: the caller must first drain the buffer
        with :meth:`take_buffered_payload`, or the stream would go out of step.
        """
        if self._buf or n > self._payload_left or n < 0:
            raise RuntimeError("payload_consumed() out of step with the decoder")
        self._payload_left -= n

    def _fail(self, message: str) -> None:
        self._failed = ProtocolError(message)
        raise self._failed
