"""The console scripts as users run them: ``pyftp HOST -c ...`` and ``-b FILE`` in a new
process each time, against one-shot ftplib processes, "FTP + sha256sum", and the raw
``sendfile`` pair; each function measures one scenario into ``b.r``.

Import rule: imports common, servers and fixture; never pyftp (only its console script).
"""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from pathlib import Path

from .common import ENV, MiB, interleave, run_timed, settle
from .fixture import Bench
from .servers import ftp_oneshot, raw_oneshot

FTP_SUM = "FTP + sha256sum"
SUM_NOTE = (f"{FTP_SUM}: the one-shot ftplib transfer, then `sha256sum` of the received "
            "file (the check a careful user adds), both timed")
RAW_NOTE = ("raw: sendfile -> recv_into a reused 1 MiB buffer + os.write into a file on the "
            "same file system, no hash; the client side a one-shot `python -c` too")


def pyftp_tools(b: Bench, run) -> dict:
    """``pyftp`` (the default digest) and, when ``pyftp --help`` offers it, ``pyftp
    --digest sha256``: ``run(digest)`` measures one of them."""
    tools = {"pyftp": lambda: run(None)}
    if "sha256" in b.digests:
        tools["pyftp --digest sha256"] = lambda: run("sha256")
    return tools


def note_digests(b: Bench, s) -> None:
    if not b.digests:
        s.notes.append("`pyftp --help` lists no --digest: only the default digest (SHA-256) "
                       "was measured")


def _sized(path: Path, size: int) -> None:
    if path.stat().st_size != size:
        raise RuntimeError(f"{path.name}: {path.stat().st_size} of {size} bytes")


def _sha_of(path: Path, cwd: Path) -> tuple[float, str]:
    dt, out = run_timed(["sha256sum", str(path)], cwd)
    return dt, out.split()[0]


def cli_get_big(b: Bench) -> None:
    m = b.mode
    s = b.r.scenario("cli_get_big", f'`pyftp HOST -c "get big"`, {m.big // MiB} MiB', "MiB/s")
    s.notes += ["pyftp: a new process each run, into an empty folder; verified end to end",
                "pyftpdlib: a one-shot `python -c` ftplib RETR (1 MiB blocks), no "
                "verification", SUM_NOTE, RAW_NOTE]
    note_digests(b, s)
    checked: set = set()

    def py(digest: str | None) -> float:
        d = b.new_dir("cli-get")
        dt, _ = run_timed(b.pyftp_cmd("-c", "get big.bin", digest=digest), d)
        got = d / "big.bin"
        _sized(got, m.big)
        if digest not in checked:  # once per tool: a full read is not free
            assert _sha_of(got, d)[1] == b.big_sha, "pyftp get: wrong content"
            checked.add(digest)
        got.unlink()
        return m.big / MiB / dt

    def ftp(with_sum: bool) -> float:
        d = b.new_dir("ftp-get")
        dt, _ = run_timed(ftp_oneshot(b.ftpd.port, "get", "big.bin"), d)
        got = d / "big.bin"
        _sized(got, m.big)
        if with_sum:
            dt_sum, sha = _sha_of(got, d)
            assert sha == b.big_sha, "FTP get: wrong content"
            dt += dt_sum
        got.unlink()
        return m.big / MiB / dt

    def raw() -> float:
        d = b.new_dir("raw-get")
        dt, _ = run_timed(raw_oneshot(b.raw.port, "get", "big.bin", str(m.big)), d)
        (d / "big.bin").unlink()
        return m.big / MiB / dt

    tools = {**pyftp_tools(b, py), "pyftpdlib": lambda: ftp(False),
             FTP_SUM: lambda: ftp(True), "raw": raw}
    interleave(m, s, tools, warmup=1)


def cli_put_big(b: Bench) -> None:
    m = b.mode
    s = b.r.scenario("cli_put_big", f'`pyftp HOST -c "put big"`, {m.big // MiB} MiB', "MiB/s")
    s.notes += ["pyftp: a new process each run; the server publishes only a verified file",
                "pyftpdlib: a one-shot `python -c` ftplib STOR (1 MiB blocks), no "
                "verification", SUM_NOTE.replace("received file", "file the server received"),
                RAW_NOTE, "the previous run's upload is deleted first (not timed)"]
    note_digests(b, s)
    py_dst, ftp_dst = b.pyroot / "up" / "big.bin", b.ftproot / "up" / "big.bin"

    def py(digest: str | None) -> float:
        with contextlib.suppress(FileNotFoundError):
            py_dst.unlink()
        dt, _ = run_timed(b.pyftp_cmd("-c", "put big.bin up/big.bin", digest=digest), b.local)
        _sized(py_dst, m.big)
        return m.big / MiB / dt

    def ftp(with_sum: bool) -> float:
        with contextlib.suppress(FileNotFoundError):
            ftp_dst.unlink()
        dt, _ = run_timed(ftp_oneshot(b.ftpd.port, "put", "big.bin", "up/big.bin"), b.local)
        _sized(ftp_dst, m.big)
        if with_sum:
            dt_sum, sha = _sha_of(ftp_dst, b.local)
            assert sha == b.big_sha, "FTP put: wrong content"
            dt += dt_sum
        return m.big / MiB / dt

    def raw() -> float:
        dst = b.local / "raw-put.bin"
        dt, _ = run_timed(raw_oneshot(b.raw.port, "put", "big.bin", str(m.big), str(dst)),
                          b.local)
        _sized(dst, m.big)
        dst.unlink()
        return m.big / MiB / dt

    tools = {**pyftp_tools(b, py), "pyftpdlib": lambda: ftp(False),
             FTP_SUM: lambda: ftp(True), "raw": raw}
    try:
        interleave(m, s, tools, warmup=1)
    finally:
        for p in (py_dst, ftp_dst):
            with contextlib.suppress(OSError):
                p.unlink()


