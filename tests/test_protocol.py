"""pyftp.protocol without sockets: frames in, events out, the schema and its limits."""
from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyftp import errors
from pyftp.protocol import (ARGS, COMMANDS, FEATURES, REPLIES, REPLY_SHAPES, MAX_HEADER, MAX_PATH, MAX_SIZE, NEED_DATA, Data,
                            FrameDecoder, Header, dump_json, encode_frame, is_partial_name,
                            mtime_ns, ok, os_bytes, partial_name, raise_for_reply,
                            validate_request, wire_mtime)


def frame(header: dict, payload: bytes = b"") -> bytes:
    """A frame built by hand, independent of encode_frame."""
    body = json.dumps(header).encode("utf-8")
    return struct.pack(">I", len(body)) + body + payload


def raw(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


def events(dec: FrameDecoder) -> list:
    out = []
    while True:
        ev = dec.next_event()
        if ev is NEED_DATA:
            return out
        out.append(ev)


def collect(chunks) -> list:
    """Feed chunks one by one; return headers and payloads reassembled per frame."""
    dec = FrameDecoder()
    got: list = []
    for c in chunks:
        dec.feed(c)
        for ev in events(dec):
            if isinstance(ev, Header):
                got.append([ev.fields, b""])
            else:
                assert isinstance(ev, Data)
                got[-1][1] += ev.data
    assert not dec.in_frame
    return [(h, p) for h, p in got]


# ------------------------------------------------------------------ encoding

def test_encode_is_length_prefix_plus_compact_ascii_json():
    data = encode_frame({"op": "pwd"})
    assert data == b"\x00\x00\x00\x0c" + b'{"op":"pwd"}'


def test_worked_example_of_docs():
    # the example docs/protocol.md shows byte by byte
    data = encode_frame({"op": "get", "path": "a.txt"})
    assert data.hex(" ") == ("00 00 00 1b 7b 22 6f 70 22 3a 22 67 65 74 22 2c 22 70 61 74 "
                             "68 22 3a 22 61 2e 74 78 74 22 7d")


def test_non_ascii_is_escaped_and_round_trips():
    header = {"op": "stat", "path": "café/ünï 名.txt"}
    data = encode_frame(header)
    assert all(b < 128 for b in data[4:])
    assert b"\\u00e9" in data
    assert collect([data]) == [(header, b"")]


def test_lone_surrogates_round_trip_as_escapes():
    name = os_bytes_name = b"caf\xe9.txt".decode("utf-8", "surrogateescape")
    assert "\udce9" in name
    data = encode_frame({"op": "get", "path": os_bytes_name})
    assert b"\\udce9" in data
    [(h, _)] = collect([data])
    assert h["path"] == name and os_bytes(h["path"]) == b"caf\xe9.txt"


def test_encode_refuses_nan_and_oversize():
    with pytest.raises(ValueError):
        encode_frame({"op": "put", "mtime": float("nan")})
    with pytest.raises(ValueError):
        encode_frame({"pad": "x" * MAX_HEADER})
    # exactly at the limit is fine
    body_len = len(json.dumps({"pad": ""}, separators=(",", ":")))
    data = encode_frame({"pad": "x" * (MAX_HEADER - body_len)})
    assert struct.unpack(">I", data[:4])[0] == MAX_HEADER
    assert collect([data])[0][0]["pad"] == "x" * (MAX_HEADER - body_len)


# ------------------------------------------------------------------ decoding

FRAMES = [
    ({"op": "hello", "version": 1}, b""),
    ({"op": "upper", "size": 5}, b"hello"),
    ({"ok": True, "size": 0}, b""),
    ({"ok": True, "size": 3}, b"\x00\xff\n"),
]


def test_frames_fed_whole():
    for h, p in FRAMES:
        assert collect([frame(h, p)]) == [(h, p)]


def test_frames_fed_one_byte_at_a_time():
    stream = b"".join(frame(h, p) for h, p in FRAMES)
    assert collect([stream[i:i + 1] for i in range(len(stream))]) == FRAMES


def test_several_frames_in_one_feed():
    stream = b"".join(frame(h, p) for h, p in FRAMES)
    assert collect([stream]) == FRAMES


def test_payload_split_across_feeds_comes_out_in_pieces():
    payload = bytes(range(256)) * 40
    data = frame({"size": len(payload)}, payload)
    dec = FrameDecoder()
    dec.feed(data[:100])
    [hdr, first] = events(dec)
    assert isinstance(hdr, Header) and hdr.size == len(payload)
    assert isinstance(first, Data) and not first.last
    assert dec.payload_left == len(payload) - len(first.data)
    dec.feed(data[100:5000])
    [mid] = events(dec)
    assert not mid.last
    dec.feed(data[5000:])
    [end] = events(dec)
    assert end.last and dec.payload_left == 0
    assert first.data + mid.data + end.data == payload


def test_wire_mtime_rounds_to_the_nearest_microsecond():
    assert wire_mtime(1_767_225_600_500_000_000) == 1767225600.5
    assert wire_mtime(1_767_225_600_000_000_499) == 1767225600.0
    assert wire_mtime(1_767_225_600_000_000_500) == 1767225600.000001
    assert wire_mtime(0) == 0.0
    # what the docs promise: at most 6 decimals in the JSON
    assert dump_json({"mtime": wire_mtime(1_796_039_945_713_592_832)}) == b'{"mtime":1796039945.713593}'


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=2**32 * 10**9))
def test_mtime_survives_the_wire_to_the_microsecond(ns):
    # up to 2**32 s (the year 2106) a float holds the microsecond; beyond, it cannot
    t = wire_mtime(ns)
    back = mtime_ns(t)
    assert back % 1000 == 0 and abs(back - ns) <= 500
    assert mtime_ns(json.loads(dump_json(t))) == back  # through JSON text, too
    assert wire_mtime(back) == t


