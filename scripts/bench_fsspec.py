#!/usr/bin/env python3
"""``pd.read_parquet`` and ``DataFrame.to_parquet`` of one large file through
``pyftp://`` and through fsspec's ``ftp://`` on pyftpdlib, in the same run.

    .venv/bin/python -m pip install -e ".[test]" pyftpdlib
    .venv/bin/python scripts/bench_fsspec.py                # 100 MiB, 5 runs each
    .venv/bin/python scripts/bench_fsspec.py --mib 10 --runs 3 --no-write

Both servers are subprocesses on 127.0.0.1, port 0, serving the same folder (in
``--tmp``, default /dev/shm when it exists); pandas runs in this process. The tools
take turns run after run (after one warm-up read each); each figure is the median of
the runs with the minimum and maximum beside it. Every read is compared with the
frame that was written, every written file with the local one. pyftp verifies each
transfer (the digest it negotiated, BLAKE3 when both ends have it); FTP checks
nothing. The load average is printed before and after: the figures mean little on a
busy machine unless both tools ran under the same load, which taking turns gives.

This script is not part of the package and uses pyftp only as a user would.
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable

PYFTP_SERVER = """
import sys
from pyftp import Server, ServerConfig
s = Server(ServerConfig(root=sys.argv[1], port=0)).start()
print("PORT", s.address[1], flush=True)
s.serve_forever()
"""

FTP_SERVER = """
import sys
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer
import logging
logging.basicConfig(level=logging.WARNING)
auth = DummyAuthorizer()
auth.add_user("bench", "bench", sys.argv[1], perm="elradfmwMT")
handler = FTPHandler
handler.authorizer = auth
server = FTPServer(("127.0.0.1", 0), handler)
print("PORT", server.address[1], flush=True)
server.serve_forever(handle_exit=True)
"""


#: fsspec caches file system instances; each read gets its own, for both tools
FRESH = {"skip_instance_cache": True}


def start(program: str, root: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen([sys.executable, "-c", program, root], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    m = re.match(r"PORT (\d+)", line)
    if not m:
        proc.kill()
        raise SystemExit(f"server did not start: {line!r}")
    return proc, int(m.group(1))


def make_frame(mib: int) -> Any:
    import numpy as np
    import pandas as pd
    rows = mib * 1024 * 1024 // (8 * 4)
    rng = np.random.default_rng(42)
    return pd.DataFrame({f"c{i}": rng.random(rows) for i in range(4)})


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def take_turns(runs: int, jobs: dict[str, Callable[[], object]]) -> dict[str, list[float]]:
    """Run each job once to warm up, then ``runs`` times each, the order alternating."""
    for job in jobs.values():
        job()
    times: dict[str, list[float]] = {name: [] for name in jobs}
    for run in range(runs):
        for name in (list(jobs) if run % 2 == 0 else list(reversed(jobs))):
            t0 = time.perf_counter()
            jobs[name]()
            times[name].append(time.perf_counter() - t0)
    return times


def report(title: str, times: dict[str, list[float]], size: int, local: float) -> None:
    print(f"\n{title:20} {'median s':>9} {'min':>7} {'max':>7} {'MiB/s':>7}")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:20} {med:9.3f} {min(ts):7.3f} {max(ts):7.3f} {size / 2**20 / med:7.0f}")
    print(f"{'local file':20} {local:9.3f}")


def bench(args: argparse.Namespace, root: str, ports: tuple[int, int]) -> None:
    import pandas as pd
    df = make_frame(args.mib)
    path = os.path.join(root, "big.parquet")
    df.to_parquet(path)
    size = os.path.getsize(path)
    print(f"file: {size / 2**20:.1f} MiB, {len(df):,} rows x {len(df.columns)} columns; "
          f"load average before: {load()}")
    urls = {"pyftp://": f"pyftp://127.0.0.1:{ports[0]}",
            "ftp:// (pyftpdlib)": f"ftp://bench:bench@127.0.0.1:{ports[1]}"}

    def reader(base: str) -> Callable[[], None]:
        def read() -> None:
            # a new file system each run: nothing kept from the last one
            pd.testing.assert_frame_equal(
                pd.read_parquet(base + "/big.parquet", storage_options=FRESH), df)
        return read
    reads = take_turns(args.runs, {name: reader(base) for name, base in urls.items()})
    t0 = time.perf_counter()
    pd.read_parquet(path)
    report("read_parquet", reads, size, time.perf_counter() - t0)
    if args.write:
        def writer(name: str, base: str) -> Callable[[], None]:
            target = f"w-{len(name)}.parquet"

            def write() -> None:
                df.to_parquet(f"{base}/{target}", storage_options=FRESH)
                assert os.path.getsize(os.path.join(root, target)) == size
            return write
        writes = take_turns(args.runs, {name: writer(name, base) for name, base in urls.items()})
        t0 = time.perf_counter()
        df.to_parquet(os.path.join(root, "local.parquet"))
        report("to_parquet", writes, size, time.perf_counter() - t0)
    print(f"\nload average after: {load()}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--mib", type=int, default=100, help="size of the Parquet file (MiB)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--tmp", default="/dev/shm" if os.path.isdir("/dev/shm") else None)
    ap.add_argument("--no-write", dest="write", action="store_false",
                    help="measure reads only")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.tmp, prefix="bench-fsspec-") as root:
        servers = [start(PYFTP_SERVER, root), start(FTP_SERVER, root)]
        try:
            bench(args, root, (servers[0][1], servers[1][1]))
        finally:
            for proc, _ in servers:
                proc.terminate()
                proc.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
