"""A raw-frame client for tests, written from docs/protocol.md and independent of
pyftp.Client, so a bug in the client cannot hide a bug in the server."""
from __future__ import annotations

import hashlib
import json
import socket
import struct
import time


class RawConn:
    """Speaks frames by hand: length prefix, JSON header, payload."""

    def __init__(self, address, *, timeout: float = 10.0, hello: bool = True, **hello_fields):
        self.sock = socket.create_connection(address, timeout=timeout)
        self.buf = b""
        if hello:
            reply, _ = self.request({"op": "hello", "version": 1, "client": "raw-test/1",
                                     **hello_fields})
            assert reply["ok"] is True, reply

    # -- bytes
    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_frame(self, header: dict, payload: bytes = b"") -> None:
        if payload and "size" not in header:
            header = {**header, "size": len(payload)}
        body = json.dumps(header).encode("utf-8")
        self.sock.sendall(struct.pack(">I", len(body)) + body + payload)

    def _read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(max(65536, n - len(self.buf)))
            if not chunk:
                raise ConnectionError(f"closed with {len(self.buf)} of {n} bytes read")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_frame(self) -> tuple[dict, bytes]:
        (n,) = struct.unpack(">I", self._read_exact(4))
        header = json.loads(self._read_exact(n).decode("utf-8"))
        payload = self._read_exact(header.get("size", 0))
        return header, payload

    def request(self, header: dict, payload: bytes = b"") -> tuple[dict, bytes]:
        self.send_frame(header, payload)
        return self.read_frame()

    def is_closed(self) -> bool:
        """True if the server has closed the connection (reads until EOF)."""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self) -> None:
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def sha(data: bytes) -> str:
    """SHA-256 (hex) of some bytes: what pyftp verifies every transfer with."""
    return hashlib.sha256(data).hexdigest()


def wait_for(cond, timeout: float = 10.0, what: str = "condition") -> None:
    """Poll ``cond`` until it is true; fail after ``timeout`` seconds (a bounded wait
    for something another process or thread does, never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def start_put(address, partial, name: str, data: bytes, first: bytes) -> RawConn:
    """Begin a put of ``data`` as ``name``, send only ``first``, and wait until the
    server's ``partial`` file holds those bytes. The connection is left open."""
    c = RawConn(address)
    reply, _ = c.request({"op": "put", "path": name, "total": len(data), "sha256": sha(data)})
    assert without_token(reply) == {"ok": True, "offset": 0}, reply
    c.send_frame({"op": "data", "size": len(data)}, first)
    wait_for(lambda: partial.exists() and partial.stat().st_size == len(first),
             what="the partial")
    return c


def cut_put(server, partial, name: str, data: bytes, first: bytes) -> None:
    """A put cut off after ``first``: its session has ended and ``partial`` is kept."""
    start_put(server.address, partial, name, data, first).close()
    wait_for(lambda: server.session_count == 0, what="the cut session to end")


def without_token(reply: dict) -> dict:
    """A put's offset reply without its resume token (random, feature resume_token)."""
    assert isinstance(reply.get("token", "x"), str)
    return {k: v for k, v in reply.items() if k != "token"}
