"""The rate limiter, driven by a fake clock (the limiter's own injectable clock and
sleep: it is the code under test that sleeps, so its sleeps are recorded, not made),
and Channel's sending over real loopback sockets."""
from __future__ import annotations

import os
import socket
import threading

import pytest

from pyftp.errors import TransportError
from pyftp.transport import Channel, RateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_steady_traffic_is_held_to_the_rate():
    fc = FakeClock()
    lim = RateLimiter(1000, clock=fc.clock, sleep=fc.sleep)
    for _ in range(20):
        lim.consume(100)
    # 2000 bytes at 1000 B/s take 2 s
    assert fc.now - 1000.0 == pytest.approx(2.0, abs=1e-9)


def test_a_long_pause_does_not_become_a_burst():
    fc = FakeClock()
    lim = RateLimiter(1000, clock=fc.clock, sleep=fc.sleep)
    fc.now += 60.0  # connected, then idle for a minute
    start = fc.now
    for _ in range(10):
        lim.consume(100)
    assert fc.now - start == pytest.approx(1.0 - RateLimiter.BURST, abs=1e-9)


def test_rate_must_be_positive():
    with pytest.raises(ValueError):
        RateLimiter(0)


@pytest.fixture
def tcp_pair():
    """Two connected loopback TCP sockets with small buffers (writes often fit only in part)."""
    with socket.create_server(("127.0.0.1", 0)) as srv:
        a = socket.create_connection(srv.getsockname(), timeout=10)
        b, _ = srv.accept()
    b.settimeout(10)
    for s, opt in ((a, socket.SO_SNDBUF), (b, socket.SO_RCVBUF)):
        s.setsockopt(socket.SOL_SOCKET, opt, 16384)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def test_frames_larger_than_the_socket_buffer_arrive_whole_and_in_order(tcp_pair):
    a, b = tcp_pair
    frames = [({"op": "data", "n": i}, os.urandom(60_000 + i)) for i in range(12)]
    sender = Channel(a)
    errors: list[BaseException] = []

    def send_all() -> None:
        try:
            for header, payload in frames:
                sender.send(header, payload)
        except BaseException as exc:  # reported below
            errors.append(exc)
    t = threading.Thread(target=send_all)
    t.start()
    receiver = Channel(b)
    got = []
    for _ in frames:
        fields = receiver.recv_header(10, 10)
        got.append((fields, receiver.recv_payload(1 << 20, 10)))
    t.join(10)
    assert not t.is_alive() and not errors
    assert [(f["n"], p) for f, p in got] == [(h["n"], p) for h, p in frames]
    assert sender.bytes_out == receiver.bytes_in


def test_a_closed_channel_never_writes_to_a_file_that_took_its_number(tcp_pair, tmp_path):
    a, _b = tcp_pair
    chan = Channel(a)
    number = a.fileno()
    chan.close()
    opened = os.open(tmp_path / "victim", os.O_RDWR | os.O_CREAT)
    fd = os.dup2(opened, number)  # a file now holds the socket's old number
    os.close(opened)
    try:
        with pytest.raises(TransportError):
            chan.send({"op": "pwd"})
        assert os.fstat(fd).st_size == 0
    finally:
        os.close(fd)


def test_a_payload_lands_straight_in_the_callers_buffer_and_is_hashed(tcp_pair):
    """recv_payload_to: small frames arrive with their header (bytes the decoder holds
    come first), large ones through many recv_into calls; the hash sees every byte."""
    from pyftp import digests
    a, b = tcp_pair
    payloads = [b"", b"tiny", os.urandom(3 * (1 << 20) + 5)]
    sender = Channel(a)
    t = threading.Thread(target=lambda: [sender.send({"n": i}, p)
                                         for i, p in enumerate(payloads)])
    t.start()
    receiver = Channel(b)
    for i, payload in enumerate(payloads):
        assert receiver.recv_header(10, 10)["n"] == i
        buf = bytearray(len(payload) + 6)
        h = digests.new("sha256")
        receiver.recv_payload_to(memoryview(buf)[3:-3], timeout=10, hasher=h)
        assert buf == b"\0" * 3 + payload + b"\0" * 3
        assert h.hexdigest() == digests.hash_bytes(payload, "sha256")
    t.join(10)
    assert not t.is_alive()


