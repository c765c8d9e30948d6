"""Property tests: the frame decoder survives any byte stream, in any chunking.

Whatever arrives, :class:`~pyftp.protocol.FrameDecoder` only ever returns Header,
Data or NEED_DATA events or raises :class:`~pyftp.errors.ProtocolError` (never another
exception), and each time it asks for more data it holds fewer than ``4 + MAX_HEADER``
bytes, so a peer cannot make it buffer more than one header. Valid streams, mutated,
reach the deep corners (huge lengths, broken JSON, bad sizes) that random bytes rarely
hit.
"""
from __future__ import annotations

import json
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyftp.errors import ProtocolError
from pyftp.protocol import MAX_HEADER, NEED_DATA, Data, FrameDecoder, Header, encode_frame

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _drive(stream: bytes, cuts: list[int]) -> list:
    """Feed ``stream`` in pieces cut at ``cuts``; return the events; check the invariant."""
    dec = FrameDecoder()
    events: list = []
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    try:
        for start, end in zip(points, points[1:]):
            dec.feed(stream[start:end])
            while True:
                ev = dec.next_event()
                if ev is NEED_DATA:
                    assert dec.buffered < 4 + MAX_HEADER, dec.buffered
                    break
                assert isinstance(ev, (Header, Data)), ev
                if isinstance(ev, Header):
                    assert isinstance(ev.fields, dict)
                    assert type(ev.size) is int and ev.size >= 0
                events.append(ev)
    except ProtocolError as exc:
        assert exc.code == "bad_frame" and exc.message
        # errors stick: the decoder never goes on out of step after a bad frame
        try:
            dec.next_event()
        except ProtocolError:
            pass
        else:  # pragma: no cover - the assertion below explains it
            raise AssertionError("the decoder went on after a protocol error")
        events.append(exc)
    return events


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12)

headers = st.fixed_dictionaries(
    {"op": st.sampled_from(["ls", "get", "put", "data", "upper", "x"])},
    optional={"path": st.text(max_size=30), "extra": json_values})


@st.composite
def valid_streams(draw) -> bytes:
    """A few well-formed frames with payloads."""
    out = b""
    for _ in range(draw(st.integers(1, 4))):
        header = draw(headers)
        payload = draw(st.binary(max_size=64))
        if payload:
            header = {**header, "size": len(payload)}
        out += encode_frame(header) + payload
    return out


@st.composite
def mutated_streams(draw) -> bytes:
    """A valid stream with bytes flipped, inserted or removed, or a length rewritten."""
    data = bytearray(draw(valid_streams()))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "length", "truncate"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[pos] ^= draw(st.integers(1, 255))
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete" and data:
            del data[pos:pos + draw(st.integers(1, 8))]
        elif kind == "length" and len(data) >= 4:
            n = draw(st.sampled_from([0, 1, MAX_HEADER, MAX_HEADER + 1, 2**31, 2**32 - 1]))
            data[0:4] = struct.pack(">I", n)
        elif kind == "truncate":
            del data[pos:]
    return bytes(data)


cut_lists = st.lists(st.integers(0, 1 << 20), max_size=12)


@FUZZ
@given(st.binary(max_size=512), cut_lists)
def test_arbitrary_bytes(stream, cuts):
    _drive(stream, cuts)


@FUZZ
@given(mutated_streams(), cut_lists)
def test_mutated_frames(stream, cuts):
    _drive(stream, cuts)


@FUZZ
@given(valid_streams(), cut_lists)
def test_valid_frames_decode_the_same_in_any_chunking(stream, cuts):
    whole = _drive(stream, [])
    pieces = _drive(stream, cuts)
    assert not any(isinstance(e, Exception) for e in whole)
    assert [e.fields for e in whole if isinstance(e, Header)] == \
           [e.fields for e in pieces if isinstance(e, Header)]
    assert b"".join(e.data for e in whole if isinstance(e, Data)) == \
           b"".join(e.data for e in pieces if isinstance(e, Data))


@settings(max_examples=25, deadline=None)
@given(st.integers(4 + 1, 4 + MAX_HEADER - 1), st.binary(min_size=1, max_size=8))
def test_a_header_at_the_cap_is_never_buffered_past_it(size_hint, junk):
    """A peer announcing the largest header, then more: held only up to the cap."""
    dec = FrameDecoder()
    body = b'{"p":"' + b"a" * (MAX_HEADER - 8) + b'"}'
    assert len(body) == MAX_HEADER
    stream = struct.pack(">I", MAX_HEADER) + body
    dec.feed(stream[:size_hint])
    assert dec.next_event() is NEED_DATA
    assert dec.buffered < 4 + MAX_HEADER
    dec.feed(stream[size_hint:] + junk)
    ev = dec.next_event()
    assert isinstance(ev, Header) and len(ev.fields["p"]) == MAX_HEADER - 8
    # the junk after it is the start of the next frame, never more than a header's worth
    try:
        assert dec.next_event() is NEED_DATA
    except ProtocolError:
        pass
    assert dec.buffered <= len(junk)


@settings(max_examples=100, deadline=None)
@given(json_values)
def test_any_json_value_as_a_header(value):
    """JSON that is not an object, or an object with a bad size, is a ProtocolError."""
    body = json.dumps(value).encode()
    if not 1 <= len(body) <= MAX_HEADER:
        return
    events = _drive(struct.pack(">I", len(body)) + body, [])
    if isinstance(value, dict) and type(value.get("size", 0)) is int \
            and 0 <= value.get("size", 0) <= 2**53 - 1:
        assert isinstance(events[0], Header) and events[0].fields == value
    else:
        assert isinstance(events[-1], ProtocolError)


@settings(max_examples=30, deadline=None)
@given(st.integers(MAX_HEADER + 1, 2**32 - 1), st.integers(0, 4096), cut_lists)
def test_an_oversized_length_is_refused_before_its_body_is_buffered(length, extra, cuts):
    """Announcing more than the cap fails at once, however the bytes are cut."""
    stream = struct.pack(">I", length) + b"{" * (MAX_HEADER + extra)
    events = _drive(stream, cuts)
    assert isinstance(events[-1], ProtocolError) and not events[:-1]
