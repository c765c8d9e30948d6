"""Settings, results and small helpers shared by every part of the benchmark.

Import rule: the standard library only (psutil inside functions); imports nothing of
pyftp and nothing else of this package.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent.parent
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


@dataclass(frozen=True)
class Mode:
    name: str
    big: int            # bytes of the large file
    runs: int           # timed runs per scenario (medians over these)
    files: int          # small files for the many-files scenarios
    file_size: int
    listings: int       # listings of a 10-entry folder (API and -b)
    wide_listings: int  # listings of the wide folder in -b
    wide: int           # entries of the wide folder
    clients: int        # concurrent clients (threads) ...
    client_size: int    # ... each getting a file this large
    procs: int          # one-shot processes at once
    gets: int           # small gets in one session (split in 10 blocks)
    idle: int           # idle connected clients
    settle: float       # longest wait for TIME_WAIT sockets to drain before FTP-heavy runs


MODES = {
    "full": Mode("full", 1 << 30, 5, 1000, 4096, 1000, 250, 1000, 50, 16 * MiB, 50,
                 10_000, 300, 65.0),
    "quick": Mode("quick", 64 * MiB, 3, 1000, 4096, 1000, 100, 1000, 10, 4 * MiB, 50,
                  1_000, 50, 0.0),
    # for the test suite: every scenario runs, in seconds
    "smoke": Mode("smoke", 3 * MiB, 1, 12, 4096, 12, 3, 30, 3, 1 * MiB, 3, 40, 4, 0.0),
}


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

    def median(self, tool: str | None) -> float | None:
        values = self.runs.get(tool) if tool else None
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
    """The scenarios measured with the files in one folder (one ``--tmp`` choice)."""

    def __init__(self, mode: Mode, tmp: str, fs: str) -> None:
        self.mode = mode
        self.tmp = tmp
        self.fs = fs
        self.scenarios: dict[str, Scenario] = {}
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
        "started": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "install": install_kind(),
    }


def install_kind() -> str:
    """How the measured pyftp is installed: an editable install puts an import hook in
    every Python process's start-up (tens of ms here), which ``pip install pyftp`` does
    not. Asked of the console scripts' own Python, from a neutral folder."""
    code = ("import pyftp, sysconfig, pathlib; "
            "lib = pathlib.Path(sysconfig.get_paths()['purelib']).resolve(); "
            "print(pathlib.Path(pyftp.__file__).resolve().is_relative_to(lib))")
    p = subprocess.run([str(BIN / "python"), "-c", code], capture_output=True, text=True,
                       cwd="/", timeout=60)
    if p.returncode != 0:
        return "unknown"
    return "regular" if p.stdout.strip() == "True" else \
        "editable (slower process start-up than a user's install)"


def versions() -> dict:
    from importlib.metadata import version
    out = {}
    for name in ("pyftp", "pyftpdlib", "psutil", "matplotlib", "blake3"):
        try:
            out[name] = version(name)
        except Exception:
            out[name] = None
    return out


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


def run_timed(cmd: list[str], cwd: Path, *, timeout: float = 900) -> tuple[float, str]:
    """Run a process as a user would (stdout and stderr to pipes); seconds and stdout.
    A failed process raises with the tail of its stderr."""
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, timeout=timeout, env=ENV,
                       stdin=subprocess.DEVNULL)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... exited {p.returncode}: "
                           f"{p.stderr.decode(errors='replace')[-400:]}")
    return dt, p.stdout.decode(errors="replace")


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident set (VmHWM) in MiB; its current RSS where /proc lacks it."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return rss_mib(pid)


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


def interleave(mode: Mode, s: Scenario, tools: dict[str, Callable[[], float]], *,
               warmup: int, runs: int | None = None) -> None:
    """Run every tool ``runs`` times, taking turns in a rotating order; a warm-up round
    first (page cache, first-touch memory; not recorded). A tool that fails is recorded
    as failed and left out of later rounds. Before each run the dirty pages of the runs
    before it are written out (``sync``, not timed): a 1 GiB put leaves a GiB of
    writeback that would otherwise slow whichever tool comes next."""
    runs = mode.runs if runs is None else runs
    names = list(tools)
    for r in range(-warmup, runs):
        for name in rotate(names, max(r, 0)):
            if name in s.errors:
                continue
            os.sync()
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
