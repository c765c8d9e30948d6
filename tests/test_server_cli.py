"""``pyftp-server`` as a user runs it: a real subprocess, real signals, real ports."""
from __future__ import annotations

import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pyftp import Client

BIN = Path(sys.executable).parent / "pyftp-server"


def server_cmd() -> list[str]:
    if BIN.exists():
        return [str(BIN)]
    # an install without console scripts on PATH: the same entry point
    return [sys.executable, "-c", "import sys; from pyftp.cli import server_main; "
            "sys.exit(server_main())"]


def read_until(proc: subprocess.Popen, pattern: str, timeout: float = 15.0) -> tuple[re.Match, str]:
    """Read the child's stderr until a line matches ``pattern`` (bounded in time).

    Reads the raw pipe with os.read: a buffered readline could hold lines that select()
    no longer reports. Lines after the match stay in ``proc.pending`` for the next call.
    """
    fd = proc.stderr.fileno()
    pending: str = getattr(proc, "pending", "")
    seen = ""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while True:
            while "\n" in pending:
                line, pending = pending.split("\n", 1)
                seen += line + "\n"
                m = re.search(pattern, line)
                if m:
                    proc.pending = pending  # type: ignore[attr-defined]
                    return m, seen
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(timeout=left):
                break
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            pending += chunk.decode("utf-8", "replace")
    pytest.fail(f"pattern {pattern!r} not seen on stderr; got:\n{seen}{pending}")


def rest_of_stderr(proc: subprocess.Popen) -> str:
    """Everything the child wrote to stderr after what read_until consumed."""
    data = b""
    while True:
        chunk = os.read(proc.stderr.fileno(), 65536)
        if not chunk:
            break
        data += chunk
    return getattr(proc, "pending", "") + data.decode("utf-8", "replace")


@pytest.fixture
def run_server(tmp_path):
    procs: list[subprocess.Popen] = []

    def start(*args: str) -> subprocess.Popen:
        proc = subprocess.Popen(server_cmd() + list(args), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        procs.append(proc)
        return proc
    try:
        yield start
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait(10)
            for stream in (p.stdout, p.stderr):
                stream.close()


def test_port_0_prints_the_port_a_client_can_use_and_sigterm_exits_0(run_server, tmp_path):
    root = tmp_path / "share"
    root.mkdir()
    (root / "hello.txt").write_bytes(b"hi there")
    proc = run_server("--root", str(root), "--port", "0")
    m, _ = read_until(proc, r"serving .* on 127\.0\.0\.1:(\d+)")
    port = int(m.group(1))
    assert port != 0
    with Client("127.0.0.1", port, timeout=10) as c:
        assert [e.name for e in c.ls()] == ["hello.txt"]
        c.get("hello.txt", tmp_path / "got.txt")
    assert (tmp_path / "got.txt").read_bytes() == b"hi there"
    read_until(proc, r" ls ")  # one log line per request, on stderr
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    rest = rest_of_stderr(proc)
    assert "Traceback" not in rest and "stopp" in rest
    assert proc.stdout.read() == b""  # results only on stdout; the server has none


def test_sigint_also_exits_0(run_server, tmp_path):
    proc = run_server("--root", str(tmp_path), "--port", "0")
    read_until(proc, r"serving")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=15) == 0
    assert "Traceback" not in rest_of_stderr(proc)


@pytest.mark.slow
def test_a_signal_the_moment_the_server_starts_always_stops_it(run_server, tmp_path):
    """The signal handler takes no lock: a SIGTERM landing while the main thread enters
    its wait once left the server hung forever (the handler waited on the lock the
    interrupted thread held). Race it at the start-up line: zero hangs."""
    hangs = []
    for attempt in range(12):
        proc = run_server("--root", str(tmp_path), "--port", "0")
        read_until(proc, r"serving")
        proc.send_signal(signal.SIGTERM if attempt % 2 else signal.SIGINT)
        try:
            assert proc.wait(timeout=15) == 0
        except subprocess.TimeoutExpired:
            hangs.append(attempt)
            proc.kill()
    assert hangs == []


def test_missing_root_exits_2_with_a_clear_message(run_server, tmp_path):
    proc = run_server("--root", str(tmp_path / "nope"), "--port", "0")
    assert proc.wait(timeout=15) == 2
    err = rest_of_stderr(proc)
    assert "no such folder" in err and "mkdir -p" in err
    assert "Traceback" not in err


def test_port_in_use_exits_1_with_a_clear_message(run_server, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        proc = run_server("--root", str(tmp_path), "--port", str(port))
        assert proc.wait(timeout=15) == 1
    err = rest_of_stderr(proc)
    assert f"cannot listen on 127.0.0.1:{port}" in err and "--port 0" in err
    assert "Traceback" not in err


def test_bad_option_value_exits_2(run_server, tmp_path):
    proc = run_server("--root", str(tmp_path), "--port", "not-a-number")
    assert proc.wait(timeout=15) == 2
    err = rest_of_stderr(proc)
    assert "--port" in err and "Traceback" not in err


@pytest.mark.parametrize("args, says", [
    (["--port", "70000"], "outside 0..65535"),
    (["--port", "-1"], "outside 0..65535"),
    (["--max-clients", "0"], "below 1"),
    (["--max-per-ip", "-3"], "below 1"),
    (["--max-auth-failures", "x"], "not a whole number"),
    (["--idle-timeout", "0"], "more than zero"),
    (["--frame-timeout", "0s"], "more than zero"),
])
def test_out_of_range_limits_exit_2_with_a_reason(run_server, tmp_path, args, says):
    proc = run_server("--root", str(tmp_path), *args)
    assert proc.wait(timeout=15) == 2
    err = rest_of_stderr(proc)
    assert says in err and args[0] in err and "Traceback" not in err


def test_auth_fail_cap_is_an_option_with_help():
    from pyftp.cli.server import server_parser
    parser = server_parser()
    assert "--auth-fail-cap" in parser.format_help()
    assert parser.parse_args(["--root", ".", "--auth-fail-cap", "5s"]).auth_fail_cap == 5.0


def _server_exit(argv: list[str], prelude: str = "", env: dict | None = None):
    code = (f"import sys; {prelude}from pyftp.cli import server_main; "
            f"sys.exit(server_main({argv!r}))")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env=env)


def test_an_s3_root_without_boto3_names_the_extra():
    # boto3 made unimportable: the local server never needs it, an s3:// root says so
    r = _server_exit(["--root", "s3://bucket/prefix", "--port", "0"],
                     prelude="sys.modules['boto3'] = None; ")
    assert r.returncode == 2, r.stderr
    assert "pip install 'pyftp[s3]'" in r.stderr and "Traceback" not in r.stderr


def test_s3_endpoint_needs_an_s3_root(tmp_path):
    r = _server_exit(["--root", str(tmp_path), "--s3-endpoint", "http://127.0.0.1:1"])
    assert r.returncode == 2 and "--s3-endpoint needs an s3://" in r.stderr


def test_an_unreachable_store_is_one_clear_line():
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_MAX_ATTEMPTS": "1"}
    pytest.importorskip("boto3")
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = _server_exit(["--root", "s3://bucket", "--s3-endpoint", f"http://127.0.0.1:{port}",
                      "--port", "0"], env=env)
    assert r.returncode == 2, r.stderr
    assert "cannot reach the object store" in r.stderr and "Traceback" not in r.stderr


def test_a_local_server_never_imports_boto3(tmp_path):
    code = ("import sys; from pyftp.server import Server, ServerConfig; "
            f"s = Server(ServerConfig(root={str(tmp_path)!r}, port=0)).start(); s.shutdown(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore')))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
