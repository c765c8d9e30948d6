"""The files and servers one location (one ``--tmp`` folder) is measured with.

Import rule: imports common and servers.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

from .common import BIN, ENV, MiB, Mode, Results, log, make_file, sha256_file
from .servers import Proc, start_ftpd, start_pyftp, start_raw


def digests_offered() -> list[str]:
    """The ``--digest`` choices ``pyftp --help`` lists (empty before that option lands)."""
    p = subprocess.run([str(BIN / "pyftp"), "--help"], capture_output=True, text=True,
                       timeout=60, env=ENV)
    if "--digest" not in p.stdout:
        return []
    # the issue fixes the choices (sha256|blake3); sha256 is always one of them
    return ["sha256", *(["blake3"] if "blake3" in p.stdout else [])]


class Bench:
    """Files laid out the same way under a pyftp root and a pyftpdlib root (hard links of
    one inode where the content is the same: one copy in the page cache), a local folder
    the clients work in, and the three servers. ``close`` stops every server."""

    def __init__(self, mode: Mode, work: Path, results: Results, digests: list[str]) -> None:
        self.mode = mode
        self.work = work
        self.r = results
        self.digests = digests
        self.procs: list[Proc] = []
        self.pyroot = work / "pyftp-root"
        self.ftproot = work / "ftpd-root"
        self.local = work / "local"
        self._dirs = 0
        for d in (self.pyroot, self.ftproot, self.local):
            d.mkdir()

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
            os.link(self.big, root / "big.bin")
            os.link(self.mid, root / "mid.bin")
            for name, count, data in (("small", m.files, small), ("wide", m.wide, b"")):
                (root / name).mkdir()
                for i in range(count):
                    (root / name / f"f{i:05d}.bin").write_bytes(data)
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
        self.py = self.keep(start_pyftp(self.pyroot, self.work))
        self.ftpd = self.keep(start_ftpd(self.ftproot, self.work))
        self.raw = self.keep(start_raw(self.big, self.work))
        log(f"servers: pyftp :{self.py.port}, pyftpdlib :{self.ftpd.port}, raw :{self.raw.port}")

    def keep(self, proc: Proc) -> Proc:
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        for p in self.procs:
            p.close()

    def new_dir(self, name: str) -> Path:
        """A folder no earlier run used. Deleting the last run's files right before a
        timed run let the file system's deferred work (journal, discard) land in it:
        the many-files figures fell run after run. All go with the temp dir at the end."""
        self._dirs += 1
        d = self.local / f"{name}-{self._dirs}"
        d.mkdir()
        return d

    def pyftp_cmd(self, *args: str, digest: str | None = None) -> list[str]:
        """``pyftp [--digest D] 127.0.0.1:PORT ARGS``: the console script as users run it."""
        opt = ["--digest", digest] if digest else []
        return [str(BIN / "pyftp"), *opt, f"127.0.0.1:{self.py.port}", *args]
