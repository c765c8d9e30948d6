"""The Python API scenarios: pyftp's ``Client`` against ftplib in this process, and the
raw ``sendfile`` pair; each function measures one scenario into ``b.r``.

Import rule: imports common, servers and fixture; pyftp only through ``pyftp_client``.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import threading
import time
from pathlib import Path

from .common import MiB, interleave, log, settle
from .fixture import Bench
from .servers import ftp_connect, ftp_get, ftp_put, pyftp_client, raw_get, raw_put

RAW_NOTE = ("raw: sendfile -> recv_into a reused 1 MiB buffer + os.write into a file on the "
            "same file system, no hash")


def interleave_closing(b: Bench, s, tools: dict, conns: tuple, *, warmup: int) -> None:
    """``interleave`` the tools, then close the connections they used."""
    try:
        interleave(b.mode, s, tools, warmup=warmup)
    finally:
        for conn in conns:
            with contextlib.suppress(Exception):
                conn.close()


def batch(many, one, pairs: list[tuple]) -> float:
    """Seconds to move ``pairs`` with the pipelined ``many`` (``Client.get_many`` ...),
    or one at a time with ``one`` (ftplib; a pyftp without such a method)."""
    t0 = time.perf_counter()
    if many is None:
        for pair in pairs:
            one(*pair)
    else:
        bad = [r for r in many(pairs) if isinstance(r, Exception)]
        assert not bad, f"pyftp {many.__name__}: {bad[:1]}"
    return time.perf_counter() - t0


def same_sha(result, sha: str) -> bool:
    """A pyftp result's SHA-256 is the file's; a result that names another negotiated
    algorithm was checked by pyftp itself."""
    if getattr(result, "algorithm", "sha256") != "sha256":
        return True
    got = getattr(result, "sha256", None)
    return got is None or got == sha


def sha256_speed(b: Bench) -> None:
    s = b.r.scenario("sha256", "hashing on one core (in memory)", "MiB/s")
    s.notes.append("hashlib.sha256 and, when the package is installed, blake3 (one thread), "
                   "over 1 MiB slices of a buffer of random bytes")
    data = os.urandom(64 * MiB if b.mode.name != "smoke" else 4 * MiB)
    view = memoryview(data)
    makers = {"hashlib": hashlib.sha256}
    with contextlib.suppress(ImportError):
        from blake3 import blake3
        makers["blake3"] = lambda: blake3(max_threads=1)

    def speed(make) -> float:
        h = make()
        t0 = time.perf_counter()
        for i in range(0, len(view), MiB):
            h.update(view[i:i + MiB])
        return len(data) / MiB / (time.perf_counter() - t0)
    interleave(b.mode, s, {name: (lambda make=make: speed(make)) for name, make in makers.items()},
               warmup=0, runs=max(b.mode.runs, 3))


def big_scenario(b: Bench, verb: str, notes: list[str]):
    """The large-file scenario ``<verb>_big``, its notes, a pyftp client and an ftplib
    session: (mode, scenario, client, ftp)."""
    m = b.mode
    s = b.r.scenario(f"{verb}_big", f"{verb} {m.big // MiB} MiB", "MiB/s")
    s.notes += [*notes, RAW_NOTE]
    return m, s, pyftp_client(b.py.port), ftp_connect(b.ftpd.port)


def big_get(b: Bench) -> None:
    m, s, c, ftp = big_scenario(b, "get", [
        "pyftp: Client.get, verified in the negotiated digest; the server knows the digest "
        "(it hashed the file once, during the warm-up: the first get of a file, also after "
        "an upload)",
        "pyftpdlib: ftplib retrbinary into a file, no verification"])
    dst_py, dst_ftp = b.local / "got-pyftp.bin", b.local / "got-ftp.bin"

    def py() -> float:
        t0 = time.perf_counter()
        res = c.get("big.bin", dst_py)
        dt = time.perf_counter() - t0
        assert same_sha(res, b.big_sha), "pyftp get: wrong digest"
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
        return m.big / MiB / raw_get(b.raw.port, m.big, b.local / "raw-get.bin")
    interleave_closing(b, s, {"pyftp": py, "pyftpdlib": ftp_, "raw": raw}, (c, ftp), warmup=1)


def big_get_cold(b: Bench) -> None:
    m = b.mode
    s = b.r.scenario("get_big_cold", f"get {m.big // MiB} MiB, digest not yet known",
                        "MiB/s")
    s.notes.append("the file's mtime is bumped before each run, so the server hashes it "
                   "(on a second thread, beside sendfile) instead of reusing the digest")
    c = pyftp_client(b.py.port)
    dst = b.local / "got-cold.bin"

    def py() -> float:
        st = os.stat(b.pyroot / "big.bin")
        os.utime(b.pyroot / "big.bin", ns=(st.st_atime_ns, st.st_mtime_ns + 1000))
        t0 = time.perf_counter()
        res = c.get("big.bin", dst)
        dt = time.perf_counter() - t0
        assert same_sha(res, b.big_sha)
        dst.unlink()
        return m.big / MiB / dt
    interleave_closing(b, s, {"pyftp": py}, (c,), warmup=0)


def big_put(b: Bench) -> None:
    m, s, c, ftp = big_scenario(b, "put", [
        "pyftp: Client.put, SHA-256 computed on both sides and compared before the server "
        "publishes (digest after the data: sha256_trailer)",
        "pyftpdlib: ftplib storbinary from a file, no verification",
        "the previous run's upload is deleted first (not timed): replacing a 1 GiB file "
        "costs ext4 a flush of the new data (0.5-0.9 s here for a rename over it, "
        "0.3-0.45 s for a truncate), which is not transfer"])

    def fresh(root: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            (root / "up" / "big.bin").unlink()

    def py() -> float:
        fresh(b.pyroot)
        t0 = time.perf_counter()
        res = c.put(b.big, "up/big.bin", overwrite=True)
        dt = time.perf_counter() - t0
        assert same_sha(res, b.big_sha), "pyftp put: wrong digest"
        return m.big / MiB / dt

    def ftp_() -> float:
        fresh(b.ftproot)
        t0 = time.perf_counter()
        ftp_put(ftp, b.big, "up/big.bin")
        dt = time.perf_counter() - t0
        assert (b.ftproot / "up" / "big.bin").stat().st_size == m.big
        return m.big / MiB / dt

    def raw() -> float:
        return m.big / MiB / raw_put(b.raw.port, b.big, m.big, b.local / "raw-put.bin")
    interleave_closing(b, s, {"pyftp": py, "pyftpdlib": ftp_, "raw": raw}, (c, ftp), warmup=1)
    for root in (b.pyroot, b.ftproot):
        fresh(root)


def files_scenario(b: Bench, verb: str, how: str, ftp_call: str):
    """The many-files scenario ``files_<verb>``, its notes, a pyftp client and an ftplib
    session: (mode, scenario, client, ftp)."""
    m = b.mode
    s = b.r.scenario(f"files_{verb}", f"{verb} {m.files} x {m.file_size // 1024} KiB files",
                     "files/s")
    settle(m, s)
    c = pyftp_client(b.py.port)
    s.notes.append(f"pyftp: Client.{verb}_many ({how}), each file verified"
                   if hasattr(c, f"{verb}_many") else
                   f"pyftp: Client.{verb} in a loop, each file verified")
    s.notes.append(f"pyftpdlib: ftplib {ftp_call} per file (a data connection each)")
    return m, s, c, ftp_connect(b.ftpd.port)


def many_get(b: Bench) -> None:
    m, s, c, ftp = files_scenario(b, "get", "pipelined requests", "retrbinary")
    names = [f"f{i:05d}.bin" for i in range(m.files)]

    def py() -> float:
        d = b.new_dir("many-pyftp")
        return m.files / batch(getattr(c, "get_many", None), c.get,
                               [(f"small/{n}", d / n) for n in names])

    def ftp_() -> float:
        d = b.new_dir("many-ftp")
        return m.files / batch(None, lambda remote, local: ftp_get(ftp, remote, local),
                               [(f"small/{n}", d / n) for n in names])
    interleave_closing(b, s, {"pyftp": py, "pyftpdlib": ftp_}, (c, ftp), warmup=0)


def many_put(b: Bench) -> None:
    m, s, c, ftp = files_scenario(b, "put", "next file read while the server verifies",
                                  "storbinary")
    names = sorted(os.listdir(b.small_src))

    s.notes.append("each run uploads into a new remote folder (made before the clock "
                   "starts), as put -r / mput of a new tree does")
    folders = iter(range(1, 1_000_000))

    def py() -> float:
        dst = f"up/py{next(folders)}"
        c.mkdir(dst)
        return m.files / batch(getattr(c, "put_many", None), c.put,
                               [(b.small_src / n, f"{dst}/{n}") for n in names])

    def ftp_() -> float:
        dst = f"up/ftp{next(folders)}"
        ftp.mkd(dst)
        return m.files / batch(None, lambda local, remote: ftp_put(ftp, local, remote),
                               [(b.small_src / n, f"{dst}/{n}") for n in names])
    interleave_closing(b, s, {"pyftp": py, "pyftpdlib": ftp_}, (c, ftp), warmup=0)


def listings(b: Bench) -> None:
    m = b.mode
    s = b.r.scenario("listings", f"{m.listings} listings of a 10-entry folder",
                        "listings/s")
    settle(m, s)
    s.notes.append("pyftp: Client.ls, one request at a time; pyftp-pipelined: Client.ls_many")
    s.notes.append("pyftpdlib: ftplib mlsd (machine-readable, like pyftp's JSON listing); "
                   "a data connection each")
    c = pyftp_client(b.py.port)
    ftp = ftp_connect(b.ftpd.port)
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
    interleave_closing(b, s, tools, (c, ftp), warmup=0)


def concurrent(b: Bench) -> None:
    m = b.mode
    s = b.r.scenario("concurrent", f"{m.clients} clients at once, each get "
                        f"{m.client_size // MiB} MiB", "MiB/s")
    s.notes.append("aggregate: all bytes / time from the start signal to the last "
                   "client done (connections and logins made before the signal)")
    s.notes.append("pyftp: every transfer SHA-256 verified; pyftpdlib: not verified")

    def run(connect, fetch) -> float:
        conns = [connect() for _ in range(m.clients)]
        d = b.new_dir("conc")  # no run replaces the last one's files (see put_big)
        go = threading.Barrier(m.clients + 1)
        errors: list[BaseException] = []

        def worker(i: int) -> None:
            try:
                go.wait(60)
                fetch(conns[i], d / f"{i}.bin")
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
        shutil.rmtree(d, ignore_errors=True)  # untimed: 50 x 16 MiB a run adds up
        if errors:
            raise errors[0]
        return m.clients * m.client_size / MiB / dt

    def py_fetch(c, dst: Path) -> None:
        assert same_sha(c.get("mid.bin", dst), b.mid_sha)

    def ftp_fetch(ftp, dst: Path) -> None:
        ftp_get(ftp, "mid.bin", dst)
        assert dst.stat().st_size == m.client_size

    interleave(b.mode, s, {
        "pyftp": lambda: run(lambda: pyftp_client(b.py.port), py_fetch),
        "pyftpdlib": lambda: run(lambda: ftp_connect(b.ftpd.port), ftp_fetch),
    }, warmup=1)


def many_gets_one_session(b: Bench) -> None:
    m = b.mode
    block = m.gets // 10
    s = b.r.scenario("session_gets", f"{m.gets} small gets in one session, per "
                        f"block of {block}", "files/s")
    settle(m, s)
    s.notes.append("one connection; the same 4 KiB file fetched again and again, one "
                   "request at a time (pyftp: Client.get, verified; FTP: a data "
                   "connection per file). Each value is one block of the run, in order.")
    dst = b.local / "one.bin"
    for tool in ("pyftp", "pyftpdlib"):
        if tool == "pyftp":
            conn = pyftp_client(b.py.port)
            fetch = lambda: conn.get("one.bin", dst)  # noqa: E731
        else:
            conn = ftp_connect(b.ftpd.port)
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

