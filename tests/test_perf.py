"""The fast paths: hashing overlapped with the I/O, and the digest-after-data put.

Payloads here are a few MiB, just over the size at which the second thread starts
(transport.OVERLAP_MIN), so the threaded paths run; every check is a byte or digest
comparison, never a time.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import threading
import time

import pytest

from helpers import RawConn, best, sha, wait_for
from pyftp import Client
from pyftp.errors import TransportError
from pyftp.protocol import encode_frame, partial_name
from pyftp.digests import OVERLAP_MIN, FileHasher
from pyftp.transport import Channel

BIG = OVERLAP_MIN + 3 * 65536 + 17  # over the threshold, not a multiple of the buffer



# ---------------------------------------------------------------- the receiving ring
def _pair():
    a, b = socket.socketpair()
    return a, b, Channel(b)


def _send_in_thread(sock: socket.socket, data: bytes) -> threading.Thread:
    """Send from another thread: the payloads are larger than a socketpair's buffers."""
    def send() -> None:
        try:
            sock.sendall(data)
        except OSError:
            pass  # the reader gave up first (the failing-sink test)
    t = threading.Thread(target=send)
    t.start()
    return t


@pytest.mark.parametrize("size", [0, 100, OVERLAP_MIN - 1, BIG])
def test_hasher_sees_every_byte_in_order_and_the_sink_gets_the_same(size):
    payload = os.urandom(size)
    a, b, chan = _pair()
    try:
        sender = _send_in_thread(a, encode_frame({"op": "data", "size": size}) + payload)
        assert chan.recv_header(5, 5)["size"] == size
        out = io.BytesIO()
        h = hashlib.sha256()
        seen: set[str] = set()

        def sink(view) -> None:
            seen.update(t.name for t in threading.enumerate())
            out.write(view)
        got = chan.recv_payload_into(sink, timeout=5, hasher=h)
        sender.join()
    finally:
        a.close(), b.close()
    # the second thread runs exactly for payloads from OVERLAP_MIN on
    assert ("pyftp-hash" in seen) == (size >= OVERLAP_MIN)
    assert got == size
    assert out.getvalue() == payload
    assert h.hexdigest() == sha(payload)
    assert chan.decoder.payload_left == 0


def test_with_every_hashing_slot_taken_a_large_payload_is_hashed_inline():
    from pyftp import digests
    payload = os.urandom(BIG)
    a, b, chan = _pair()
    taken = 0
    while digests.OVERLAP_SLOTS.acquire(blocking=False):
        taken += 1
    try:
        sender = _send_in_thread(a, encode_frame({"size": BIG}) + payload)
        chan.recv_header(5, 5)
        out, h = io.BytesIO(), hashlib.sha256()
        seen: set[str] = set()

        def sink(view) -> None:
            seen.update(t.name for t in threading.enumerate())
            out.write(view)
        chan.recv_payload_into(sink, timeout=5, hasher=h)
        assert "pyftp-hash" not in seen  # while bytes arrived, no hashing thread ran
        sender.join()
    finally:
        for _ in range(taken):
            digests.OVERLAP_SLOTS.release()
        a.close(), b.close()
    assert taken >= 1
    assert out.getvalue() == payload and h.hexdigest() == sha(payload)


def test_only_a_slow_digest_on_a_small_machine_is_hashed_on_a_second_thread():
    from pyftp import digests
    ring = digests.HashRing
    assert ring.pays(hashlib.sha256(), cores=2) and ring.pays(hashlib.sha256(), cores=8)
    assert ring.pays(object(), cores=2)  # a hash object that does not say: taken as slow
    if "blake3" in digests.ALGORITHMS:
        assert not ring.pays(digests.new("blake3"), cores=2)
        assert not ring.pays(digests.new("blake3"), cores=1)
        assert ring.pays(digests.new("blake3"), cores=digests.INLINE_CORES + 1)


def test_a_large_blake3_payload_is_hashed_in_the_receiving_thread():
    """BLAKE3 hashes a MiB faster than a buffer can be handed to another thread and
    back: on a machine with no core to spare its bytes are hashed right after the sink
    wrote them, with no second thread (SHA-256, above, keeps it)."""
    from pyftp import digests
    if "blake3" not in digests.ALGORITHMS:
        pytest.skip("this build has no blake3")
    if digests.HashRing.pays(digests.new("blake3")):
        pytest.skip("this machine has cores to spare: BLAKE3 goes through the ring too")
    payload = os.urandom(BIG)
    a, b, chan = _pair()
    try:
        sender = _send_in_thread(a, encode_frame({"size": BIG}) + payload)
        chan.recv_header(5, 5)
        out, h = io.BytesIO(), digests.new("blake3")
        seen: set[str] = set()

        def sink(view) -> None:
            seen.update(t.name for t in threading.enumerate())
            out.write(view)
        assert chan.recv_payload_into(sink, timeout=5, hasher=h) == BIG
        sender.join()
    finally:
        a.close(), b.close()
    assert "pyftp-hash" not in seen
    assert out.getvalue() == payload
    assert h.hexdigest() == digests.hash_bytes(payload, "blake3")
    assert chan.decoder.payload_left == 0


