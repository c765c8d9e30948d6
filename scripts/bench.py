#!/usr/bin/env python3
"""Benchmark pyftp against pyftpdlib + ftplib and the raw-socket limit, in one run.

    .venv/bin/python -m pip install -e ".[bench]"     # pyftpdlib, psutil, matplotlib
    .venv/bin/python scripts/bench.py                 # full run (1 GiB files, 5 runs)
    .venv/bin/python scripts/bench.py --quick         # the same scenarios, small sizes

Every server runs as a subprocess on 127.0.0.1, port 0, serving its own folder in a
temporary directory that is removed at the end: ``pyftp-server``, a pyftpdlib
``FTPServer`` (its defaults: sendfile on, TCP_NODELAY on) and a raw sender/receiver that
moves the file with ``socket.sendfile`` into ``recv_into`` of a reused 1 MiB buffer and
nothing else (the loopback limit of Python on this machine). The clients run in this
process (pyftp's ``Client`` and the standard library's ``ftplib``), except where
memory or start-up is measured: those are separate processes.

Within a scenario the tools take turns, run after run, in a rotating order, so a
noisy neighbour hurts them alike; each figure is the median of the runs with the
minimum and maximum beside it. pyftp verifies every transfer end to end (SHA-256 on
both sides); FTP has no such check, so pyftpdlib's figures are for the bare transfer.

Output (in ``--out``, default ``bench-results/``): ``bench.json`` (every run),
``bench.md`` (the tables), ``bench.png`` (the chart). ``--publish`` also puts the
tables into ``docs/benchmarks.md`` (between its ``bench-table`` markers) and the chart
into ``docs/benchmarks.png``.

This script is not part of the package and imports pyftp only as a user would.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import ftplib
import hashlib
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
MiB = 1 << 20
FTP_USER, FTP_PASS = "bench", "bench"
#: ftplib's read size for RETR/STOR: 1 MiB measured faster here than its 8 KiB default,
#: so pyftpdlib is measured at its best
FTP_BLOCK = MiB
#: the environment of every subprocess. Without PYTHONDONTWRITEBYTECODE (some sandboxes
#: set it): a normal install has byte-code, and compiling pyftp's sources on every start
#: would add ~80 ms to each one-shot command
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


# ============================================================================ settings
@dataclass(frozen=True)
class Mode:
    name: str
    big: int            # bytes of the large file
    runs: int           # timed runs per scenario (medians over these)
    files: int          # small files for the many-files scenarios
    file_size: int
    listings: int
    clients: int        # concurrent clients ...
    client_size: int    # ... each getting a file this large
    gets: int           # small gets in one session (split in 10 blocks)
    idle: int           # idle connected clients
    settle: float       # longest wait for TIME_WAIT sockets to drain before FTP-heavy runs


MODES = {
    "full": Mode("full", 1 << 30, 5, 1000, 4096, 1000, 50, 16 * MiB, 10_000, 300, 65.0),
    "quick": Mode("quick", 128 * MiB, 3, 200, 4096, 200, 10, 4 * MiB, 2_000, 50, 0.0),
    # for the test suite: every scenario runs, in seconds
    "smoke": Mode("smoke", 3 * MiB, 1, 12, 4096, 12, 3, 3 * MiB, 40, 4, 0.0),
}


# ============================================================================ results
@dataclass
class Scenario:
    key: str
    title: str
    unit: str
    higher_is_better: bool = True
    runs: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    def add(self, tool: str, value: float) -> None:
        self.runs.setdefault(tool, []).append(value)

    def median(self, tool: str) -> float | None:
        values = self.runs.get(tool)
        return statistics.median(values) if values else None

    def as_json(self) -> dict:
        out = {"title": self.title, "unit": self.unit, "higher_is_better": self.higher_is_better,
               "runs": self.runs, "summary": {}, "errors": self.errors, "notes": self.notes,
               **({"extra": self.extra} if self.extra else {})}
        for tool, values in self.runs.items():
            out["summary"][tool] = {"median": statistics.median(values), "min": min(values),
                                    "max": max(values), "n": len(values)}
        return out


class Results:
    def __init__(self, mode: Mode, argv: list[str]) -> None:
        self.mode = mode
        self.argv = argv
        self.scenarios: dict[str, Scenario] = {}
        self.started = _dt.datetime.now().astimezone()
        self.machine = machine_info()
        self.targets: list[dict] = []

    def scenario(self, key: str, title: str, unit: str, higher_is_better: bool = True) -> Scenario:
        s = Scenario(key, title, unit, higher_is_better)
        self.scenarios[key] = s
        return s

    def get(self, key: str, tool: str) -> float | None:
        s = self.scenarios.get(key)
        return s.median(tool) if s else None


def machine_info() -> dict:
    import psutil
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": cpu, "cores": os.cpu_count(), "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}", "python": platform.python_version(),
        "load_at_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def versions() -> dict:
    from importlib.metadata import version
    out = {}
    for name in ("pyftp", "pyftpdlib", "psutil", "matplotlib"):
        try:
            out[name] = version(name)
        except Exception:
            out[name] = "?"
    return out


# ============================================================================ helpers
def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def wait_for(pred: Callable[[], object], what: str, timeout: float = 20.0):
    """Poll ``pred`` until it returns something truthy; bounded by ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.02)
    raise RuntimeError(f"timed out waiting for {what}")


def make_file(path: Path, size: int, block: bytes) -> None:
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, len(block))
            f.write(block[:n])
            left -= n


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(MiB):
            h.update(chunk)
    return h.hexdigest()


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident set (VmHWM) in MiB; its current RSS where /proc lacks it."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    import psutil
    return psutil.Process(pid).memory_info().rss / MiB


def rss_mib(pid: int) -> float:
    import psutil
    return psutil.Process(pid).memory_info().rss / MiB


def time_wait_count() -> int:
    """TCP sockets in TIME_WAIT on this machine (Linux /proc; 0 elsewhere)."""
    n = 0
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            with open(name) as f:
                next(f, None)
                n += sum(1 for line in f if line.split()[3] == "06")
    return n


def settle(mode: Mode, scen: Scenario) -> None:
    """Let TIME_WAIT sockets of earlier FTP runs drain (bounded), and record the count.

    Every FTP transfer and listing opens a data connection that leaves a TIME_WAIT
    socket for 60 s; waiting gives pyftpdlib the same clean start in each scenario.
    """
    before = time_wait_count()
    if mode.settle and before > 500:
        log(f"  waiting for {before} TIME_WAIT sockets to drain (at most {mode.settle:.0f} s)")
        deadline = time.monotonic() + mode.settle
        while time.monotonic() < deadline and time_wait_count() > 500:
            time.sleep(1.0)
    scen.extra["time_wait_at_start"] = time_wait_count()


