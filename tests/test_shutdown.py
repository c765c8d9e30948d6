"""Graceful shutdown of ``pyftp-server`` (a real subprocess) with uploads in flight.

SIGTERM or Ctrl-C (SIGINT) must end the server with exit code 0 within a bounded
time; an upload cut by the shutdown is never published under its real name, and its
partial stays so the next put resumes it. An upload that finishes within the grace
period is published whole.
"""
from __future__ import annotations

import hashlib
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from helpers import RawConn, best
from pyftp import Client
from pyftp.errors import PyftpError
from pyftp.protocol import partial_name
from serverproc import ServerProcess


def _wait_for_file(path: Path, min_size: int, limit: float = 15.0) -> int:
    """Wait (bounded) until ``path`` holds at least ``min_size`` bytes; return its size."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            size = -1
        if size >= min_size:
            return size
        time.sleep(0.01)
    raise AssertionError(f"{path.name} never reached {min_size} bytes")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_signal_with_rate_limited_upload_in_flight(root, tmp_path, sig):
    data = os.urandom(2 << 20)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    partial = root / partial_name("big.bin")
    outcome: list[object] = []
    with ServerProcess("--root", str(root), "--limit-rate", "256K",
                       "--shutdown-grace", "0.5") as srv:
        port = srv.port

        def upload() -> None:
            try:
                with Client(*srv.address, timeout=20) as c:
                    outcome.append(c.put(src, "big.bin"))
            except PyftpError as exc:
                outcome.append(exc)
        t = threading.Thread(target=upload, name="test-upload")
        t.start()
        try:
            _wait_for_file(partial, 64 * 1024)  # bytes are arriving
            assert srv.stop(sig, timeout=15) == 0
        finally:
            t.join(30)
        assert "stopped" in srv.stderr and "Traceback" not in srv.stderr
    assert len(outcome) == 1 and isinstance(outcome[0], PyftpError), outcome
    assert not (root / "big.bin").exists(), "a cut upload was published"
    kept = partial.stat().st_size
    assert 0 < kept < len(data) and partial.read_bytes() == data[:kept]
    # the server, back on its port, resumes from the kept partial and publishes the
    # whole file (resume tokens are kept per server: host and port)
    with ServerProcess("--root", str(root), "--port", str(port)) as srv, \
            Client(*srv.address, timeout=20) as c:
        res = c.put(src, "big.bin")
        assert res.offset == kept and res.sha256 == best(data)
        assert srv.stop() == 0
    assert (root / "big.bin").read_bytes() == data and not partial.exists()


def test_upload_finishing_within_the_grace_period_is_published(root):
    data = os.urandom(1 << 20)
    half = len(data) // 2
    with ServerProcess("--root", str(root), "--shutdown-grace", "30") as srv:
        with RawConn(srv.address, timeout=20) as c:
            reply, _ = c.request({"op": "put", "path": "f.bin", "total": len(data),
                                  "sha256": hashlib.sha256(data).hexdigest()})
            assert reply["ok"] is True
            c.send_frame({"op": "data", "size": len(data)})
            c.send_raw(data[:half])
            _wait_for_file(root / partial_name("f.bin"), half)
            srv.proc.send_signal(signal.SIGTERM)
            srv.wait_for("stopping", 15)
            assert not (root / "f.bin").exists()
            c.send_raw(data[half:])
            reply, _ = c.read_frame()
            assert reply["ok"] is True, reply
        assert srv.stop(timeout=15) == 0
    assert (root / "f.bin").read_bytes() == data


def test_idle_sessions_do_not_hold_up_the_shutdown(root):
    """Grace is for transfers: an idle client must not make the server wait it out."""
    with ServerProcess("--root", str(root), "--shutdown-grace", "120") as srv:
        with Client(*srv.address, timeout=20) as c:
            assert c.pwd() == "/"
            assert srv.stop(timeout=15) == 0  # far below the 120 s grace


def test_stalled_upload_is_cut_after_the_grace(root):
    """A client that stops sending mid-upload is cut when the grace runs out."""
    data = os.urandom(300_000)
    with ServerProcess("--root", str(root), "--shutdown-grace", "0.5") as srv:
        with RawConn(srv.address, timeout=20) as c:
            reply, _ = c.request({"op": "put", "path": "s.bin", "total": len(data),
                                  "sha256": hashlib.sha256(data).hexdigest()})
            c.send_frame({"op": "data", "size": len(data)})
            c.send_raw(data[:100_000])
            _wait_for_file(root / partial_name("s.bin"), 100_000)
            assert srv.stop(timeout=15) == 0
            assert c.is_closed()
    assert not (root / "s.bin").exists()
    assert (root / partial_name("s.bin")).read_bytes() == data[:100_000]


def test_a_second_signal_cuts_the_transfers_at_once(root):
    """A 120 s grace, a stalled upload: the second SIGTERM ends the wait, exit 0."""
    data = os.urandom(300_000)
    with ServerProcess("--root", str(root), "--shutdown-grace", "120") as srv:
        with RawConn(srv.address, timeout=20) as c:
            c.request({"op": "put", "path": "s.bin", "total": len(data),
                       "sha256": hashlib.sha256(data).hexdigest()})
            c.send_frame({"op": "data", "size": len(data)})
            c.send_raw(data[:100_000])
            _wait_for_file(root / partial_name("s.bin"), 100_000)
            srv.proc.send_signal(signal.SIGTERM)
            srv.wait_for("Ctrl-C again to cut them", 15)
            assert srv.stop(timeout=15) == 0  # the second signal; far below the grace
            assert c.is_closed()
        assert "a second signal cut the transfers in flight" in srv.stderr
    assert not (root / "s.bin").exists()
    assert (root / partial_name("s.bin")).read_bytes() == data[:100_000]


def test_signals_after_the_stop_do_not_change_the_exit_code(root):
    """Once stopped, the process is exiting: a late SIGTERM must not turn 0 into -15."""
    with ServerProcess("--root", str(root)) as srv:
        srv.proc.send_signal(signal.SIGTERM)
        srv.wait_for("pyftp-server: stopped", 15)
        for _ in range(20):  # into the interpreter's own shutdown, as a supervisor might
            if srv.proc.poll() is not None:
                break
            srv.proc.send_signal(signal.SIGTERM)
        assert srv.stop(timeout=15) == 0
