"""The server over real loopback sockets, spoken to in raw frames (tests/helpers.py).

pyftp.Client is deliberately not used here, so a bug in the client cannot hide one in
the server.
"""
from __future__ import annotations

import logging
import os
import re
import socket
import struct
import threading

import pytest

from pyftp.protocol import partial_name
from helpers import RawConn, cut_put, sha, start_put, wait_for, without_token




def error_of(reply: dict) -> str:
    assert reply["ok"] is False, reply
    assert isinstance(reply["message"], str) and reply["message"]
    return reply["error"]


def put(conn: RawConn, path: str, data: bytes, **fields) -> dict:
    """A whole put: request, offset reply, data frame, final reply."""
    req = {"op": "put", "path": path, "total": len(data), "sha256": sha(data), **fields}
    req = {k: v for k, v in req.items() if v is not None}
    reply, _ = conn.request(req)
    if not reply["ok"]:
        return reply
    offset = reply["offset"]
    conn.send_frame({"op": "data", "size": len(data) - offset}, data[offset:])
    final, _ = conn.read_frame()
    return final


def get(conn: RawConn, path: str, offset: int | None = None):
    """A whole get: (reply, payload, digest frame)."""
    req = {"op": "get", "path": path}
    if offset is not None:
        req["offset"] = offset
    reply, payload = conn.request(req)
    if not reply["ok"]:
        return reply, b"", None
    digest, _ = conn.read_frame()
    return reply, payload, digest


@pytest.fixture
def conn(server):
    with RawConn(server.address) as c:
        yield c


@pytest.fixture
def files(remote):
    """a.txt and sub/b.txt in what the server serves (a folder or a bucket prefix)."""
    remote.write("a.txt", b"alpha\n")
    remote.mkdir("sub")
    remote.write("sub/b.txt", b"beta")
    return remote


# ------------------------------------------------------------------ hello

def test_hello(server):
    with RawConn(server.address, hello=False) as c:
        reply, payload = c.request({"op": "hello", "version": 1, "client": "raw/1"})
        assert payload == b""
        assert reply["ok"] is True and reply["version"] == 1
        assert re.fullmatch(r"pyftp/\d+\.\d+\.\d+.*", reply["server"])
        assert {"sha256", "resume", "mtime", "pipelining"} <= set(reply["features"])
        assert "read_only" not in reply["features"]


def test_hello_on_a_read_only_server_says_so(make_server):
    s = make_server(read_only=True)
    with RawConn(s.address, hello=False) as c:
        reply, _ = c.request({"op": "hello", "version": 1})
        assert "read_only" in reply["features"]


def test_wrong_version_then_a_good_hello(server):
    with RawConn(server.address, hello=False) as c:
        reply, _ = c.request({"op": "hello", "version": 2, "client": "raw/1"})
        assert error_of(reply) == "unsupported_version"
        assert "version 1" in reply["message"]
        reply, _ = c.request({"op": "pwd"})
        assert error_of(reply) == "auth_required"
        reply, _ = c.request({"op": "hello", "version": 1})
        assert reply["ok"] is True


@pytest.mark.parametrize("op", ["pwd", "ls", "quit", "upper"])
def test_op_before_hello_is_refused(server, op):
    with RawConn(server.address, hello=False) as c:
        reply, _ = c.request({"op": op}, b"abc" if op == "upper" else b"")
        assert error_of(reply) == "auth_required"
        assert "hello" in reply["message"]
        reply, _ = c.request({"op": "hello", "version": 1})  # still in step
        assert reply["ok"] is True


def test_put_before_hello_creates_nothing(server, remote):
    with RawConn(server.address, hello=False) as c:
        reply, _ = c.request({"op": "put", "path": "x", "total": 3})
        assert error_of(reply) == "auth_required"
    assert remote.names() == []


def test_hello_twice(conn):
    reply, _ = conn.request({"op": "hello", "version": 1})
    assert error_of(reply) == "bad_request"
    assert conn.request({"op": "pwd"})[0] == {"ok": True, "cwd": "/"}


def test_hello_with_a_bad_version_field(server):
    with RawConn(server.address, hello=False) as c:
        reply, _ = c.request({"op": "hello", "version": "1"})
        assert error_of(reply) == "bad_request"
        reply, _ = c.request({"op": "hello"})
        assert error_of(reply) == "bad_request"


# ------------------------------------------------------------------ every op

def test_ls(conn, files):
    reply, payload = conn.request({"op": "ls"})
    assert reply == {"ok": True, "size": len(payload)}
    import json
    entries = json.loads(payload.decode("utf-8"))
    assert entries == [
        {"name": "a.txt", "type": "file", "size": 6, "mtime": files.mtime("a.txt")},
        {"name": "sub", "type": "dir", "size": 0, "mtime": files.mtime("sub")}]
    reply, payload = conn.request({"op": "ls", "path": "sub"})
    assert [e["name"] for e in json.loads(payload)] == ["b.txt"]
    reply, payload = conn.request({"op": "ls", "path": "sub/b.txt"})
    assert [e["name"] for e in json.loads(payload)] == ["b.txt"]