def rotate(items: list, r: int) -> list:
    k = r % len(items)
    return items[k:] + items[:k]


# ============================================================================ servers
class Proc:
    """A server subprocess whose stdout/stderr go to files; always stopped in close()."""

    def __init__(self, args: list[str], workdir: Path, name: str) -> None:
        self.out = workdir / f"{name}.out"
        self.err = workdir / f"{name}.err"
        with open(self.out, "wb") as o, open(self.err, "wb") as e:
            self.p = subprocess.Popen(args, stdout=o, stderr=e, stdin=subprocess.DEVNULL,
                                      env=ENV)
        self.port = 0

    @property
    def pid(self) -> int:
        return self.p.pid

    def _port_from(self, path: Path, pattern: str) -> int | None:
        if self.p.poll() is not None:
            raise RuntimeError(f"server exited early: {self.err.read_text()[-2000:]}")
        m = re.search(pattern, path.read_text(errors="replace"))
        return int(m.group(1)) if m else None

    def close(self) -> None:
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(10)


def start_pyftp(root: Path, workdir: Path, name: str = "pyftp") -> Proc:
    proc = Proc([str(BIN / "pyftp-server"), "--root", str(root), "--port", "0",
                 "--log-level", "warning", "--max-clients", "2000", "--max-per-ip", "2000"],
                workdir, name)
    proc.port = wait_for(lambda: proc._port_from(proc.err, r"127\.0\.0\.1:(\d+)"), "pyftp-server")
    return proc


FTPD_CODE = r"""
import sys
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer
import logging
logging.basicConfig(level=logging.WARNING)
auth = DummyAuthorizer()
auth.add_user(sys.argv[2], sys.argv[3], sys.argv[1], perm="elradfmwMT")
handler = FTPHandler
handler.authorizer = auth
server = FTPServer(("127.0.0.1", 0), handler)
server.max_cons = 2000
server.max_cons_per_ip = 0
print("PORT", server.socket.getsockname()[1], flush=True)
server.serve_forever(handle_exit=True)
"""


def start_ftpd(root: Path, workdir: Path, name: str = "ftpd") -> Proc:
    proc = Proc([sys.executable, "-c", FTPD_CODE, str(root), FTP_USER, FTP_PASS], workdir, name)
    proc.port = wait_for(lambda: proc._port_from(proc.out, r"PORT (\d+)"), "pyftpdlib server")
    return proc


RAW_CODE = r"""
import socket, sys
path = sys.argv[1]
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(8)
print("PORT", ls.getsockname()[1], flush=True)
buf = bytearray(1 << 20)
view = memoryview(buf)
while True:
    c, _ = ls.accept()
    with c:
        line = b""
        while not line.endswith(b"\n"):
            chunk = c.recv(1)
            if not chunk:
                break
            line += chunk
        words = line.split()
        if words[:1] == [b"get"]:
            with open(path, "rb") as f:
                c.sendfile(f)
        elif words[:1] == [b"put"]:
            left = int(words[1])
            while left:
                n = c.recv_into(view[:min(len(view), left)])
                if not n:
                    break
                left -= n
            c.sendall(b"ok")
        elif words[:1] == [b"quit"]:
            break
"""


def start_raw(path: Path, workdir: Path) -> Proc:
    proc = Proc([sys.executable, "-c", RAW_CODE, str(path)], workdir, "raw")
    proc.port = wait_for(lambda: proc._port_from(proc.out, r"PORT (\d+)"), "raw sender")
    return proc


# ============================================================================ clients
def ftp_connect(port: int) -> ftplib.FTP:
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", port, timeout=120)
    ftp.login(FTP_USER, FTP_PASS)
    ftp.voidcmd("TYPE I")
    return ftp


def ftp_get(ftp: ftplib.FTP, remote: str, local: Path) -> None:
    with open(local, "wb") as f:
        ftp.retrbinary(f"RETR {remote}", f.write, blocksize=FTP_BLOCK)


def ftp_put(ftp: ftplib.FTP, local: Path, remote: str) -> None:
    with open(local, "rb") as f:
        ftp.storbinary(f"STOR {remote}", f, blocksize=FTP_BLOCK)


def pyftp_client(port: int):
    from pyftp import Client
    return Client("127.0.0.1", port, timeout=120)


def raw_get(port: int, size: int) -> float:
    """Seconds to receive the raw sender's file with recv_into a reused 1 MiB buffer."""
    buf = bytearray(MiB)
    view = memoryview(buf)
    with socket.create_connection(("127.0.0.1", port), timeout=120) as s:
        t0 = time.perf_counter()
        s.sendall(b"get\n")
        got = 0
        while n := s.recv_into(view):
            got += n
        dt = time.perf_counter() - t0
    if got != size:
        raise RuntimeError(f"raw get moved {got} of {size} bytes")
    return dt


def raw_put(port: int, path: Path, size: int) -> float:
    """Seconds to sendfile a file to the raw receiver (until it confirms every byte)."""
    with socket.create_connection(("127.0.0.1", port), timeout=120) as s, open(path, "rb") as f:
        t0 = time.perf_counter()
        s.sendall(b"put %d\n" % size)
        s.sendfile(f)
        if s.recv(2) != b"ok":
            raise RuntimeError("raw put: no confirmation")
        return time.perf_counter() - t0


