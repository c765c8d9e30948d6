#!/usr/bin/env python3
"""Benchmark pyftp as users run it, and through its Python API, against pyftpdlib +
ftplib, "FTP + sha256sum" and the raw socket path, in one run.

    .venv/bin/python -m pip install -e ".[bench]"     # pyftpdlib, psutil, matplotlib
    .venv/bin/python scripts/bench.py                 # full: 1 GiB, 5 runs, tmp + /dev/shm
    .venv/bin/python scripts/bench.py --quick         # 64 MiB, 3 runs, one folder
    .venv/bin/python scripts/bench.py --smoke         # tiny sizes: checks the script

Every server runs as a subprocess on 127.0.0.1, port 0, serving its own folder in a
temporary directory that is removed at the end: ``pyftp-server`` (``--log-level
warning``), a pyftpdlib ``FTPServer`` (sendfile and TCP_NODELAY on, its defaults) and a
raw pair that moves a file with ``socket.sendfile`` into ``recv_into`` of a reused 1 MiB
buffer and ``os.write``, with no hash: the loopback limit of Python on this machine.

The console-script scenarios start ``pyftp 127.0.0.1:PORT -c ...`` or ``-b FILE`` as a
new process each run (stdout and stderr pipes, as in CI) and compare it with a one-shot
``python -c`` ftplib process doing the same, with "FTP + sha256sum" (that transfer
followed by ``sha256sum`` of the received file, both timed: the honest verified peer)
and the raw pair. When ``pyftp --help`` lists ``--digest``, the large transfers run with
the default digest and with ``--digest sha256``. The API scenarios drive ``pyftp.Client``
and ``ftplib`` in this process; memory and start-up are measured in separate processes.

Within a scenario the tools take turns, run after run, in a rotating order, so a noisy
neighbour hurts them alike; each figure is the median of the runs, min and max beside
it, and each ratio is of medians. The issue's targets are a column of the table.

Output (in ``--out``, default ``bench-results/``): ``bench.json`` (every run),
``bench.md`` (the tables, one per folder), ``bench.png`` (the chart). ``--publish`` also
puts the tables into ``docs/benchmarks.md`` (between its ``bench-table`` markers) and the
chart into ``docs/benchmarks.png``. The code lives in the package ``scripts/bench/``.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench.main import main  # noqa: E402  (the package beside this file)

if __name__ == "__main__":
    sys.exit(main())