def test_mtime_ns_refuses_what_is_not_a_number():
    for bad in ("x", None, float("inf"), float("nan")):
        with pytest.raises((ValueError, TypeError, OverflowError)):
            mtime_ns(bad)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.dictionaries(st.text(max_size=5), st.text(max_size=8), max_size=3),
                          st.binary(max_size=300)), min_size=1, max_size=5),
       st.lists(st.integers(min_value=1, max_value=50), min_size=1, max_size=30))
def test_any_split_gives_the_same_frames(frames, cuts):
    wanted = []
    stream = b""
    for h, p in frames:
        h = {k: v for k, v in h.items() if k != "size"}
        if p:
            h["size"] = len(p)
        wanted.append((h, p))
        stream += encode_frame(h) + p
    chunks, pos, i = [], 0, 0
    while pos < len(stream):
        n = cuts[i % len(cuts)]
        chunks.append(stream[pos:pos + n])
        pos, i = pos + n, i + 1
    assert collect(chunks) == wanted


def test_payload_bypass_with_take_and_consumed():
    payload = b"abcdefghij"
    dec = FrameDecoder()
    dec.feed(frame({"size": 10}, payload[:4]))
    hdr = dec.next_event()
    assert isinstance(hdr, Header)
    assert dec.take_buffered_payload(100) == b"abcd"
    assert dec.buffered == 0 and dec.payload_left == 6
    dec.payload_consumed(6)  # read straight from the socket into a file
    assert dec.payload_left == 0 and not dec.in_frame
    dec.feed(frame({"op": "pwd"}))
    assert dec.next_event() == Header({"op": "pwd"})


def test_payload_consumed_refuses_to_go_out_of_step():
    dec = FrameDecoder()
    dec.feed(frame({"size": 4}, b"ab"))
    dec.next_event()
    with pytest.raises(RuntimeError):
        dec.payload_consumed(2)  # two bytes still buffered
    dec.take_buffered_payload(2)
    with pytest.raises(RuntimeError):
        dec.payload_consumed(3)  # more than announced
    dec.payload_consumed(2)


def test_in_frame_tracks_partial_headers():
    dec = FrameDecoder()
    assert not dec.in_frame
    dec.feed(b"\x00")
    assert dec.next_event() is NEED_DATA and dec.in_frame


# ------------------------------------------------------------------ limits

def bad(data: bytes) -> errors.ProtocolError:
    dec = FrameDecoder()
    dec.feed(data)
    with pytest.raises(errors.ProtocolError) as info:
        events(dec)
    assert info.value.code == "bad_frame"
    return info.value


@pytest.mark.parametrize("length", [0, MAX_HEADER + 1, 2**32 - 1])
def test_length_outside_limits_fails_on_the_prefix_alone(length):
    exc = bad(struct.pack(">I", length))
    assert str(length) in exc.message


def test_length_at_the_limit_waits_for_the_body():
    dec = FrameDecoder()
    dec.feed(struct.pack(">I", MAX_HEADER) + b"{")
    assert dec.next_event() is NEED_DATA


def test_tls_hello_gets_a_hint():
    assert "TLS" in bad(b"\x16\x03\x01\x02\x00\x01").message