# ============================================================================ the bench
class Bench:
    def __init__(self, mode: Mode, work: Path, results: Results) -> None:
        self.mode = mode
        self.work = work
        self.r = results
        self.procs: list[Proc] = []
        self.pyroot = work / "pyftp-root"
        self.ftproot = work / "ftpd-root"
        self.local = work / "local"
        for d in (self.pyroot, self.ftproot, self.local):
            d.mkdir()

    # ------------------------------------------------------------------ set-up
    def setup(self) -> None:
        m = self.mode
        block = os.urandom(4 * MiB)
        log(f"creating files in {self.work} ({m.big / MiB:.0f} MiB, {m.files} x "
            f"{m.file_size} B, ...)")
        self.big = self.local / "big.bin"
        make_file(self.big, m.big, block)
        self.big_sha = sha256_file(self.big)
        self.mid = self.local / "mid.bin"
        make_file(self.mid, m.client_size, block[::-1])
        self.mid_sha = sha256_file(self.mid)
        small = os.urandom(m.file_size)
        for root in (self.pyroot, self.ftproot):
            os.link(self.big, root / "big.bin")  # one inode: one copy in the page cache
            os.link(self.mid, root / "mid.bin")
            (root / "small").mkdir()
            for i in range(m.files):
                (root / "small" / f"f{i:05d}.bin").write_bytes(small)
            (root / "list").mkdir()
            for i in range(10):
                (root / "list" / f"entry-{i}.txt").write_bytes(b"x" * (i * 100))
            (root / "one.bin").write_bytes(small)
            (root / "up").mkdir()
        self.small_src = self.local / "small-src"
        self.small_src.mkdir()
        for i in range(m.files):
            (self.small_src / f"f{i:05d}.bin").write_bytes(small)
        (self.local / "small.txt").write_bytes(b"one small text file\n" * 20)
        self.py = self._keep(start_pyftp(self.pyroot, self.work))
        self.ftpd = self._keep(start_ftpd(self.ftproot, self.work))
        self.raw = self._keep(start_raw(self.big, self.work))
        log(f"servers: pyftp :{self.py.port}, pyftpdlib :{self.ftpd.port}, raw :{self.raw.port}")

    def _keep(self, proc: Proc) -> Proc:
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        for p in self.procs:
            p.close()

    def _new_dir(self, name: str) -> Path:
        """A folder no earlier run used. Deleting the last run's files right before a
        timed run let the file system's deferred work (journal, discard) land in it:
        the many-files figures fell run after run. All go with the temp dir at the end."""
        self._dirs = getattr(self, "_dirs", 0) + 1
        d = self.local / f"{name}-{self._dirs}"
        d.mkdir()
        return d

    def _fresh_dir(self, name: str) -> Path:
        d = self.local / name
        if d.exists():
            shutil.rmtree(d)
        d.mkdir()
        return d

    # ------------------------------------------------------------------ scenarios
    def sha256_speed(self) -> None:
        s = self.r.scenario("sha256", "SHA-256 on one core (hashlib, in memory)", "MiB/s")
        data = os.urandom(64 * MiB if self.mode.name != "smoke" else 4 * MiB)
        view = memoryview(data)
        for _ in range(max(self.mode.runs, 3)):
            h = hashlib.sha256()
            t0 = time.perf_counter()
            for i in range(0, len(view), MiB):
                h.update(view[i:i + MiB])
            s.add("hashlib", len(data) / MiB / (time.perf_counter() - t0))

    def big_get(self) -> None:
        m = self.mode
        s = self.r.scenario("get_big", f"get {m.big // MiB} MiB", "MiB/s")
        s.notes.append("pyftp: Client.get, SHA-256 verified; the server knows the digest "
                       "(it hashed the file once, during the warm-up, as after an upload)")
        s.notes.append("pyftpdlib: ftplib retrbinary into a file, no verification")
        s.notes.append("raw: sendfile -> recv_into a reused 1 MiB buffer, bytes discarded")
        c = pyftp_client(self.py.port)
        ftp = ftp_connect(self.ftpd.port)
        dst_py, dst_ftp = self.local / "got-pyftp.bin", self.local / "got-ftp.bin"

        def py() -> float:
            t0 = time.perf_counter()
            res = c.get("big.bin", dst_py)
            dt = time.perf_counter() - t0
            assert res.sha256 == self.big_sha, "pyftp get: wrong digest"
            dst_py.unlink()
            return m.big / MiB / dt

        def ftp_() -> float:
            t0 = time.perf_counter()
            ftp_get(ftp, "big.bin", dst_ftp)
            dt = time.perf_counter() - t0
            assert dst_ftp.stat().st_size == m.big, "ftplib get: short file"
            dst_ftp.unlink()
            return m.big / MiB / dt

        def raw() -> float:
            return m.big / MiB / raw_get(self.raw.port, m.big)
        try:
            self._interleave(s, {"pyftp": py, "pyftpdlib": ftp_, "raw": raw}, warmup=1)
        finally:
            c.close()
            ftp.close()

    def big_get_cold(self) -> None:
        m = self.mode
        s = self.r.scenario("get_big_cold", f"get {m.big // MiB} MiB, digest not yet known",
                            "MiB/s")
        s.notes.append("the file's mtime is bumped before each run, so the server hashes it "
                       "(on a second thread, beside sendfile) instead of reusing the digest")
        c = pyftp_client(self.py.port)
        dst = self.local / "got-cold.bin"

        def py() -> float:
            st = os.stat(self.pyroot / "big.bin")
            os.utime(self.pyroot / "big.bin", ns=(st.st_atime_ns, st.st_mtime_ns + 1000))
            t0 = time.perf_counter()
            res = c.get("big.bin", dst)
            dt = time.perf_counter() - t0
            assert res.sha256 == self.big_sha
            dst.unlink()
            return m.big / MiB / dt
        try:
            self._interleave(s, {"pyftp": py}, warmup=0)
        finally:
            c.close()

    def big_put(self) -> None:
        m = self.mode
        s = self.r.scenario("put_big", f"put {m.big // MiB} MiB", "MiB/s")
        s.notes.append("pyftp: Client.put, SHA-256 computed on both sides and compared "
                       "before the server publishes (digest after the data: sha256_trailer)")
        s.notes.append("pyftpdlib: ftplib storbinary from a file, no verification")
        s.notes.append("raw: sendfile -> recv_into a reused 1 MiB buffer, bytes discarded")
        s.notes.append("the previous run's upload is deleted first (not timed): replacing a "
                       "1 GiB file costs ext4 a flush of the new data (0.5-0.9 s here for "
                       "a rename over it, 0.3-0.45 s for a truncate), which is not transfer")
        c = pyftp_client(self.py.port)
        ftp = ftp_connect(self.ftpd.port)

        def fresh(root: Path) -> None:
            with contextlib.suppress(FileNotFoundError):
                (root / "up" / "big.bin").unlink()

        def py() -> float:
            fresh(self.pyroot)
            t0 = time.perf_counter()
            res = c.put(self.big, "up/big.bin", overwrite=True)
            dt = time.perf_counter() - t0
            assert res.sha256 == self.big_sha, "pyftp put: wrong digest"
            return m.big / MiB / dt

        def ftp_() -> float:
            fresh(self.ftproot)
            t0 = time.perf_counter()
            ftp_put(ftp, self.big, "up/big.bin")
            dt = time.perf_counter() - t0
            assert (self.ftproot / "up" / "big.bin").stat().st_size == m.big
            return m.big / MiB / dt

        def raw() -> float:
            return m.big / MiB / raw_put(self.raw.port, self.big, m.big)
        try:
            self._interleave(s, {"pyftp": py, "pyftpdlib": ftp_, "raw": raw}, warmup=1)
        finally:
            c.close()
            ftp.close()
            for root in (self.pyroot, self.ftproot):
                with contextlib.suppress(OSError):
                    (root / "up" / "big.bin").unlink()

    def many_get(self) -> None:
        m = self.mode
        s = self.r.scenario("files_get", f"get {m.files} x {m.file_size // 1024} KiB files",
                            "files/s")
        settle(m, s)
        c = pyftp_client(self.py.port)
        pipelined = hasattr(c, "get_many")
        s.notes.append("pyftp: " + ("Client.get_many (pipelined requests), each file verified"
                                    if pipelined else "Client.get in a loop, each file verified"))
        s.notes.append("pyftpdlib: ftplib retrbinary per file (a data connection each)")
        ftp = ftp_connect(self.ftpd.port)
        names = [f"f{i:05d}.bin" for i in range(m.files)]

        def py() -> float:
            d = self._new_dir("many-pyftp")
            t0 = time.perf_counter()
            if pipelined:
                res = c.get_many([(f"small/{n}", d / n) for n in names])
                bad = [r for r in res if isinstance(r, Exception)]
                assert not bad, f"pyftp get_many: {bad[:1]}"
            else:
                for n in names:
                    c.get(f"small/{n}", d / n)
            return m.files / (time.perf_counter() - t0)

        def ftp_() -> float:
            d = self._new_dir("many-ftp")
            t0 = time.perf_counter()
            for n in names:
                ftp_get(ftp, f"small/{n}", d / n)
            return m.files / (time.perf_counter() - t0)
        try:
            self._interleave(s, {"pyftp": py, "pyftpdlib": ftp_}, warmup=0)
        finally:
            c.close()
            ftp.close()

    def many_put(self) -> None:
        m = self.mode
        s = self.r.scenario("files_put", f"put {m.files} x {m.file_size // 1024} KiB files",
                            "files/s")
        settle(m, s)
        c = pyftp_client(self.py.port)
        batched = hasattr(c, "put_many")
        s.notes.append("pyftp: " + ("Client.put_many (next file read while the server "
                                    "verifies), each file verified" if batched
                                    else "Client.put in a loop, each file verified"))
        s.notes.append("pyftpdlib: ftplib storbinary per file (a data connection each)")
        ftp = ftp_connect(self.ftpd.port)
        names = sorted(os.listdir(self.small_src))

        s.notes.append("each run uploads into a new remote folder (made before the clock "
                       "starts), as put -r / mput of a new tree does")
        folders = iter(range(1, 1_000_000))

        def py() -> float:
            dst = f"up/py{next(folders)}"
            c.mkdir(dst)
            t0 = time.perf_counter()
            if batched:
                res = c.put_many([(self.small_src / n, f"{dst}/{n}") for n in names])
                bad = [r for r in res if isinstance(r, Exception)]
                assert not bad, f"pyftp put_many: {bad[:1]}"
            else:
                for n in names:
                    c.put(self.small_src / n, f"{dst}/{n}")
            return m.files / (time.perf_counter() - t0)

        def ftp_() -> float:
            dst = f"up/ftp{next(folders)}"
            ftp.mkd(dst)
            t0 = time.perf_counter()
            for n in names:
                ftp_put(ftp, self.small_src / n, f"{dst}/{n}")
            return m.files / (time.perf_counter() - t0)
        try:
            self._interleave(s, {"pyftp": py, "pyftpdlib": ftp_}, warmup=0)
        finally:
            c.close()
            ftp.close()

    def listings(self) -> None:
        m = self.mode
        s = self.r.scenario("listings", f"{m.listings} listings of a 10-entry folder",
                            "listings/s")
        settle(m, s)
        s.notes.append("pyftp: Client.ls, one request at a time; pyftp-pipelined: Client.ls_many")
        s.notes.append("pyftpdlib: ftplib mlsd (machine-readable, like pyftp's JSON listing); "
                       "a data connection each")
        c = pyftp_client(self.py.port)
        ftp = ftp_connect(self.ftpd.port)
        n = m.listings

        def py() -> float:
            t0 = time.perf_counter()
            for _ in range(n):
                assert len(c.ls("list")) == 10
            return n / (time.perf_counter() - t0)

        def py_many() -> float:
            t0 = time.perf_counter()
            res = c.ls_many(["list"] * n)
            dt = time.perf_counter() - t0
            assert all(len(r) == 10 for r in res)
            return n / dt

        def ftp_() -> float:
            t0 = time.perf_counter()
            for _ in range(n):
                assert sum(1 for _e in ftp.mlsd("list") if _e[1].get("type") == "file") == 10
            return n / (time.perf_counter() - t0)
        tools = {"pyftp": py, "pyftpdlib": ftp_}
        if hasattr(c, "ls_many"):
            tools["pyftp-pipelined"] = py_many
        try:
            self._interleave(s, tools, warmup=0)
        finally:
            c.close()
            ftp.close()

    def concurrent(self) -> None:
        m = self.mode
        s = self.r.scenario("concurrent", f"{m.clients} clients at once, each get "
                            f"{m.client_size // MiB} MiB", "MiB/s")
        s.notes.append("aggregate: all bytes / time from the start signal to the last "
                       "client done (connections and logins made before the signal)")
        s.notes.append("pyftp: every transfer SHA-256 verified; pyftpdlib: not verified")

        def run(connect, fetch) -> float:
            self._fresh_dir("conc")  # no run replaces the last one's files (see put_big)
            conns = [connect() for _ in range(m.clients)]
            go = threading.Barrier(m.clients + 1)
            errors: list[BaseException] = []

            def worker(i: int) -> None:
                try:
                    go.wait(60)
                    fetch(conns[i], i)
                except BaseException as exc:  # reported below
                    errors.append(exc)
            threads = [threading.Thread(target=worker, args=(i,)) for i in range(m.clients)]
            for t in threads:
                t.start()
            go.wait(60)
            t0 = time.perf_counter()
            for t in threads:
                t.join(600)
            dt = time.perf_counter() - t0
            for conn in conns:
                with contextlib.suppress(Exception):
                    conn.close()
            if errors:
                raise errors[0]
            return m.clients * m.client_size / MiB / dt

        d = self.local / "conc"

        def py_fetch(c, i: int) -> None:
            res = c.get("mid.bin", d / f"py-{i}.bin")
            assert res.sha256 == self.mid_sha

        def ftp_fetch(ftp, i: int) -> None:
            ftp_get(ftp, "mid.bin", d / f"ftp-{i}.bin")
            assert (d / f"ftp-{i}.bin").stat().st_size == m.client_size

        self._interleave(s, {
            "pyftp": lambda: run(lambda: pyftp_client(self.py.port), py_fetch),
            "pyftpdlib": lambda: run(lambda: ftp_connect(self.ftpd.port), ftp_fetch),
        }, warmup=1)
        shutil.rmtree(d, ignore_errors=True)

    def many_gets_one_session(self) -> None:
        m = self.mode
        block = m.gets // 10
        s = self.r.scenario("session_gets", f"{m.gets} small gets in one session, per "
                            f"block of {block}", "files/s")
        settle(m, s)
        s.notes.append("one connection; the same 4 KiB file fetched again and again, one "
                       "request at a time (pyftp: Client.get, verified; FTP: a data "
                       "connection per file). Each value is one block of the run, in order.")
        dst = self.local / "one.bin"
        for tool in ("pyftp", "pyftpdlib"):
            if tool == "pyftp":
                conn = pyftp_client(self.py.port)
                fetch = lambda: conn.get("one.bin", dst)  # noqa: E731
            else:
                conn = ftp_connect(self.ftpd.port)
                fetch = lambda: ftp_get(conn, "one.bin", dst)  # noqa: E731
            log(f"  {tool}: {m.gets} gets")
            try:
                for _ in range(10):
                    t0 = time.perf_counter()
                    for _ in range(block):
                        fetch()
                    s.add(tool, block / (time.perf_counter() - t0))
            except Exception as exc:
                s.errors[tool] = f"{type(exc).__name__}: {exc} (after {len(s.runs.get(tool, []))} blocks)"
                log(f"  {tool} failed: {s.errors[tool]}")
            finally:
                with contextlib.suppress(Exception):
                    conn.close()
        for tool, values in s.runs.items():
            s.extra[f"{tool}_first_block"] = values[0]
            s.extra[f"{tool}_last_block"] = values[-1]
            s.extra[f"{tool}_last_over_first"] = values[-1] / values[0]

    def memory(self) -> None:
        m = self.mode
        s = self.r.scenario("rss_transfer", f"peak RSS during a {m.big // MiB} MiB get and put",
                            "MiB", higher_is_better=False)
        s.notes.append("pyftp-client: the one-shot CLI (pyftp HOST:PORT -c 'get ...' / "
                       "'put ...') in its own process, its VmHWM; pyftp-server / "
                       "pyftpdlib-server: a fresh server process, VmHWM after the transfer")
        s.notes.append("ftplib-client: a Python process running ftplib retrbinary / "
                       "storbinary (1 MiB blocks), its VmHWM")
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork and exec, so it would
        # report this (large) benchmark process instead of the client
        hwm = ("def hwm():\n    for line in open('/proc/self/status'):\n"
               "        if line.startswith('VmHWM:'):\n            return int(line.split()[1])\n"
               "    import resource\n    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n")
        wrapper = (hwm + "import sys\nfrom pyftp.cli import main\n"
                   "try:\n    rc = main(sys.argv[1:])\nexcept SystemExit as e:\n    rc = e.code\n"
                   "print('MAXRSS', hwm(), file=sys.stderr)\nsys.exit(rc)\n")
        ftp_wrapper = (hwm + "import ftplib, sys\nport, op, local, remote = sys.argv[1:]\n"
                       "f = ftplib.FTP(); f.connect('127.0.0.1', int(port), timeout=120)\n"
                       f"f.login({FTP_USER!r}, {FTP_PASS!r})\n"
                       "if op == 'get':\n    out = open(local, 'wb')\n"
                       f"    f.retrbinary('RETR ' + remote, out.write, blocksize={FTP_BLOCK})\n"
                       "    out.close()\nelse:\n"
                       f"    f.storbinary('STOR ' + remote, open(local, 'rb'), blocksize={FTP_BLOCK})\n"
                       "f.quit()\nprint('MAXRSS', hwm(), file=sys.stderr)\n")

        def maxrss(cmd: list[str], cwd: Path) -> float:
            p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=900,
                               env=ENV)
            found = re.search(r"MAXRSS (\d+)", p.stderr)
            if p.returncode != 0 or not found:
                raise RuntimeError(f"{cmd[:3]} failed ({p.returncode}): {p.stderr[-500:]}")
            return int(found.group(1)) / 1024

        def py_round() -> None:
            srv = start_pyftp(self.pyroot, self.work, "pyftp-rss")
            try:
                dst = self.local / "rss-get.bin"
                target = f"127.0.0.1:{srv.port}"
                s.add("pyftp-client get", maxrss([sys.executable, "-c", wrapper, target, "-c",
                                                   f"get big.bin {dst}"], self.local))
                dst.unlink()
                s.add("pyftp-client put", maxrss([sys.executable, "-c", wrapper, target, "-c",
                                                   "put -f big.bin up/rss.bin"], self.local))
                s.add("pyftp-server", peak_rss_mib(srv.pid))
            finally:
                srv.close()
                with contextlib.suppress(OSError):
                    (self.pyroot / "up" / "rss.bin").unlink()

        def ftp_round() -> None:
            srv = start_ftpd(self.ftproot, self.work, "ftpd-rss")
            try:
                dst = self.local / "rss-ftp.bin"
                s.add("ftplib-client get", maxrss([sys.executable, "-c", ftp_wrapper,
                                                    str(srv.port), "get", str(dst), "big.bin"],
                                                   self.local))
                dst.unlink()
                s.add("ftplib-client put", maxrss([sys.executable, "-c", ftp_wrapper,
                                                    str(srv.port), "put", str(self.big),
                                                    "up/rss.bin"], self.local))
                s.add("pyftpdlib-server", peak_rss_mib(srv.pid))
            finally:
                srv.close()
                with contextlib.suppress(OSError):
                    (self.ftproot / "up" / "rss.bin").unlink()
        runs = max(1, min(m.runs, 3))
        for r in range(runs):
            for fn in rotate([py_round, ftp_round], r):
                fn()

    def idle_clients(self) -> None:
        m = self.mode
        s = self.r.scenario("rss_idle", f"server RSS with {m.idle} idle connected clients",
                            "MiB", higher_is_better=False)
        s.notes.append("a fresh server; every client connected and logged in (pyftp: hello), "
                       "then the server's RSS is read")

        def py_round() -> None:
            srv = start_pyftp(self.pyroot, self.work, "pyftp-idle")
            conns = []
            try:
                base = rss_mib(srv.pid)
                for _ in range(m.idle):
                    conns.append(pyftp_client(srv.port))
                conns[-1].pwd()
                s.add("pyftp-server", rss_mib(srv.pid))
                s.extra.setdefault("pyftp-server_before", []).append(base)
            finally:
                for c in conns:
                    with contextlib.suppress(Exception):
                        c.close()
                srv.close()

        def ftp_round() -> None:
            srv = start_ftpd(self.ftproot, self.work, "ftpd-idle")
            conns = []
            try:
                base = rss_mib(srv.pid)
                for _ in range(m.idle):
                    conns.append(ftp_connect(srv.port))
                conns[-1].pwd()
                s.add("pyftpdlib-server", rss_mib(srv.pid))
                s.extra.setdefault("pyftpdlib-server_before", []).append(base)
            finally:
                for c in conns:
                    with contextlib.suppress(Exception):
                        c.close()
                srv.close()
        runs = max(1, min(m.runs, 3))
        for r in range(runs):
            for fn in rotate([py_round, ftp_round], r):
                fn()

    def startup(self) -> None:
        m = self.mode
        s = self.r.scenario("startup", "wall time of one-shot commands", "ms",
                            higher_is_better=False)
        s.notes.append(f"pyftp --version; pyftp 127.0.0.1:PORT -c \"put small.txt\" (a new "
                       f"process: interpreter start, connect, hello, upload, quit); "
                       f"ftplib one-shot: python -c with ftplib doing the same put")
        c = pyftp_client(self.py.port)
        ftp_code = ("import ftplib, sys\nf = ftplib.FTP(); f.connect('127.0.0.1', "
                    f"int(sys.argv[1]), timeout=60); f.login({FTP_USER!r}, {FTP_PASS!r})\n"
                    "f.storbinary('STOR small.txt', open('small.txt', 'rb')); f.quit()\n")

        def timed(cmd: list[str]) -> float:
            t0 = time.perf_counter()
            p = subprocess.run(cmd, cwd=self.local, capture_output=True, timeout=120, env=ENV)
            dt = time.perf_counter() - t0
            if p.returncode != 0:
                raise RuntimeError(f"{cmd} failed: {p.stderr.decode(errors='replace')[-500:]}")
            return dt * 1000

        def version() -> float:
            return timed([str(BIN / "pyftp"), "--version"])

        def oneshot() -> float:
            with contextlib.suppress(Exception):
                c.rm("small.txt")
            return timed([str(BIN / "pyftp"), f"127.0.0.1:{self.py.port}", "-c", "put small.txt"])

        def ftp_oneshot() -> float:
            return timed([sys.executable, "-c", ftp_code, str(self.ftpd.port)])
        try:
            self._interleave(s, {"pyftp --version": version, "pyftp -c put": oneshot,
                                 "ftplib one-shot put": ftp_oneshot},
                             warmup=1, runs=2 * m.runs)
        finally:
            c.close()

    # ------------------------------------------------------------------ runner
    def _interleave(self, s: Scenario, tools: dict[str, Callable[[], float]], *, warmup: int,
                    runs: int | None = None) -> None:
        """Run every tool ``runs`` times, taking turns in a rotating order; a warm-up
        round first (page cache, first-touch memory; not recorded). A tool that fails
        is recorded as failed and left out of later rounds."""
        runs = self.mode.runs if runs is None else runs
        names = list(tools)
        for r in range(-warmup, runs):
            for name in rotate(names, max(r, 0)):
                if name in s.errors:
                    continue
                try:
                    value = tools[name]()
                except Exception as exc:
                    s.errors[name] = f"{type(exc).__name__}: {exc}"
                    log(f"  {name} failed: {s.errors[name]}")
                    continue
                if r >= 0:
                    s.add(name, value)
        summary = ", ".join(f"{n} {s.median(n):.4g}" for n in names if s.runs.get(n))
        log(f"  {s.title}: {summary} {s.unit}")