def cli_files(b: Bench) -> None:
    m = b.mode
    s = b.r.scenario("cli_files", f"get {m.files} x {m.file_size // 1024} KiB files, "
                     "console scripts", "files/s")
    settle(m, s)
    s.notes += ['pyftp get -r: `pyftp HOST -c "get -r small"`; pyftp -b gets: `pyftp HOST -b '
                f'FILE` with {m.files} `get small/NAME` lines; both into an empty folder',
                "pyftpdlib: a one-shot ftplib process, NLST then one RETR per file (a data "
                "connection each)"]
    batch = b.local / "gets.pyftp"
    batch.write_text("".join(f"get small/f{i:05d}.bin\n" for i in range(m.files)))

    def counted(d: Path, dt: float) -> float:
        n = len(os.listdir(d))
        if n != m.files:
            raise RuntimeError(f"{n} of {m.files} files arrived")
        return m.files / dt

    def get_r() -> float:
        d = b.new_dir("cli-r")
        return counted(d / "small", run_timed(b.pyftp_cmd("-c", "get -r small"), d)[0])

    def get_b() -> float:
        d = b.new_dir("cli-b")
        return counted(d, run_timed(b.pyftp_cmd("-b", str(batch)), d)[0])

    def ftp() -> float:
        d = b.new_dir("ftp-files")
        return counted(d / "small", run_timed(ftp_oneshot(b.ftpd.port, "getdir", "small"), d)[0])
    interleave(m, s, {"pyftp get -r": get_r, "pyftp -b gets": get_b, "pyftpdlib": ftp},
               warmup=0)


def cli_listings(b: Bench) -> None:
    m = b.mode
    for key, folder, n, entries, probe in (
            ("cli_list_10", "list", m.listings, 10, "entry-9.txt"),
            ("cli_list_wide", "wide", m.wide_listings, m.wide, f"f{m.wide - 1:05d}.bin")):
        s = b.r.scenario(key, f"{n} listings of a {entries}-entry folder in `-b`",
                         "listings/s")
        settle(m, s)
        s.notes += [f"pyftp: `pyftp HOST -b FILE` with {n} `ls {folder}` lines, stdout a pipe",
                    f"ftplib: one process, {n} x `nlst`, the names written to stdout"]
        batch = b.local / f"ls-{folder}.pyftp"
        batch.write_text(f"ls {folder}\n" * n)

        def listed(cmd: list[str], n=n, probe=probe) -> float:
            dt, out = run_timed(cmd, b.local)
            if out.count(probe) != n:
                raise RuntimeError(f"{out.count(probe)} of {n} listings printed {probe}")
            return n / dt
        interleave(m, s, {
            "pyftp -b ls": lambda batch=batch: listed(b.pyftp_cmd("-b", str(batch))),
            "ftplib nlst": lambda folder=folder, n=n: listed(
                ftp_oneshot(b.ftpd.port, "nlst", folder, str(n))),
        }, warmup=0)


def cli_processes(b: Bench) -> None:
    m = b.mode
    s = b.r.scenario("cli_procs", f"{m.procs} one-shot get processes at once, each "
                     f"{m.client_size // MiB} MiB", "MiB/s")
    s.notes += [f'pyftp: {m.procs} x `pyftp HOST -c "get mid.bin"` started together; '
                f"ftplib: {m.procs} one-shot ftplib processes started together; aggregate: "
                "all bytes / time from the first start to the last exit"]

    def run(cmd: list[str]) -> float:
        d = b.new_dir("procs")
        dirs = [d / str(i) for i in range(m.procs)]
        for x in dirs:
            x.mkdir()
        procs = []
        t0 = time.perf_counter()
        try:
            for x in dirs:
                with open(x / "stderr", "wb") as err:
                    procs.append(subprocess.Popen(cmd, cwd=x, stdin=subprocess.DEVNULL,
                                                  stdout=subprocess.DEVNULL, stderr=err,
                                                  env=ENV))
            codes = [p.wait(600) for p in procs]
            dt = time.perf_counter() - t0
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait(10)
        for x, code in zip(dirs, codes):
            if code != 0:
                raise RuntimeError(f"exit {code}: {(x / 'stderr').read_text()[-300:]}")
            _sized(x / "mid.bin", m.client_size)
        shutil.rmtree(d, ignore_errors=True)  # untimed: 50 x 16 MiB a run adds up
        return m.procs * m.client_size / MiB / dt

    interleave(m, s, {"pyftp": lambda: run(b.pyftp_cmd("-c", "get mid.bin")),
                      "ftplib": lambda: run(ftp_oneshot(b.ftpd.port, "get", "mid.bin"))},
               warmup=1)