def test_stat(conn, files):
    reply, _ = conn.request({"op": "stat", "path": "a.txt"})
    assert reply["ok"] and reply["entry"]["name"] == "a.txt" and reply["entry"]["size"] == 6
    reply, _ = conn.request({"op": "stat", "path": "/"})
    assert reply["entry"]["type"] == "dir"


def test_cd_and_pwd(conn, files):
    assert conn.request({"op": "pwd"})[0] == {"ok": True, "cwd": "/"}
    assert conn.request({"op": "cd", "path": "sub"})[0] == {"ok": True, "cwd": "/sub"}
    assert conn.request({"op": "pwd"})[0]["cwd"] == "/sub"
    # relative paths now start at /sub
    assert conn.request({"op": "stat", "path": "b.txt"})[0]["entry"]["size"] == 4
    assert conn.request({"op": "cd", "path": "../../.."})[0]["cwd"] == "/"
    assert conn.request({"op": "cd", "path": "/sub/"})[0]["cwd"] == "/sub"


def test_mkdir_rm_rmdir_mv(conn, files):
    assert conn.request({"op": "mkdir", "path": "new"})[0] == {"ok": True, "path": "/new"}
    assert files.is_dir("new")
    reply, _ = conn.request({"op": "mkdir", "path": "p/q/r", "parents": True})
    assert reply == {"ok": True, "path": "/p/q/r"}
    assert conn.request({"op": "mv", "src": "a.txt", "dst": "new/a2.txt"})[0] == {
        "ok": True, "src": "/a.txt", "dst": "/new/a2.txt"}
    assert files.read("new/a2.txt") == b"alpha\n"
    reply, _ = conn.request({"op": "mv", "src": "sub/b.txt", "dst": "new/a2.txt"})
    assert error_of(reply) == "exists"
    reply, _ = conn.request({"op": "mv", "src": "sub/b.txt", "dst": "new/a2.txt",
                             "overwrite": True})
    assert reply["ok"] and files.read("new/a2.txt") == b"beta"
    assert conn.request({"op": "rm", "path": "new/a2.txt"})[0] == {"ok": True, "path": "/new/a2.txt"}
    assert conn.request({"op": "rmdir", "path": "new"})[0] == {"ok": True, "path": "/new"}
    assert not files.exists("new")


def test_get(conn, files):
    reply, payload, digest = get(conn, "a.txt")
    assert reply["ok"] is True
    assert (reply["size"], reply["offset"], reply["total"]) == (6, 0, 6)
    assert reply["mtime"] == files.mtime("a.txt")
    assert payload == b"alpha\n"
    assert digest == {"ok": True, "sha256": sha(b"alpha\n")}


def test_get_with_offset(conn, files):
    reply, payload, digest = get(conn, "a.txt", offset=2)
    assert (reply["size"], reply["offset"], reply["total"]) == (4, 2, 6)
    assert payload == b"pha\n"
    assert digest["sha256"] == sha(b"alpha\n")  # always the whole file
    reply, payload, digest = get(conn, "a.txt", offset=6)
    assert (reply["size"], payload) == (0, b"")
    assert digest["sha256"] == sha(b"alpha\n")
    reply, _, _ = get(conn, "a.txt", offset=7)
    assert error_of(reply) == "bad_request" and "past the end" in reply["message"]
    assert conn.request({"op": "pwd"})[0]["ok"]


def test_get_of_a_large_file_with_offset(conn, remote):
    data = os.urandom(600 * 1024 + 5)  # beyond the one-write small-file form
    remote.write("big", data)
    reply, payload, digest = get(conn, "big", offset=1000)
    assert reply["size"] == len(data) - 1000 and payload == data[1000:]
    assert digest == {"ok": True, "sha256": sha(data)}


def test_put(conn, remote):
    data = b"hello put"
    reply, _ = conn.request({"op": "put", "path": "p.txt", "total": len(data),
                             "sha256": sha(data), "mtime": 1_500_000_000.25})
    assert without_token(reply) == {"ok": True, "offset": 0}
    assert not remote.exists("p.txt")
    conn.send_frame({"op": "data", "size": len(data)}, data)
    final, _ = conn.read_frame()
    assert final == {"ok": True, "total": len(data), "sha256": sha(data), "path": "/p.txt"}
    assert remote.read("p.txt") == data
    # mtime travels in seconds with 6 decimals: exact to the microsecond
    assert remote.mtime_ns("p.txt") == 1_500_000_000_250_000_000
    assert remote.names() == ["p.txt"]


