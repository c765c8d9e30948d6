"""A named catalogue of attacks against a live pyftp server.

Each attack runs against a fresh server whose root sits in an "arena" next to things a
broken jail would expose: a ``secret`` file, a ``sentinel.txt`` beside the root, a
sibling folder whose name extends the root's (``root2``) and a folder outside. Symlinks
inside the root point at all of them. After every attack the same four checks run:

(a) the attacker got an error code or a closed connection (asserted by the attack),
(b) an ordinary Client is still served: ls, put, get and a SHA-256 check,
(c) nothing outside the root was read or written: the secret's bytes never reached
    the attacker, and every entry outside the root has the same type, size, mtime
    and contents as before, with nothing added,
(d) no partial was published: every visible file in the root holds complete contents
    (what it held before, or a payload the attack sent whole).

Attacks speak raw bytes (tests/helpers.py's RawConn or bare sockets) so that the
client library cannot tidy up what the server receives.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import selectors
import socket
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from helpers import RawConn, wait_for
from pyftp import Client, digests
from pyftp.protocol import MAX_SIZE, is_partial_name

#: the catalogue runs on the served folder; attacks marked ``s3_too`` run on an object
#: store as well (conftest's ``backend`` parameter)
pytestmark = pytest.mark.local_only

SECRET = b"TOP-SECRET-" + b"s" * 48
SENTINEL = b"sentinel beside the root\n"
GOOD = b"an ordinary file in the root\n"
VICTIM = b"a file that mv attacks try to move out\n"
PAYLOAD = b"attack payload, sent whole\n"
#: how long any single read of an attacker may wait before the test gives up
WAIT = 5.0


# --------------------------------------------------------------------- the arena
@dataclass
class Arena:
    """The served root, the things around it, and what the attack may leave behind."""

    base: Path
    root: Path
    local: Path
    server: object
    #: every byte the attackers received (checked for the secret)
    received: list[bytes] = field(default_factory=list)
    #: contents a visible file in the root may have after the attack (complete ones)
    complete: set[bytes] = field(default_factory=set)

    @property
    def address(self):
        return self.server.address

    def raw(self, hello: bool = True, **fields) -> "Attacker":
        return Attacker(self, hello=hello, **fields)

    def sock(self) -> socket.socket:
        s = socket.create_connection(self.address, timeout=WAIT)
        return s

    #: the served root is a prefix of an object store (no links, no FIFOs there)
    s3 = False

    def exists(self, name: str) -> bool:
        return (self.root / name).exists()

    def read(self, name: str) -> bytes:
        return (self.root / name).read_bytes()

    def write(self, name: str, data: bytes) -> None:
        (self.root / name).write_bytes(data)

    def is_dir(self, name: str) -> bool:
        return (self.root / name).is_dir()

    def partials(self) -> list[str]:
        return [p.name for p in self.root.iterdir() if is_partial_name(p.name)]

    def snapshot(self) -> dict:
        return _snapshot_outside(self.base, self.root)

    def visible_files(self) -> dict[str, bytes]:
        return _visible_files(self.root)


class S3Arena(Arena):
    """The same arena in a bucket: the root is ``PREFIX/root/``; the secret, a sibling
    prefix extending the root's name (``root2/``) and keys outside sit around it."""

    s3 = True

    def __init__(self, s3, bucket: str, prefix: str, local: Path, make_server, **overrides):
        self.client, self.bucket, self.prefix = s3, bucket, prefix
        self.key_root = prefix + "root/"
        for key, data in {"root/good.txt": GOOD, "root/victim.txt": VICTIM,
                          "root/sub/inner.txt": GOOD, "secret": SECRET,
                          "sentinel.txt": SENTINEL, "root2/sib.txt": SECRET,
                          "outside/inner": SECRET}.items():
            s3.put_object(Bucket=bucket, Key=prefix + key, Body=data)
        s3.put_object(Bucket=bucket, Key="top-secret", Body=SECRET)
        server = make_server(root=f"s3://{bucket}/{self.key_root}", **overrides)
        super().__init__(local, local / "no-root", local, server)

    def _keys(self, prefix: str) -> dict[str, str]:
        out = {}
        for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix):
            for o in page.get("Contents", ()):
                out[o["Key"]] = o["ETag"]
        return out

    def exists(self, name: str) -> bool:
        return self.key_root + name in self._keys(self.key_root + name)

    def read(self, name: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=self.key_root + name)[
            "Body"].read()

    def write(self, name: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self.key_root + name, Body=data)

    def is_dir(self, name: str) -> bool:
        return bool(self._keys(self.key_root + name + "/"))

    def partials(self) -> list[str]:
        names = [k.rsplit("/", 1)[-1] for k in self._keys(self.key_root)]
        ups = self.client.list_multipart_uploads(Bucket=self.bucket, Prefix=self.key_root)
        return [n for n in names if is_partial_name(n)] + [
            u["Key"] for u in ups.get("Uploads", ())]

    def snapshot(self) -> dict:
        every = self._keys("")
        return {k: v for k, v in every.items() if not k.startswith(self.key_root)}

    def visible_files(self) -> dict[str, bytes]:
        return {k: self.client.get_object(Bucket=self.bucket, Key=k)["Body"].read()
                for k in self._keys(self.key_root)
                if not is_partial_name(k.rsplit("/", 1)[-1]) and not k.endswith("/")}


class Attacker(RawConn):
    """A RawConn that records what it receives, for the secret check."""

    def __init__(self, arena: Arena, **kw) -> None:
        self.arena = arena
        super().__init__(arena.address, timeout=WAIT, **kw)

    def read_frame(self):
        header, payload = super().read_frame()
        self.arena.received.append(json.dumps(header).encode() + payload)
        return header, payload

    def expect_error(self, header: dict, code: str, payload: bytes = b"") -> dict:
        reply, _ = self.request(header, payload)
        assert reply.get("ok") is False and reply.get("error") == code, reply
        assert isinstance(reply.get("message"), str) and reply["message"]
        return reply

    def expect_closed(self) -> None:
        assert self.is_closed(), "the server kept a broken connection open"

    def expect_alive(self) -> None:
        """The connection still answers a harmless request."""
        reply, _ = self.request({"op": "pwd"})
        assert reply["ok"] is True, reply


def _snapshot_outside(base: Path, root: Path) -> dict:
    """Type, size, mtime and contents of everything in the arena outside the root."""
    snap = {}
    for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
        if Path(dirpath) == base and root.name in dirnames:
            dirnames.remove(root.name)
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            if p.is_symlink():
                snap[str(p)] = ("link", os.readlink(p))
            elif p.is_dir():
                snap[str(p)] = ("dir", st.st_mtime_ns, st.st_mode)
            else:
                snap[str(p)] = ("file", st.st_size, st.st_mtime_ns, st.st_mode,
                                hashlib.sha256(p.read_bytes()).hexdigest())
    st = base.stat()
    snap[str(base)] = ("dir", st.st_mtime_ns)
    return snap


def _visible_files(root: Path) -> dict[str, bytes]:
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = Path(dirpath) / name
            if is_partial_name(name) or p.is_symlink() or not p.is_file():
                continue
            out[str(p.relative_to(root))] = p.read_bytes()
    return out


@pytest.fixture
def make_arena(tmp_path, make_server, backend, request):
    """``make_arena(**ServerConfig overrides)``: a fresh arena and server; checked after.

    Attacks marked ``s3_too`` run on an arena in a bucket as well (no links there)."""
    made = []

    def make(**overrides) -> Arena:
        if backend == "s3":
            import boto3
            from botocore.config import Config
            from conftest import _prefixes
            local = tmp_path / f"local{len(made)}"
            local.mkdir()
            a = S3Arena(boto3.client("s3", config=Config(s3={"addressing_style": "path"})),
                        request.getfixturevalue("s3_bucket"), f"arena{next(_prefixes)}/",
                        local, make_server, **overrides)
            a.complete = {GOOD, VICTIM, PAYLOAD}
            made.append((a, a.snapshot()))
            return a
        base = tmp_path / f"arena{len(made)}"
        root = base / "root"
        (root / "sub").mkdir(parents=True)
        (root / "good.txt").write_bytes(GOOD)
        (root / "victim.txt").write_bytes(VICTIM)
        (root / "sub" / "inner.txt").write_bytes(GOOD)
        os.mkfifo(root / "fifo")  # a read must never hang on it
        (base / "secret").write_bytes(SECRET)
        (base / "sentinel.txt").write_bytes(SENTINEL)
        (base / "root2").mkdir()  # its name extends the root's: "root" + "2"
        (base / "root2" / "sib.txt").write_bytes(SECRET)
        (base / "outside").mkdir()
        (base / "outside" / "inner").write_bytes(SECRET)
        os.symlink(base / "secret", root / "link_file")
        os.symlink("../outside", root / "link_dir")
        os.symlink(base / "root2", root / "link_sibling")
        os.symlink("/etc/passwd", root / "link_abs")
        local = tmp_path / f"local{len(made)}"
        local.mkdir()
        a = Arena(base, root, local, make_server(root=root, **overrides))
        a.complete = {GOOD, VICTIM, PAYLOAD}
        made.append((a, a.snapshot()))
        return a
    yield make
    for a, before in made:  # the four checks, after every attack
        _check_ordinary_client(a)                                            # (b)
        assert a.snapshot() == before, "something outside the root changed"
        for blob in a.received:                                              # (c)
            assert SECRET[:16] not in blob, "a byte from outside the root reached the attacker"
        for name, data in a.visible_files().items():                         # (d)
            assert data in a.complete, f"{name} was published with incomplete contents"


@pytest.fixture
def arena(make_arena) -> Arena:
    return make_arena()


def _check_ordinary_client(a: Arena) -> None:
    deadline = time.monotonic() + 10
    # attacks that fill the server leave sessions that take a moment to end
    while a.server.session_count and time.monotonic() < deadline:
        time.sleep(0.01)
    cfg = a.server.config
    with Client(*a.address, timeout=WAIT) as c:
        assert "good.txt" in [e.name for e in c.ls("/")]
        if cfg.read_only or cfg.min_free > 1 << 50:  # a server that takes no uploads
            c.get("good.txt", a.local / "probe.txt")
            assert (a.local / "probe.txt").read_bytes() == GOOD
            return
        data = os.urandom(min(150_000, cfg.max_file_size or 150_000))
        src = a.local / "probe.bin"
        src.write_bytes(data)
        res = c.put(src, "/probe.bin", overwrite=True)
        assert res.sha256 == digests.hash_bytes(data, res.algorithm)
        back = a.local / "back.bin"
        c.get("/probe.bin", back)
        assert back.read_bytes() == data
        c.rm("/probe.bin")


def _hdr(n: int) -> bytes:
    return struct.pack(">I", n)


def _frame(body: bytes) -> bytes:
    return _hdr(len(body)) + body


# --------------------------------------------------------------------- framing
FRAMING = {
    # name: raw bytes sent right after a good hello; the server must answer bad_frame and close
    "header_length_0": _hdr(0),
    "header_length_65537": _hdr(65537) + b"{" * 100,
    "header_length_2**32-1": _hdr(2**32 - 1) + b"x" * 100,
    "not_json": _frame(b"{this is not json"),
    "not_utf8": _frame(b'{"op":"ls","path":"\xff\xfe"}'),
    "json_array": _frame(b'["op","ls"]'),
    "json_string": _frame(b'"ls"'),
    "json_null": _frame(b"null"),
    "json_number": _frame(b"42"),
    "nan_constant": _frame(b'{"op":"ls","size":NaN}'),
    "deep_nesting": _frame(b'{"a":' + b"[" * 30000 + b"]" * 30000 + b"}"),
    "huge_number": _frame(b'{"op":"ls","size":' + b"9" * 5000 + b"}"),
    "raw_nul_in_json": _frame(b'{"op":"stat","path":"a\x00b"}'),
    "negative_size": _frame(b'{"op":"upper","size":-1}'),
    "fractional_size": _frame(b'{"op":"upper","size":1.5}'),
    "boolean_size": _frame(b'{"op":"upper","size":true}'),
    "string_size": _frame(b'{"op":"upper","size":"10"}'),
    "size_past_2**53": _frame(b'{"op":"upper","size":%d}' % (MAX_SIZE + 1)),
    "tls_client_hello": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,
    "http_request": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
}


@pytest.mark.s3_too
@pytest.mark.parametrize("name", FRAMING)
def test_framing_attack_gets_bad_frame_and_close(arena, name):
    with arena.raw() as a:
        a.send_raw(FRAMING[name])
        try:
            reply, _ = a.read_frame()
        except ConnectionError:
            reply = None  # closed without a reply: allowed, but we expect one
        assert reply is not None and reply["ok"] is False and reply["error"] == "bad_frame", reply
        a.expect_closed()


@pytest.mark.s3_too
@pytest.mark.parametrize("when", ["before_hello", "after_hello"])
def test_framing_attack_before_hello_too(arena, when):
    with arena.raw(hello=when == "after_hello") as a:
        a.send_raw(_hdr(0))
        reply, _ = a.read_frame()
        assert reply["error"] == "bad_frame"
        a.expect_closed()