@pytest.mark.parametrize("body, what", [
    (b'{"op":"\xff"}', "UTF-8"),
    (b'{"op": pwd}', "JSON"),
    (b"{", "JSON"),
    (b'{"size": NaN}', "JSON"),
    (b'{"x": Infinity}', "JSON"),
    (b'{"x": -Infinity}', "JSON"),
    (b"[1, 2]", "object"),
    (b'"op"', "object"),
    (b"null", "object"),
    (b"7", "object"),
    (b'{"size": -1}', "size"),
    (b'{"size": 1.0}', "size"),
    (b'{"size": 1.5}', "size"),
    (b'{"size": true}', "size"),
    (b'{"size": "3"}', "size"),
    (b'{"size": null}', "size"),
    (b'{"size": 9007199254740992}', "size"),
    (b'{"size": 1e400}', "size"),
    (b"[" * MAX_HEADER, "JSON"),
])
def test_bad_headers(body, what):
    exc = bad(raw(body))
    assert what in exc.message


def test_deep_nesting_within_the_limit_is_a_protocol_error_not_a_crash():
    body = b'{"a":' + b"[" * 32000 + b"]" * 32000 + b"}"
    assert len(body) <= MAX_HEADER
    bad(raw(body))


def test_largest_size_is_accepted():
    dec = FrameDecoder()
    dec.feed(raw(b'{"size": 9007199254740991}'))
    assert dec.next_event().size == MAX_SIZE


def test_errors_stick():
    dec = FrameDecoder()
    dec.feed(raw(b"[]"))
    with pytest.raises(errors.ProtocolError) as first:
        dec.next_event()
    dec.feed(frame({"op": "pwd"}))  # a good frame after a bad one is never believed
    with pytest.raises(errors.ProtocolError) as second:
        dec.next_event()
    assert second.value is first.value


def test_length_errors_stick_too():
    dec = FrameDecoder()
    dec.feed(b"\x00\x00\x00\x00")
    with pytest.raises(errors.ProtocolError):
        dec.next_event()
    with pytest.raises(errors.ProtocolError):
        dec.next_event()


def test_decoder_never_buffers_beyond_one_header():
    dec = FrameDecoder()
    dec.feed(struct.pack(">I", MAX_HEADER) + b" " * (MAX_HEADER - 1))
    assert dec.next_event() is NEED_DATA
    assert dec.buffered < 4 + MAX_HEADER


# ------------------------------------------------------------------ schema

def test_every_op_is_declared_once_with_help():
    assert list(COMMANDS) == ["hello", "ls", "stat", "cd", "pwd", "mkdir", "rm", "rmdir",
                              "mv", "get", "put", "hash", "upper", "df", "quit"]
    for name, cmd in COMMANDS.items():
        assert cmd.name == name and cmd.help
    assert [c.name for c in COMMANDS.values() if c.payload] == ["upper"]
    assert {c.name for c in COMMANDS.values() if c.writes} == {"mkdir", "rm", "rmdir", "mv", "put"}


@pytest.mark.parametrize("shapes, declared", [
    (ARGS, {op: cmd.fields for op, cmd in COMMANDS.items()}),
    (REPLY_SHAPES, REPLIES),
], ids=["requests", "replies"])
def test_each_message_type_names_exactly_its_declared_fields(shapes, declared):
    # the TypedDicts type what validate_request and read_reply return; the declarations
    # are what those two check at run time, so the two must name the same fields
    assert list(shapes) == list(declared)
    for op, fields in declared.items():
        assert shapes[op].__required_keys__ == {f.name for f in fields if f.required}, op
        assert shapes[op].__optional_keys__ == {f.name for f in fields if not f.required}, op


GOOD = {
    "hello": {"version": 1, "client": "x/1", "user": "u", "password": "p"},
    "ls": {"path": "a"},
    "stat": {"path": "a"},
    "cd": {"path": "a"},
    "pwd": {},
    "mkdir": {"path": "a", "parents": True},
    "rm": {"path": "a"},
    "rmdir": {"path": "a"},
    "mv": {"src": "a", "dst": "b", "overwrite": False},
    "get": {"path": "a", "offset": 3},
    "put": {"path": "a", "total": 3, "sha256": "0" * 64, "overwrite": True,
            "resume": False, "mtime": 1700000000.25},
    "hash": {"path": "a"},
    "upper": {"size": 3},
    "df": {},
    "quit": {},
}


