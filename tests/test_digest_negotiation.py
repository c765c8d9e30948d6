"""The negotiated digest (BLAKE3 preferred) and ranged reads: protocol section 14.

Raw-frame tests pin the wire (a hello without ``digests`` is version 1 byte for byte);
client tests cover the matrix of what each end has, mismatches, resume, ``hash`` and
``get_range``; subprocess tests the console script's ``--digest`` and ``--version``.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from helpers import RawConn, ScriptedPeer, sha, wait_for
from pyftp import Client, digests, errors
from pyftp.protocol import FEATURES, partial_name

needs_blake3 = pytest.mark.skipif("blake3" not in digests.ALGORITHMS,
                                  reason="this build has no blake3 package")


def b3(data: bytes) -> str:
    return digests.hash_bytes(data, "blake3")


# ---------------------------------------------------------------------- the wire
def test_a_hello_without_digests_is_version_1_byte_for_byte(server, remote):
    remote.write("a.txt", b"alpha\n")
    with RawConn(server.address, hello=False) as conn:
        reply, _ = conn.request({"op": "hello", "version": 1})
        assert set(reply) == {"ok", "version", "server", "features"}
        assert reply["features"] == FEATURES
        assert conn.request({"op": "hash", "path": "a.txt"})[0] == {
            "ok": True, "sha256": sha(b"alpha\n"), "total": 6, "path": "/a.txt"}
        # length is unknown to a version 1 session: ignored, the whole file comes
        head, data = conn.request({"op": "get", "path": "a.txt", "length": 2})
        assert (head["size"], data) == (6, b"alpha\n")
        assert "version" not in head  # the version tag is of section 14 only
        assert conn.read_frame()[0] == {"ok": True, "sha256": sha(b"alpha\n")}


@needs_blake3
def test_a_negotiated_session_names_the_algorithm_everywhere(server, remote):
    remote.write("a.txt", b"alpha\n")
    with RawConn(server.address, hello=False) as conn:
        reply, _ = conn.request({"op": "hello", "version": 1, "digests": ["blake3", "sha256"]})
        assert reply["digest"] == "blake3" and {"digests", "ranges"} <= set(reply["features"])
        assert conn.request({"op": "hash", "path": "a.txt"})[0] == {
            "ok": True, "algorithm": "blake3", "digest": b3(b"alpha\n"), "total": 6,
            "path": "/a.txt"}
        head, data = conn.request({"op": "get", "path": "a.txt"})
        assert data == b"alpha\n"
        assert conn.read_frame()[0] == {"ok": True, "algorithm": "blake3",
                                        "digest": b3(b"alpha\n")}
        reply, _ = conn.request({"op": "put", "path": "h.txt", "total": 6,
                                 "digest": b3(b"hello\n")})
        assert reply["ok"] and reply["offset"] == 0
        conn.send_frame({"op": "data", "size": 6}, b"hello\n")
        final, _ = conn.read_frame()
        assert (final["algorithm"], final["digest"]) == ("blake3", b3(b"hello\n"))
        bad, _ = conn.request({"op": "put", "path": "x.txt", "total": 1, "sha256": sha(b"x")})
        assert bad["error"] == "bad_request" and "digest" in bad["message"]


def test_no_digest_in_common_is_bad_request_and_hello_may_be_retried(make_server):
    srv = make_server(digests=("sha256",))
    with RawConn(srv.address, hello=False) as conn:
        reply, _ = conn.request({"op": "hello", "version": 1, "digests": ["md5", "blake3"]})
        assert reply["error"] == "bad_request" and "sha256" in reply["message"]
        reply, _ = conn.request({"op": "hello", "version": 1, "digests": ["md5", "sha256"]})
        assert reply["ok"] and reply["digest"] == "sha256"


# ---------------------------------------------------------------------- the matrix
@pytest.mark.parametrize("server_has", [None, ("sha256",)])
@pytest.mark.parametrize("wanted", [None, "sha256", "blake3"])
def test_negotiation_matrix(make_server, tmp_path, wanted, server_has):
    if wanted == "blake3" and "blake3" not in digests.ALGORITHMS:
        pytest.skip("this build has no blake3 package")
    srv = make_server(digests=server_has)
    server_blake3 = server_has is None and "blake3" in digests.ALGORITHMS
    if wanted == "blake3" and not server_blake3:
        with pytest.raises(errors.BadRequestError, match="this server has: sha256"):
            Client(*srv.address, timeout=10, digest=wanted)
        return
    expect = wanted or ("blake3" if server_blake3 else "sha256")
    data = os.urandom(3 * (1 << 20))  # a trailer put: hashed while sent
    (tmp_path / "big.bin").write_bytes(data)
    with Client(*srv.address, timeout=10, digest=wanted) as c:
        assert (c.algorithm, c.negotiated) == (expect, True)
        put = c.put(tmp_path / "big.bin", "big.bin")
        got = c.get("big.bin", tmp_path / "back.bin")
        small = c.put(tmp_path / "big.bin", "copy.bin")  # same bytes again
        assert put.algorithm == got.algorithm == small.algorithm == expect
        assert put.digest == got.digest == c.hash("big.bin") == digests.hash_bytes(data, expect)
        assert c.get_range("big.bin", 5, 10) == data[5:15]
    assert (tmp_path / "back.bin").read_bytes() == data


def test_a_version_1_server_gets_version_1(tmp_path):
    """A server that ignores ``digests`` (an older pyftp-server) answers without
    ``digest``: the client verifies with SHA-256 and the version 1 field names."""
    peer = ScriptedPeer(["sha256", "resume"])
    try:
        with Client(*peer.address, timeout=10) as c:
            assert (c.algorithm, c.negotiated) == ("sha256", False)
            assert peer.headers[0]["digests"] == list(digests.ALGORITHMS)
            with pytest.raises(errors.ProtocolError, match="ranged reads"):
                c.get_range("a", 0, 1)
        if "blake3" in digests.ALGORITHMS:  # forcing BLAKE3 on it says what to do
            with pytest.raises(errors.ConnectError, match="--digest sha256"):
                Client(*peer.address, timeout=10, digest="blake3")
    finally:
        peer.close()


# ---------------------------------------------------------------------- mismatch, resume
@pytest.mark.parametrize("algorithm", digests.ALGORITHMS)
def test_a_mismatch_is_detected_with_each_algorithm(server, algorithm):
    with RawConn(server.address, hello=False) as conn:
        conn.request({"op": "hello", "version": 1, "digests": [algorithm]})
        wrong = digests.hash_bytes(b"other", algorithm)
        reply, _ = conn.request({"op": "put", "path": "m.txt", "total": 5, "digest": wrong})
        conn.send_frame({"op": "data", "size": 5}, b"bytes")
        final, _ = conn.read_frame()
        assert final["error"] == "checksum_mismatch"
        assert digests.label(algorithm) in final["message"]


@pytest.mark.parametrize("algorithm", digests.ALGORITHMS)
def test_resume_with_each_algorithm(server, root, tmp_path, algorithm):
    data = os.urandom(400_000)
    (tmp_path / "r.bin").write_bytes(data)
    # an upload in this algorithm, cut after 100,000 bytes: its digest pins it
    with RawConn(server.address, hello=False) as conn:
        conn.request({"op": "hello", "version": 1, "digests": [algorithm]})
        reply, _ = conn.request({"op": "put", "path": "r.bin", "total": len(data),
                                 "digest": digests.hash_bytes(data, algorithm)})
        assert reply["offset"] == 0
        conn.send_frame({"op": "data", "size": len(data)}, b"")
        conn.send_raw(data[:100_000])
    wait_for(lambda: server.session_count == 0 and
             (root / partial_name("r.bin")).stat().st_size == 100_000, what="the cut")
    with Client(*server.address, timeout=10, digest=algorithm) as c:
        res = c.put(tmp_path / "r.bin", "r.bin")
        assert res.offset == 100_000
        assert res.algorithm == algorithm and res.digest == digests.hash_bytes(data, algorithm)
        # a download resumes from its own partial, verified in the session's digest
        (tmp_path / partial_name("back.bin")).write_bytes(data[:150_000])
        got = c.get("r.bin", tmp_path / "back.bin")
        assert got.offset == 150_000 and got.digest == res.digest
    assert (root / "r.bin").read_bytes() == data == (tmp_path / "back.bin").read_bytes()


@pytest.mark.parametrize("algorithm", digests.ALGORITHMS)
def test_hash_with_each_algorithm(server, remote, algorithm):
    remote.write("h.bin", b"x" * 1000)
    with Client(*server.address, timeout=10, digest=algorithm) as c:
        assert c.hash_many(["h.bin", "nope"])[0] == digests.hash_bytes(b"x" * 1000, algorithm)
        assert c.hash("h.bin") == digests.hash_bytes(b"x" * 1000, algorithm)


# ---------------------------------------------------------------------- ranges
@pytest.mark.parametrize("size", [1000, 600_000])  # one write, and sendfile + a hasher
def test_get_range_start_middle_end_and_empty(server, remote, size):
    data = os.urandom(size)
    remote.write("f.bin", data)
    with Client(*server.address, timeout=10) as c:
        assert c.get_range("f.bin", 0, 10) == data[:10]
        assert c.get_range("f.bin", size // 2, size // 3) == data[size // 2:size // 2 + size // 3]
        assert c.get_range("f.bin", size - 7, 7) == data[-7:]
        assert c.get_range("f.bin", size, 0) == b""
        assert c.get_range("f.bin", 3, 0) == b""
        with pytest.raises(errors.BadRequestError, match="past the end"):
            c.get_range("f.bin", size - 7, 8)
        assert c.get_range("f.bin", 1, 2) == data[1:3]  # the connection is still in step


def test_a_range_carries_the_digest_of_the_range(server, remote):
    remote.write("f.txt", b"alpha\n")
    with RawConn(server.address, hello=False) as conn:
        reply, _ = conn.request({"op": "hello", "version": 1, "digests": ["sha256"]})
        head, data = conn.request({"op": "get", "path": "f.txt", "offset": 1, "length": 3})
        assert (head["size"], head["offset"], head["total"], data) == (3, 1, 6, b"lph")
        assert conn.read_frame()[0] == {"ok": True, "algorithm": "sha256", "digest": sha(b"lph")}


# ---------------------------------------------------------------------- console script
def _pyftp(*args, cwd):
    return subprocess.run([sys.executable, "-m", "pyftp", *args], capture_output=True,
                          text=True, timeout=60, cwd=cwd)


@pytest.mark.slow
def test_cli_digest_forces_one_and_json_names_it(server, tmp_path):
    (tmp_path / "a.txt").write_bytes(b"hello\n")
    host, port = server.address
    for algorithm in digests.ALGORITHMS:
        r = _pyftp("--json", "--digest", algorithm, f"{host}:{port}", "-c",
                   f"put -f a.txt\nhash a.txt", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        assert f'"algorithm":"{algorithm}"' in r.stdout
        assert digests.hash_bytes(b"hello\n", algorithm) in r.stdout
    r = _pyftp("--digest", "md5", f"{host}:{port}", "-c", "ls", cwd=tmp_path)
    assert r.returncode == 2 and "invalid choice" in r.stderr


@pytest.mark.slow
def test_the_transfer_line_names_the_algorithm_it_was_verified_with(server, tmp_path):
    (tmp_path / "a.txt").write_bytes(b"hello\n")
    host, port = server.address
    for algorithm in digests.ALGORITHMS:
        r = _pyftp("--digest", algorithm, f"{host}:{port}", "-c", "put -f a.txt; get a.txt b.txt",
                   cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        shown = digests.label(algorithm)
        lines = [x for x in (r.stdout + r.stderr).splitlines() if "verified" in x]
        assert len(lines) == 2 and all(f"{shown} " in x for x in lines), lines
        assert digests.hash_bytes(b"hello\n", algorithm)[:12] in lines[1]


@pytest.mark.slow
def test_version_names_the_digests_of_this_build(tmp_path):
    r = _pyftp("--version", cwd=tmp_path)
    assert r.returncode == 0 and ", ".join(digests.ALGORITHMS) in r.stdout


def test_get_ranges_pipelined_with_errors_in_place(server, root):
    """Many ranged reads travel in one write; a refused one (missing file, a range past
    the end) takes its place in the answers and the rest still arrive verified."""
    from pyftp.protocol import wire_mtime
    f, g = os.urandom(700_000), os.urandom(5000)
    (root / "f.bin").write_bytes(f)
    (root / "g.bin").write_bytes(g)
    reads = [("f.bin", 0, 10), ("nope", 0, 1), ("g.bin", 4990, 10), ("f.bin", 650_000, 50_000),
             ("g.bin", 4999, 2), ("g.bin", 5000, 0), ("f.bin", 1, 600_000)]
    with Client(*server.address, timeout=10) as c:
        writes = c.writes
        got = c.get_ranges(reads)
        assert c.writes - writes == 1
        assert got[0] == f[:10] and got[2] == g[-10:] and got[3] == f[650_000:]
        assert isinstance(got[1], errors.NotFoundError)
        assert isinstance(got[4], errors.BadRequestError)
        assert got[5] == b"" and got[6] == f[1:600_001]
        assert all(type(r) is bytearray for i, r in enumerate(got) if i not in (1, 4))
        buf = bytearray(b"#" * 30)
        info = c.get_range_into("g.bin", 100, memoryview(buf)[5:25])
        assert buf == b"#" * 5 + g[100:120] + b"#" * 5
        assert info[:2] == (5000, wire_mtime(os.stat(root / "g.bin").st_mtime_ns))
        assert isinstance(info.version, str) and info.version  # the file's version tag
        with pytest.raises(ValueError, match="writable"):
            c.get_range_into("g.bin", 0, memoryview(b"read-only"))
        with pytest.raises(ValueError, match="integers >= 0"):
            c.get_ranges([("g.bin", -1, 5)])
        assert c.get_ranges([]) == [] and c.get_range("g.bin", 7, 3) == g[7:10]


def test_a_range_whose_digest_disagrees_is_an_error_in_its_place():
    """A peer whose digest frame for one range lies: that read is a mismatch, the reads
    around it (pipelined on the same connection) arrive and verify."""
    import socket
    import threading
    from pyftp.protocol import encode_frame
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)

    def frame(data, digest=None):
        return (encode_frame({"ok": True, "size": len(data), "offset": 0, "total": 9,
                              "mtime": 1.5}) + data
                + encode_frame({"ok": True, "algorithm": "sha256",
                                "digest": digest or sha(data)}))

    def serve():
        conn, _ = lsock.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(encode_frame({"ok": True, "version": 1, "features": ["ranges"],
                                       "digest": "sha256"}))
            got = b""
            for _ in range(50):  # until the three requests are in (bounded)
                if got.count(b'"op":"get"') >= 3:
                    break
                got += conn.recv(65536)
            conn.sendall(frame(b"abc") + frame(b"def", "0" * 64) + frame(b"ghi"))
            conn.recv(65536)
    t = threading.Thread(target=serve)
    t.start()
    try:
        with Client(*lsock.getsockname(), timeout=5, digest="sha256") as c:
            got = c.get_ranges([("x", 0, 3)] * 3)
            assert got[0] == b"abc" and got[2] == b"ghi"
            assert isinstance(got[1], errors.ChecksumMismatchError)
            assert "bytes 0..3 of x" in str(got[1])
    finally:
        t.join(10)
        lsock.close()
