"""Resume that never loses data, proven with real processes.

Clients run as child processes (``sys.executable -c`` with a small pyftp.Client
script) and are SIGKILLed in the middle of a transfer; the server is a real
``pyftp-server`` process where it gets killed too. After each interruption the same
transfer is run again: it must continue from where the bytes stopped (not from zero),
publish a file whose SHA-256 equals the source, and leave no partial file behind. A
partial whose bytes were altered must still end in a correct file (via the one retry
from zero), and two clients writing the same path must never produce a mix.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import RawConn, best, sha
from pyftp import Client
from pyftp.errors import BusyError
from pyftp.protocol import is_partial_name, partial_name
from serverproc import ServerProcess

#: the client side of every test: one get or put, its result as JSON on stdout, and a
#: one-line error (never a traceback) with exit code 3 when it fails
CLIENT = r"""
import json, sys
from pyftp import Client
from pyftp.errors import PyftpError
op, host, port, a, b, rate, flags = sys.argv[1:8]
try:
    with Client(host, int(port), timeout=20, limit_rate=int(rate) or None,
                digest="sha256" if "sha256" in flags else None) as c:
        if op == "put":
            r = c.put(a, b, overwrite="overwrite" in flags, resume="noresume" not in flags)
        else:
            r = c.get(a, b, resume="noresume" not in flags)
except PyftpError as exc:
    print(f"error: {getattr(exc, 'code', type(exc).__name__)}: {exc}", file=sys.stderr)
    sys.exit(3)
print(json.dumps({"offset": r.offset, "sent": r.sent, "total": r.total, "sha256": r.sha256,
                  "algorithm": r.algorithm}))
"""

MiB = 1 << 20


def start_client(op: str, address, a, b, *, rate: int = 0, flags: str = "") -> subprocess.Popen:
    host, port = address
    return subprocess.Popen([sys.executable, "-c", CLIENT, op, host, str(port), str(a), str(b),
                             str(rate), flags], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def run_client(op: str, address, a, b, *, flags: str = "") -> dict:
    proc = start_client(op, address, a, b, flags=flags)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    return json.loads(out)


def wait_until(condition, what: str, limit: float = 20.0, proc: subprocess.Popen | None = None):
    """Poll ``condition`` (bounded); fail early if ``proc`` already ended."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what}: the client ended early: {proc.stderr.read()}")
        time.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


def size_of(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return -1


def kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=20)



def partials(top: Path) -> list[str]:
    return [n for _d, _s, files in os.walk(top) for n in files if is_partial_name(n)]


# ---------------------------------------------------------------------- put

def test_client_killed_mid_put_resumes_from_the_servers_offset(server, root, tmp_path):
    data = os.urandom(4 * MiB)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    partial = root / partial_name("big.bin")
    proc = start_client("put", server.address, src, "big.bin", rate=MiB)
    wait_until(lambda: size_of(partial) >= 256 * 1024, "the upload to start", proc=proc)
    kill(proc)
    assert proc.returncode == -signal.SIGKILL
    wait_until(lambda: server.session_count == 0, "the server to notice the dead client")
    kept = size_of(partial)
    assert 0 < kept < len(data)
    assert not (root / "big.bin").exists(), "a partial upload took the real name"
    assert partial.read_bytes() == data[:kept]

    res = run_client("put", server.address, src, "big.bin")
    # a new client process holds no resume token (contract C1: tokens live in memory),
    # so a trailer put starts over; a v1 put with the file's SHA-256 may continue
    assert res["offset"] in (0, kept), "the rerun neither continued nor started over"
    assert res["sent"] == len(data) - res["offset"] and res["sha256"] == best(data)
    assert sha((root / "big.bin").read_bytes()) == sha(data)
    assert partials(root) == []