@pytest.mark.parametrize("op", list(COMMANDS))
def test_every_op_accepts_its_full_request(op):
    cmd, args = validate_request({"op": op, **GOOD[op], "future_field": [1]})
    assert cmd is COMMANDS[op]
    assert args == {k: v for k, v in GOOD[op].items() if k != "size"}


REQUIRED = [(op, f.name) for op, c in COMMANDS.items() for f in c.fields if f.required]


def test_required_fields_are_the_documented_ones():
    assert sorted(REQUIRED) == sorted([
        ("hello", "version"), ("stat", "path"), ("cd", "path"), ("mkdir", "path"),
        ("rm", "path"), ("rmdir", "path"), ("mv", "src"), ("mv", "dst"), ("get", "path"),
        ("put", "path"), ("put", "total"), ("hash", "path")])


@pytest.mark.parametrize("op, name", REQUIRED)
def test_missing_required_field(op, name):
    req = {"op": op, **GOOD[op]}
    del req[name]
    with pytest.raises(errors.BadRequestError, match=f"missing field '{name}'"):
        validate_request(req)
    req[name] = None  # null counts as missing
    with pytest.raises(errors.BadRequestError, match="missing"):
        validate_request(req)


WRONG = {
    "path": ["", 5, True, ["a"], "x" * 4097],
    "str": [5, False, {"a": 1}],
    "int": [-1, 1.0, True, "1", MAX_SIZE + 1],
    "bool": [1, 0, "true"],
    "number": [-0.5, "1", True, 2**40],
    "sha256": ["0" * 63, "A" * 64, "g" * 64, 5],
    "digest": ["0" * 63, "A" * 64, "g" * 64, 5],
    "names": [[], "blake3", [5], [""], ["x" * 33], ["sha256"] * 9],
}


@pytest.mark.parametrize("op, field_, value", [
    (op, f.name, v) for op, c in COMMANDS.items() for f in c.fields for v in WRONG[f.kind]])
def test_wrong_typed_field(op, field_, value):
    req = {"op": op, **GOOD[op], field_: value}
    with pytest.raises(errors.BadRequestError) as info:
        validate_request(req)
    assert repr(field_) in info.value.message


def test_path_of_4096_characters_is_allowed():
    _, args = validate_request({"op": "stat", "path": "x" * 4096})
    assert len(args["path"]) == 4096


@pytest.mark.parametrize("op", [None, 3, "", "data", "DELE", "x" * 100, ["ls"]])
def test_unknown_op(op):
    req = {} if op is None else {"op": op}
    with pytest.raises(errors.BadRequestError, match="unknown op") as info:
        validate_request(req)
    assert "known ops: hello" in info.value.message
    assert "x" * 50 not in info.value.message  # long junk is not echoed back


@pytest.mark.parametrize("op", [o for o, c in COMMANDS.items() if not c.payload])
def test_payload_on_a_no_payload_op(op):
    with pytest.raises(errors.BadRequestError, match="takes no payload"):
        validate_request({"op": op, **GOOD[op], "size": 1})
    validate_request({"op": op, **GOOD[op], "size": 0})


def test_upper_may_have_no_payload():
    cmd, args = validate_request({"op": "upper"})
    assert cmd.name == "upper" and args == {}


# ------------------------------------------------------------------ replies

def test_ok_builds_a_success_reply():
    assert ok(cwd="/") == {"ok": True, "cwd": "/"}


def test_raise_for_reply():
    good = {"ok": True, "cwd": "/a"}
    assert raise_for_reply(good) is good
    with pytest.raises(errors.NotFoundError, match="no such"):
        raise_for_reply({"ok": False, "error": "not_found", "message": "no such"})
    with pytest.raises(errors.RemoteError) as info:
        raise_for_reply({"ok": False, "error": "strange"})
    assert info.value.code == "strange"
    for reply in ({}, {"ok": 1}, {"ok": "true"}, {"ok": None}):
        with pytest.raises(errors.ProtocolError):
            raise_for_reply(reply)


# ------------------------------------------------------------------ partial names

def test_partial_name_is_hidden_and_recognised():
    p = partial_name("report.pdf")
    assert p == ".report.pdf.pyftp-part"
    assert is_partial_name(p) and is_partial_name(p + ".json") and is_partial_name(p + ".json.tmp")
    for name in ("report.pdf", ".hidden", "x.pyftp-part", ".pyftp-part.txt", "a.pyftp-part.json"):
        assert not is_partial_name(name)


@pytest.mark.parametrize("name", ["a" * 255, "é" * 127, "名" * 85, "x" * 240,
                                  b"\xff".decode("utf-8", "surrogateescape") * 250])