# --------------------------------------------------------------------- requests
REQUESTS = {
    # name: (header, payload, expected code); the connection must go on afterwards
    "unknown_op": ({"op": "exec", "cmd": "rm -rf /"}, b"", "bad_request"),
    "no_op": ({"path": "/"}, b"", "bad_request"),
    "op_not_a_string": ({"op": ["ls"]}, b"", "bad_request"),
    "path_not_a_string": ({"op": "get", "path": 123}, b"", "bad_request"),
    "path_empty": ({"op": "stat", "path": ""}, b"", "bad_request"),
    "path_too_long": ({"op": "stat", "path": "a/" * 3000}, b"", "bad_request"),
    "name_too_long": ({"op": "mkdir", "path": "n" * 300}, b"", "bad_request"),
    "total_not_an_int": ({"op": "put", "path": "x", "total": "10"}, b"", "bad_request"),
    "total_negative": ({"op": "put", "path": "x", "total": -5}, b"", "bad_request"),
    "total_float": ({"op": "put", "path": "x", "total": 1.0}, b"", "bad_request"),
    "sha256_not_hex": ({"op": "put", "path": "x", "total": 1, "sha256": "zz"}, b"", "bad_request"),
    "parents_not_bool": ({"op": "mkdir", "path": "d", "parents": "yes"}, b"", "bad_request"),
    "offset_negative": ({"op": "get", "path": "good.txt", "offset": -1}, b"", "bad_request"),
    "offset_past_end": ({"op": "get", "path": "good.txt", "offset": 10**6}, b"", "bad_request"),
    "mtime_negative": ({"op": "put", "path": "x", "total": 1, "mtime": -1}, b"", "bad_request"),
    "payload_on_ls": ({"op": "ls"}, b"surprise", "bad_request"),
    "second_hello": ({"op": "hello", "version": 1}, b"", "bad_request"),
    "nul_in_path": ({"op": "stat", "path": "good.txt\x00.jpg"}, b"", "bad_request"),
    "nul_in_put_target": ({"op": "put", "path": "x\x00y", "total": 1}, b"", "bad_request"),
    "nul_in_mv_dst": ({"op": "mv", "src": "victim.txt", "dst": "a\x00"}, b"", "bad_request"),
    "lone_surrogate": ({"op": "stat", "path": "\ud800"}, b"", "bad_request"),
    "read_a_partial": ({"op": "get", "path": ".good.txt.pyftp-part"}, b"", "permission_denied"),
    "write_a_partial": ({"op": "put", "path": ".x.pyftp-part", "total": 1}, b"", "permission_denied"),
    "get_a_fifo": ({"op": "get", "path": "fifo"}, b"", "permission_denied"),
    "hash_a_fifo": ({"op": "hash", "path": "fifo"}, b"", "permission_denied"),
    "rmdir_root": ({"op": "rmdir", "path": "/"}, b"", "permission_denied"),
    "mv_root": ({"op": "mv", "src": "/", "dst": "/x"}, b"", "permission_denied"),
    "mv_into_itself": ({"op": "mv", "src": "sub", "dst": "sub/deeper"}, b"", "bad_request"),
    "upper_not_utf8": ({"op": "upper"}, b"\xff\xfe", "bad_request"),
    "huge_total": ({"op": "put", "path": "big", "total": MAX_SIZE}, b"", "no_space"),
}


@pytest.mark.s3_too
@pytest.mark.parametrize("name", REQUESTS)
def test_bad_request_is_refused_and_session_goes_on(arena, name):
    if arena.s3 and name in ("get_a_fifo", "hash_a_fifo", "huge_total"):
        pytest.skip("an object store holds no FIFOs and reports no free space")
    header, payload, code = REQUESTS[name]
    with arena.raw() as a:
        a.expect_error(header, code, payload)
        a.expect_alive()
    assert not arena.exists("x") and not arena.exists("big")


@pytest.mark.s3_too
def test_op_before_hello_gets_auth_required_and_no_data(arena):
    with arena.raw(hello=False) as a:
        for header in ({"op": "ls"}, {"op": "get", "path": "good.txt"},
                       {"op": "put", "path": "x", "total": 1},
                       {"op": "mkdir", "path": "d"}, {"op": "rm", "path": "good.txt"}):
            reply, payload = a.request(header)
            assert reply["error"] == "auth_required" and payload == b"", reply
        reply, _ = a.request({"op": "hello", "version": 1})
        assert reply["ok"] is True
    assert arena.read("good.txt") == GOOD
    assert not arena.exists("d") and not arena.is_dir("d")


@pytest.mark.s3_too
def test_unsupported_version_is_refused(arena):
    with arena.raw(hello=False) as a:
        a.expect_error({"op": "hello", "version": 99}, "unsupported_version")


@pytest.mark.parametrize("name,header", [
    ("ls_huge_size", {"op": "ls", "size": MAX_SIZE}),
    ("upper_huge_size", {"op": "upper", "size": MAX_SIZE}),
    ("upper_over_drain_limit", {"op": "upper", "size": 8 << 20}),
])
@pytest.mark.s3_too
def test_huge_announced_payload_is_not_read(arena, name, header):
    """A frame announcing more than the server will drain gets an error, then a close."""
    with arena.raw() as a:
        a.send_frame(header)
        a.send_raw(b"x" * 1000)
        reply, _ = a.read_frame()
        assert reply["ok"] is False and reply["error"] in ("bad_request", "too_large"), reply
        a.expect_closed()


# --------------------------------------------------------------------- uploads
def _put(a: Attacker, path: str, data: bytes, *, total: int | None = None,
         sha: str | None = None, **extra) -> dict:
    """Send a put header; return the first reply."""
    header = {"op": "put", "path": path, "total": len(data) if total is None else total,
              "sha256": sha or hashlib.sha256(data).hexdigest(), **extra}
    reply, _ = a.request(header)
    return reply


#: on an object store a put smaller than one part (8 MiB) is held in memory: only
#: larger ones leave parts to resume from
CUT_SIZE = {False: 1 << 20, True: 9 << 20}


@pytest.mark.s3_too
def test_payload_cut_short_by_disconnect(arena):
    data = os.urandom(CUT_SIZE[arena.s3] + 1)
    with arena.raw() as a:
        assert _put(a, "cut.bin", data)["ok"] is True
        a.send_frame({"op": "data", "size": len(data)})
        a.send_raw(data[:len(data) - 300_000])
    _wait_sessions_gone(arena)
    assert not arena.exists("cut.bin")
    assert arena.partials(), "the partial should be kept for a resume"


@pytest.mark.s3_too
def test_disconnect_between_put_and_data(arena):
    with arena.raw() as a:
        assert _put(a, "nodata.bin", PAYLOAD)["ok"] is True
    _wait_sessions_gone(arena)
    assert not arena.exists("nodata.bin")


@pytest.mark.s3_too
def test_data_frame_of_the_wrong_size(arena):
    with arena.raw() as a:
        assert _put(a, "wrong.bin", PAYLOAD)["ok"] is True
        a.expect_error({"op": "data", "size": 3}, "bad_request", b"abc")
        a.expect_alive()
    assert not arena.exists("wrong.bin")


@pytest.mark.s3_too
def test_data_frame_replaced_by_another_op(arena):
    with arena.raw() as a:
        assert _put(a, "other.bin", PAYLOAD)["ok"] is True
        a.expect_error({"op": "rm", "path": "good.txt"}, "bad_request")
    assert arena.read("good.txt") == GOOD
    assert not arena.exists("other.bin")


@pytest.mark.s3_too
def test_payload_not_matching_its_sha256(arena):
    with arena.raw() as a:
        assert _put(a, "forged.bin", PAYLOAD, sha=hashlib.sha256(b"other").hexdigest())["ok"]
        reply, _ = a.request({"op": "data"}, PAYLOAD)
        assert reply["error"] == "checksum_mismatch", reply
        a.expect_alive()
    assert not arena.exists("forged.bin")


@pytest.mark.s3_too
def test_overwrite_without_permission_keeps_the_file(arena):
    with arena.raw() as a:
        a.expect_error({"op": "put", "path": "good.txt", "total": len(PAYLOAD)}, "exists")
    assert arena.read("good.txt") == GOOD


@pytest.mark.s3_too
def test_two_uploads_to_one_target(arena):
    with arena.raw() as a, arena.raw() as b:
        assert _put(a, "race.bin", PAYLOAD)["ok"] is True
        b.expect_error({"op": "put", "path": "race.bin", "total": 5}, "busy")
        reply, _ = a.request({"op": "data"}, PAYLOAD)
        assert reply["ok"] is True
    assert arena.read("race.bin") == PAYLOAD


@pytest.mark.s3_too
def test_too_large_is_answered_before_any_payload(make_arena):
    arena = make_arena(max_file_size=1000)
    with arena.raw() as a:
        # no data frame is sent: the answer must come from the header alone
        a.expect_error({"op": "put", "path": "big.bin", "total": 1001}, "too_large")
        a.expect_alive()
    assert not arena.exists("big.bin")


def test_no_space_is_answered_before_any_payload(make_arena):
    arena = make_arena(min_free=1 << 60)
    with arena.raw() as a:
        a.expect_error({"op": "put", "path": "fill.bin", "total": 10}, "no_space")
        a.expect_alive()
    assert not (arena.root / "fill.bin").exists()


@pytest.mark.parametrize("header", [
    {"op": "put", "path": "ro.bin", "total": 10},
    {"op": "mkdir", "path": "ro"},
    {"op": "rm", "path": "good.txt"},
    {"op": "rmdir", "path": "sub"},
    {"op": "mv", "src": "good.txt", "dst": "moved.txt"},
], ids=lambda h: h["op"])
@pytest.mark.s3_too
def test_read_only_server_refuses_writes_before_payload(make_arena, header):
    arena = make_arena(read_only=True)
    with arena.raw() as a:
        a.expect_error(header, "permission_denied")
        a.expect_alive()
    assert arena.read("good.txt") == GOOD
    assert arena.is_dir("sub") and not arena.is_dir("ro") and not arena.exists("ro.bin")


# --------------------------------------------------------------------- traversal
# Each path is tried with every op on one connection. "Inside" outcomes are allowed
# (".." is clamped at the root like chroot does), escapes never: the arena checks
# prove nothing outside changed and no outside byte was received.
TRAVERSAL = {
    # name: (path, the code `get` must answer)
    "dotdot": ("..", "is_a_directory"),
    "dotdot_dotdot": ("../..", "is_a_directory"),
    "dotdot_secret": ("../secret", "not_found"),
    "deep_dotdot": ("../../../../../../../../etc/passwd", "not_found"),
    "sub_then_up": ("sub/../../secret", "not_found"),
    "dot_dotdot": ("./../secret", "not_found"),
    "absolute": ("/etc/passwd", "not_found"),
    "absolute_double_slash": ("//etc/passwd", "not_found"),
    "backslash": ("..\\secret", "bad_request"),
    "backslash_absolute": ("\\..\\..\\secret", "bad_request"),
    "percent_encoded": ("%2e%2e/secret", "not_found"),
    "percent_encoded_slash": ("..%2fsecret", "not_found"),
    "dots_four": ("....//secret", "not_found"),
    "symlink_file_out": ("link_file", "permission_denied"),
    "symlink_absolute_out": ("link_abs", "permission_denied"),
    "symlink_dir_out": ("link_dir/inner", "permission_denied"),
    "symlink_dir_itself": ("link_dir", "permission_denied"),
    "sibling_prefix": ("link_sibling/sib.txt", "permission_denied"),
    "sibling_by_name": ("../root2/sib.txt", "not_found"),
}


@pytest.mark.s3_too
@pytest.mark.parametrize("name", TRAVERSAL)
def test_traversal(arena, name):
    path, get_code = TRAVERSAL[name]
    if arena.s3 and ("symlink" in name or name == "sibling_prefix"):
        pytest.skip("an object store holds no links")
    with arena.raw() as a:
        # reads: never a byte from outside
        a.expect_error({"op": "get", "path": path}, get_code)
        for op in ("ls", "stat", "cd", "hash"):
            reply, _ = a.request({"op": op, "path": path})
            if reply["ok"] and op == "cd":
                a.request({"op": "cd", "path": "/"})
            if get_code in ("permission_denied", "bad_request"):
                assert reply.get("error") == get_code, (op, reply)
        if get_code in ("permission_denied", "bad_request"):
            for header in ({"op": "put", "path": path + "/w", "total": 1},
                           {"op": "mkdir", "path": path + "/m", "parents": True},
                           {"op": "mv", "src": "good.txt", "dst": path + "/g"},
                           {"op": "mv", "src": path + "/x", "dst": "x"}):
                reply, _ = a.request(header)
                assert reply.get("error") in (get_code, "not_a_directory"), (header, reply)
        # writes: every one either fails or stays inside
        reply = _put(a, path, PAYLOAD)
        if reply["ok"]:
            a.request({"op": "data"}, PAYLOAD)
        reply = _put(a, path + "/planted.txt", PAYLOAD)
        if reply["ok"]:
            a.request({"op": "data"}, PAYLOAD)
        a.request({"op": "mkdir", "path": path + "/newdir"})
        a.request({"op": "mkdir", "path": path + "/p/q", "parents": True})
        a.request({"op": "mv", "src": "victim.txt", "dst": path + "/stolen.txt"})
        a.request({"op": "mv", "src": path, "dst": "pulled_in"})
        a.request({"op": "rm", "path": path + "/x"})
        a.request({"op": "rmdir", "path": path + "/newdir"})
        a.expect_alive()
    pulled = arena.root / "pulled_in"
    if pulled.is_symlink():  # mv moved a link itself: still one the admin made
        assert os.readlink(pulled) in {str(arena.base / "secret"), "../outside",
                                       str(arena.base / "root2"), "/etc/passwd"}


def test_symlinks_and_folders_holding_them_cannot_be_moved(arena):
    """A link stays where the admin put it, so no checked path can become one later."""
    os.mkdir(arena.root / "holder")
    os.symlink("../good.txt", arena.root / "holder" / "inside_link")  # even a harmless one
    with arena.raw() as a:
        for src in ("link_file", "link_dir", "link_sibling", "holder"):
            reply, _ = a.request({"op": "mv", "src": src, "dst": "sub/moved"})
            assert reply["error"] == "permission_denied" and "symbolic link" in reply["message"]
        reply, _ = a.request({"op": "mv", "src": "sub", "dst": "sub2"})  # no links: fine
        assert reply["ok"] is True
        reply, _ = a.request({"op": "rm", "path": "link_file"})
        assert reply["ok"] is True  # removes the link, never its target
    assert (arena.base / "secret").read_bytes() == SECRET


