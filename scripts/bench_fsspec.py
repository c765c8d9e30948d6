#!/usr/bin/env python3
"""``pd.read_parquet`` of one large file through ``pyftp://`` and through fsspec's
``ftp://`` on pyftpdlib, in the same run.

    .venv/bin/python -m pip install -e ".[test]" pyftpdlib
    .venv/bin/python scripts/bench_fsspec.py                # 100 MiB, 5 runs each
    .venv/bin/python scripts/bench_fsspec.py --mib 10 --runs 3

Both servers are subprocesses on 127.0.0.1, port 0, serving the same folder (in
``--tmp``, default /dev/shm when it exists); pandas runs in this process. The tools
take turns run after run (after one warm-up read each); each figure is the median of
the runs with the minimum and maximum beside it. Every read is compared with the
frame that was written. pyftp verifies the download (SHA-256); FTP checks nothing.

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
auth.add_anonymous(sys.argv[1])
handler = FTPHandler
handler.authorizer = auth
server = FTPServer(("127.0.0.1", 0), handler)
print("PORT", server.address[1], flush=True)
server.serve_forever(handle_exit=True)
"""


#: fsspec caches file system instances; each read gets its own, for both tools
FRESH = {"skip_instance_cache": True}


def start(program: str, root: str) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([sys.executable, "-c", program, root], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    m = re.match(r"PORT (\d+)", line)
    if not m:
        proc.kill()
        raise SystemExit(f"server did not start: {line!r}")
    return proc, int(m.group(1))


def make_frame(mib: int):
    import numpy as np
    import pandas as pd
    rows = mib * 1024 * 1024 // (8 * 4)
    rng = np.random.default_rng(42)
    return pd.DataFrame({f"c{i}": rng.random(rows) for i in range(4)})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mib", type=int, default=100, help="size of the Parquet file (MiB)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--tmp", default="/dev/shm" if os.path.isdir("/dev/shm") else None)
    args = ap.parse_args(argv)
    import pandas as pd

    with tempfile.TemporaryDirectory(dir=args.tmp, prefix="bench-fsspec-") as root:
        df = make_frame(args.mib)
        path = os.path.join(root, "big.parquet")
        df.to_parquet(path)
        size = os.path.getsize(path)
        print(f"file: {size / 2**20:.1f} MiB, {len(df):,} rows x {len(df.columns)} columns")
        servers = [start(PYFTP_SERVER, root), start(FTP_SERVER, root)]
        try:
            urls = {"pyftp://": f"pyftp://127.0.0.1:{servers[0][1]}/big.parquet",
                    "ftp:// (pyftpdlib)": f"ftp://127.0.0.1:{servers[1][1]}/big.parquet"}
            times: dict[str, list[float]] = {name: [] for name in urls}
            for name, url in urls.items():  # warm-up: connections, imports
                pd.testing.assert_frame_equal(pd.read_parquet(url), df)
            for run in range(args.runs):
                order = list(urls) if run % 2 == 0 else list(reversed(urls))
                for name in order:
                    t0 = time.perf_counter()
                    # a new file system each run: no verified copy kept from the last one
                    got = pd.read_parquet(urls[name], storage_options=FRESH)
                    times[name].append(time.perf_counter() - t0)
                    pd.testing.assert_frame_equal(got, df)
            t0 = time.perf_counter()
            pd.read_parquet(path)
            local = time.perf_counter() - t0
        finally:
            for proc, _ in servers:
                proc.terminate()
                proc.wait(10)
    print(f"{'':20} {'median s':>9} {'min':>7} {'max':>7} {'MiB/s':>7}")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:20} {med:9.3f} {min(ts):7.3f} {max(ts):7.3f} {size / 2**20 / med:7.0f}")
    print(f"{'local file':20} {local:9.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