def test_no_resume_forces_a_fresh_upload(server, root, tmp_path):
    data = os.urandom(MiB)
    src = tmp_path / "f.bin"
    src.write_bytes(data)
    _leave_partial(server, root, "f.bin", data, len(data) // 2)
    # the partial is a version 1 one (SHA-256): only a SHA-256 session could take it over
    res = run_client("put", server.address, src, "f.bin", flags="noresume sha256")
    assert res["offset"] == 0 and res["sent"] == len(data)
    assert (root / "f.bin").read_bytes() == data and partials(root) == []


def _leave_partial(server, root: Path, name: str, data: bytes, cut: int) -> Path:
    """An upload cut after ``cut`` bytes, by a raw connection that just goes away."""
    with RawConn(server.address) as conn:
        reply, _ = conn.request({"op": "put", "path": name, "total": len(data),
                                 "sha256": sha(data)})
        assert reply["ok"] and reply["offset"] == 0
        conn.send_raw(_frame({"op": "data", "size": len(data)}) + data[:cut])
    partial = root / partial_name(name)
    wait_until(lambda: server.session_count == 0, "the server to drop the cut upload")
    assert size_of(partial) == cut
    return partial


def _frame(header: dict) -> bytes:
    body = json.dumps(header).encode()
    return len(body).to_bytes(4, "big") + body


def test_a_server_partial_altered_on_disk_ends_in_a_verified_file(server, root, tmp_path):
    data = os.urandom(2 * MiB)
    src = tmp_path / "f.bin"
    src.write_bytes(data)
    partial = _leave_partial(server, root, "f.bin", data, MiB)
    with open(partial, "r+b") as f:  # bit rot in the middle of the kept bytes
        f.seek(1234)
        f.write(b"\x00\xff\x00\xff")
    res = run_client("put", server.address, src, "f.bin")
    # the resumed upload failed its SHA-256 check, so the client sent it all again
    assert res["offset"] == 0 and res["sent"] == len(data)
    assert (root / "f.bin").read_bytes() == data
    assert partials(root) == []


def test_server_killed_mid_upload_and_restarted_resumes(root, tmp_path):
    data = os.urandom(4 * MiB)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    partial = root / partial_name("big.bin")
    with ServerProcess("--root", str(root), "--log-level", "warning") as srv:
        proc = start_client("put", srv.address, src, "big.bin", rate=MiB)
        try:
            wait_until(lambda: size_of(partial) >= 256 * 1024, "the upload to start", proc=proc)
            srv.proc.send_signal(signal.SIGKILL)
            srv.proc.wait(20)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                kill(proc)
    assert proc.returncode == 3, "the client did not notice the server dying"
    assert err.startswith("error: ") and "Traceback" not in err
    assert not (root / "big.bin").exists()
    kept = size_of(partial)
    assert 0 < kept < len(data) and partial.read_bytes() == data[:kept]

    with ServerProcess("--root", str(root), "--log-level", "warning") as srv:
        res = run_client("put", srv.address, src, "big.bin")
    assert res["offset"] in (0, kept) and res["sha256"] == best(data)  # no token: see above
    assert (root / "big.bin").read_bytes() == data
    assert partials(root) == []


def test_two_clients_putting_the_same_path_never_mix(server, root, tmp_path):
    first, second = os.urandom(2 * MiB), os.urandom(2 * MiB)
    (tmp_path / "a.bin").write_bytes(first)
    (tmp_path / "b.bin").write_bytes(second)
    partial = root / partial_name("same.bin")
    proc = start_client("put", server.address, tmp_path / "a.bin", "same.bin", rate=2 * MiB)
    try:
        wait_until(lambda: size_of(partial) >= 64 * 1024, "the first upload to start", proc=proc)
        with Client(*server.address, timeout=10) as other:
            with pytest.raises(BusyError, match="another upload to /same.bin"):
                other.put(tmp_path / "b.bin", "same.bin", overwrite=True)
            assert other.pwd() == "/"  # a busy answer leaves the connection usable
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            kill(proc)
    assert proc.returncode == 0, err
    assert (root / "same.bin").read_bytes() == first, "the first upload was disturbed"
    # once the first is done, the second one replaces it whole
    res = run_client("put", server.address, tmp_path / "b.bin", "same.bin", flags="overwrite")
    assert res["offset"] == 0 and (root / "same.bin").read_bytes() == second
    assert partials(root) == []


def test_a_silently_dead_connection_does_not_block_the_retry(server, root, tmp_path):
    """A connection that died without a FIN (a killed VM, a dropped network) still holds
    its upload on the server until the idle timeout. The same file put again takes the
    upload over and continues its partial; different content still gets busy."""
    data = os.urandom(MiB)
    src = tmp_path / "f.bin"
    src.write_bytes(data)
    partial = root / partial_name("f.bin")
    silent = RawConn(server.address)
    try:
        reply, _ = silent.request({"op": "put", "path": "f.bin", "total": len(data),
                                   "sha256": sha(data)})
        assert reply["ok"]
        silent.send_raw(_frame({"op": "data", "size": len(data)}) + data[:300_000])
        wait_until(lambda: size_of(partial) == 300_000, "the first bytes to land")
        (tmp_path / "other.bin").write_bytes(os.urandom(MiB))
        with Client(*server.address, timeout=10) as other:
            with pytest.raises(BusyError):
                other.put(tmp_path / "other.bin", "f.bin")
        # the silent holder pinned its upload by SHA-256: a SHA-256 session proves it
        res = run_client("put", server.address, src, "f.bin", flags="sha256")
        assert res["offset"] == 300_000 and res["sha256"] == sha(data)
        assert silent.is_closed(), "the silent connection was not cut"
    finally:
        silent.close()
    assert (root / "f.bin").read_bytes() == data and partials(root) == []


# ---------------------------------------------------------------------- get

def test_client_killed_mid_get_resumes_from_its_partial(server, root, tmp_path):
    data = os.urandom(4 * MiB)
    (root / "big.bin").write_bytes(data)
    dest = tmp_path / "dl"
    dest.mkdir()
    partial = dest / partial_name("big.bin")
    proc = start_client("get", server.address, "big.bin", dest / "big.bin", rate=MiB)
    wait_until(lambda: size_of(partial) >= 256 * 1024, "the download to start", proc=proc)
    kill(proc)
    kept = size_of(partial)
    assert 0 < kept < len(data) and partial.read_bytes() == data[:kept]
    assert not (dest / "big.bin").exists(), "a partial download took the real name"

    res = run_client("get", server.address, "big.bin", dest / "big.bin")
    assert res["offset"] == kept and res["sent"] == len(data) - kept
    assert best((dest / "big.bin").read_bytes()) == best(data) == res["sha256"]
    assert os.listdir(dest) == ["big.bin"]


def test_a_local_partial_altered_on_disk_ends_in_a_verified_download(server, root, tmp_path):
    data = os.urandom(2 * MiB)
    (root / "f.bin").write_bytes(data)
    bad = bytearray(data[:MiB])
    bad[777] ^= 0x01
    (tmp_path / partial_name("f.bin")).write_bytes(bytes(bad))
    res = run_client("get", server.address, "f.bin", tmp_path / "f.bin")
    assert res["offset"] == 0 and res["sent"] == len(data)
    assert (tmp_path / "f.bin").read_bytes() == data
    assert partials(tmp_path) == []


def test_a_local_partial_longer_than_the_file_starts_over(server, root, tmp_path):
    (root / "f.txt").write_bytes(b"short")
    (tmp_path / partial_name("f.txt")).write_bytes(b"a much longer leftover partial")
    res = run_client("get", server.address, "f.txt", tmp_path / "f.txt")
    assert res["offset"] == 0 and (tmp_path / "f.txt").read_bytes() == b"short"
    assert partials(tmp_path) == []


# ---------------------------------------------------------------------- clean-up

def test_partials_older_than_partial_ttl_are_removed_by_the_server(root, tmp_path):
    old = root / "sub" / partial_name("old.bin")
    old.parent.mkdir()
    old.write_bytes(b"x" * 100)
    Path(str(old) + ".json").write_text('{"total": 200, "sha256": null}')
    two_days_ago = time.time() - 2 * 86400
    for p in (old, Path(str(old) + ".json")):
        os.utime(p, (two_days_ago, two_days_ago))
    fresh = root / partial_name("fresh.bin")
    fresh.write_bytes(b"y")
    with ServerProcess("--root", str(root), "--partial-ttl", "1h", "--log-level", "warning"):
        # the clean-up runs in the background as soon as the server serves
        wait_until(lambda: not old.exists() and not Path(str(old) + ".json").exists(),
                   "the start-up clean-up of stale partials")
    assert fresh.exists(), "a partial younger than --partial-ttl was removed"