def test_symlink_swap_race(arena):
    """Check-then-use race: swap a checked folder for a link out while uploads run.

    One connection keeps renaming the folder ``d`` away and the link ``link_dir`` in
    its place; others keep uploading into ``d``. Without the rule above, uploads
    landed outside the root within seconds.
    """
    import threading
    os.mkdir(arena.root / "d")
    stop = time.monotonic() + 1.0
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    swaps: list[str] = []

    def upload(n: int) -> None:
        with arena.raw() as a:
            while time.monotonic() < stop:
                reply, _ = a.request({"op": "put", "path": f"d/x{n}", "total": len(PAYLOAD),
                                      "sha256": digest, "overwrite": True})
                if reply["ok"]:
                    a.request({"op": "data"}, PAYLOAD)

    def swap() -> None:
        with arena.raw() as a:
            while time.monotonic() < stop:
                a.request({"op": "mv", "src": "d", "dst": "d_old"})
                swaps.append(a.request({"op": "mv", "src": "link_dir", "dst": "d"})[0]
                             .get("error", "ok"))
                a.request({"op": "mv", "src": "d_old", "dst": "d"})
    threads = [threading.Thread(target=upload, args=(n,)) for n in range(2)]
    threads.append(threading.Thread(target=swap))
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert swaps and set(swaps) == {"permission_denied"}
    assert sorted(os.listdir(arena.base / "outside")) == ["inner"]


def test_overwriting_a_symlink_replaces_the_link_not_its_target(arena):
    with arena.raw() as a:
        assert _put(a, "link_file", PAYLOAD, overwrite=True)["ok"] is True
        reply, _ = a.request({"op": "data"}, PAYLOAD)
        assert reply["ok"] is True
    assert not (arena.root / "link_file").is_symlink()
    assert (arena.root / "link_file").read_bytes() == PAYLOAD
    assert (arena.base / "secret").read_bytes() == SECRET


@pytest.mark.parametrize("names_only", [False, True], ids=["entries", "names"])
def test_listing_hides_symlinks_out(arena, names_only):
    """Both listing forms: a names listing reads the type records, not a stat per entry,
    and still walks each link to see where it leads."""
    request = {"op": "ls", "path": "/", **({"names": True} if names_only else {})}
    with arena.raw() as a:
        reply, payload = a.request(request)
        items = json.loads(payload)
    names = {n.rstrip("/") for n in items} if names_only else {e["name"] for e in items}
    assert {"good.txt", "sub"} <= names
    assert not names & {"link_file", "link_dir", "link_sibling", "link_abs"}


# --------------------------------------------------------------------- connections
def _wait_sessions_gone(arena: Arena, limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while arena.server.session_count and time.monotonic() < deadline:
        time.sleep(0.01)
    assert arena.server.session_count == 0, "sessions did not end"


def _wait_all_closed(socks: list[socket.socket], limit: float, drip: bytes = b"") -> int:
    """Wait (bounded) until the server closes every socket; optionally drip bytes.

    Returns how many stayed open. With ``drip``, one more byte of it goes to every
    open socket about every 0.2 s: each read is quick, yet the frame never finishes.
    """
    sel = selectors.DefaultSelector()
    pos = {}
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        pos[s] = 0
    deadline = time.monotonic() + limit
    try:
        while pos and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=0.2):
                s = key.fileobj
                try:
                    data = s.recv(65536)
                except (ConnectionError, BlockingIOError):
                    data = b""
                if not data:
                    sel.unregister(s)
                    del pos[s]
            if drip:
                for s in list(pos):
                    if pos[s] < len(drip):
                        try:
                            s.send(drip[pos[s]:pos[s] + 1])
                            pos[s] += 1
                        except (BlockingIOError, ConnectionError):
                            pass
    finally:
        sel.close()
    return len(pos)


SLOW_HEADER = _frame(json.dumps({"op": "ls", "path": "/" + "a" * 200}).encode())


@pytest.mark.parametrize("style", ["stalled_prefix", "slow_drip"])
def test_200_slowloris_connections(make_arena, style):
    arena = make_arena(frame_timeout=0.5, max_clients=260, max_per_ip=260)
    socks = []
    try:
        for _ in range(200):
            s = arena.sock()
            socks.append(s)
            if style == "stalled_prefix":
                s.sendall(SLOW_HEADER[:2])
            else:
                s.sendall(SLOW_HEADER[:1])
        # while all 200 hang on, an ordinary client is served
        _check_ordinary_client_now(arena)
        open_left = _wait_all_closed(socks, limit=20.0,
                                     drip=SLOW_HEADER[1:] if style == "slow_drip" else b"")
        assert open_left == 0, f"{open_left} slowloris connections are still open"
    finally:
        for s in socks:
            s.close()


def _check_ordinary_client_now(arena: Arena) -> None:
    with Client(*arena.address, timeout=WAIT) as c:
        assert c.stat("good.txt").size == len(GOOD)
        local = arena.local / "during.txt"
        c.get("good.txt", local)
        assert local.read_bytes() == GOOD


def test_connection_flood_past_max_clients(make_arena):
    arena = make_arena(max_clients=5, max_per_ip=100)
    held = [arena.raw() for _ in range(5)]
    try:
        refused = 0
        for _ in range(40):
            with socket.create_connection(arena.address, timeout=WAIT) as s:
                conn = _Plain(s)
                reply = conn.read_reply()
                assert reply["ok"] is False and reply["error"] == "busy", reply
                assert "try again" in reply["message"]
                assert conn.closed()
                refused += 1
        assert refused == 40
        for h in held:  # the admitted ones were not disturbed
            h.expect_alive()
    finally:
        for h in held:
            h.close()


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_a_connection_flood_does_not_flood_the_log(make_arena):
    """40 refusals: one is logged in full, the others are counted in summary lines."""
    logger = logging.getLogger("pyftp.test.refusals")
    lines = _Lines()
    logger.addHandler(lines)
    logger.propagate = False
    try:
        arena = make_arena(max_clients=1, max_per_ip=100, logger=logger,
                           refusal_log_interval=0.5)
        held = arena.raw()
        try:
            started = time.monotonic()
            for _ in range(40):
                with socket.create_connection(arena.address, timeout=WAIT) as s:
                    assert _Plain(s).read_reply()["error"] == "busy"
            took = time.monotonic() - started

            def logged() -> int:
                full = sum(1 for m in lines.lines if " refused: server is full" in m)
                counted = sum(int(m.split()[1]) for m in lines.lines
                              if m.startswith("refused ") and " more connection" in m)
                return full + counted
            wait_for(lambda: logged() == 40, WAIT, "every refusal to be logged or counted")
            refusal_lines = [m for m in lines.lines if "refused" in m]
            # one full line and one summary per interval at most (with room for a slow run)
            assert len(refusal_lines) <= 2 * (took / 0.5 + 2), refusal_lines
            assert len(refusal_lines) < 40
            held.expect_alive()
        finally:
            held.close()
    finally:
        logger.removeHandler(lines)


def test_refusals_still_counted_are_logged_when_the_server_stops(make_server, tmp_path):
    logger = logging.getLogger("pyftp.test.refusals-at-stop")
    lines = _Lines()
    logger.addHandler(lines)
    logger.propagate = False
    try:
        srv = make_server(max_clients=1, logger=logger, refusal_log_interval=3600)
        with socket.create_connection(srv.address, timeout=WAIT) as held:
            for _ in range(5):
                with socket.create_connection(srv.address, timeout=WAIT) as s:
                    assert _Plain(s).read_reply()["error"] == "busy"
            srv.shutdown(grace=1.0)
            held.settimeout(WAIT)
            assert held.recv(1) == b""  # the idle admitted one was closed
        refusals = [m for m in lines.lines if "refused" in m]
        assert len(refusals) == 2 and refusals[1].startswith("refused 4 more"), refusals
    finally:
        logger.removeHandler(lines)


def test_too_many_connections_from_one_address(make_arena):
    arena = make_arena(max_clients=100, max_per_ip=3)
    held = [arena.raw() for _ in range(3)]
    try:
        with socket.create_connection(arena.address, timeout=WAIT) as s:
            conn = _Plain(s)
            reply = conn.read_reply()
            assert reply["error"] == "busy" and "127.0.0.1" in reply["message"], reply
            assert conn.closed()
    finally:
        for h in held:
            h.close()


class _Plain:
    """Reads one frame from a bare socket (the refusal happens before any hello)."""

    def __init__(self, s: socket.socket) -> None:
        self.s = s
        self.buf = b""

    def _exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.s.recv(65536)
            assert chunk, "closed before a whole frame"
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_reply(self) -> dict:
        (n,) = struct.unpack(">I", self._exact(4))
        return json.loads(self._exact(n))

    def closed(self) -> bool:
        try:
            return self.s.recv(1) == b""
        except ConnectionError:
            return True


@pytest.mark.s3_too
def test_idle_connection_is_closed(make_arena):
    arena = make_arena(idle_timeout=0.3)
    with arena.raw() as a, arena.raw(hello=False) as b:
        assert a.is_closed()  # reads until EOF; the socket timeout (5 s) bounds it
        assert b.is_closed()


@pytest.mark.s3_too
def test_disconnect_in_the_middle_of_get(arena):
    big = os.urandom(8 << 20)
    arena.write("big.bin", big)
    arena.complete.add(big)
    for linger in (False, True):
        conn = arena.raw()
        s = conn.sock
        conn.send_frame({"op": "get", "path": "big.bin"})
        got = s.recv(65536)
        assert got
        if linger:  # an abortive close: the server sees a reset, not an EOF
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    _wait_sessions_gone(arena)


@pytest.mark.s3_too
def test_disconnect_in_the_middle_of_a_resumed_put(arena):
    """Cut twice, then finish: only the whole, verified file is ever published."""
    unit = (8 << 20) + 12_345 if arena.s3 else 100_000  # past a part on an object store
    data = os.urandom(6 * unit)
    digest = hashlib.sha256(data).hexdigest()
    for cut in (unit, 4 * unit):
        with arena.raw() as a:
            reply = _put(a, "resumed.bin", data)
            assert reply["ok"] is True
            offset = reply["offset"]
            a.send_frame({"op": "data", "size": len(data) - offset})
            a.send_raw(data[offset:cut])
        _wait_sessions_gone(arena)
        assert not arena.exists("resumed.bin")
    with arena.raw() as a:
        reply = _put(a, "resumed.bin", data)
        assert reply["offset"] > 0, "the partial was not resumed"
        reply, _ = a.request({"op": "data"}, data[reply["offset"]:])
        assert reply["ok"] is True and reply["sha256"] == digest
    assert arena.read("resumed.bin") == data
    arena.complete.add(data)


# --------------------------------------------------------------------- logs
@pytest.mark.s3_too
def test_log_lines_cannot_be_forged(arena, caplog):
    """Names with line breaks must not start a fake line in the server log."""
    caplog.set_level(logging.INFO, logger="pyftp.server")
    evil = "x\n2024-01-01 00:00:00 INFO 6.6.6.6 login ok admin"
    with arena.raw() as a:
        a.expect_error({"op": evil}, "bad_request")
        a.expect_error({"op": "stat", "path": evil}, "not_found")
    for record in caplog.records:
        assert "\n" not in record.getMessage(), record.getMessage()


def test_header_split_near_its_deadline_does_not_cut_the_reply(make_arena):
    """What is left of a frame's deadline must not become the timeout of its reply.

    The header arrives in two pieces, the second late; then the client reads slowly.
    The sleeps pace the client like a slow network would; nothing waits on them.
    """
    arena = make_arena(frame_timeout=0.6)
    big = os.urandom(8 << 20)
    (arena.root / "big.bin").write_bytes(big)
    arena.complete.add(big)
    with arena.raw() as a:
        a.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        body = json.dumps({"op": "get", "path": "big.bin"}).encode()
        frame = _hdr(len(body)) + body
        a.send_raw(frame[:3])
        time.sleep(0.4)
        a.send_raw(frame[3:])
        time.sleep(0.4)  # the server's send buffer fills meanwhile
        reply, payload = a.read_frame()
        assert reply["ok"] is True and payload == big
        trailer, _ = a.read_frame()
        assert trailer.get("sha256") == hashlib.sha256(big).hexdigest()


# --------------------------------------------------------------------- integrity (issue 11)
# Each attack of the red-team pass, run the way it was run: real sockets, bounded loops,
# zero wins. The counts are the tries; a "win" is the attacker's goal reached.
from pyftp.protocol import partial_name  # noqa: E402


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _send_half(conn: Attacker, data: bytes, cut: int) -> None:
    conn.send_frame({"op": "data", "size": len(data)}, data[:cut])


def _wait_partial(path: Path, size: int) -> None:
    wait_for(lambda: path.exists() and path.stat().st_size >= size, what=f"{path.name}")


def test_attack1_folder_rename_mid_upload_publishes_no_foreign_bytes(arena):
    """Victim half-sends /A/x; attacker renames /A to /B, puts /B/x (and tries rmdir
    /B), renames back. The partial is claimed by folder identity: busy, 200 of 200."""
    tries, wins, busy = 200, 0, 0
    with arena.raw() as v, arena.raw() as x:
        for i in range(tries):
            data = (b"victim %d " % i) * 400
            arena.complete.add(data)
            assert v.request({"op": "mkdir", "path": f"A{i}"})[0]["ok"]
            assert _put(v, f"A{i}/x", data)["ok"]
            _send_half(v, data, 2000)
            _wait_partial(arena.root / f"A{i}" / partial_name("x"), 2000)
            assert x.request({"op": "mv", "src": f"A{i}", "dst": f"B{i}"})[0]["ok"]
            reply = _put(x, f"B{i}/x", b"", total=1000, sha="0" * 64)
            if reply.get("ok"):
                wins += 1
                x.send_frame({"op": "data", "size": 1000}, b"ATTACK")
                x.close()
                x = arena.raw()
            else:
                busy += reply.get("error") == "busy"
            rmdir = x.request({"op": "rmdir", "path": f"B{i}"})[0]
            wins += bool(rmdir.get("ok"))
            assert x.request({"op": "mv", "src": f"B{i}", "dst": f"A{i}"})[0]["ok"]
            v.send_raw(data[2000:])
            final, _ = v.read_frame()
            assert final["ok"] is True and final["sha256"] == _sha(data), final
            wins += (arena.root / f"A{i}" / "x").read_bytes() != data
    assert (wins, busy) == (0, tries)


