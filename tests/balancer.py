"""HAProxy in TCP mode in front of pyftp servers, for the fleet test and
scripts/bench_s3.py (config as in docs/storage.md): start it on a free port, wait
(bounded) until it accepts, and leave killing it to the caller.
"""
from __future__ import annotations

import os
import socket
import subprocess
import time

CONFIG = """global
    maxconn 256
defaults
    mode tcp
    timeout connect 2s
    timeout client {timeout}
    timeout server {timeout}
    retries 2
    option redispatch
frontend pyftp
    bind 127.0.0.1:{port}
    default_backend servers
backend servers
    balance roundrobin
{servers}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_haproxy(ports: list[int], folder: str, *,
                  timeout: str = "30s") -> tuple[subprocess.Popen, int]:
    """HAProxy balancing round robin over 127.0.0.1:``ports``; (process, its port)."""
    port = free_port()
    servers = "\n".join(f"    server s{i} 127.0.0.1:{p} check inter 200ms"
                        for i, p in enumerate(ports))
    cfg = os.path.join(folder, "haproxy.cfg")
    with open(cfg, "w") as f:
        f.write(CONFIG.format(port=port, servers=servers, timeout=timeout))
    proc = subprocess.Popen(["haproxy", "-f", cfg, "-db"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return proc, port
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise RuntimeError(f"haproxy did not start (config {cfg})")