def test_long_names_stay_within_255_bytes(name):
    p = partial_name(name)
    assert is_partial_name(p)
    for suffix in ("", ".json", ".json.tmp"):
        assert len(os_bytes(p + suffix)) <= 255
    assert partial_name(name) == p  # stable: both ends and later attempts agree
    assert partial_name(name + "b") != p


def test_names_up_to_the_limit_keep_their_readable_form():
    name = "a" * (255 - 9 - len(".") - len(".pyftp-part"))
    assert partial_name(name) == f".{name}.pyftp-part"
    assert partial_name(name + "a") != f".{name}a.pyftp-part"


# ------------------------------------------------------------------ docs/protocol.md in step

DOC = Path(__file__).resolve().parent.parent / "docs" / "protocol.md"


def test_the_spec_shows_the_bytes_encode_frame_writes():
    text = DOC.read_text(encoding="utf-8")
    assert encode_frame({"op": "get", "path": "a.txt"}).hex(" ") in text
    assert encode_frame({"op": "upper", "size": 2})[:4].hex(" ") + ' {"op":"upper","size":2}' in text
    assert encode_frame({"ok": True, "size": 2})[:4].hex(" ") + ' {"ok":true,"size":2}' in text


def test_the_spec_has_a_section_per_op_and_a_row_per_error_code():
    text = DOC.read_text(encoding="utf-8")
    for op in COMMANDS:
        if op != "hello":
            assert re.search(rf"^### 7\.\d+ `{op}`$", text, re.M), op
    for code in errors.ERROR_CODES:
        assert re.search(rf"^\| `{code}` \|", text, re.M), code
    for feature in FEATURES:
        assert f"| `{feature}` |" in text
    assert str(MAX_HEADER) in text and str(MAX_SIZE) in text and str(MAX_PATH) in text


# ------------------------------------------------------------------ replies and sub-frames

def test_every_op_has_a_declared_reply():
    from pyftp.protocol import COMMANDS, REPLIES
    assert set(COMMANDS) <= set(REPLIES)
    assert set(REPLIES) - set(COMMANDS) == {"get.digest", "put.final"}


def test_read_reply_checks_declared_fields_and_keeps_unknown_ones():
    import pytest
    from pyftp import errors
    from pyftp.protocol import read_reply
    good = {"ok": True, "size": 3, "offset": 0, "total": 3, "mtime": 1.5, "new": "x"}
    assert read_reply("get", good) == good
    with pytest.raises(errors.ProtocolError, match="get reply has no 'total'"):
        read_reply("get", {"ok": True, "size": 3, "offset": 0})
    with pytest.raises(errors.ProtocolError, match="bad 'offset'"):
        read_reply("put", {"ok": True, "offset": True})
    with pytest.raises(errors.ProtocolError, match="bad 'sha256'"):
        read_reply("hash", {"ok": True, "sha256": "ABC"})
    with pytest.raises(errors.NotFoundError):
        read_reply("stat", {"ok": False, "error": "not_found", "message": "no"})
    with pytest.raises(errors.ProtocolError, match="boolean 'ok'"):
        read_reply("pwd", {"cwd": "/"})
    assert read_reply("put", {"ok": True, "offset": 0, "token": "T"})["token"] == "T"


def test_read_subframe_checks_data_and_verify():
    import pytest
    from pyftp import errors
    from pyftp.protocol import read_subframe
    assert read_subframe("data", {"op": "data", "size": 4, "offset": 0})["size"] == 4
    assert read_subframe("verify", {"op": "verify", "sha256": "a" * 64})
    with pytest.raises(errors.BadRequestError, match="missing field 'size'"):
        read_subframe("data", {"op": "data"})
    with pytest.raises(errors.BadRequestError, match="expected a verify frame"):
        read_subframe("verify", {"op": "put"})
    with pytest.raises(errors.BadRequestError, match="'sha256' must be"):
        read_subframe("verify", {"op": "verify", "sha256": "xyz"})


def test_the_lazily_loaded_shape_names_are_exactly_the_shapes_module():
    """pyftp.protocol names the shapes without importing them (start-up): the list must
    stay in step with shapes.__all__, and each name must load on first use."""
    import pyftp.protocol as protocol
    from pyftp.protocol import shapes
    assert sorted(protocol.SHAPES) == sorted(shapes.__all__)
    assert all(getattr(protocol, name) is getattr(shapes, name) for name in protocol.SHAPES)