def test_attack1_upload_into_a_renamed_folder_lands_where_the_folder_is(arena):
    data = os.urandom(5000)
    arena.complete.add(data)
    with arena.raw() as v, arena.raw() as x:
        v.request({"op": "mkdir", "path": "A"})
        assert _put(v, "A/f", data)["ok"]
        _send_half(v, data, 1000)
        _wait_partial(arena.root / "A" / partial_name("f"), 1000)
        assert x.request({"op": "mv", "src": "A", "dst": "B"})[0]["ok"]
        v.send_raw(data[1000:])
        final, _ = v.read_frame()
    assert final["ok"] is True and final["sha256"] == _sha(data)
    assert (arena.root / "B" / "f").read_bytes() == data and not (arena.root / "A").exists()


def test_attack2_a_long_name_and_a_32_hex_name_never_share_a_partial(arena):
    long_name = "L" * 240
    short = hashlib.sha256(long_name.encode()).hexdigest()
    tries, wins = 20, 0
    with arena.raw() as v, arena.raw() as x:
        for i in range(tries):
            mine, theirs = (b"victim %d " % i) * 300, b"COLLIDED! %d" % i
            arena.complete.update({mine, theirs})
            for name in (long_name, short[:32], short):
                assert _put(v if name == long_name else x, name, mine if name == long_name
                            else theirs, overwrite=True)["ok"]
                if name == long_name:
                    _send_half(v, mine, 1000)
                    _wait_partial(arena.root / partial_name(long_name), 1000)
                else:
                    reply, _ = x.request({"op": "data"}, theirs)
                    assert reply["ok"] is True, reply
            v.send_raw(mine[1000:])
            final, _ = v.read_frame()
            assert final["ok"] is True, final
            wins += (arena.root / long_name).read_bytes() != mine
    assert partial_name(long_name) not in {partial_name(short[:32]), partial_name(short)}
    assert wins == 0


def _trailer(conn: Attacker, path: str, total: int, **extra) -> dict:
    return conn.request({"op": "put", "path": path, "total": total, "trailer": True,
                         **extra})[0]


def test_attack3_a_cut_upload_is_offered_to_its_owner_only(arena):
    """No prefix_sha256 and no K > 0 for anyone without the upload's token."""
    tries, wins = 20, 0
    for i in range(tries):
        data = os.urandom(50_000)
        arena.complete.add(data)
        with arena.raw() as v:
            first = _trailer(v, f"t{i}", len(data), mtime=1e9)
            _send_half(v, data, 20_000)
            _wait_partial(arena.root / partial_name(f"t{i}"), 20_000)
        wait_for(lambda: arena.server.session_count == 0, what="the cut session to end")
        if i % 2:  # half the time the owner comes back first: it alone is offered K
            with arena.raw() as v:
                reply = _trailer(v, f"t{i}", len(data), token=first["token"])
                assert reply["offset"] == 20_000 and reply["token"] == first["token"]
                assert reply["prefix_sha256"] == _sha(data[:20_000])
            wait_for(lambda: arena.server.session_count == 0, what="the session to end")
        for guess in ({}, {"token": "A" * 32}, {"mtime": 1e9}):
            with arena.raw() as x:
                reply = _trailer(x, f"t{i}", len(data), **guess)
                assert reply["ok"] is True, reply
                wins += reply["offset"] > 0 or "prefix_sha256" in reply
            wait_for(lambda: arena.server.session_count == 0, what="the session to end")
        with arena.raw() as v:  # the owner's put: only its own bytes are published
            reply = _trailer(v, f"t{i}", len(data), token=first["token"])
            k = reply["offset"]
            v.send_frame({"op": "data", "size": len(data) - k}, data[k:])
            v.send_frame({"op": "verify", "sha256": _sha(data)})
            assert v.read_frame()[0]["ok"] is True
        assert (arena.root / f"t{i}").read_bytes() == data
    assert wins == 0


def test_attack3_a_live_upload_cannot_be_hijacked(arena):
    tries, wins = 20, 0
    for i in range(tries):
        data = os.urandom(50_000)
        arena.complete.add(data)
        with arena.raw() as v, arena.raw() as x:
            _trailer(v, f"h{i}", len(data), mtime=1.7e9)
            _send_half(v, data, 10_000)
            _wait_partial(arena.root / partial_name(f"h{i}"), 10_000)
            reply = _trailer(x, f"h{i}", len(data), mtime=1.7e9)
            wins += reply.get("ok") is True
            v.send_raw(data[10_000:])
            v.send_frame({"op": "verify", "sha256": _sha(data)})
            final, _ = v.read_frame()
            wins += final.get("ok") is not True
        assert (arena.root / f"h{i}").read_bytes() == data
    assert wins == 0


def test_attack6_concurrent_uploads_cannot_get_round_min_free(make_arena):
    arena = make_arena(min_free=1)
    vfs = os.statvfs(arena.root)
    big = vfs.f_bavail * vfs.f_frsize * 6 // 10  # two of these do not fit
    tries, wins = 20, 0
    for _ in range(tries):
        with arena.raw() as a, arena.raw() as b:
            assert _put(a, "one.bin", b"", total=big, sha="0" * 64)["ok"] is True
            reply = _put(b, "two.bin", b"", total=big, sha="0" * 64)
            wins += reply.get("ok") is True
            assert reply.get("error") in ("no_space", None), reply
        wait_for(lambda: arena.server.session_count == 0, what="the sessions to end")
    assert wins == 0


@pytest.mark.s3_too
def test_attack9_two_moves_onto_one_new_name_never_both_succeed(arena):
    """On an object store a move is copy + delete: it holds the name like an upload."""
    import threading
    tries, wins = (40 if arena.s3 else 200), 0
    with arena.raw() as a, arena.raw() as b:
        for i in range(tries):
            arena.write(f"a{i}", GOOD)
            arena.write(f"b{i}", PAYLOAD)
            gate, out = threading.Barrier(2), {}

            def move(conn, src, key):
                gate.wait(WAIT)
                out[key] = conn.request({"op": "mv", "src": src, "dst": f"t{i}"})[0]
            ts = [threading.Thread(target=move, args=(a, f"a{i}", "a")),
                  threading.Thread(target=move, args=(b, f"b{i}", "b"))]
            for t in ts:
                t.start()
            for t in ts:
                t.join(WAIT * 2)
            oks = [r.get("ok") is True for r in out.values()]
            wins += oks.count(True) != 1
            assert {r.get("error") for r in out.values() if not r.get("ok")} <= {"exists"}
    assert wins == 0


def test_attack9_publish_never_replaces_a_file_created_meanwhile(arena):
    tries, wins = 50, 0
    with arena.raw() as v:
        for i in range(tries):
            data = (b"late %d " % i) * 100
            arena.complete.add(data)
            assert _put(v, f"p{i}", data)["ok"]
            _send_half(v, data, 10)
            _wait_partial(arena.root / partial_name(f"p{i}"), 10)
            (arena.root / f"p{i}").write_bytes(GOOD)  # the name appears meanwhile
            v.send_raw(data[10:])
            final, _ = v.read_frame()
            wins += final.get("ok") is True
            assert final.get("error") == "exists", final
            wins += (arena.root / f"p{i}").read_bytes() != GOOD
    assert wins == 0


def _exchange(a: Path, b: Path) -> bool:
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.renameat2(-100, bytes(a), -100, bytes(b), 2) == 0  # RENAME_EXCHANGE


def test_attack11_local_symlink_exchange_race_never_leaves_the_root(make_server, tmp_path):
    """A local process swaps a folder with a link out (renameat2 exchange) while a
    client gets, removes and creates files through that folder. Outside the threat
    model over the protocol, but the descriptor walk must hold: zero bytes out."""
    import threading
    base = tmp_path / "x"
    root, outside = base / "root", base / "outside"
    (root / "d").mkdir(parents=True)
    outside.mkdir()
    (root / "d" / "f").write_bytes(GOOD)
    (outside / "f").write_bytes(SECRET)
    for i in range(300):
        (outside / f"rm{i}").write_bytes(SECRET)
        (root / "d" / f"rm{i}").write_bytes(GOOD)
    os.symlink(outside, root / "swap")
    if not _exchange(root / "d", root / "swap") or not _exchange(root / "d", root / "swap"):
        pytest.skip("renameat2(RENAME_EXCHANGE) is not available here")
    server = make_server(root=root)
    stop = threading.Event()
    swaps = [0]

    def swapper() -> None:
        while not stop.is_set() and swaps[0] < 2_000_000:
            _exchange(root / "d", root / "swap")
            swaps[0] += 1
    t = threading.Thread(target=swapper)
    t.start()
    gets = reads_out = 0
    try:
        with RawConn(server.address) as c:
            for i in range(2000):
                c.send_frame({"op": "get", "path": "d/f"})
                reply, payload = c.read_frame()
                if reply.get("ok"):
                    c.read_frame()  # the digest frame
                    gets += 1
                    reads_out += SECRET[:16] in payload
            for i in range(300):
                c.request({"op": "rm", "path": f"d/rm{i}"})
                reply, _ = c.request({"op": "put", "path": f"d/new{i}", "total": 1,
                                      "sha256": _sha(b"n")})
                if reply.get("ok"):
                    c.request({"op": "data"}, b"n")
    finally:
        stop.set()
        t.join(10)
    if os.path.islink(root / "d"):
        _exchange(root / "d", root / "swap")
    written_out = sorted(n for n in os.listdir(outside) if n.startswith("new"))
    removed_out = [i for i in range(300) if not (outside / f"rm{i}").exists()]
    assert swaps[0] > 0 and gets > 0
    assert (reads_out, written_out, removed_out) == (0, [], [])


# ---- server: bounded resources (issue 11)
from pyftp.server import Account  # noqa: E402

class _Records(logging.Handler):
    """Keeps whole log records (their thread name says who did the work)."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _deep_tree(root: Path, depth: int) -> list[str]:
    """``depth`` nested folders made through dir fds (no path grows past PATH_MAX);
    returns the folder names, outermost first."""
    names = ["d"] * depth  # 2 bytes a level: the bottom stays within PATH_MAX
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for name in names:
            os.mkdir(name, dir_fd=fd)
            nxt = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nxt
        old = time.time() - 3 * 86400  # a stale partial at the bottom of the tree
        part = os.open(partial_name("deep.bin"), os.O_CREAT | os.O_WRONLY, 0o600, dir_fd=fd)
        os.write(part, b"half an upload")
        os.close(part)
        os.utime(partial_name("deep.bin"), (old, old), dir_fd=fd)
    finally:
        os.close(fd)
    return names


def _remove_deep_tree(root: Path, names: list[str]) -> None:
    """Iteratively, innermost first (shutil.rmtree recurses)."""
    fds = [os.open(root, os.O_RDONLY | os.O_DIRECTORY)]
    for name in names:
        fds.append(os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fds[-1]))
    for name in os.listdir(fds[-1]):
        os.unlink(name, dir_fd=fds[-1])
    for name in reversed(names):
        os.close(fds.pop())
        os.rmdir(name, dir_fd=fds[-1])
    os.close(fds.pop())


def test_startup_serves_at_once_over_a_1000_level_tree(make_server, tmp_path):
    """Attack 4a: the start-up partial clean-up runs on the janitor thread; a tree too
    deep (or too large) for it never delays or stops the server, whatever it raises."""
    logger = logging.getLogger("pyftp.test.janitor")
    logger.setLevel(logging.INFO)
    records = _Records()
    logger.addHandler(records)
    logger.propagate = False
    deep_root = tmp_path / "deep"
    deep_root.mkdir()
    names = _deep_tree(deep_root, 1000)

    def reports() -> list[logging.LogRecord]:
        return [r for r in records.records if "clean-up" in r.getMessage()]
    try:
        for attempt in range(3):  # every start serves at once, every restart too
            records.records.clear()
            srv = make_server(root=deep_root, logger=logger)
            try:
                with Client(*srv.address, timeout=WAIT) as c:
                    assert [e.name for e in c.ls("/")] == (["d"] if attempt == 0 else ["d", "m"])
                if attempt == 0:  # mkdir -p is bounded: 1000 new levels are refused
                    with RawConn(srv.address) as raw:
                        reply, _ = raw.request({"op": "mkdir", "path": "/n" + "/n" * 999,
                                                "parents": True})
                        assert reply["error"] == "bad_request" and "256" in reply["message"]
                        assert raw.request({"op": "mkdir", "path": "/m" + "/m" * 255,
                                            "parents": True})[0]["ok"] is True
                wait_for(lambda: reports(), WAIT, "the background clean-up to report")
                assert all(r.threadName == "pyftp-janitor" for r in reports()), reports()
                assert not any(r.exc_info for r in records.records), "a traceback was logged"
                # the walk is iterative: the stale partial 1000 levels down is gone
                assert "removed 1" in reports()[0].getMessage() or attempt > 0, reports()
            finally:
                srv.shutdown(grace=1.0)
    finally:
        logger.removeHandler(records)
        _remove_deep_tree(deep_root, names)
        _remove_deep_tree(deep_root, ["m"] * 256)


@pytest.mark.s3_too
def test_login_deadline_counts_from_accept(make_arena):
    """Attack 5: a connection sending ``pwd`` over and over without logging in is closed
    at the login deadline, not kept open by its requests."""
    arena = make_arena(login_timeout=1.0)
    with arena.raw(hello=False) as a:
        closed = False
        for _ in range(200):  # 200 x 0.05 s pacing: far past the 1 s deadline
            try:
                reply, _ = a.request({"op": "pwd"})
            except (ConnectionError, OSError):
                closed = True
                break
            assert reply["ok"] is False and reply["error"] == "auth_required", reply
            time.sleep(0.05)  # the attacker's pace, not a synchronisation
        assert closed or a.is_closed(), "an unauthenticated connection outlived its deadline"
    wait_for(lambda: arena.server.session_count == 0, WAIT, "the slot to be freed")


def _stall_ls(arena: Arena, stalled: list, n: int) -> None:
    """``n`` peers that ls /big with a tiny receive buffer and never read a byte."""
    for _ in range(n):
        s = arena.sock()
        stalled.append(s)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(_frame(json.dumps({"op": "hello", "version": 1, "client": "x"}).encode())
                  + _frame(json.dumps({"op": "ls", "path": "big"}).encode()))


def test_listing_to_a_peer_that_never_reads_is_spooled(make_arena):
    """Attack 7: 16 peers ``ls`` a big folder and never read. Each costs the server a
    spooled file, not its memory; the listing bytes are exactly those of a small one."""
    arena = make_arena()
    arena.complete.add(b"")  # the entries listed are empty files
    big = arena.root / "big"
    big.mkdir()
    for i in range(6000):
        (big / f"entry-{i:05d}.dat").touch()
    stalled = []
    try:
        _stall_ls(arena, stalled, 16)
        with arena.raw() as a:  # meanwhile, an ordinary peer gets the whole listing
            reply, payload = a.request({"op": "ls", "path": "big"})
            entries = json.loads(payload)
            assert reply == {"ok": True, "size": len(payload)}
            assert [e["name"] for e in entries] == [f"entry-{i:05d}.dat" for i in range(6000)]
            assert payload == json.dumps(entries, separators=(",", ":")).encode()
            a.expect_alive()
        _check_ordinary_client_now(arena)
    finally:
        for s in stalled:
            s.close()
    _wait_sessions_gone(arena)


def _auth_server(make_server, checked: list, **overrides):
    def authenticate(user: str, password: str):
        checked.append(user)  # every password check the server really made
        return Account(user) if (user, password) == ("alice", "right") else None
    return make_server(authenticator=authenticate, **overrides)


def _hello_from(source: str, address, user: str, password: str) -> dict | None:
    """One login attempt from a chosen loopback address; None if the server closed."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(WAIT)
    try:
        s.bind((source, 0))
        s.connect(address)
        s.sendall(_frame(json.dumps({"op": "hello", "version": 1, "client": "x",
                                     "user": user, "password": password}).encode()))
        return _Plain(s).read_reply()
    finally:
        s.close()


