"""``pyftp-server`` as a child process for tests: start it, learn its port, stop it.

A reader thread collects the child's stderr, so a test can wait (bounded) for a line
and later check everything the server printed, e.g. that no password reached it.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

SERVER_BIN = Path(sys.executable).parent / "pyftp-server"


def server_command() -> list[str]:
    """The console script if installed beside this Python, else the same entry point."""
    if SERVER_BIN.exists():
        return [str(SERVER_BIN)]
    return [sys.executable, "-c", "import sys; from pyftp.cli import server_main; "
            "sys.exit(server_main())"]


class ServerProcess:
    """A running ``pyftp-server``; use as a context manager (always killed on exit)."""

    def __init__(self, *args: str, startup: float = 20.0) -> None:
        self.proc = subprocess.Popen(
            [*server_command(), "--port", "0", *args], stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self._lines: list[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, name="test-server-stderr",
                                        daemon=True)
        self._reader.start()
        try:
            m = self.wait_for(r"serving .* on (\S+):(\d+) ", startup)
        except BaseException:
            self.__exit__()
            raise
        self.host = m.group(1).strip("[]")
        self.port = int(m.group(2))

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._cond:
                self._lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._lines.append("")  # end of stream
            self._cond.notify_all()

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    @property
    def stderr(self) -> str:
        with self._cond:
            return "".join(self._lines)

    def wait_for(self, pattern: str, timeout: float) -> re.Match:
        """The first stderr line matching ``pattern``; fails after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        with self._cond:
            while True:
                for line in self._lines:
                    m = rx.search(line)
                    if m:
                        return m
                if "" in self._lines:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
        raise AssertionError(f"{pattern!r} never appeared on the server's stderr:\n"
                             f"{self.stderr}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Send ``sig`` and return the exit code (fails if it takes over ``timeout`` s)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"the server did not exit within {timeout}s of signal {sig}")
        self._reader.join(5)
        return rc

    def __enter__(self) -> "ServerProcess":
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(5)
        for f in (self.proc.stdout, self.proc.stderr):
            if f is not None:
                f.close()
