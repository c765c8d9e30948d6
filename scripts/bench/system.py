"""Memory and start-up: peak RSS per side during a large transfer, the server's RSS
with many idle clients, and the wall time of one-shot commands.

Import rule: imports common, servers and fixture.
"""
from __future__ import annotations

import contextlib
import re
import subprocess
import sys
from pathlib import Path

from .common import BIN, ENV, FTP_BLOCK, MiB, FTP_PASS, FTP_USER, interleave, peak_rss_mib, rotate, rss_mib, run_timed
from .fixture import Bench
from .servers import ftp_connect, ftp_oneshot, pyftp_client, start_ftpd, start_pyftp


def memory(b: Bench) -> None:
    m = b.mode
    s = b.r.scenario("rss_transfer", f"peak RSS during a {m.big // MiB} MiB get and put",
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

    def one_round(srv, root: Path, server: str, clients: list[tuple[str, list[str]]]) -> None:
        """``clients``: (tool, argv) of a get into rss-get.bin, then of a put to up/rss.bin."""
        try:
            for tool, argv in clients:
                s.add(tool, maxrss(argv, b.local))
                with contextlib.suppress(OSError):
                    (b.local / "rss-get.bin").unlink()
            s.add(server, peak_rss_mib(srv.pid))
        finally:
            srv.close()
            with contextlib.suppress(OSError):
                (root / "up" / "rss.bin").unlink()

    def py_round() -> None:
        srv = start_pyftp(b.pyroot, b.work, "pyftp-rss")
        cmd = [sys.executable, "-c", wrapper, f"127.0.0.1:{srv.port}", "-c"]
        one_round(srv, b.pyroot, "pyftp-server", [
            ("pyftp-client get", [*cmd, "get big.bin rss-get.bin"]),
            ("pyftp-client put", [*cmd, "put -f big.bin up/rss.bin"])])

    def ftp_round() -> None:
        srv = start_ftpd(b.ftproot, b.work, "ftpd-rss")
        cmd = [sys.executable, "-c", ftp_wrapper, str(srv.port)]
        one_round(srv, b.ftproot, "pyftpdlib-server", [
            ("ftplib-client get", [*cmd, "get", "rss-get.bin", "big.bin"]),
            ("ftplib-client put", [*cmd, "put", str(b.big), "up/rss.bin"])])
    runs = max(1, min(m.runs, 3))
    for r in range(runs):
        for fn in rotate([py_round, ftp_round], r):
            fn()


def idle_clients(b: Bench) -> None:
    m = b.mode
    s = b.r.scenario("rss_idle", f"server RSS with {m.idle} idle connected clients",
                        "MiB", higher_is_better=False)
    s.notes.append("a fresh server; every client connected and logged in (pyftp: hello), "
                   "then the server's RSS is read")

    def one_round(start, root: Path, connect, tool: str) -> None:
        srv = start(root, b.work, f"{tool}-idle")
        conns = []
        try:
            base = rss_mib(srv.pid)
            for _ in range(m.idle):
                conns.append(connect(srv.port))
            conns[-1].pwd()
            s.add(tool, rss_mib(srv.pid))
            s.extra.setdefault(f"{tool}_before", []).append(base)
        finally:
            for c in conns:
                with contextlib.suppress(Exception):
                    c.close()
            srv.close()

    def py_round() -> None:
        one_round(start_pyftp, b.pyroot, pyftp_client, "pyftp-server")

    def ftp_round() -> None:
        one_round(start_ftpd, b.ftproot, ftp_connect, "pyftpdlib-server")
    runs = max(1, min(m.runs, 3))
    for r in range(runs):
        for fn in rotate([py_round, ftp_round], r):
            fn()


def startup(b: Bench) -> None:
    s = b.r.scenario("startup", "wall time of one-shot commands", "ms", higher_is_better=False)
    s.notes.append('pyftp --version; pyftp 127.0.0.1:PORT -c "put small.txt" (a new '
                   'process: interpreter start, connect, hello, upload, quit); ftplib '
                   'one-shot: python -c with ftplib doing the same put')

    def ms(cmd: list[str]) -> float:
        return run_timed(cmd, b.local, timeout=120)[0] * 1000

    def put() -> float:
        with contextlib.suppress(FileNotFoundError):
            (b.pyroot / "small.txt").unlink()
        return ms(b.pyftp_cmd("-c", "put small.txt"))

    interleave(b.mode, s, {
        "pyftp --version": lambda: ms([str(BIN / "pyftp"), "--version"]),
        "pyftp -c put": put,
        "ftplib one-shot put": lambda: ms(ftp_oneshot(b.ftpd.port, "put", "small.txt",
                                                       "small.txt")),
    }, warmup=1, runs=2 * b.mode.runs)