def test_a_frame_after_a_large_payload_stays_in_step():
    payload = os.urandom(BIG)
    a, b, chan = _pair()
    try:
        sender = _send_in_thread(a, encode_frame({"size": BIG}) + payload
                                 + encode_frame({"op": "verify", "n": 1}))
        chan.recv_header(5, 5)
        h = hashlib.sha256()
        chan.recv_payload_into(lambda _v: None, timeout=5, hasher=h)
        assert chan.recv_header(5, 5) == {"op": "verify", "n": 1}
        sender.join()
    finally:
        a.close(), b.close()
    assert h.hexdigest() == sha(payload)


def test_peer_closing_mid_payload_raises_and_stops_the_hash_thread():
    a, b, chan = _pair()

    def send_half_and_close() -> None:
        a.sendall(encode_frame({"size": BIG}) + os.urandom(OVERLAP_MIN // 2))
        a.close()
    sender = threading.Thread(target=send_half_and_close)
    sender.start()
    try:
        chan.recv_header(5, 5)
        with pytest.raises(TransportError, match="middle of a transfer"):
            chan.recv_payload_into(lambda _v: None, timeout=5, hasher=hashlib.sha256())
    finally:
        sender.join()
        b.close()
    # the autouse no_thread_leaks fixture fails the test if pyftp-hash is still running


def test_a_failing_sink_stops_the_hash_thread_and_raises():
    a, b, chan = _pair()

    def sink(_view):
        raise OSError(28, "No space left on device")
    try:
        sender = _send_in_thread(a, encode_frame({"size": BIG}) + os.urandom(BIG))
        chan.recv_header(5, 5)
        with pytest.raises(OSError, match="No space"):
            chan.recv_payload_into(sink, timeout=5, hasher=hashlib.sha256())
    finally:
        b.close()
        sender.join()
        a.close()


# ---------------------------------------------------------------- the sending hasher
def test_file_hasher_hashes_exactly_the_range(tmp_path):
    data = os.urandom(3 * 1024 * 1024 + 5)
    p = tmp_path / "f.bin"
    p.write_bytes(data)
    with open(p, "rb", buffering=0) as f:
        f.seek(123)  # its own position must neither matter nor move
        h = hashlib.sha256(data[:1000])
        fh = FileHasher(f.fileno(), h, 1000, len(data))
        assert fh.result() is h
        assert f.tell() == 123
    assert fh.hashed == len(data) - 1000
    assert h.hexdigest() == sha(data)
    from pyftp import digests
    assert digests.OVERLAP_SLOTS.acquire(blocking=False)  # its slot was given back
    digests.OVERLAP_SLOTS.release()


def test_file_hasher_reports_a_short_file(tmp_path):
    p = tmp_path / "f.bin"
    p.write_bytes(b"x" * 10)
    with open(p, "rb", buffering=0) as f:
        fh = FileHasher(f.fileno(), hashlib.sha256(), 0, 1000)
        fh.result()
    assert fh.hashed == 10


def test_file_hasher_cancel_joins(tmp_path):
    p = tmp_path / "f.bin"
    p.write_bytes(os.urandom(4 * 1024 * 1024))
    with open(p, "rb", buffering=0) as f:
        fh = FileHasher(f.fileno(), hashlib.sha256(), 0, 4 * 1024 * 1024)
        fh.cancel()
        assert fh._thread is not None and not fh._thread.is_alive()


def test_file_hasher_without_a_free_slot_hashes_in_the_caller(tmp_path):
    from pyftp import digests
    data = os.urandom(3 * 1024 * 1024)
    p = tmp_path / "f.bin"
    p.write_bytes(data)
    taken = 0
    while digests.OVERLAP_SLOTS.acquire(blocking=False):
        taken += 1
    try:
        with open(p, "rb", buffering=0) as f:
            fh = FileHasher(f.fileno(), hashlib.sha256(), 0, len(data))
            assert fh._thread is None  # no second thread: the cores are taken
            assert fh.result().hexdigest() == sha(data) and fh.hashed == len(data)
    finally:
        for _ in range(taken):
            digests.OVERLAP_SLOTS.release()


# ---------------------------------------------------------------- large files end to end
def test_large_get_and_put_round_trip_verified(client, remote, tmp_path):
    data = os.urandom(BIG)
    src = tmp_path / "up.bin"
    src.write_bytes(data)
    res = client.put(src, "big.bin")
    assert res.sha256 == best(data) and res.offset == 0
    assert remote.read("big.bin") == data
    got = client.get("big.bin", tmp_path / "down.bin")
    assert got.sha256 == best(data)
    assert (tmp_path / "down.bin").read_bytes() == data


def test_the_server_advertises_sha256_trailer(server):
    with RawConn(server.address, hello=False) as c:
        reply, _ = c.request({"op": "hello", "version": 1})
    assert "sha256_trailer" in reply["features"]


# ---------------------------------------------------------------- sha256_trailer on the wire
def _trailer_put(c: RawConn, path: str, data: bytes, *, digest: str | None = None,
                 **extra) -> dict:
    reply, _ = c.request({"op": "put", "path": path, "total": len(data), "trailer": True,
                          **extra})
    assert reply["ok"] is True, reply
    k = reply["offset"]
    c.send_frame({"op": "data", "size": len(data) - k}, data[k:])
    c.send_frame({"op": "verify", "sha256": digest or sha(data)})
    return c.read_frame()[0]


def test_trailer_put_publishes_a_matching_file(server, remote):
    data = os.urandom(5000)
    with RawConn(server.address) as c:
        final = _trailer_put(c, "t.bin", data)
        assert final == {"ok": True, "total": 5000, "sha256": sha(data), "path": "/t.bin"}
        assert c.request({"op": "pwd"})[0]["ok"] is True  # still in step
    assert remote.read("t.bin") == data


def test_trailer_put_with_a_wrong_digest_publishes_nothing(server, remote):
    remote.write("t.bin", b"the good old file")
    with RawConn(server.address) as c:
        final = _trailer_put(c, "t.bin", b"new bytes", digest="0" * 64, overwrite=True)
        assert final["ok"] is False and final["error"] == "checksum_mismatch"
        assert c.request({"op": "pwd"})[0]["ok"] is True
    assert remote.read("t.bin") == b"the good old file"
    assert remote.names() == ["t.bin"]  # no partial


def test_trailer_and_sha256_together_are_refused(server, remote):
    with RawConn(server.address) as c:
        reply, _ = c.request({"op": "put", "path": "t.bin", "total": 1, "trailer": True,
                              "sha256": "0" * 64})
    assert reply["error"] == "bad_request" and "not both" in reply["message"]
    assert remote.names() == []


def test_a_malformed_verify_frame_is_refused_and_closes(server, remote):
    with RawConn(server.address, timeout=5) as c:
        reply, _ = c.request({"op": "put", "path": "t.bin", "total": 3, "trailer": True})
        assert reply["offset"] == 0
        c.send_frame({"op": "data", "size": 3}, b"abc")
        c.send_frame({"op": "verify", "sha256": "NOT-HEX"})
        final, _ = c.read_frame()
        assert final["error"] == "bad_request" and "verify" in final["message"]
        assert c.is_closed()
    assert not remote.exists("t.bin")


def _leave_partial(server, data: bytes, upto: int) -> str:
    """A trailer put whose connection dies after ``upto`` bytes; its resume token."""
    with RawConn(server.address) as c:
        reply, _ = c.request({"op": "put", "path": "r.bin", "total": len(data),
                              "trailer": True})
        assert reply["offset"] == 0
        c.send_frame({"op": "data", "size": len(data)}, b"")
        c.send_raw(data[:upto])
    return reply["token"]


def _settled(server, root, size: int, name: str = "r.bin") -> None:
    """Wait (bounded) until the dead session has ended and left its partial behind."""
    deadline = time.monotonic() + 10
    while server.session_count and time.monotonic() < deadline:
        time.sleep(0.005)
    assert server.session_count == 0
    assert (root / partial_name(name)).stat().st_size == size


def test_trailer_resume_offers_the_prefix_digest_and_completes(make_server, root):
    server = make_server()
    data = os.urandom(200_000)
    token = _leave_partial(server, data, 80_000)
    _settled(server, root, 80_000)
    with RawConn(server.address) as c:
        reply, _ = c.request({"op": "put", "path": "r.bin", "total": len(data),
                              "trailer": True, "token": token})
        assert reply["offset"] == 80_000 and reply["token"] == token
        assert reply["prefix_sha256"] == sha(data[:80_000])
        c.send_frame({"op": "data", "size": len(data) - 80_000}, data[80_000:])
        c.send_frame({"op": "verify", "sha256": sha(data)})
        assert c.read_frame()[0]["sha256"] == sha(data)
    assert (root / "r.bin").read_bytes() == data


def test_trailer_resume_with_a_foreign_prefix_restarts_from_zero(make_server, root):
    server = make_server()
    old, new = os.urandom(200_000), os.urandom(200_000)
    token = _leave_partial(server, old, 80_000)
    _settled(server, root, 80_000)
    with RawConn(server.address) as c:
        reply, _ = c.request({"op": "put", "path": "r.bin", "total": len(new),
                              "trailer": True, "token": token})
        assert reply["offset"] == 80_000 and reply["prefix_sha256"] != sha(new[:80_000])
        c.send_frame({"op": "data", "size": len(new), "offset": 0}, new)
        c.send_frame({"op": "verify", "sha256": sha(new)})
        assert c.read_frame()[0]["sha256"] == sha(new)
    assert (root / "r.bin").read_bytes() == new


# ---------------------------------------------------------------- Client.put uses it
def _plant_partial(root, name: str, data: bytes, total: int, digest: str | None) -> None:
    (root / partial_name(name)).write_bytes(data)
    (root / (partial_name(name) + ".json")).write_text(json.dumps({"total": total,
                                                                   "sha256": digest}))


def test_client_put_resumes_a_matching_prefix_without_a_prehash(client, root, tmp_path):
    data = os.urandom(BIG)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    # a partial whose metadata has no digest and no token this client was given:
    # nobody proves it owns it, so it is never offered (contract C1); the put still
    # lands whole and verified (resuming with a token: tests of the client half)
    _plant_partial(root, "big.bin", data[:1_000_000], BIG, None)
    res = client.put(src, "big.bin")
    assert res.offset == 0 and res.sent == BIG
    assert (root / "big.bin").read_bytes() == data


def test_client_put_finishes_a_partial_that_holds_every_byte(client, root, tmp_path):
    data = os.urandom(BIG)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    # everything arrived but the verify frame did not: only the digest is left to send
    _plant_partial(root, "big.bin", data, BIG, None)
    res = client.put(src, "big.bin")
    # without the upload's token the whole file is sent again (see above)
    assert res.offset == 0 and res.sent == BIG and res.sha256 == best(data)
    assert (root / "big.bin").read_bytes() == data


def test_client_put_restarts_over_a_foreign_prefix(client, root, tmp_path):
    data = os.urandom(BIG)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    _plant_partial(root, "big.bin", os.urandom(1_000_000), BIG, sha(data))
    res = client.put(src, "big.bin")
    assert res.offset == 0 and res.sent == BIG
    assert (root / "big.bin").read_bytes() == data
    assert not (root / partial_name("big.bin")).exists()


def test_client_put_keeps_the_old_form_for_a_server_without_the_feature(server, root,
                                                                         tmp_path):
    data = os.urandom(BIG)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    # the planted partial records a SHA-256: a SHA-256 session's digest pins it
    with Client(*server.address, timeout=10, digest="sha256") as c:
        c.server_info["features"] = [f for f in c.server_info["features"]
                                     if f != "sha256_trailer"]
        # with the digest up front, a partial recorded for this digest is continued
        _plant_partial(root, "big.bin", data[:500_000], BIG, sha(data))
        res = c.put(src, "big.bin")
    assert res.offset == 500_000
    assert (root / "big.bin").read_bytes() == data


# ---------------------------------------------------------------- small puts stay cheap
def test_a_small_put_records_metadata_only_when_it_is_cut(server, root):
    data = os.urandom(5000)
    meta = root / (partial_name("s.bin") + ".json")
    with RawConn(server.address) as c:
        reply, _ = c.request({"op": "put", "path": "s.bin", "total": 5000, "sha256": sha(data)})
        assert reply["offset"] == 0
        assert (root / partial_name("s.bin")).exists() and not meta.exists()
        c.send_frame({"op": "data", "size": 5000}, data[:2000])
    _settled(server, root, 2000, "s.bin")
    assert json.loads(meta.read_text()) == {"total": 5000, "sha256": sha(data),
                                            "token": reply["token"]}
    with RawConn(server.address) as c:
        reply, _ = c.request({"op": "put", "path": "s.bin", "total": 5000, "sha256": sha(data)})
        assert reply["offset"] == 2000  # the cut small upload is resumable all the same
        c.send_frame({"op": "data", "size": 3000}, data[2000:])
        assert c.read_frame()[0]["sha256"] == sha(data)
    assert (root / "s.bin").read_bytes() == data
    assert not meta.exists() and not (root / partial_name("s.bin")).exists()



def test_a_trailer_put_with_its_token_takes_over_a_silent_connection(server, root):
    data = os.urandom(300_000)
    head = {"op": "put", "path": "t.bin", "total": len(data), "trailer": True,
            "mtime": 1700000000.5}
    silent = RawConn(server.address)
    try:
        first = silent.request(head)[0]
        assert first["offset"] == 0
        silent.send_frame({"op": "data", "size": len(data)}, b"")
        silent.send_raw(data[:100_000])
        deadline = time.monotonic() + 10
        part = root / partial_name("t.bin")
        while (not part.exists() or part.stat().st_size < 100_000) and time.monotonic() < deadline:
            time.sleep(0.005)
        with RawConn(server.address) as other:  # no token, or another one: busy
            assert other.request(head)[0]["error"] == "busy"
            assert other.request({**head, "token": "not-it"})[0]["error"] == "busy"
        with RawConn(server.address) as retry:  # the upload's own token takes it over
            reply, _ = retry.request({**head, "token": first["token"]})
            assert reply["offset"] == 100_000
            assert reply["prefix_sha256"] == sha(data[:100_000])
            retry.send_frame({"op": "data", "size": 200_000}, data[100_000:])
            retry.send_frame({"op": "verify", "sha256": sha(data)})
            assert retry.read_frame()[0]["sha256"] == sha(data)
        assert silent.is_closed(), "the silent connection was not cut"
    finally:
        silent.close()
    assert (root / "t.bin").read_bytes() == data


def test_a_fresh_small_put_leaves_no_metadata_of_an_older_cut_one(server, root):
    old, new = os.urandom(5000), os.urandom(4000)
    with RawConn(server.address) as c:
        c.request({"op": "put", "path": "s.bin", "total": 5000, "sha256": sha(old)})
        c.send_frame({"op": "data", "size": 5000}, old[:1000])
    _settled(server, root, 1000, "s.bin")
    assert (root / (partial_name("s.bin") + ".json")).exists()
    with RawConn(server.address) as c:
        reply, _ = c.request({"op": "put", "path": "s.bin", "total": 4000, "sha256": sha(new),
                              "resume": False})
        assert reply["offset"] == 0
        c.send_frame({"op": "data", "size": 4000}, new)
        assert c.read_frame()[0]["sha256"] == sha(new)
    assert sorted(os.listdir(root)) == ["s.bin"]


@pytest.mark.slow
def test_ctrl_c_while_a_file_hasher_starts_neither_loses_nor_doubles_a_slot(tmp_path):
    """A Ctrl-C landing while ``Thread.start`` waits for the hashing thread to begin once
    gave the slot back twice (``Semaphore released too many times`` ended ``pyftp``
    with exit 1 instead of 130). Interrupt the construction again and again: every slot
    comes back exactly once."""
    import _thread
    from pyftp import digests
    p = tmp_path / "f.bin"
    p.write_bytes(os.urandom(256 * 1024))
    slots = 0
    while digests.OVERLAP_SLOTS.acquire(blocking=False):
        slots += 1
    for _ in range(slots):
        digests.OVERLAP_SLOTS.release()
    errors: list[BaseException] = []
    old_hook = threading.excepthook
    threading.excepthook = lambda args: errors.append(args.exc_value)
    go, fired, done = threading.Event(), threading.Event(), threading.Event()

    def interrupter() -> None:
        while go.wait(10) and not done.is_set():
            go.clear()
            _thread.interrupt_main()
            fired.set()
    t = threading.Thread(target=interrupter, daemon=True)
    t.start()
    interrupted = 0
    try:
        with open(p, "rb", buffering=0) as f:
            for _ in range(150):
                fh = None
                try:
                    go.set()
                    fh = FileHasher(f.fileno(), hashlib.sha256(), 0, 256 * 1024)
                    fired.wait(10)
                except KeyboardInterrupt:
                    interrupted += 1
                fired.clear()
                if fh is not None:
                    fh.cancel()
        done.set()
        go.set()
        t.join(10)
        wait_for(lambda: not any(x.name == "pyftp-hash" for x in threading.enumerate()), 10.0,
                 "the hashing threads to end")
    finally:
        threading.excepthook = old_hook
    assert errors == []
    assert interrupted > 0
    back = 0
    while digests.OVERLAP_SLOTS.acquire(blocking=False):
        back += 1
    for _ in range(back):
        digests.OVERLAP_SLOTS.release()
    assert back == slots