def test_put_without_sha256(conn, remote):
    final = put(conn, "n.txt", b"abc", sha256=None)
    assert final["ok"] and final["sha256"] == sha(b"abc")
    assert remote.read("n.txt") == b"abc"


def test_put_overwrite(conn, files):
    final = put(conn, "a.txt", b"new", overwrite=True)
    assert final["ok"] is True
    assert files.read("a.txt") == b"new"


def test_hash(conn, files):
    reply, _ = conn.request({"op": "hash", "path": "sub/b.txt"})
    assert reply == {"ok": True, "sha256": sha(b"beta"), "total": 4, "path": "/sub/b.txt"}


def test_upper(conn):
    text = "héllo wörld straße ǆ".encode("utf-8")
    reply, payload = conn.request({"op": "upper"}, text)
    assert reply == {"ok": True, "size": len(payload)}
    assert payload.decode("utf-8") == "HÉLLO WÖRLD STRASSE Ǆ"
    reply, payload = conn.request({"op": "upper"})  # empty text, no size
    assert reply["ok"] is True and reply.get("size", 0) == 0 and payload == b""


def test_quit_closes(conn):
    reply, _ = conn.request({"op": "quit"})
    assert reply == {"ok": True}
    assert conn.is_closed()


def test_peer_closing_ends_its_session(server):
    c = RawConn(server.address)
    wait_for(lambda: server.session_count == 1, what="the session to start")
    c.close()
    wait_for(lambda: server.session_count == 0, what="the session to end")


# ------------------------------------------------------------------ error codes

@pytest.mark.parametrize("req", [
    {"op": "nope"},
    {"op": "stat"},
    {"op": "stat", "path": ""},
    {"op": "stat", "path": 7},
    {"op": "get", "path": "a.txt", "offset": -1},
    {"op": "put", "path": "x", "total": 1.5},
    {"op": "put", "path": "x", "total": 1, "sha256": "ABC"},
    {"op": "mkdir", "path": "x", "parents": "yes"},
    {"op": "stat", "path": "a\\b"},
    {"op": "stat", "path": "a\x00b"},
    {"op": "stat", "path": "\ud800"},
    {"op": "pwd", "size": 3},
    {"op": "data", "size": 2},
    {"nothing": "here"},
])
def test_bad_request_leaves_the_connection_usable(conn, files, req):
    payload = b"x" * req.get("size", 0)
    conn.send_frame(req, payload)
    reply, _ = conn.read_frame()
    assert error_of(reply) == "bad_request"
    assert conn.request({"op": "stat", "path": "a.txt"})[0]["ok"] is True
    assert files.names() == ["a.txt", "sub"]


def test_upper_with_invalid_utf8(conn):
    reply, payload = conn.request({"op": "upper"}, b"ok \xff\xfe")
    assert error_of(reply) == "bad_request" and "UTF-8" in reply["message"]
    assert conn.request({"op": "upper"}, b"still")[1] == b"STILL"


@pytest.mark.parametrize("data", [
    struct.pack(">I", 0),
    struct.pack(">I", 65537),
    struct.pack(">I", 2**32 - 1),
    struct.pack(">I", 5) + b"[1,2]",
    struct.pack(">I", 4) + b"nope",
    struct.pack(">I", 3) + b"\xff\xfe{",
    struct.pack(">I", 13) + b'{"size":-1.0}',
    struct.pack(">I", 12) + b'{"size":NaN}',
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
])
def test_framing_errors_get_bad_frame_and_a_close(conn, data):
    conn.send_raw(data)
    reply, _ = conn.read_frame()
    assert error_of(reply) == "bad_frame"
    assert conn.is_closed()


def test_bad_frame_after_good_requests(conn):
    conn.send_frame({"op": "pwd"})
    conn.send_raw(struct.pack(">I", 0))
    assert conn.read_frame()[0] == {"ok": True, "cwd": "/"}
    assert error_of(conn.read_frame()[0]) == "bad_frame"
    assert conn.is_closed()


def test_bad_frame_before_hello(server):
    with RawConn(server.address, hello=False) as c:
        c.send_raw(struct.pack(">I", 2) + b"[]")
        assert error_of(c.read_frame()[0]) == "bad_frame"
        assert c.is_closed()


def test_not_found(conn, files):
    for req in ({"op": "stat", "path": "missing"}, {"op": "get", "path": "missing"},
                {"op": "ls", "path": "missing"}, {"op": "cd", "path": "missing"},
                {"op": "hash", "path": "missing"}, {"op": "rm", "path": "missing"},
                {"op": "rmdir", "path": "missing"},
                {"op": "mv", "src": "missing", "dst": "x"},
                {"op": "mkdir", "path": "missing/x"},
                {"op": "put", "path": "missing/x", "total": 1}):
        reply, _ = conn.request(req)
        assert error_of(reply) == "not_found", req
        assert "missing" in reply["message"] and files.served not in reply["message"]