# ============================================================================ targets
def evaluate(r: Results) -> list[dict]:
    out: list[dict] = []

    def target(name: str, value: float | None, need: float | None, text: str,
               at_most: bool = False) -> None:
        met = None
        if value is not None and need is not None:
            met = value <= need if at_most else value >= need
        out.append({"target": name, "reached": value, "required": need, "met": met,
                    "how": text, "at_most": at_most})

    sha = r.get("sha256", "hashlib")
    for key, what in (("get_big", "get"), ("put_big", "put")):
        py, ftp, raw = r.get(key, "pyftp"), r.get(key, "pyftpdlib"), r.get(key, "raw")
        limit = min(x for x in (raw, sha) if x is not None) if (raw or sha) else None
        target(f"{what} with verification vs the limit", py,
               0.85 * limit if limit else None,
               "MiB/s >= 0.85 x min(raw loopback, SHA-256 on one core)")
        target(f"{what} with verification vs pyftpdlib", py, 1.5 * ftp if ftp else None,
               "MiB/s >= 1.5 x pyftpdlib")
    py, ftp = r.get("files_get", "pyftp"), r.get("files_get", "pyftpdlib")
    target("many small files (get)", py, 5 * ftp if ftp else None, "files/s >= 5 x pyftpdlib")
    py, ftp = r.get("listings", "pyftp"), r.get("listings", "pyftpdlib")
    target("listings (one at a time)", py, 3 * ftp if ftp else None,
           "listings/s >= 3 x pyftpdlib")
    py, ftp = r.get("concurrent", "pyftp"), r.get("concurrent", "pyftpdlib")
    target("concurrent clients, aggregate", py, ftp, "MiB/s >= pyftpdlib, every transfer verified")
    sg = r.scenarios.get("session_gets")
    if sg and "pyftp_last_over_first" in sg.extra:
        target("small gets in one session: last block vs first", sg.extra["pyftp_last_over_first"],
               0.8, "ratio >= 0.8 (no cliff)")
    rss = r.scenarios.get("rss_transfer")
    if rss:
        clients = [rss.median(t) for t in ("pyftp-client get", "pyftp-client put") if rss.runs.get(t)]
        target("peak RSS, client, large transfer", max(clients) if clients else None, 40,
               "MiB <= 40", at_most=True)
        target("peak RSS, server, large transfer", rss.median("pyftp-server"), 40, "MiB <= 40",
               at_most=True)
    target("server RSS with idle clients", r.get("rss_idle", "pyftp-server"), 64, "MiB <= 64",
           at_most=True)
    target("pyftp --version", r.get("startup", "pyftp --version"), 150, "ms <= 150",
           at_most=True)
    return out