def test_password_guessing_is_throttled_across_connections(make_server):
    """Attack 8: 32 connections from one address guessing one user's password. The
    guesses the server really checks are spaced by a shared, doubling delay (the rest
    are refused unchecked), and the user can still log in from another address."""
    import threading
    checked: list[str] = []
    srv = _auth_server(make_server, checked, auth_fail_cap=1.0, max_per_ip=64)
    replies: list[dict | None] = []
    lock = threading.Lock()

    def guesser(n: int) -> None:
        for i in range(4):
            r = _hello_from("127.0.0.1", srv.address, "alice", f"guess-{n}-{i}")
            with lock:
                replies.append(r)
    threads = [threading.Thread(target=guesser, args=(n,)) for n in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    attempts = len(replies)
    assert attempts == 128
    assert all(r is None or (r["ok"] is False and r["error"] == "auth_failed") for r in replies)
    refused = sum(1 for r in replies if r and "too many failed logins" in r["message"])
    assert refused > attempts // 2, (refused, len(checked))
    assert len(checked) <= attempts // 4, f"{len(checked)} of {attempts} guesses were checked"
    # the owner, from another address, is neither refused nor made to wait for them
    assert _hello_from("127.0.0.2", srv.address, "alice", "right")["ok"] is True
    # while the guessing address is still refused unchecked
    before = len(checked)
    r = _hello_from("127.0.0.1", srv.address, "alice", "right")
    assert r["ok"] is False and "too many failed logins" in r["message"]
    assert len(checked) == before


def test_a_path_past_the_limit_is_refused_and_the_session_goes_on(arena):
    """Attack 10: a long cwd plus a long name made an error message bigger than a frame
    (it names both paths; each undecodable byte is 6 bytes of JSON escape). A path
    longer than 4096 characters once joined to the cwd is refused as ``bad_request``
    before anything names it whole, never ``internal``; the session goes on. (An
    error message still too long for a frame keeps its code, shortened: tested on
    ``fit_reply`` in test_server.)"""
    level = "\udcff" * 250  # a 250-byte name of bytes that are not UTF-8
    with arena.raw() as a:
        for _ in range(15):
            a.request({"op": "mkdir", "path": level})
            reply, _ = a.request({"op": "cd", "path": level})
            assert reply["ok"] is True, reply
        for src in (".", ".."):
            reply = a.expect_error({"op": "mv", "src": src, "dst": "\udcfe" * 4000},
                                   "bad_request")
            assert reply["message"].startswith("path too long: ")
            assert "at most 4096" in reply["message"]
            a.expect_alive()
        a.expect_error({"op": "stat", "path": "\udcfe" * 4000}, "bad_request")
        a.expect_alive()


# ---- red team, second pass
_K256 = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2]


def _sha256_extend(digest: str, length: int, tail: bytes) -> tuple[bytes, str]:
    """SHA-256 length extension: from H(m) and len(m) alone, the glue (padding) and the
    digest of ``m + glue + tail``, without knowing m."""
    def rotr(x, n):
        return ((x >> n) | (x << (32 - n))) & 0xFFFFFFFF

    def pad(n):
        return b"\x80" + b"\x00" * ((55 - n) % 64) + struct.pack(">Q", n * 8)
    state = list(struct.unpack(">8I", bytes.fromhex(digest)))
    glue = pad(length)
    msg = tail + pad(length + len(glue) + len(tail))
    for off in range(0, len(msg), 64):
        w = list(struct.unpack(">16I", msg[off:off + 64]))
        for i in range(16, 64):
            s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3)
            s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10)
            w.append((w[i - 16] + s0 + w[i - 7] + s1) & 0xFFFFFFFF)
        a, b, c, d, e, f, g, h = state
        for i in range(64):
            t1 = (h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g))
                  + _K256[i] + w[i]) & 0xFFFFFFFF
            t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c)))
            a, b, c, d, e, f, g, h = (t1 + t2) & 0xFFFFFFFF, a, b, c, (d + t1) & 0xFFFFFFFF, e, f, g
        state = [(x + y) & 0xFFFFFFFF for x, y in zip(state, (a, b, c, d, e, f, g, h))]
    return glue, struct.pack(">8I", *state).hex()


def test_length_extension_helper_is_right():
    glue, digest = _sha256_extend(_sha(b"secret prefix"), 13, b"tail")
    assert digest == _sha(b"secret prefix" + glue + b"tail")


def _cut_v1(arena: Arena, name: str, data: bytes, cut: int) -> dict:
    """A v1 put of ``data`` cut after ``cut`` bytes; returns its offset reply (token)."""
    with arena.raw() as v:
        first = _put(v, name, data)
        _send_half(v, data, cut)
        _wait_partial(arena.root / partial_name(name), cut)
    wait_for(lambda: arena.server.session_count == 0, what="the cut session to end")
    return first


def test_redteam_a_v1_resume_by_digest_never_hands_over_the_owners_token(arena):
    """A peer that knows only a cut v1 upload's total and SHA-256 (a public digest)
    resumes it without a token. It must not be given the owner's token: with it, a
    trailer put is offered the partial's prefix_sha256 and, by SHA-256 length
    extension, publishes the owner's unseen bytes plus its own tail."""
    tries, leaks, wins = 6, 0, 0
    for i in range(tries):
        data = os.urandom(30_000)
        arena.complete.add(data)
        first = _cut_v1(arena, f"v{i}", data, 20_000)
        with arena.raw() as x:  # the attacker: total and digest, no token, no bytes
            reply = _put(x, f"v{i}", b"", total=len(data), sha=_sha(data))
            leaks += reply.get("token") == first["token"]
        wait_for(lambda: arena.server.session_count == 0, what="the session to end")
        with arena.raw() as x:
            reply = _trailer(x, f"v{i}", len(data), token=reply["token"])
            k = reply.get("offset", 0)
            if k and "prefix_sha256" in reply:
                tail_len = len(data) - k - len(_sha256_extend(reply["prefix_sha256"], k, b"")[0])
                glue, digest = _sha256_extend(reply["prefix_sha256"], k, b"E" * tail_len)
                x.send_frame({"op": "data", "size": len(data) - k}, glue + b"E" * tail_len)
                x.send_frame({"op": "verify", "sha256": digest})
                final, _ = x.read_frame()
                wins += final.get("ok") is True
            else:
                x.send_frame({"op": "data", "size": len(data)}, data)
                x.send_frame({"op": "verify", "sha256": _sha(data)})
                assert x.read_frame()[0]["ok"] is True
        assert (arena.root / f"v{i}").read_bytes() == data
        assert not [p for p in (arena.root).iterdir() if p.name.startswith(f".v{i}")]
    assert (leaks, wins) == (0, 0)


def test_redteam_b_publish_after_the_folder_moved_names_where_the_file_is(arena):
    """Victim half-sends /A/x; the attacker renames /A to /B, makes a new /A and puts
    its own /A/x. The victim's file lands in /B: its final reply must name /B/x, not
    claim /A/x (which holds the attacker's bytes) is the file it verified."""
    tries, wins = 20, 0
    with arena.raw() as v, arena.raw() as x:
        for i in range(tries):
            data, theirs = (b"victim %d " % i) * 300, b"ATTACKER %d" % i
            arena.complete.update({data, theirs})
            assert v.request({"op": "mkdir", "path": f"A{i}"})[0]["ok"]
            assert _put(v, f"A{i}/x", data)["ok"]
            _send_half(v, data, 1000)
            _wait_partial(arena.root / f"A{i}" / partial_name("x"), 1000)
            assert x.request({"op": "mv", "src": f"A{i}", "dst": f"B{i}"})[0]["ok"]
            assert x.request({"op": "mkdir", "path": f"A{i}"})[0]["ok"]
            assert _put(x, f"A{i}/x", theirs)["ok"]
            assert x.request({"op": "data"}, theirs)[0]["ok"]
            v.send_raw(data[1000:])
            final, _ = v.read_frame()
            assert final["ok"] is True and final["sha256"] == _sha(data), final
            named = arena.root / final["path"].lstrip("/")
            wins += named.read_bytes() != data
    assert wins == 0


def test_redteam_c_held_uploads_never_exhaust_the_servers_descriptors(tmp_path, monkeypatch):
    """A pyftp-server whose open-file limit (64, hard) is far below what --max-clients
    256 needs. Attackers open 30 puts and hold them: each holds a socket, a folder and a
    partial. Every connection still gets an answer (ok or busy, never internal, never
    silence), a newcomer too, and once they go an ordinary client is served."""
    import resource
    import sys
    import serverproc
    root = tmp_path / "root"
    root.mkdir()
    (root / "good.txt").write_bytes(GOOD)
    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64)); "
            "from pyftp.cli import server_main; sys.exit(server_main())")
    monkeypatch.setattr(serverproc, "server_command", lambda: [sys.executable, "-c", code])
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[1] > 64
    held, answers = [], []
    with serverproc.ServerProcess("--root", str(root), "--max-per-ip", "64") as srv:
        try:
            for i in range(30):
                try:
                    c = RawConn(srv.address, timeout=WAIT, hello=False)
                    held.append(c)
                    reply, _ = c.request({"op": "hello", "version": 1})
                    if reply.get("ok"):
                        reply, _ = c.request({"op": "put", "path": f"u{i}", "total": 10**6,
                                              "sha256": "0" * 64})
                    answers.append(reply.get("ok") or reply.get("error"))
                except (OSError, ConnectionError) as exc:
                    answers.append(type(exc).__name__)
            assert set(answers) <= {True, "busy"}, answers
            assert answers.count(True) >= 4, answers
            with RawConn(srv.address, timeout=WAIT, hello=False) as late:
                reply, _ = late.request({"op": "hello", "version": 1})
                assert reply.get("ok") or reply.get("error") == "busy", reply
        finally:
            for c in held:
                c.close()
        srv.wait_for(r"open-file limit", WAIT)
        def served() -> bool:
            try:
                with Client(*srv.address, timeout=WAIT) as c:
                    return "good.txt" in [e.name for e in c.ls("/")]
            except Exception:
                return False
        wait_for(served, WAIT, "an ordinary client to be served")


@pytest.mark.s3_too
def test_redteam_d_pipelined_gets_never_read_end_at_the_idle_timeout(make_arena):
    """A peer pipelines 200 gets of a 1 MiB file and never reads a byte: the server's
    send times out, the session ends and its slot is freed (held: 1 of 1)."""
    arena = make_arena(idle_timeout=1.0)
    big = os.urandom(1 << 20)
    arena.write("big.bin", big)
    arena.complete.add(big)
    s = arena.sock()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        hello = _frame(json.dumps({"op": "hello", "version": 1, "client": "x"}).encode())
        get = _frame(json.dumps({"op": "get", "path": "big.bin"}).encode())
        s.sendall(hello + get * 200)
        wait_for(lambda: arena.server.session_count == 0, 10, "the stalled session to end")
    finally:
        s.close()


