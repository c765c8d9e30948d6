"""The processes the benchmark talks to: pyftp-server, a pyftpdlib server, the raw
``sendfile`` pair, and the one-shot ftplib client a user would script.

Import rule: imports common; pyftp only inside ``pyftp_client`` (as a user would).
"""
from __future__ import annotations

import ftplib
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

from .common import BIN, ENV, FTP_BLOCK, FTP_PASS, FTP_USER, MiB, wait_for


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

    def port_from(self, path: Path, pattern: str) -> int | None:
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
    proc.port = wait_for(lambda: proc.port_from(proc.err, r"127\.0\.0\.1:(\d+)"), "pyftp-server")
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
    proc.port = wait_for(lambda: proc.port_from(proc.out, r"PORT (\d+)"), "pyftpdlib server")
    return proc


# the loopback limit of Python here: the sender moves the file with sendfile, the
# receiver does recv_into of a reused 1 MiB buffer and os.write of what came, no hash
RAW_CODE = r"""
import os, socket, sys
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
            fd = os.open(words[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                while left:
                    n = c.recv_into(view[:min(len(view), left)])
                    if not n:
                        break
                    os.write(fd, view[:n])
                    left -= n
            finally:
                os.close(fd)
            c.sendall(b"ok")
        elif words[:1] == [b"quit"]:
            break
"""


def start_raw(path: Path, workdir: Path) -> Proc:
    proc = Proc([sys.executable, "-c", RAW_CODE, str(path)], workdir, "raw")
    proc.port = wait_for(lambda: proc.port_from(proc.out, r"PORT (\d+)"), "raw sender")
    return proc


def raw_get(port: int, size: int, dst: Path) -> float:
    """Seconds to receive the raw sender's file: recv_into a reused 1 MiB buffer and
    os.write into ``dst`` (removed again, untimed)."""
    view = memoryview(bytearray(MiB))
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=120) as s:
            t0 = time.perf_counter()
            s.sendall(b"get\n")
            got = 0
            while n := s.recv_into(view):
                os.write(fd, view[:n])
                got += n
            dt = time.perf_counter() - t0
    finally:
        os.close(fd)
        dst.unlink()
    if got != size:
        raise RuntimeError(f"raw get moved {got} of {size} bytes")
    return dt


def raw_put(port: int, path: Path, size: int, dst: Path) -> float:
    """Seconds to sendfile a file to the raw receiver, which writes it to ``dst`` (until
    it confirms every byte); ``dst`` is removed again, untimed."""
    with socket.create_connection(("127.0.0.1", port), timeout=120) as s, open(path, "rb") as f:
        t0 = time.perf_counter()
        s.sendall(b"put %d %s\n" % (size, os.fsencode(dst)))
        s.sendfile(f)
        if s.recv(2) != b"ok":
            raise RuntimeError("raw put: no confirmation")
        dt = time.perf_counter() - t0
    if dst.stat().st_size != size:
        raise RuntimeError("raw put: short file")
    dst.unlink()
    return dt


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


# What a user scripts with ftplib in one ``python -c``: the FTP side of the console-script
# scenarios. ``op`` is get REMOTE | put LOCAL REMOTE | getdir DIR | nlst DIR TIMES.
FTP_ONESHOT = f"""
import ftplib, os, sys
port, op, *args = sys.argv[1:]
f = ftplib.FTP(); f.connect('127.0.0.1', int(port), timeout=300)
f.login({FTP_USER!r}, {FTP_PASS!r})
def get(remote, local):
    with open(local, 'wb') as out:
        f.retrbinary('RETR ' + remote, out.write, blocksize={FTP_BLOCK})
if op == 'get':
    get(args[0], os.path.basename(args[0]))
elif op == 'put':
    with open(args[0], 'rb') as src:
        f.storbinary('STOR ' + args[1], src, blocksize={FTP_BLOCK})
elif op == 'getdir':
    os.mkdir(args[0])
    for name in f.nlst(args[0]):
        get(args[0] + '/' + os.path.basename(name), os.path.join(args[0], os.path.basename(name)))
elif op == 'nlst':
    for _ in range(int(args[1])):
        sys.stdout.write('\\n'.join(f.nlst(args[0])) + '\\n')
f.quit()
"""


def ftp_oneshot(port: int, *args: str) -> list[str]:
    """The command line of a one-shot ftplib process."""
    return [sys.executable, "-c", FTP_ONESHOT, str(port), *args]


# The raw pair's client side as a one-shot process (the console-script scenarios time
# whole processes, so the limit they are held to pays an interpreter start too):
# ``get DST SIZE`` receives into DST; ``put SRC SIZE DST`` sends SRC, written to DST.
RAW_ONESHOT = r"""
import os, socket, sys
port, op, path, size, *dst = sys.argv[1:]
size = int(size)
s = socket.create_connection(("127.0.0.1", int(port)), timeout=300)
if op == "get":
    s.sendall(b"get\n")
    view = memoryview(bytearray(1 << 20))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    got = 0
    while n := s.recv_into(view):
        os.write(fd, view[:n])
        got += n
    os.close(fd)
    sys.exit(0 if got == size else f"raw get: {got} of {size} bytes")
s.sendall(b"put %d %s\n" % (size, os.fsencode(dst[0])))
with open(path, "rb") as f:
    s.sendfile(f)
sys.exit(0 if s.recv(2) == b"ok" else "raw put: no confirmation")
"""


def raw_oneshot(port: int, *args: str) -> list[str]:
    """The command line of a one-shot raw receiver (get) or sender (put)."""
    return [sys.executable, "-c", RAW_ONESHOT, str(port), *args]