def test_a_buffer_of_the_wrong_length_is_refused_before_a_byte_is_read(tcp_pair):
    a, b = tcp_pair
    Channel(a).send({"n": 1}, b"abc")
    receiver = Channel(b)
    receiver.recv_header(10, 10)
    with pytest.raises(ValueError, match="holds 2 bytes, the payload is 3"):
        receiver.recv_payload_to(memoryview(bytearray(2)))
    assert receiver.recv_payload(10, 10) == b"abc"


# ---------------------------------------------------------------- held small writes
def _read_frames(chan: Channel, n: int, out: list, then=None) -> threading.Thread:
    """Read ``n`` frames (header, payload) on another thread; then call ``then()``."""
    def run() -> None:
        for _ in range(n):
            fields = chan.recv_header(10, 10)
            out.append((fields, chan.recv_payload(1 << 20, 10)))
        if then is not None:
            then()
    t = threading.Thread(target=run)
    t.start()
    return t


def test_held_frames_leave_in_one_write_before_the_holder_reads(tcp_pair):
    """Replies to pipelined requests are held and written together, and always before
    the holder waits to read: a peer that waits for them before sending more (a put's
    offset reply) is never left waiting."""
    a, b = tcp_pair
    holder, peer = Channel(a), Channel(b)
    holder.hold_small_writes()
    for i in range(5):
        holder.send({"n": i}, b"x" * i)
    b.setblocking(False)
    with pytest.raises(BlockingIOError):
        b.recv(1)  # nothing was written yet
    b.setblocking(True)
    b.settimeout(10)
    got: list = []
    t = _read_frames(peer, 5, got, then=lambda: peer.send({"op": "next"}))
    assert holder.recv_header(10, 10) == {"op": "next"}  # the held frames went first
    t.join(10)
    assert [(f["n"], p) for f, p in got] == [(i, b"x" * i) for i in range(5)]
    assert holder.writes == 1


def test_held_frames_go_before_a_file_and_a_large_payload(tcp_pair, tmp_path):
    a, b = tcp_pair
    holder, peer = Channel(a), Channel(b)
    holder.hold_small_writes()
    data = os.urandom(200_000)
    (tmp_path / "f.bin").write_bytes(data)
    got: list = []
    t = _read_frames(peer, 3, got)
    holder.send({"n": 0}, b"small")
    holder.send_header({"n": 1, "size": len(data)})
    with open(tmp_path / "f.bin", "rb") as f:
        assert holder.send_file(f, 0, len(data)) == len(data)
    holder.send({"n": 2}, data)  # larger than a held write: the stream stays in order
    t.join(10)
    assert [(f["n"], p) for f, p in got] == [(0, b"small"), (1, data), (2, data)]


def test_held_frames_are_written_once_they_add_up(tcp_pair):
    """Nothing is held without bound: past HOLD_LIMIT bytes they go out unasked."""
    from pyftp.transport import HOLD_LIMIT
    a, b = tcp_pair
    holder, peer = Channel(a), Channel(b)
    holder.hold_small_writes()
    n = HOLD_LIMIT // 1000 + 2
    got: list = []
    t = _read_frames(peer, 1, got)
    for i in range(n):
        holder.send({"n": i}, b"y" * 1000)
    t.join(10)
    assert not t.is_alive() and got[0] == ({"n": 0, "size": 1000}, b"y" * 1000)
    assert 1 <= holder.writes < n


def test_closing_writes_what_was_held(tcp_pair):
    a, b = tcp_pair
    holder = Channel(a)
    holder.hold_small_writes()
    holder.send({"ok": False, "error": "bad_frame"})
    holder.close()
    assert Channel(b).recv_header(10, 10) == {"ok": False, "error": "bad_frame"}