def test_exists(conn, files):
    assert error_of(conn.request({"op": "mkdir", "path": "sub"})[0]) == "exists"
    assert error_of(conn.request({"op": "mv", "src": "a.txt", "dst": "sub/b.txt"})[0]) == "exists"
    reply = put(conn, "a.txt", b"would replace")
    assert error_of(reply) == "exists"
    assert files.read("a.txt") == b"alpha\n"
    assert files.names() == ["a.txt", "sub"]  # no partial either


def test_is_a_directory(conn, files):
    for req in ({"op": "get", "path": "sub"}, {"op": "hash", "path": "sub"},
                {"op": "rm", "path": "sub"},
                {"op": "put", "path": "sub", "total": 1, "overwrite": True},
                {"op": "put", "path": "/", "total": 1}):
        reply, _ = conn.request(req)
        assert error_of(reply) == "is_a_directory", req
    assert conn.request({"op": "pwd"})[0]["ok"]


def test_not_a_directory(conn, files):
    for req in ({"op": "cd", "path": "a.txt"}, {"op": "rmdir", "path": "a.txt"},
                {"op": "ls", "path": "a.txt/x"}, {"op": "mkdir", "path": "a.txt/x"},
                {"op": "put", "path": "a.txt/x", "total": 1}):
        reply, _ = conn.request(req)
        assert error_of(reply) == "not_a_directory", req


def test_not_empty(conn, files):
    reply, _ = conn.request({"op": "rmdir", "path": "sub"})
    assert error_of(reply) == "not_empty"
    assert files.exists("sub/b.txt")


def test_permission_denied_on_a_read_only_server(make_server, files):
    s = make_server(read_only=True)
    with RawConn(s.address) as c:
        for req in ({"op": "mkdir", "path": "x"}, {"op": "rm", "path": "a.txt"},
                    {"op": "rmdir", "path": "sub"}, {"op": "mv", "src": "a.txt", "dst": "b"},
                    {"op": "put", "path": "new", "total": 3}):
            reply, _ = c.request(req)
            assert error_of(reply) == "permission_denied", req
            assert "read-only" in reply["message"]
        # reading still works
        assert get(c, "a.txt")[1] == b"alpha\n"
    assert files.names() == ["a.txt", "sub"]