def test_redteam_e_resume_tokens_never_reach_the_log(make_arena, caplog):
    """Tokens are bearer secrets: the server's log lines never carry one (held)."""
    arena = make_arena()
    data = os.urandom(3000)
    arena.complete.add(data)
    with caplog.at_level(logging.DEBUG):
        with arena.raw() as v:
            first = _put(v, "tok.bin", data)
            _send_half(v, data, 1000)
            _wait_partial(arena.root / partial_name("tok.bin"), 1000)
        wait_for(lambda: arena.server.session_count == 0, what="the cut session to end")
        with arena.raw() as v:
            reply = _put(v, "tok.bin", data, token=first["token"])
            assert reply["offset"] == 1000 and reply["token"] == first["token"]
            assert v.request({"op": "data"}, data[1000:])[0]["ok"]
        def text() -> str:
            return "\n".join(r.getMessage() for r in caplog.records)
        wait_for(lambda: "put /tok.bin" in text(), what="the put's log line")
    assert first["token"] not in text()


def test_redteam_f_login_throttle_memory_is_bounded(make_server):
    """120 failed logins, each with a new user name and address: the throttle
    remembers at most ``auth_track`` of each kind (held)."""
    checked: list[str] = []
    srv = _auth_server(make_server, checked, auth_track=20,
                       auth_fail_cap=1.0, max_per_ip=64)
    for i in range(120):  # a fresh address each time: no attempt waits
        r = _hello_from("127.0.%d.%d" % (1 + i // 200, 2 + i % 200), srv.address,
                        f"user-{i}", "x")
        assert r is None or r["error"] == "auth_failed"
    addresses, users = srv.throttle.tracked()
    assert addresses <= 20 and users <= 20


def _remove_chain(top: Path) -> None:
    """Remove a chain top/d/d/.../d of any depth: pull each level up, one by one."""
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        while True:
            try:
                os.rename("d/d", "x", src_dir_fd=fd, dst_dir_fd=fd)
            except FileNotFoundError:
                break
            for name in os.listdir(os.path.join(f"/proc/self/fd/{fd}", "d")):
                os.unlink(f"d/{name}", dir_fd=fd)
            os.rmdir("d", dir_fd=fd)
            os.rename("x", "d", src_dir_fd=fd, dst_dir_fd=fd)
        for name in os.listdir(f"/proc/self/fd/{fd}/d"):
            os.unlink(f"d/{name}", dir_fd=fd)
        os.rmdir("d", dir_fd=fd)
    finally:
        os.close(fd)


def test_redteam_g_moving_a_2000_level_folder_is_not_quadratic(make_server, tmp_path):
    """A client-built folder 2000 levels deep (a client builds it with cd + mkdir -p).
    Every mv of it scans it for links: done by re-walking from the top for each level,
    that was 2 million opens (3000 levels: 4.5 million, ~18 s of server CPU) per mv, by 32
    connections at once. Each mv must answer within the attacker's read timeout."""
    root = tmp_path / "root"
    (root / "A").mkdir(parents=True)
    _deep_tree(root / "A", 2000)
    server = make_server(root=root)
    try:
        with RawConn(server.address, timeout=WAIT) as c:
            for i in range(4):
                src, dst = ("A", "B") if i % 2 == 0 else ("B", "A")
                reply, _ = c.request({"op": "mv", "src": src, "dst": dst})
                assert reply["ok"] is True, reply
    finally:
        _remove_chain(root / "A")


def test_redteam_h_unread_listings_cannot_fill_the_spool_disk(make_arena):
    """Peers ls a 60,000-entry folder (4.6 MB of listing, more than socket buffers
    hold) and never read: each holds a spooled file. With no bound, 256 clients x a
    200,000-entry folder (15 MB each) is 3.8 GB of /tmp. Spooled listings share one
    budget (here 8 MB): past it, ``ls`` answers busy at
    once, and once the stalled peers go, listing works again."""
    arena = make_arena(max_listing_spool=8 << 20)
    arena.complete.add(b"")
    big = arena.root / "big"
    big.mkdir()
    for i in range(60_000):
        (big / f"entry-{i:05d}.dat").touch()
    stalled: list = []
    try:
        _stall_ls(arena, stalled, 2)
        budget = arena.server.spool_budget
        wait_for(lambda: budget.used > budget.limit // 2, what="the stalled listings")
        with arena.raw() as a:
            reply, _ = a.request({"op": "ls", "path": "big"})
            assert reply["ok"] is False and reply["error"] == "busy", reply
            a.expect_alive()
    finally:
        for s in stalled:
            s.close()
    _wait_sessions_gone(arena)
    with arena.raw() as a:
        reply, payload = a.request({"op": "ls", "path": "big"})
        assert reply["ok"] is True and len(json.loads(payload)) == 60_000


def test_redteam_i_two_puts_with_one_token_at_once_publish_the_owners_bytes(arena):
    """A cut upload's token presented by two puts at the same moment: at most one
    publishes (the other is busy, cut by the takeover, or finds the file exists);
    only the owner's complete bytes are ever published (held, 10 of 10)."""
    import threading
    tries, wins = 10, 0
    for i in range(tries):
        data = os.urandom(40_000)
        arena.complete.add(data)
        first = _cut_v1(arena, f"tk{i}", data, 10_000)
        gate, out = threading.Barrier(2), []

        def resume() -> None:
            try:
                with arena.raw() as c:
                    gate.wait(WAIT)
                    reply = _put(c, f"tk{i}", data, token=first["token"])
                    if reply.get("ok"):
                        k = reply["offset"]
                        c.send_frame({"op": "data", "size": len(data) - k}, data[k:])
                        reply = c.read_frame()[0]
                    out.append(reply.get("ok") or reply.get("error"))
            except (OSError, ConnectionError):
                out.append("cut")
        ts = [threading.Thread(target=resume) for _ in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(WAIT * 3)
        assert set(out) <= {True, "busy", "cut", "exists"}, out
        wins += out.count(True) > 1  # a holder cut after its publish reads 'cut'
        wins += (arena.root / f"tk{i}").read_bytes() != data
    assert wins == 0


def test_redteam_j_a_cwd_grown_by_relative_cds_stays_within_a_frame(arena):
    """340 x (mkdir + cd) of a 200-character name: a cwd of 68,000 characters, whose
    cd reply no longer fits a frame (it was ``internal``, a traceback and a dropped
    connection). A cd past the 4096-character path limit is refused; the session
    goes on and its cwd stays what it was."""
    name = "n" * 200
    with arena.raw() as a:
        refused = 0
        for _ in range(340):
            a.request({"op": "mkdir", "path": name})
            reply, _ = a.request({"op": "cd", "path": name})
            if not reply["ok"]:
                assert reply["error"] == "bad_request", reply
                refused += 1
        assert refused
        reply, _ = a.request({"op": "pwd"})
        assert reply["ok"] is True and len(reply["cwd"]) <= 4096
        a.expect_alive()


def test_redteam_k_an_ok_mv_reply_naming_two_long_paths_fits_a_frame(arena):
    """cwd of 15 x 250 undecodable bytes (6 bytes of JSON each), a file moved into a
    15-level folder below it: the ok reply's src + dst were 67 KB of header (the move
    happened, the client was told ``internal``). Every normalised path is at most 4096
    characters now: the deep folder is refused up front, and a move between two paths
    at the limit gets its ok reply in one frame."""
    lvl, deep = "\udcff" * 250, "/".join(["\udcfe" * 250] * 15)
    with arena.raw() as a:
        for _ in range(15):
            a.request({"op": "mkdir", "path": lvl})
            assert a.request({"op": "cd", "path": lvl})[0]["ok"]
        reply = a.expect_error({"op": "mkdir", "path": deep, "parents": True}, "bad_request")
        assert "at most 4096" in reply["message"]
        arena.complete.add(b"x")
        assert _put(a, "f", b"x")["ok"] and a.request({"op": "data"}, b"x")[0]["ok"]
        reply = a.expect_error({"op": "mv", "src": "f", "dst": deep + "/g"}, "bad_request")
        assert "path too long" in reply["message"]
        # nearly as long as paths may be: 15 x 251 + 1 + 250 + 1 + 75 + 2 = 4094
        near = "\udcfe" * 250 + "/" + "\udcfd" * 75
        assert a.request({"op": "mkdir", "path": near, "parents": True})[0]["ok"]
        reply, _ = a.request({"op": "mv", "src": "f", "dst": near + "/g"})
        assert reply["ok"] is True and len(reply["dst"]) == 4094, reply
        a.expect_alive()


# --------------------------------------------------------------------- red2: negotiated
# digests, ranged reads, the fsspec pool (protocol section 14)
import threading  # noqa: E402

from pyftp.errors import PyftpError  # noqa: E402
from pyftp.protocol import mtime_ns  # noqa: E402

_BEST = digests.ALGORITHMS[0]
needs_blake3 = pytest.mark.skipif("blake3" not in digests.ALGORITHMS,
                                  reason="this build has no blake3 package")


def _fs_for(server):
    fsspec = pytest.importorskip("fsspec")
    from pyftp.fs import PyftpFileSystem
    host, port = server.address
    return fsspec, PyftpFileSystem(host=host, port=port, timeout=WAIT, skip_instance_cache=True)


def _replace(arena: Arena, c: Client, name: str, data: bytes, how: str, mtime: float) -> None:
    """Replace remote ``name`` by ``data`` through the protocol: a put over it, or a put
    beside it and a mv over it; with ``mtime`` (the old file's, to forge its version)."""
    src = arena.local / "replacement"
    src.write_bytes(data)
    ns = mtime_ns(mtime)
    os.utime(src, ns=(ns, ns))
    if how == "put":
        c.put(src, name, overwrite=True)
    else:
        c.put(src, name + ".new", overwrite=True)
        c.mv(name + ".new", name, overwrite=True)


def _torn_reads(arena: Arena, forge_mtime: bool) -> tuple[int, int]:
    """Open a file through pyftp://, read its first block, replace the file, read the
    rest: (tries, wins); a win is a read that returns bytes of both versions."""
    _fsspec, fs = _fs_for(arena.server)
    tries, wins = 8, 0
    try:
        with Client(*arena.address, timeout=WAIT) as c:
            for i in range(tries):
                old, new = (b"old %d " % i) * 1000, (b"NEW %d " % i) * 1000
                arena.complete.update({old, new})
                (arena.root / f"torn{i}").write_bytes(old)
                mtime = c.stat(f"/torn{i}").mtime
                with fs.open(f"/torn{i}", "rb", block_size=1024, cache_type="none") as f:
                    head = f.read(1024)
                    _replace(arena, c, f"/torn{i}", new, "put" if i % 2 else "mv",
                             mtime if forge_mtime else mtime + 1)
                    try:
                        rest = f.read()
                    except OSError:
                        rest = None  # refused: the file changed under the reader
                wins += rest is not None and head + rest not in (old, new)
    finally:
        fs.close_connections()
    return tries, wins


def test_red2_a_ranged_reads_of_one_open_file_never_mix_two_versions(arena):
    """pyftp:// reads block by block with ranged gets, each verified on its own. A
    file replaced (put over it, or mv of another file over it) between two blocks gave
    the reader the old head and the new tail: 8 of 8 before the fix. Each range is now
    checked against the size and mtime the file had when it was opened: 0 of 8."""
    assert _torn_reads(arena, forge_mtime=False) == (8, 0)


def test_red2_b_a_replacement_forging_size_and_mtime_never_tears_a_read(arena):
    assert _torn_reads(arena, forge_mtime=True) == (8, 0)


@pytest.mark.parametrize("algorithm", [None, pytest.param("blake3", marks=needs_blake3)])
def test_red2_c_a_local_write_into_a_partial_never_poisons_the_digest_cache(
        make_server, tmp_path, algorithm):
    """A local process writes into a partial mid-upload (after those bytes were
    hashed). The server publishes what is on disk; it must never vouch afterwards
    (``hash``, and the digest frame of ``get``) for bytes it does not hold."""
    root = tmp_path / "poison"
    root.mkdir()
    server = make_server(root=root)
    field_ = "digest" if algorithm else "sha256"
    hello = {"digests": [algorithm]} if algorithm else {}
    tries, wins = 3, 0
    for i in range(tries):
        data = os.urandom(100_000)
        with RawConn(server.address, timeout=WAIT, **hello) as c:
            reply, _ = c.request({"op": "put", "path": f"p{i}", "total": len(data),
                                  field_: digests.hash_bytes(data, algorithm or "sha256")})
            assert reply["ok"] is True, reply
            c.send_frame({"op": "data", "size": len(data)}, data[:50_000])
            _wait_partial(root / partial_name(f"p{i}"), 50_000)
            with open(root / partial_name(f"p{i}"), "r+b") as local_process:
                local_process.write(b"EVIL")
            c.send_raw(data[50_000:])
            assert c.read_frame()[0]["ok"] is True
            truth = digests.hash_bytes((root / f"p{i}").read_bytes(), algorithm or "sha256")
            said, _ = c.request({"op": "hash", "path": f"p{i}"})
            wins += said[field_] != truth
            got, payload = c.request({"op": "get", "path": f"p{i}"})
            tail, _ = c.read_frame()
            wins += tail[field_] != digests.hash_bytes(payload, algorithm or "sha256")
    assert wins == 0


# -- a lying server: the client must refuse, never publish unverified bytes, and say why
class _Liar:
    """A one-connection fake server on 127.0.0.1:0 that answers the hello as told and
    then runs ``script(peer)``: what a malicious server would send."""

    def __init__(self, digest: str | None, script) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(WAIT)
        self.address = self.listener.getsockname()[:2]
        self.digest, self.script = digest, script
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        try:
            sock, _ = self.listener.accept()
        except OSError:
            return
        peer = _Peer(sock)
        try:
            peer.read_frame()  # hello
            features = ["sha256", "resume", "mtime", "sha256_trailer", "resume_token"]
            reply = {"ok": True, "version": 1, "server": "pyftp/9", "features": features}
            if self.digest is not None:
                reply.update(digest=self.digest, features=features + ["digests", "ranges"])
            peer.send_frame(reply)
            self.script(peer)
            last, _ = peer.read_frame()  # the client's quit, or whatever it says next
            if last.get("op") == "quit":
                peer.send_frame({"ok": True})
        except (OSError, ValueError, KeyError):
            pass
        finally:
            sock.close()

    def __enter__(self) -> "_Liar":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.listener.close()
        self.thread.join(WAIT * 2)


class _Peer(RawConn):
    """The server end of a connection, speaking frames like RawConn."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.buf = sock, b""
        sock.settimeout(WAIT)


def _frame_of(header: dict, payload: bytes = b"") -> bytes:
    return _frame(json.dumps(header).encode()) + payload


def _range_liar(data: bytes, *, extra: bytes = b"", digest: str | None = None,
                algorithm: str = _BEST):
    def script(peer: _Peer) -> None:
        req, _ = peer.read_frame()
        off, n = req["offset"], req["length"]
        piece = data[off:off + n] + extra
        peer.send_raw(_frame_of({"ok": True, "size": len(piece), "offset": off,
                                 "total": len(data), "mtime": 1e9}, piece)
                      + _frame_of({"ok": True, "algorithm": algorithm,
                                   "digest": digest or digests.hash_bytes(piece, algorithm)}))
    return script


def _get_liar(data: bytes, *, size: int | None = None, digest: str | None = None):
    def script(peer: _Peer) -> None:
        req, _ = peer.read_frame()
        sent = data if size is None else data + b"X" * (size - len(data))
        peer.send_raw(_frame_of({"ok": True, "size": len(sent), "offset": req["offset"],
                                 "total": len(data), "mtime": 1e9}, sent)
                      + _frame_of({"ok": True, "algorithm": _BEST,
                                   "digest": digest or digests.hash_bytes(sent, _BEST)}))
    return script


def _put_liar(claimed: str):
    def script(peer: _Peer) -> None:
        req, _ = peer.read_frame()
        peer.send_frame({"ok": True, "offset": 0, "token": "t" * 32})
        data_frame, _ = peer.read_frame()
        if data_frame.get("op") == "data":
            peer.send_frame({"ok": True, "total": req["total"], "algorithm": _BEST,
                             "digest": claimed, "path": "/" + req["path"].lstrip("/")})
    return script


_TRUE = b"the bytes the server really holds\n" * 10
_LIES = {
    # name: (the digest the liar picks, its script, what the client does)
    "picks_a_digest_not_offered": ("md5", lambda peer: None, "connect"),
    "range_with_a_wrong_digest": (_BEST, _range_liar(_TRUE, digest="0" * 64), "range"),
    "range_longer_than_asked": (_BEST, _range_liar(_TRUE, extra=b"MORE"), "range"),
    "range_digest_in_another_algorithm": (
        _BEST, _range_liar(_TRUE, algorithm="sha256" if _BEST != "sha256" else "blake3"),
        "range"),
    "get_with_a_wrong_digest": (_BEST, _get_liar(_TRUE, digest="0" * 64), "get"),
    "get_longer_than_the_file": (_BEST, _get_liar(_TRUE, size=len(_TRUE) + 100), "get"),
    "put_final_reply_claims_another_digest": (_BEST, _put_liar("a" * 64), "put"),
}


@pytest.mark.parametrize("lie", _LIES)
def test_red2_d_a_lying_server_is_refused_with_a_clear_error(tmp_path, lie):
    """Each lie ends in a pyftp error naming the problem (no other exception, no
    traceback for the CLI to show), and a download's real name keeps its old bytes.
    Before the fix the client reported a put as done with the server's made-up digest
    (1 of 7 lies won); now 0 of 7."""
    picked, script, action = _LIES[lie]
    target = tmp_path / "target.txt"
    target.write_bytes(b"what the user had before\n")
    src = tmp_path / "upload.txt"
    src.write_bytes(_TRUE)
    with _Liar(picked, script) as liar:
        with pytest.raises(PyftpError) as caught:
            with Client(*liar.address, timeout=WAIT) as c:
                if action == "range":
                    c.get_range("/f", 10, 20)
                elif action == "get":
                    c.get("/f", target, resume=False)
                elif action == "put":
                    c.put(src, "/f")
    message = str(caught.value)
    assert message and "Traceback" not in message
    assert target.read_bytes() == b"what the user had before\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["target.txt", "upload.txt"]


# -- ranged gets at the edges: exact bytes or a clear error, never a byte outside
_RANGE_FILE = bytes(range(256)) * 40  # 10,240 bytes in good2.bin
_RANGES = {
    # name: (path, offset, length, error code or None for the exact bytes)
    "start": ("good2.bin", 0, 100, None),
    "middle": ("good2.bin", 5000, 1000, None),
    "to_the_end": ("good2.bin", 10_000, 240, None),
    "empty_at_the_end": ("good2.bin", 10_240, 0, None),
    "empty_in_the_middle": ("good2.bin", 77, 0, None),
    "one_past_the_end": ("good2.bin", 10_000, 241, "bad_request"),
    "offset_past_the_end": ("good2.bin", 10_241, 0, "bad_request"),
    "both_at_the_limit": ("good2.bin", MAX_SIZE, MAX_SIZE, "bad_request"),
    "length_at_the_limit": ("good2.bin", 1, MAX_SIZE, "bad_request"),
    "length_past_the_limit": ("good2.bin", 0, MAX_SIZE + 1, "bad_request"),
    "negative_offset": ("good2.bin", -1, 10, "bad_request"),
    "negative_length": ("good2.bin", 0, -1, "bad_request"),
    "fractional_length": ("good2.bin", 0, 1.5, "bad_request"),
    "boolean_length": ("good2.bin", 0, True, "bad_request"),
    "string_length": ("good2.bin", 0, "10", "bad_request"),
    "through_a_link_out": ("link_file", 0, 10, "permission_denied"),
    "into_a_sibling_root": ("link_sibling/sib.txt", 0, 10, "permission_denied"),
    "a_fifo": ("fifo", 0, 10, "permission_denied"),
    "a_folder": ("sub", 0, 10, "is_a_directory"),
    "a_partial_name": (".good2.bin.pyftp-part", 0, 10, "permission_denied"),
    "dot_dot": ("../secret", 0, 10, "not_found"),  # clamped at the root: /secret
}


@pytest.mark.parametrize("case", _RANGES)
@pytest.mark.parametrize("algorithm", [pytest.param("blake3", marks=needs_blake3), "sha256"])
def test_red2_e_ranged_gets_at_the_edges(arena, case, algorithm):
    """Offsets and lengths at and past the end, at and past 2**53-1, of every wrong
    type, and paths that lead out: the reply is the exact range with the digest of
    exactly it, or one error frame (no payload) and the session goes on."""
    (arena.root / "good2.bin").write_bytes(_RANGE_FILE)
    arena.complete.add(_RANGE_FILE)
    path, offset, length, code = _RANGES[case]
    with arena.raw(digests=[algorithm]) as a:
        req = {"op": "get", "path": path, "offset": offset, "length": length}
        if code is not None:
            a.expect_error(req, code)
            a.expect_alive()
            return
        reply, payload = a.request(req)
        tail, _ = a.read_frame()
        assert payload == _RANGE_FILE[offset:offset + length]
        assert (reply["size"], reply["offset"], reply["total"]) == (length, offset, 10_240)
        assert tail == {"ok": True, "algorithm": algorithm,
                        "digest": digests.hash_bytes(payload, algorithm)}
        a.expect_alive()


def test_red2_e_a_version_1_session_ignores_length(arena):
    """``length`` is not a field of version 1: a session without ``digests`` gets the
    file to its end and the SHA-256 of the whole file, as section 7.10 says."""
    (arena.root / "good2.bin").write_bytes(_RANGE_FILE)
    arena.complete.add(_RANGE_FILE)
    with arena.raw() as a:
        reply, payload = a.request({"op": "get", "path": "good2.bin", "offset": 10,
                                    "length": 5})
        tail, _ = a.read_frame()
    assert payload == _RANGE_FILE[10:] and reply["size"] == 10_230
    assert tail == {"ok": True, "sha256": _sha(_RANGE_FILE)}


def test_red2_e_a_file_shrinking_under_a_large_range_is_cut_not_vouched_for(make_server,
                                                                            tmp_path):
    """A local process truncates a file while the server sends a 24 MiB range of it to
    a peer that has read only the reply header: the server cuts the connection in the
    payload; it never sends a digest frame after fewer bytes (3 of 3 cut)."""
    root = tmp_path / "shrink"
    root.mkdir()
    server = make_server(root=root)
    size = 24 << 20
    tries, wins, cut = 3, 0, 0
    for i in range(tries):
        data = os.urandom(size)
        (root / f"big{i}").write_bytes(data)
        with RawConn(server.address, timeout=WAIT, digests=["sha256"]) as c:
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            c.send_frame({"op": "get", "path": f"big{i}", "offset": 0, "length": size})
            (n,) = struct.unpack(">I", c._read_exact(4))
            assert json.loads(c._read_exact(n))["size"] == size
            os.truncate(root / f"big{i}", size // 3)
            try:
                payload = c._read_exact(size)
                tail, _ = c.read_frame()
            except ConnectionError:
                cut += 1  # cut in the payload: what section 7.10 promises
                continue
            wins += payload != data or tail.get("digest") != _sha(payload)
    assert (wins, cut) == (0, tries)


# -- downgrade and confusion between algorithms
def _cut_in(arena: Arena, name: str, data: bytes, cut: int, algorithm: str | None,
            trailer: bool = False) -> dict:
    """A put of ``data`` in a session of ``algorithm`` (None: version 1) cut after
    ``cut`` bytes; returns its offset reply (with the token)."""
    hello = {"digests": [algorithm]} if algorithm else {}
    field_ = "digest" if algorithm else "sha256"
    header: dict = {"op": "put", "path": name, "total": len(data)}
    if trailer:
        header["trailer"] = True
    else:
        header[field_] = digests.hash_bytes(data, algorithm or "sha256")
    with arena.raw(**hello) as v:
        first, _ = v.request(header)
        assert first["ok"] is True and first["offset"] == 0, first
        _send_half(v, data, cut)
        _wait_partial(arena.root / partial_name(name), cut)
    wait_for(lambda: arena.server.session_count == 0, what="the cut session to end")
    return first


@needs_blake3
@pytest.mark.parametrize("owner", ["blake3", None, "blake3-trailer"])
def test_red2_f_a_partial_is_never_resumed_across_algorithms_without_its_token(arena, owner):
    """A cut upload pinned by its digest in one algorithm. Puts in the other algorithm
    (v1 SHA-256, a negotiated SHA-256, a trailer), and puts that send the recorded hex
    string as if it were their own algorithm's, must get offset 0 and no prefix
    digest: 0 wins in 3 x 3 or 3 x 6 puts. The owner's token then resumes it in the
    algorithm it was begun in (in another, it starts again from zero: a SHA-256 prefix
    digest of a BLAKE3 upload's bytes would let a token holder extend them unseen), and
    only the owner's bytes are published."""
    algorithm = None if owner is None else "blake3"
    tries, wins = 3, 0
    for i in range(tries):
        name, data = f"x{i}", os.urandom(60_000)
        arena.complete.add(data)
        first = _cut_in(arena, name, data, 25_000, algorithm, trailer=owner == "blake3-trailer")
        recorded = digests.hash_bytes(data, algorithm or "sha256")
        other = "sha256" if algorithm else "blake3"
        other_sessions = [({"digests": [other]}, "digest")]
        if other == "sha256":
            other_sessions.append(({}, "sha256"))  # version 1
        attempts = [(hello, fields) for hello, f in other_sessions for fields in (
            {f: digests.hash_bytes(data, other)},  # the truth, in the other algorithm
            {f: recorded},                          # the recorded hex, as if it were its own
            {"trailer": True})]
        for hello, fields in attempts:
            with arena.raw(**hello) as x:
                reply, _ = x.request({"op": "put", "path": name, "total": len(data), **fields})
                assert reply["ok"] is True, reply
                wins += reply["offset"] > 0 or any(k.startswith("prefix_") for k in reply)
            wait_for(lambda: arena.server.session_count == 0, what="the session to end")
        # each of those replaced the partial: cut one more in the owner's algorithm
        first = _cut_in(arena, name, data, 25_000, algorithm, trailer=owner == "blake3-trailer")
        hello = {"digests": [other]} if i % 2 else ({"digests": [algorithm]} if algorithm else {})
        session = other if i % 2 else (algorithm or "sha256")
        field_ = "sha256" if not hello else "digest"
        with arena.raw(**hello) as v:  # the owner, by its token, in either algorithm
            reply, _ = v.request({"op": "put", "path": name, "total": len(data), "trailer": True,
                                  "token": first["token"]} if owner == "blake3-trailer" else
                                 {"op": "put", "path": name, "total": len(data),
                                  "token": first["token"],
                                  field_: digests.hash_bytes(data, session)})
            k = reply["offset"]
            same = session == (algorithm or "sha256")
            assert k == (25_000 if same else 0), reply
            v.send_frame({"op": "data", "size": len(data) - k}, data[k:])
            if owner == "blake3-trailer":
                v.send_frame({"op": "verify", field_: digests.hash_bytes(data, session)})
            final, _ = v.read_frame()
            assert final["ok"] is True, final
        assert (arena.root / name).read_bytes() == data
    assert wins == 0


@pytest.mark.parametrize("size", [5_000, 600_000])
def test_red2_g_digests_are_never_answered_in_another_algorithm_or_for_a_range(arena, size):
    """The digest cache is per algorithm and never holds a range's digest: after a
    put and ranged gets in one algorithm, every session (v1, negotiated SHA-256,
    BLAKE3) hears the digest of the whole file in its own algorithm, from ``hash`` and
    from the digest frame of a whole ``get``; an independent v1 client still puts and
    gets beside them."""
    data = os.urandom(size)
    arena.complete.add(data)
    sessions = [({}, "sha256", "sha256"), ({"digests": ["sha256"]}, "digest", "sha256")]
    if "blake3" in digests.ALGORITHMS:
        sessions.append(({"digests": ["blake3"]}, "digest", "blake3"))
    for n, (hello, field_, algorithm) in enumerate(sessions):
        name = f"g{n}"
        with arena.raw(**hello) as w:  # written and ranged in one algorithm
            reply, _ = w.request({"op": "put", "path": name, "total": size,
                                  field_: digests.hash_bytes(data, algorithm)})
            assert reply["ok"] and w.request({"op": "data"}, data)[0]["ok"]
            if hello.get("digests"):
                for off, length in ((0, 10), (0, size), (size - 7, 7)):
                    w.request({"op": "get", "path": name, "offset": off, "length": length})
                    w.read_frame()
        for hello2, field2, algorithm2 in sessions:  # read in every algorithm
            truth = digests.hash_bytes(data, algorithm2)
            with arena.raw(**hello2) as r:
                said, _ = r.request({"op": "hash", "path": name})
                reply, payload = r.request({"op": "get", "path": name, "offset": 3})
                tail, _ = r.read_frame()
            assert said[field2] == truth and said.get("algorithm", "sha256") == algorithm2
            assert payload == data[3:] and tail[field2] == truth


def test_red2_i_moves_over_a_file_never_make_get_or_hash_vouch_for_other_bytes(arena):
    """One client swaps two contents under one name with ``mv`` as fast as it can;
    another gets and hashes the name meanwhile. Every get's digest frame is the
    digest of its own payload, and every hash names one of the two contents (the
    digest cache is keyed by the file, not the name): 0 wins in 300 reads."""
    one, two = os.urandom(3000), os.urandom(3000)
    arena.complete.update({one, two})
    (arena.root / "swap").write_bytes(one)
    known = {digests.hash_bytes(d, _BEST) for d in (one, two)}
    stop = threading.Event()

    def swapper() -> None:
        with arena.raw() as m:
            k = 0
            while not stop.is_set() and k < 5000:
                k += 1
                src = f"s{k % 2}"
                (arena.root / src).write_bytes(two if k % 2 else one)
                m.request({"op": "mv", "src": src, "dst": "swap", "overwrite": True})
    t = threading.Thread(target=swapper)
    t.start()
    tries, wins = 300, 0
    try:
        with arena.raw(digests=[_BEST]) as r:
            for _ in range(tries):
                said, _ = r.request({"op": "hash", "path": "swap"})
                wins += said["digest"] not in known
                reply, payload = r.request({"op": "get", "path": "swap"})
                tail, _ = r.read_frame()
                wins += tail["digest"] != digests.hash_bytes(payload, _BEST)
                wins += payload not in (one, two)
    finally:
        stop.set()
        t.join(WAIT * 4)
    assert wins == 0


# -- the fsspec pool: a connection cut mid-transfer must never be lent again
class _Boom(Exception):
    pass


class _BreaksAfter:
    """A file-like that takes ``n`` bytes and then raises (not an OSError)."""

    def __init__(self, n: int) -> None:
        self.n, self.got = n, 0

    def write(self, data) -> int:
        self.got += len(data)
        if self.got > self.n:
            raise _Boom("the consumer failed")
        return len(data)

    def flush(self) -> None:
        pass

    def seekable(self) -> bool:
        return False


def test_red2_h_a_transfer_interrupted_by_its_consumer_never_returns_to_the_pool(arena):
    """A progress callback or an output file raises in the middle of a 6 MiB
    download. Whatever the pool lends next must be in step: the unread rest of that
    payload must never be read as the next reply (10 interrupted transfers, each
    followed by ranged reads and listings on the same pool: 0 wrong answers)."""
    from fsspec.callbacks import Callback
    _fsspec, fs = _fs_for(arena.server)
    big, small = os.urandom(6 << 20), os.urandom(70_000)
    arena.complete.update({big, small})
    (arena.root / "big.bin").write_bytes(big)
    (arena.root / "small.bin").write_bytes(small)

    class Raising(Callback):
        def absolute_update(self, value) -> None:
            if value > 1 << 20:
                raise _Boom("the progress display failed")

    tries, wins = 10, 0
    try:
        for i in range(tries):
            with pytest.raises(_Boom):
                if i % 2:
                    fs.get_file("/big.bin", str(arena.local / "big.bin"), callback=Raising())
                else:
                    fs.get_file("/big.bin", None, outfile=_BreaksAfter(1 << 20))
            with fs.open("/small.bin", "rb", block_size=4096, cache_type="none") as f:
                f.seek(1000)
                wins += f.read(5000) != small[1000:6000]
            wins += [e["name"] for e in fs.ls("/", detail=True)].count("/small.bin") != 1
            wins += fs.cat_file("/small.bin", 10, 20) != small[10:20]
    finally:
        fs.close_connections()
    assert wins == 0
    assert not [p for p in arena.local.iterdir() if p.name == "big.bin"]


# -- resume tokens are secrets of one server
def _token_recorder(seen: list):
    """A liar that notes the token a put presents, then says busy."""
    def script(peer: _Peer) -> None:
        req, _ = peer.read_frame()
        seen.append(req.get("token"))
        peer.send_frame({"ok": False, "error": "busy", "message": "busy: try later"})
    return script


def test_red2_j_a_resume_token_is_never_sent_to_another_server_on_the_same_host(
        arena, tmp_path):
    """The victim's 2.25 MiB upload to the real server is cut (its progress display
    fails); its resume token stays in the process's book. The victim then uploads
    the same file under the same name to another server on the same host (another
    port) run by the attacker, who thus learns the token, resumes the victim's
    trailer partial on the real server in SHA-256 and, by length extension of the
    prefix digest it is then given, publishes the victim's unseen head with its own
    tail. Tokens are keyed by host alone: 3 of 3 leak and 3 of 3 publish."""
    from pyftp.client.upload import TokenBook
    tries, leaks, wins = 3, 0, 0
    for i in range(tries):
        data = os.urandom((2 << 20) + (256 << 10))  # a trailer put: 2 MiB and more
        arena.complete.add(data)
        src = tmp_path / f"victim{i}.bin"
        src.write_bytes(data)
        book = TokenBook()

        def fail_midway(done: int, total: int) -> None:
            if done >= 2 << 20:  # the tail left to forge stays short
                raise _Boom("the progress display failed")
        with Client(*arena.address, timeout=WAIT, resume_tokens=book) as victim:
            with pytest.raises(_Boom):
                victim.put(src, f"/v{i}.bin", on_progress=fail_midway)
        wait_for(lambda: arena.server.session_count == 0, what="the cut session to end")
        seen: list = []
        with _Liar(_BEST, _token_recorder(seen)) as liar:
            with Client(*liar.address, timeout=WAIT, resume_tokens=book) as victim:
                with pytest.raises(PyftpError):
                    victim.put(src, f"/v{i}.bin")
        token = seen[0] if seen else None
        leaks += token is not None
        if token is None:  # the victim's own server still resumes the upload
            with Client(*arena.address, timeout=WAIT, resume_tokens=book) as victim:
                assert victim.put(src, f"/v{i}.bin").offset > 0
            assert (arena.root / f"v{i}.bin").read_bytes() == data
            continue
        with arena.raw() as x:  # the attacker, on the real server, in SHA-256
            reply, _ = x.request({"op": "put", "path": f"v{i}.bin", "total": len(data),
                                  "trailer": True, "token": token})
            k = reply.get("offset", 0)
            if reply.get("ok") and k and "prefix_sha256" in reply:
                # it never saw the head: SHA-256 length extension of the prefix digest
                pad = len(_sha256_extend(reply["prefix_sha256"], k, b"")[0])
                glue, digest = _sha256_extend(reply["prefix_sha256"], k,
                                              b"E" * (len(data) - k - pad))
                x.send_frame({"op": "data", "size": len(data) - k},
                             glue + b"E" * (len(data) - k - pad))
                x.send_frame({"op": "verify", "sha256": digest})
                final, _ = x.read_frame()
                if final.get("ok"):
                    arena.complete.add((arena.root / f"v{i}.bin").read_bytes())
                    wins += 1
            elif reply.get("ok"):
                x.send_frame({"op": "data", "size": len(data)}, data)
                x.send_frame({"op": "verify", "sha256": _sha(data)})
                assert x.read_frame()[0]["ok"] is True
        wait_for(lambda: arena.server.session_count == 0, what="the session to end")
    assert (leaks, wins) == (0, 0)


@pytest.mark.parametrize("algorithm", [None, pytest.param("blake3", marks=needs_blake3)])
def test_red2_k_a_local_rewrite_keeping_size_and_mtime_is_hashed_anew(arena, algorithm):
    """A local process rewrites a file in place, same size, and puts its mtime back
    (``touch -d``): the cached digest must not be served for the new bytes, by
    ``hash`` or by a whole or ranged ``get``, small (one write) or large (sendfile):
    0 stale answers in 2 x 10 rewrites."""
    hello = {"digests": [algorithm]} if algorithm else {}
    field_ = "digest" if algorithm else "sha256"
    alg = algorithm or "sha256"
    tries, wins = 10, 0
    with arena.raw(**hello) as r:
        for size in (4_000, 400_000):
            p = arena.root / f"k{size}"
            p.write_bytes(os.urandom(size))
            for _ in range(tries):
                said, _ = r.request({"op": "hash", "path": p.name})  # cached now
                r.request({"op": "get", "path": p.name})
                r.read_frame()
                st = p.stat()
                new = os.urandom(size)
                with open(p, "r+b") as local_process:
                    local_process.write(new)
                os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
                arena.complete.add(new)
                said, _ = r.request({"op": "hash", "path": p.name})
                wins += said[field_] != digests.hash_bytes(new, alg)
                _, payload = r.request({"op": "get", "path": p.name})
                tail, _ = r.read_frame()
                wins += payload != new or tail[field_] != digests.hash_bytes(new, alg)
    assert wins == 0


_HELLO_DIGESTS = {
    # name: the digests field; every one is refused with bad_request, and the session
    # may say hello again
    "empty_list": [],
    "nine_names": ["sha256"] * 9,
    "a_name_of_33": ["s" * 33],
    "an_empty_name": [""],
    "not_a_list": "sha256",
    "a_number": [256],
    "nested": [["sha256"]],
    "only_unknown": ["md5", "sha1", "crc32"],
    "upper_case": ["SHA256", "BLAKE3"],
    "with_spaces": ["sha256 ", " blake3"],
}


@pytest.mark.parametrize("case", _HELLO_DIGESTS)
def test_red2_l_a_bad_digests_list_is_refused_and_hello_may_be_retried(arena, case):
    """A hello whose ``digests`` is malformed or names nothing the server has gets
    ``bad_request``; nothing else is answered before a good hello, and the retried
    hello negotiates as if the first had never been sent."""
    with arena.raw(hello=False) as a:
        a.expect_error({"op": "hello", "version": 1, "digests": _HELLO_DIGESTS[case]},
                       "bad_request")
        a.expect_error({"op": "get", "path": "good.txt"}, "auth_required")
        reply, _ = a.request({"op": "hello", "version": 1, "digests": ["sha256"]})
        assert reply["ok"] is True and reply["digest"] == "sha256", reply
        reply, payload = a.request({"op": "get", "path": "good.txt", "offset": 0,
                                    "length": 4})
        tail, _ = a.read_frame()
        assert payload == GOOD[:4] and tail["digest"] == _sha(GOOD[:4])
        a.expect_error({"op": "hello", "version": 1}, "bad_request")  # no second hello


# -- the client's own partial downloads in a folder others can write to
@pytest.mark.parametrize("planted", ["symlink", "fifo"])
@pytest.mark.parametrize("resume", [True, False])
def test_red2_m_a_planted_partial_never_leads_a_download_elsewhere(arena, tmp_path,
                                                                    planted, resume):
    """Someone who can write to the folder a user downloads into (a group-writable
    project folder) plants ``.NAME.pyftp-part`` before the get: a symlink to the
    user's own file elsewhere (~/.bashrc, say), or a FIFO. The download must never
    write through it, nor publish it under the real name: it refuses with a clear
    error, and the file elsewhere keeps its bytes. Before the fix the symlink case
    overwrote the outside file with the served bytes and left the target a link to
    it (2 of 2 won), and the FIFO was renamed over the target, so that the next get
    of it hung for ever (2 of 2); now 0 of 4."""
    served = b"echo pwned  # the served bytes\n"
    arena.complete.add(served)
    (arena.root / "f.txt").write_bytes(served)
    shared, elsewhere = tmp_path / "shared", tmp_path / "bashrc"
    shared.mkdir()
    mine = b"# the user's own file, outside the download folder\n" * 3
    elsewhere.write_bytes(mine)
    trap = shared / partial_name("f.txt")
    if planted == "symlink":
        trap.symlink_to(elsewhere)
    else:
        os.mkfifo(trap)
    wins = 0
    with Client(*arena.address, timeout=WAIT) as c:
        try:
            c.get("/f.txt", shared / "f.txt", resume=resume)
        except PyftpError as exc:
            assert "remove it and get the file again" in str(exc), exc
        target = shared / "f.txt"
        wins += elsewhere.read_bytes() != mine
        wins += target.is_symlink() or (target.exists() and not target.is_file())
        assert wins == 0  # (a FIFO published as the target would hang the next get)
        trap.unlink()  # once the trap is gone the download works
        c.get("/f.txt", shared / "f.txt", resume=resume)
    assert (shared / "f.txt").read_bytes() == served and not (shared / "f.txt").is_symlink()
