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


def best(data: bytes) -> str:
    """The digest a default ``Client`` verifies with against a pyftp server: BLAKE3
    when this build has it (negotiated in hello), else SHA-256."""
    from pyftp import digests
    return digests.hash_bytes(data, digests.ALGORITHMS[0])


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


class ScriptedPeer:
    """A tiny fake pyftp server on 127.0.0.1:0 for client tests: answers hello with
    ``features``, every put with an offset reply (plus ``tokens[n]`` when given) and,
    once the data (and verify) frames are in, with ``finals[n]`` (default: ok).
    ``headers`` records every header the client sent. One connection at a time."""

    def __init__(self, features, *, tokens=(), finals=()):
        import socket
        import threading
        self.features, self.tokens, self.finals = list(features), list(tokens), list(finals)
        self.headers: list[dict] = []
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(4)
        self.lsock.settimeout(10)
        self.address = self.lsock.getsockname()
        self._puts = 0
        self._closing = False
        self._thread = threading.Thread(target=self._serve, name="scripted-peer")
        self._thread.start()

    def _frames(self, conn):
        from pyftp.protocol import NEED_DATA, FrameDecoder, Header
        dec = FrameDecoder()
        while True:
            event = dec.next_event()
            if event is NEED_DATA:
                data = conn.recv(1 << 20)
                if not data:
                    return
                dec.feed(data)
            elif isinstance(event, Header):
                yield event.fields

    def _serve(self):
        from pyftp.protocol import encode_frame
        for _ in range(4):  # bounded: a test opens at most a few connections
            try:
                conn, _ = self.lsock.accept()
            except OSError:
                return
            with conn:
                if self._closing:
                    return
                conn.settimeout(10)
                try:
                    for h in self._frames(conn):
                        self.headers.append(h)
                        reply = self._answer(h)
                        if reply is not None:
                            conn.sendall(encode_frame(reply))
                        if h.get("op") == "quit":
                            break
                except OSError:
                    pass

    def _answer(self, h):
        op = h.get("op")
        if op == "hello":
            return {"ok": True, "version": 1, "server": "fake", "features": self.features}
        if op == "put":
            reply = {"ok": True, "offset": 0}
            if self._puts < len(self.tokens) and self.tokens[self._puts]:
                reply["token"] = self.tokens[self._puts]
            self._pending = h
            return reply
        if op == "data" and self._pending.get("trailer"):
            return None  # the verify frame follows
        if op in ("data", "verify"):
            n, self._puts = self._puts, self._puts + 1
            if n < len(self.finals) and self.finals[n] is not None:
                return self.finals[n]
            return {"ok": True, "path": "/" + self._pending["path"].lstrip("/"),
                    "total": self._pending["total"]}
        if op in ("cd", "pwd"):
            return {"ok": True, "cwd": h.get("path", "/")}
        return {"ok": True}

    def close(self):
        import socket
        self._closing = True
        try:  # wake the accept() the thread waits in
            socket.create_connection(self.address, timeout=5).close()
        except OSError:
            pass
        self._thread.join(10)
        self.lsock.close()