# ============================================================================ reports
def fmt(v: float | None) -> str:
    if v is None:
        return "-"
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def markdown(r: Results) -> str:
    lines = [f"Mode `{r.mode.name}`, {r.started:%Y-%m-%d %H:%M %Z}; {r.machine['cpu']}, "
             f"{r.machine['cores']} cores, {r.machine['ram_gib']} GiB RAM, {r.machine['os']}, "
             f"Python {r.machine['python']}; files on {r.machine.get('tmp_fs', '?')}; "
             f"load average at start "
             f"{_load(r.machine.get('load_at_start'))}, at end {_load(r.machine.get('load_at_end'))}.",
             "", "| scenario | unit | pyftp | pyftpdlib + ftplib | ratio | reference |",
             "|---|---|---|---|---|---|"]

    def cell(s: Scenario, tool: str) -> str:
        v = s.runs.get(tool)
        if not v:
            return "failed: " + s.errors[tool][:60] if tool in s.errors else "-"
        if len(v) == 1:
            return fmt(v[0])
        return f"**{fmt(statistics.median(v))}** ({fmt(min(v))}-{fmt(max(v))})"

    rows = [
        ("get_big", "pyftp", "pyftpdlib", ["raw"]),
        ("get_big_cold", "pyftp", None, []),
        ("put_big", "pyftp", "pyftpdlib", ["raw"]),
        ("files_get", "pyftp", "pyftpdlib", []),
        ("files_put", "pyftp", "pyftpdlib", []),
        ("listings", "pyftp", "pyftpdlib", ["pyftp-pipelined"]),
        ("concurrent", "pyftp", "pyftpdlib", []),
        ("session_gets", "pyftp", "pyftpdlib", []),
        ("rss_transfer", "pyftp-client get", "ftplib-client get", []),
        ("rss_transfer", "pyftp-client put", "ftplib-client put", []),
        ("rss_transfer", "pyftp-server", "pyftpdlib-server", []),
        ("rss_idle", "pyftp-server", "pyftpdlib-server", []),
        ("startup", "pyftp -c put", "ftplib one-shot put", ["pyftp --version"]),
        ("sha256", "hashlib", None, []),
    ]
    for key, a, b, refs in rows:
        s = r.scenarios.get(key)
        if s is None:
            continue
        title = s.title
        if key in ("rss_transfer", "rss_idle", "startup") and a != "pyftp-server":
            title += f" ({a.split()[-1] if key != 'startup' else a})"
        elif key == "rss_transfer":
            title += " (server)"
        ratio = "-"
        ma, mb = s.median(a), s.median(b) if b else None
        if ma and mb:
            ratio = f"{ma / mb:.2f} x"
        ref = "; ".join(f"{t}: {cell(s, t)}" for t in refs if s.runs.get(t) or t in s.errors)
        if key == "sha256":
            ref = "the hashing limit of one core"
        if key == "session_gets":
            ref = "; ".join(f"{t}: first {fmt(s.extra.get(f'{t}_first_block'))}, last "
                            f"{fmt(s.extra.get(f'{t}_last_block'))}"
                            for t in ("pyftp", "pyftpdlib") if f"{t}_first_block" in s.extra)
        lines.append(f"| {title} | {s.unit} | {cell(s, a)} | {cell(s, b) if b else '-'} | "
                     f"{ratio} | {ref or '-'} |")
    lines += ["", "Bold: median; in brackets: min-max of the runs.", "",
              "| target | reached | required | met |", "|---|---|---|---|"]
    for t in r.targets:
        met = {True: "yes", False: "**no**", None: "n/a"}[t["met"]]
        need = fmt(t["required"]) if t["required"] is not None else "-"
        lines.append(f"| {t['target']} ({t['how']}) | {fmt(t['reached'])} | "
                     f"{'<=' if t['at_most'] else '>='} {need} | {met} |")
    notes = [f"- {s.title}: {n}" for s in r.scenarios.values() for n in s.notes]
    errs = [f"- {s.title}: {tool} failed: {e}" for s in r.scenarios.values()
            for tool, e in s.errors.items()]
    tw = [f"{s.title}: {s.extra['time_wait_at_start']}" for s in r.scenarios.values()
          if "time_wait_at_start" in s.extra]
    lines += ["", "How each figure was taken:", *notes]
    if tw:
        lines += ["", "TIME_WAIT sockets at the start of the FTP-heavy scenarios: " + "; ".join(tw)]
    if errs:
        lines += ["", "Failures:", *errs]
    return "\n".join(lines) + "\n"