def test_permission_denied_for_symlinks_out(conn, root, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    os.symlink(outside / "secret", root / "s-file")
    os.symlink(outside, root / "s-dir")
    for req in ({"op": "get", "path": "s-file"}, {"op": "stat", "path": "s-file"},
                {"op": "hash", "path": "s-file"}, {"op": "ls", "path": "s-dir"},
                {"op": "cd", "path": "s-dir"}, {"op": "get", "path": "s-dir/secret"},
                {"op": "put", "path": "s-dir/planted", "total": 1},
                {"op": "mkdir", "path": "s-dir/new"},
                {"op": "mv", "src": "s-dir/secret", "dst": "stolen"}):
        reply, payload = conn.request(req)
        assert error_of(reply) == "permission_denied", req
        assert b"secret" not in payload and str(outside) not in reply["message"]
    reply, payload = conn.request({"op": "ls"})
    assert payload == b"[]"
    assert sorted(os.listdir(outside)) == ["secret"]


def test_dotdot_and_absolute_paths_stay_in_the_root(conn, remote, tmp_path):
    (tmp_path / "secret").write_bytes(b"secret")
    for path in ("../secret", "/../secret", "../../../../" + str(tmp_path / "secret"),
                 str(tmp_path / "secret")):
        reply, payload, _ = get(conn, path)
        assert error_of(reply) == "not_found", path
    final = put(conn, "../../escape.txt", b"x")
    assert final["ok"] and final["path"] == "/escape.txt"
    assert remote.is_file("escape.txt") and not (tmp_path / "escape.txt").exists()


def test_reserved_partial_names_are_refused(conn):
    for req in ({"op": "get", "path": partial_name("x")},
                {"op": "put", "path": partial_name("x"), "total": 1},
                {"op": "rm", "path": partial_name("x") + ".json"}):
        assert error_of(conn.request(req)[0]) == "permission_denied"


def test_busy_on_two_concurrent_puts_to_one_path(server, remote):
    data = b"first upload"
    with RawConn(server.address) as a, RawConn(server.address) as b:
        reply, _ = a.request({"op": "put", "path": "x.bin", "total": len(data),
                              "sha256": sha(data)})
        assert without_token(reply) == {"ok": True, "offset": 0}
        reply, _ = b.request({"op": "put", "path": "x.bin", "total": 3, "overwrite": True})
        assert error_of(reply) == "busy"
        a.send_frame({"op": "data", "size": len(data)}, data)
        assert a.read_frame()[0]["ok"] is True
        # once the first is done, the path is free again
        assert put(b, "x.bin", b"two", overwrite=True)["ok"] is True
    assert remote.read("x.bin") == b"two"


def test_too_large_upload(make_server, remote):
    s = make_server(max_file_size=10)
    with RawConn(s.address) as c:
        reply, _ = c.request({"op": "put", "path": "big", "total": 11})
        assert error_of(reply) == "too_large" and "10 bytes" in reply["message"]
        assert put(c, "fits", b"0123456789")["ok"] is True
    assert remote.names() == ["fits"]


def test_too_large_upper_is_drained_and_the_connection_goes_on(make_server):
    s = make_server(max_upper=16)
    with RawConn(s.address) as c:
        reply, payload = c.request({"op": "upper"}, b"x" * 17)
        assert error_of(reply) == "too_large" and payload == b""
        assert c.request({"op": "upper"}, b"x" * 16)[1] == b"X" * 16


def test_payload_over_the_drain_limit_after_an_error_closes(conn):
    conn.send_frame({"op": "pwd", "size": 5 * 1024 * 1024})  # no payload sent yet
    reply, _ = conn.read_frame()
    assert error_of(reply) == "bad_request"
    assert conn.is_closed()


def test_no_space(make_server, root):
    s = make_server(min_free=2**62)
    with RawConn(s.address) as c:
        reply, _ = c.request({"op": "put", "path": "x", "total": 1})
        assert error_of(reply) == "no_space" and "free" in reply["message"]
        assert c.request({"op": "pwd"})[0]["ok"] is True
    assert os.listdir(root) == []


def test_checksum_mismatch_keeps_a_good_old_file(conn, files):
    data = b"new content"
    reply, _ = conn.request({"op": "put", "path": "a.txt", "total": len(data),
                             "sha256": sha(b"something else"), "overwrite": True})
    assert reply["ok"] is True
    conn.send_frame({"op": "data", "size": len(data)}, data)
    final, _ = conn.read_frame()
    assert error_of(final) == "checksum_mismatch"
    assert files.read("a.txt") == b"alpha\n"
    assert files.names() == ["a.txt", "sub"]
    assert conn.request({"op": "pwd"})[0]["ok"] is True


def test_checksum_mismatch_creates_no_target(conn, remote):
    reply, _ = conn.request({"op": "put", "path": "n", "total": 3, "sha256": sha(b"xyz")})
    conn.send_frame({"op": "data", "size": 3}, b"abc")
    assert error_of(conn.read_frame()[0]) == "checksum_mismatch"
    assert remote.names() == []


def test_data_frame_of_the_wrong_size(conn, remote):
    reply, _ = conn.request({"op": "put", "path": "w", "total": 3, "sha256": sha(b"abc")})
    conn.send_frame({"op": "data", "size": 2}, b"ab")
    final, _ = conn.read_frame()
    assert error_of(final) == "bad_request" and "3 bytes" in final["message"]
    assert conn.request({"op": "pwd"})[0]["ok"] is True
    assert remote.names() == []
    assert put(conn, "w", b"abc")["ok"] is True  # the claim was released


def test_internal_errors_do_not_leak_paths(conn, root, monkeypatch, caplog):
    # an unexpected exception inside a handler, the way a bug would raise one: the
    # storage layer below the server is made to fail, the server itself is real
    from pyftp.server.storage import Storage

    def boom(self, cwd, path):
        raise RuntimeError(f"bug while reading {root}/{path}")
    monkeypatch.setattr(Storage, "stat", boom)
    caplog.set_level(logging.ERROR, logger="pyftp.server")
    reply, _ = conn.request({"op": "stat", "path": "x"})
    assert error_of(reply) == "internal"
    assert str(root) not in reply["message"] and "bug" not in reply["message"]
    assert conn.is_closed()
    assert any("RuntimeError" in (r.exc_text or "") or r.exc_info for r in caplog.records)


# ------------------------------------------------------------------ atomic uploads

def test_disconnect_mid_payload_keeps_the_partial_and_resume_continues(server, root):
    data = os.urandom(300_000)
    digest = sha(data)
    part = root / partial_name("r.bin")
    cut_put(server, part, "r.bin", data, data[:120_000])
    assert not (root / "r.bin").exists()
    assert part.read_bytes() == data[:120_000]
    with RawConn(server.address) as c2:
        assert c2.request({"op": "ls"})[1] == b"[]"  # the partial is never listed
        reply, _ = c2.request({"op": "put", "path": "r.bin", "total": len(data),
                               "sha256": digest})
        assert without_token(reply) == {"ok": True, "offset": 120_000}
        c2.send_frame({"op": "data", "size": len(data) - 120_000}, data[120_000:])
        final, _ = c2.read_frame()
        assert final == {"ok": True, "total": len(data), "sha256": digest, "path": "/r.bin"}
    assert (root / "r.bin").read_bytes() == data
    assert os.listdir(root) == ["r.bin"]


def test_disconnect_mid_payload_keeps_a_good_old_file(server, remote):
    remote.write("keep.txt", b"good")
    c = RawConn(server.address)
    c.request({"op": "put", "path": "keep.txt", "total": 100, "sha256": sha(b"x" * 100),
               "overwrite": True})
    c.send_frame({"op": "data", "size": 100}, b"x" * 50)
    c.close()
    wait_for(lambda: server.session_count == 0, what="the session to end")
    assert remote.read("keep.txt") == b"good"


def test_resume_false_starts_over(server, root):
    data = b"0123456789" * 100
    part = root / partial_name("r")
    cut_put(server, part, "r", data, data[:500])
    with RawConn(server.address) as c2:
        reply, _ = c2.request({"op": "put", "path": "r", "total": len(data),
                               "sha256": sha(data), "resume": False})
        assert reply["offset"] == 0
        c2.send_frame({"op": "data", "size": len(data)}, data)
        assert c2.read_frame()[0]["ok"] is True
    assert (root / "r").read_bytes() == data


# ------------------------------------------------------------------ sizes and names

def test_zero_byte_file_both_ways(conn, remote):
    final = put(conn, "empty", b"")
    assert final == {"ok": True, "total": 0, "sha256": sha(b""), "path": "/empty"}
    assert remote.read("empty") == b""
    reply, payload, digest = get(conn, "empty")
    assert (reply["size"], reply["total"], payload) == (0, 0, b"")
    assert digest["sha256"] == sha(b"")


def test_file_spanning_many_chunks(conn, remote):
    data = os.urandom(5 * 1024 * 1024 + 12345)
    final = put(conn, "big.bin", data)
    assert final["ok"] and final["sha256"] == sha(data)
    assert sha(remote.read("big.bin")) == sha(data)
    reply, payload, digest = get(conn, "big.bin")
    assert reply["size"] == len(data) and sha(payload) == sha(data)
    assert digest["sha256"] == sha(data)


@pytest.mark.parametrize("name", ["with space.txt", "café menu.txt", "日本語 ファイル.md",
                                  "emoji 🎉.bin", "%2e%2e", "-dash", "'quote\""])
def test_unicode_and_space_names(conn, remote, name):
    data = name.encode("utf-8") * 3
    assert put(conn, name, data)["ok"] is True
    assert remote.read(name) == data
    import json
    assert [e["name"] for e in json.loads(conn.request({"op": "ls"})[1])] == [name]
    assert get(conn, name)[1] == data
    assert conn.request({"op": "hash", "path": name})[0]["sha256"] == sha(data)
    assert conn.request({"op": "mkdir", "path": name + " dir"})[0]["path"] == f"/{name} dir"


def test_a_name_that_is_not_utf8_on_disk(conn, root):
    raw = b"caf\xe9 \xff.txt"
    with open(os.fsencode(root) + b"/" + raw, "wb") as f:
        f.write(b"latin-1 bytes")
    reply, payload = conn.request({"op": "ls"})
    assert b"\\udce9" in payload and b"\\udcff" in payload  # JSON escapes, ASCII only
    import json
    [entry] = json.loads(payload)
    name = entry["name"]
    assert name.encode("utf-8", "surrogateescape") == raw
    reply, data, digest = get(conn, name)
    assert data == b"latin-1 bytes" and digest["sha256"] == sha(data)
    assert conn.request({"op": "mv", "src": name, "dst": "fixed.txt"})[0]["ok"] is True
    assert (root / "fixed.txt").read_bytes() == b"latin-1 bytes"


def test_listing_of_3000_entries(conn, root):
    for i in range(3000):
        (root / f"f{i:04d}").touch()
    (root / partial_name("f0000")).touch()
    reply, payload = conn.request({"op": "ls"})
    assert reply["size"] == len(payload) > 65536  # more than any header could hold
    import json
    listed = [e["name"] for e in json.loads(payload)]
    assert listed == [f"f{i:04d}" for i in range(3000)]


def test_25_concurrent_clients(server, remote):
    errors: list = []
    blobs = {i: os.urandom(50_000 + i * 997) for i in range(25)}
    start = threading.Barrier(25)

    def worker(i: int) -> None:
        try:
            data = blobs[i]
            with RawConn(server.address) as c:
                start.wait(10)
                assert put(c, f"c{i}.bin", data)["sha256"] == sha(data)
                reply, payload, digest = get(c, f"c{i}.bin")
                assert payload == data and digest["sha256"] == sha(data)
                reply, _ = c.request({"op": "hash", "path": f"c{i}.bin"})
                assert reply["sha256"] == sha(data) and reply["total"] == len(data)
                assert c.request({"op": "quit"})[0]["ok"]
        except BaseException as exc:  # collected: an assert in a thread is lost otherwise
            errors.append((i, repr(exc)))
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(25)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert remote.names() == sorted(f"c{i}.bin" for i in range(25))
    for i, data in blobs.items():
        assert remote.read(f"c{i}.bin") == data


def test_a_silent_client_does_not_block_others(server, files):
    with RawConn(server.address, hello=False) as idle:
        idle.send_raw(b"\x00\x00")  # half a length prefix, then nothing
        with RawConn(server.address) as busy:
            assert get(busy, "a.txt")[1] == b"alpha\n"


# ------------------------------------------------------------------ pipelining, timeouts

def test_pipelined_requests_are_answered_in_order(conn, files):
    reqs = []
    for i in range(50):
        reqs.append({"op": "pwd"} if i % 2 else {"op": "stat", "path": "a.txt"})
    conn.send_raw(b"".join(struct.pack(">I", len(b)) + b
                           for b in (__import__("json").dumps(r).encode() for r in reqs)))
    for i in range(50):
        reply, _ = conn.read_frame()
        if i % 2:
            assert reply == {"ok": True, "cwd": "/"}
        else:
            assert reply["entry"]["name"] == "a.txt"


def test_pipelined_mixed_ops_with_payloads(conn, files):
    conn.send_frame({"op": "cd", "path": "sub"})
    conn.send_frame({"op": "upper"}, b"one")
    conn.send_frame({"op": "get", "path": "b.txt"})
    conn.send_frame({"op": "stat", "path": "missing"})
    conn.send_frame({"op": "upper"}, b"two")
    assert conn.read_frame()[0]["cwd"] == "/sub"
    assert conn.read_frame()[1] == b"ONE"
    assert conn.read_frame()[1] == b"beta"
    assert conn.read_frame()[0] == {"ok": True, "sha256": sha(b"beta")}
    assert error_of(conn.read_frame()[0]) == "not_found"
    assert conn.read_frame()[1] == b"TWO"


def test_idle_timeout_closes(make_server):
    s = make_server(idle_timeout=0.2)
    with RawConn(s.address) as c:
        assert c.is_closed()  # reads until the server gives up on the silent client


def test_login_timeout_closes_a_connection_that_never_says_hello(make_server):
    s = make_server(login_timeout=0.2)  # the idle timeout stays at its 300 s default
    with RawConn(s.address, hello=False, timeout=10.0) as c:
        assert c.is_closed()  # within the socket timeout, long before the idle timeout


def test_login_timeout_does_not_apply_after_hello(make_server):
    s = make_server(login_timeout=0.2)
    with RawConn(s.address, timeout=1.0) as c:
        # silent for longer than the login timeout: a logged-in session stays open
        assert not c.is_closed()
        assert c.request({"op": "pwd"})[0] == {"ok": True, "cwd": "/"}


def test_frame_deadline_closes_a_slow_drip(make_server):
    s = make_server(frame_timeout=0.3)
    with RawConn(s.address) as c:
        c.send_raw(b"\x00\x00\x00\x0c{")  # a header started and never finished
        assert c.is_closed()


def test_max_clients_refuses_with_busy(make_server):
    s = make_server(max_clients=1)
    with RawConn(s.address):
        with RawConn(s.address, hello=False) as second:
            reply, _ = second.read_frame()
            assert error_of(reply) == "busy"
            assert second.is_closed()


# ------------------------------------------------------------------ the log

def test_one_log_line_per_request(conn, files, caplog):
    caplog.set_level(logging.INFO, logger="pyftp.server")
    get(conn, "a.txt")
    conn.request({"op": "stat", "path": "missing"})
    conn.request({"op": "pwd"})  # its reply comes after the lines above were logged
    lines = [r.getMessage() for r in caplog.records if r.name == "pyftp.server"]
    host, port = conn.sock.getsockname()[:2]
    peer = f"{host}:{port}"
    get_line = [ln for ln in lines if " get " in ln]
    assert len(get_line) == 1
    assert re.fullmatch(re.escape(peer) + r" get /a\.txt ok 6B \d+\.\dms", get_line[0])
    stat_line = [ln for ln in lines if " stat " in ln]
    assert re.fullmatch(re.escape(peer) + r" stat missing not_found 0B \d+\.\dms", stat_line[0])


def test_server_shutdown_ends_idle_sessions(make_server):
    s = make_server()
    c = RawConn(s.address)
    try:
        wait_for(lambda: s.session_count == 1, what="the session")
        s.shutdown(grace=1.0)
        assert c.is_closed()
        assert s.session_count == 0
    finally:
        c.close()


def test_a_name_too_long_is_refused_before_the_payload(conn, remote):
    reply, _ = conn.request({"op": "put", "path": "n" * 300, "total": 10, "sha256": sha(b"x" * 10)})
    assert error_of(reply) == "bad_request" and "invalid name" in reply["message"]
    assert remote.names() == []
    assert conn.request({"op": "pwd"})[0]["ok"] is True


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_ipv6_loopback(make_server, files, caplog):
    caplog.set_level(logging.INFO, logger="pyftp.server")
    s = make_server(host="::1")
    host, port = s.address
    assert host == "::1"
    with RawConn((host, port)) as c:
        assert get(c, "a.txt")[1] == b"alpha\n"
        c.request({"op": "pwd"})
    assert any(r.getMessage().startswith("[::1]:") and " get /a.txt ok " in r.getMessage()
               for r in caplog.records)


def test_shutdown_lets_a_transfer_in_flight_finish(make_server, root):
    s = make_server()
    data = os.urandom(200_000)
    with start_put(s.address, root / partial_name("f.bin"), "f.bin", data, data[:1000]) as c:
        stopper = threading.Thread(target=s.shutdown, kwargs={"grace": 10.0})
        stopper.start()
        try:
            wait_for(lambda: s.stopping, what="the shutdown to begin")
            c.send_raw(data[1000:])
            final, _ = c.read_frame()
            assert final["ok"] is True and final["sha256"] == sha(data)
            assert c.is_closed()  # no next request is read once stopping
        finally:
            stopper.join(15)
    assert (root / "f.bin").read_bytes() == data


def test_shutdown_cuts_a_stalled_upload_after_the_grace_and_keeps_its_partial(make_server, root):
    s = make_server()
    part = root / partial_name("f.bin")
    with start_put(s.address, part, "f.bin", b"z" * 5000, b"z" * 1000) as c:
        s.shutdown(grace=0.2)
        assert c.is_closed()
    assert not (root / "f.bin").exists()
    assert part.read_bytes() == b"z" * 1000


def test_an_error_reply_too_long_for_a_frame_keeps_its_code():
    from pyftp.errors import NotFoundError
    from pyftp.protocol import MAX_HEADER, encode_frame
    from pyftp.server.session import fit_reply
    small = NotFoundError("not found: /a").to_reply()
    assert fit_reply(small) == small
    for ch in ("a", "é", "\udcff"):
        reply = fit_reply(NotFoundError("not found: /" + ch * 70000 + "/tail").to_reply())
        assert reply["error"] == "not_found" and reply["ok"] is False
        assert len(encode_frame(reply)) <= MAX_HEADER + 4
        assert reply["message"].startswith("not found: /")
        assert reply["message"].endswith("/tail (message shortened)")


# ---------------------------------------------------------------- replies written together
def test_replies_to_pipelined_gets_arrive_whole_and_in_order(server, remote):
    """Replies to pipelined requests are held and written together: every reply still
    arrives, whole and in order, payloads and digest frames included."""
    names = [f"p{i}.bin" for i in range(40)]
    content = {n: os.urandom(1000 + 97 * i) for i, n in enumerate(names)}
    for n, data in content.items():
        remote.write(n, data)
    with RawConn(server.address) as c:
        frames = b""
        for n in names:
            body = ('{"op":"get","path":"%s"}' % n).encode()
            frames += struct.pack(">I", len(body)) + body
        c.send_raw(frames + struct.pack(">I", 12) + b'{"op":"pwd"}')
        for n in names:
            reply, data = c.read_frame()
            assert reply["ok"] is True and data == content[n]
            digest, _ = c.read_frame()
            assert digest["ok"] is True and digest["sha256"] == sha(data)
        assert c.read_frame()[0] == {"ok": True, "cwd": "/"}


def test_a_held_reply_is_not_kept_behind_a_request_that_waits(server):
    """A request that may wait on something else than the disk (here a listing waiting
    for a free listing slot) first writes the replies held so far: the client gets
    them while that request waits."""
    slots = 0
    while server.listing_slots.acquire(blocking=False):
        slots += 1
    try:
        with RawConn(server.address) as c:
            c.send_raw(struct.pack(">I", 12) + b'{"op":"pwd"}'
                       + struct.pack(">I", 11) + b'{"op":"ls"}')
            assert c.read_frame()[0] == {"ok": True, "cwd": "/"}  # while ls waits
            for _ in range(slots):
                server.listing_slots.release()
            slots = 0
            assert c.read_frame()[0]["ok"] is True
    finally:
        for _ in range(slots):
            server.listing_slots.release()