def _load(v) -> str:
    return "-" if not v else "/".join(f"{x:.2f}" for x in v)


def chart(r: Results, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"pyftp": "#1f77b4", "pyftpdlib": "#ff7f0e", "ref": "#7f7f7f"}
    fig, axes = plt.subplots(2, 2, figsize=(13, 9))

    def bars(ax, groups: list[tuple[str, list[tuple[str, str, str]]]], title: str, unit: str,
             log_scale: bool = False) -> None:
        """groups: (label, [(series, scenario key, tool)])"""
        series = []
        for _label, items in groups:
            for ser, _k, _t in items:
                if ser not in series:
                    series.append(ser)
        width = 0.8 / max(1, len(series))
        for i, ser in enumerate(series):
            xs, ys, lo, hi = [], [], [], []
            for g, (_label, items) in enumerate(groups):
                for sser, key, tool in items:
                    s = r.scenarios.get(key)
                    if sser != ser or s is None or not s.runs.get(tool):
                        continue
                    v = s.runs[tool]
                    med = statistics.median(v)
                    xs.append(g + (i - (len(series) - 1) / 2) * width)
                    ys.append(med)
                    lo.append(med - min(v))
                    hi.append(max(v) - med)
            if xs:
                ax.bar(xs, ys, width, yerr=[lo, hi], capsize=3, label=ser,
                       color=colors.get(ser, colors["ref"]))
                for x, y in zip(xs, ys):
                    ax.annotate(fmt(y), (x, y), ha="center", va="bottom", fontsize=7)
        ax.set_xticks(range(len(groups)))
        ax.set_xticklabels([g[0] for g in groups], fontsize=8)
        ax.set_title(title)
        ax.set_ylabel(unit)
        if log_scale:
            ax.set_yscale("log")
        ax.legend(fontsize=8)

    big = f"{r.mode.big // MiB} MiB"
    bars(axes[0][0], [
        (f"get {big}", [("pyftp", "get_big", "pyftp"), ("pyftpdlib", "get_big", "pyftpdlib"),
                        ("raw sendfile", "get_big", "raw")]),
        (f"put {big}", [("pyftp", "put_big", "pyftp"), ("pyftpdlib", "put_big", "pyftpdlib"),
                        ("raw sendfile", "put_big", "raw")]),
        (f"{r.mode.clients} clients", [("pyftp", "concurrent", "pyftp"),
                                       ("pyftpdlib", "concurrent", "pyftpdlib")]),
    ], "Throughput (pyftp verified by SHA-256, FTP not)", "MiB/s")
    sha = r.get("sha256", "hashlib")
    if sha:
        axes[0][0].axhline(sha, color="#2ca02c", linestyle="--", linewidth=1)
        axes[0][0].annotate(f"SHA-256 on one core: {fmt(sha)}", (1.5, sha), fontsize=7,
                            color="#2ca02c", ha="center", va="bottom")
    sg = r.scenarios.get("session_gets")
    bars(axes[0][1], [
        ("get small files", [("pyftp", "files_get", "pyftp"), ("pyftpdlib", "files_get", "pyftpdlib")]),
        ("put small files", [("pyftp", "files_put", "pyftp"), ("pyftpdlib", "files_put", "pyftpdlib")]),
        ("listings", [("pyftp", "listings", "pyftp"), ("pyftpdlib", "listings", "pyftpdlib")]),
        ("gets in one session\n(per block)", [("pyftp", "session_gets", "pyftp"),
                                              ("pyftpdlib", "session_gets", "pyftpdlib")]),
    ], "Many small operations", "per second (log)", log_scale=True)
    if sg:
        ax = axes[1][0]
        for tool in ("pyftp", "pyftpdlib"):
            if sg.runs.get(tool):
                ax.plot(range(1, len(sg.runs[tool]) + 1), sg.runs[tool], marker="o",
                        label=tool, color=colors[tool])
        ax.set_title(f"{r.mode.gets} small gets in one session, block by block")
        ax.set_xlabel(f"block of {r.mode.gets // 10} gets")
        ax.set_ylabel("files/s")
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=8)
    bars(axes[1][1], [
        ("client,\nlarge get", [("pyftp", "rss_transfer", "pyftp-client get"),
                                ("pyftpdlib", "rss_transfer", "ftplib-client get")]),
        ("server,\nlarge transfer", [("pyftp", "rss_transfer", "pyftp-server"),
                                     ("pyftpdlib", "rss_transfer", "pyftpdlib-server")]),
        (f"server,\n{r.mode.idle} idle clients", [("pyftp", "rss_idle", "pyftp-server"),
                                                  ("pyftpdlib", "rss_idle", "pyftpdlib-server")]),
    ], "Memory: peak RSS (lower is better)", "MiB")
    for y in (40, 64):
        axes[1][1].axhline(y, color="#d62728", linestyle=":", linewidth=1)
    fig.suptitle(f"pyftp vs pyftpdlib + ftplib, loopback, {r.machine['cores']} cores "
                 f"({r.mode.name} mode, medians; bars: min-max)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ============================================================================ main
SCENARIOS = ["sha256", "get", "put", "cold", "concurrent", "memory", "idle", "startup",
             "files", "listings", "session"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="pyftp vs pyftpdlib + ftplib vs the raw socket "
                                "limit, on loopback, in one run")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="small sizes, 3 runs (a minute or two)")
    g.add_argument("--smoke", action="store_true", help="tiny sizes, 1 run (checks the script)")
    p.add_argument("--out", default="bench-results", help="output folder (default bench-results/)")
    p.add_argument("--tmp", default=None, help="where the temporary files go (default: the "
                   "system temp folder)")
    p.add_argument("--runs", type=int, default=None, help="timed runs per scenario")
    p.add_argument("--only", default=None,
                   help=f"comma-separated subset of: {', '.join(SCENARIOS)}")
    p.add_argument("--publish", action="store_true",
                   help="also update the tables in docs/benchmarks.md and docs/benchmarks.png")
    p.add_argument("--no-chart", action="store_true", help="skip the PNG")
    args = p.parse_args(argv)
    try:
        import psutil  # noqa: F401
        import pyftpdlib  # noqa: F401
    except ImportError as exc:
        print(f"bench: {exc.name} is missing; install the bench extra: "
              f"pip install -e '.[bench]'", file=sys.stderr)
        return 2
    mode = MODES["quick" if args.quick else "smoke" if args.smoke else "full"]
    if args.runs:
        mode = Mode(**{**mode.__dict__, "runs": args.runs})
    only = set(SCENARIOS if not args.only else args.only.split(","))
    unknown = only - set(SCENARIOS)
    if unknown:
        p.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = Results(mode, ["scripts/bench.py", *(argv if argv is not None else sys.argv[1:])])
    log(f"mode {mode.name}: {results.machine['cpu']}, {results.machine['cores']} cores, "
        f"load {_load(results.machine.get('load_at_start'))}")
    tmp_root = args.tmp or tempfile.gettempdir()
    results.machine["tmp_fs"] = _fs_of(tmp_root)
    need = 5 * mode.big + mode.clients * mode.client_size + 64 * MiB
    try:
        free = shutil.disk_usage(tmp_root).free
    except OSError as exc:
        p.error(f"--tmp {tmp_root}: {exc.strerror}")
    if free < need:
        p.error(f"{tmp_root} has {free // MiB} MiB free; this mode needs about {need // MiB} MiB "
                f"(choose another folder with --tmp, or --quick)")
    with tempfile.TemporaryDirectory(prefix="pyftp-bench-", dir=args.tmp) as tmp:
        bench = Bench(mode, Path(tmp), results)
        try:
            bench.setup()
            steps = [("sha256", bench.sha256_speed), ("get", bench.big_get),
                     ("put", bench.big_put), ("cold", bench.big_get_cold),
                     ("concurrent", bench.concurrent), ("memory", bench.memory),
                     ("idle", bench.idle_clients), ("startup", bench.startup),
                     ("files", bench.many_get), ("files", bench.many_put),
                     ("listings", bench.listings), ("session", bench.many_gets_one_session)]
            for name, step in steps:
                if name in only:
                    log(f"scenario: {step.__name__}")
                    step()
        except KeyboardInterrupt:
            log("interrupted: writing what was measured so far")
        finally:
            bench.close()
    results.machine["load_at_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    results.targets = evaluate(results)
    data = {"mode": mode.__dict__, "command": " ".join(results.argv),
            "started": results.started.isoformat(), "machine": results.machine,
            "versions": versions(), "tmp_filesystem": results.machine["tmp_fs"],
            "scenarios": {k: s.as_json() for k, s in results.scenarios.items()},
            "targets": results.targets}
    (out / "bench.json").write_text(json.dumps(data, indent=1))
    md = markdown(results)
    (out / "bench.md").write_text(md)
    if not args.no_chart:
        chart(results, out / "bench.png")
    if args.publish:
        publish(md, None if args.no_chart else out / "bench.png")
    print(md)
    log(f"wrote {out}/bench.json, bench.md" + ("" if args.no_chart else ", bench.png"))
    return 0


START, END = "<!-- bench-table:start -->", "<!-- bench-table:end -->"


def publish(md: str, png: Path | None) -> None:
    """Replace the tables between the markers in docs/benchmarks.md; copy the chart."""
    doc = REPO / "docs" / "benchmarks.md"
    text = doc.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"bench: {doc} has no {START} ... {END} markers to fill")
    head, rest = text.split(START, 1)
    _old, tail = rest.split(END, 1)
    doc.write_text(f"{head}{START}\n{md}{END}{tail}")
    if png is not None:
        shutil.copyfile(png, REPO / "docs" / "benchmarks.png")
    log(f"updated {doc}" + ("" if png is None else " and docs/benchmarks.png"))


def _fs_of(path: str) -> str:
    import psutil
    best = None
    real = os.path.realpath(path)
    for part in psutil.disk_partitions(all=True):
        inside = real == part.mountpoint or real.startswith(part.mountpoint.rstrip("/") + "/")
        if inside and (best is None or len(part.mountpoint) > len(best.mountpoint)):
            best = part
    return f"{best.fstype} ({best.mountpoint})" if best else "?"


if __name__ == "__main__":
    sys.exit(main())
