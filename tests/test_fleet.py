"""A fleet for real: three ``pyftp-server`` processes on one bucket behind HAProxy.

A client uploads a large file through the balancer; the server carrying it is
SIGKILLed mid-upload; the client's retries land on another server, which resumes the
upload from the parts in the store and publishes it verified. Clients spread over the
servers then see one tree. Needs ``haproxy`` (Debian's package) and a store
(``eval "$(scripts/s3-store start)"``); skipped with the reason otherwise.
"""
from __future__ import annotations

import concurrent.futures
import os
import shutil
import signal
import tempfile

import pytest

from conftest import s3_unavailable
from helpers import wait_for
from pyftp import Client, digests
from pyftp.sync import put_file
from balancer import start_haproxy
from serverproc import ServerProcess

pytestmark = [pytest.mark.s3, pytest.mark.slow]
MiB = 1 << 20

if s3_unavailable():
    pytest.skip(f"fleet not tested: {s3_unavailable()}", allow_module_level=True)
if not shutil.which("haproxy"):
    pytest.skip("fleet not tested: haproxy is not installed "
                "(apt-get install --no-install-recommends haproxy)", allow_module_level=True)

def established_to(port: int) -> int:
    """Connections established to a local listening port (from /proc/net/tcp)."""
    n = 0
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[3] == "01" and int(fields[1].split(":")[1], 16) == port:
                n += 1
    return n


@pytest.fixture
def fleet(s3_bucket):
    """(balancer address, [ServerProcess]) for three servers on one fresh prefix."""
    from conftest import _prefixes
    url = f"s3://{s3_bucket}/fleet{next(_prefixes)}"
    servers = [ServerProcess("--root", url) for _ in range(3)]
    tmp = tempfile.mkdtemp(prefix="pyftp-fleet-")
    proxy = None
    try:
        proxy, port = start_haproxy([s.port for s in servers], tmp)
        yield ("127.0.0.1", port), servers
    finally:
        if proxy is not None:
            proxy.kill()
            proxy.wait()
        for s in servers:
            s.__exit__()
        shutil.rmtree(tmp, ignore_errors=True)


def stored_parts(bucket: str) -> int:
    import boto3
    from botocore.config import Config
    s3 = boto3.client("s3", config=Config(s3={"addressing_style": "path"}))
    ups = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    return sum(len(s3.list_parts(Bucket=bucket, Key=u["Key"], UploadId=u["UploadId"])
                   .get("Parts", [])) for u in ups if u["Key"].startswith("fleet"))


def test_a_killed_server_s_upload_finishes_through_another(fleet, tmp_path, s3_bucket):
    address, servers = fleet
    data = os.urandom(48 * MiB + 7)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    killed: list[ServerProcess] = []

    def carrier() -> ServerProcess | None:
        busy = [s for s in servers if established_to(s.port) > 0]
        return busy[0] if len(busy) == 1 else None

    def on_progress(done: int, total: int | None = None, *rest) -> None:
        if not killed and done >= 24 * MiB:
            holder = None
            for _ in range(100):  # bounded: the carrier is the one with a connection
                holder = carrier()
                if holder is not None:
                    break
            assert holder is not None, "no single server carries the upload"
            # the client is held here: the bytes already sent reach the store as parts
            wait_for(lambda: stored_parts(s3_bucket) >= 2, 30, "parts in the store")
            holder.proc.send_signal(signal.SIGKILL)
            holder.proc.wait()
            killed.append(holder)

    with Client(*address, timeout=20) as c:
        result = put_file(c, src, "big.bin", retries=6, backoff=0.5, on_progress=on_progress)
    assert killed, "the upload ended before a server could be killed"
    # verified in the negotiated algorithm (BLAKE3 where built): the claims name it
    assert result.digest == digests.hash_bytes(data, result.algorithm)
    assert result.offset > 0  # resumed from the parts the killed server stored
    back = tmp_path / "back.bin"
    with Client(*address, timeout=20) as c:
        c.get("big.bin", back)
        assert c.hash("big.bin") == digests.hash_bytes(data, c.algorithm)
    assert back.read_bytes() == data


def test_clients_spread_over_the_fleet_see_one_tree(fleet, tmp_path):
    address, _servers = fleet
    blobs = {f"f{i}.txt": os.urandom(1000 + i) for i in range(9)}
    for name, blob in blobs.items():
        (tmp_path / name).write_bytes(blob)

    def work(i: int) -> list[str]:
        with Client(*address, timeout=20) as c:  # one connection: round robin spreads them
            c.mkdir("shared", parents=True)
            for name in list(blobs)[i::3]:
                c.put(tmp_path / name, f"shared/{name}")
        return []
    with concurrent.futures.ThreadPoolExecutor(3) as ex:
        list(ex.map(work, range(3)))
    for n in range(3):
        with Client(*address, timeout=20) as c:
            assert sorted(e.name for e in c.ls("shared")) == sorted(blobs)
            for name, blob in blobs.items():
                got = tmp_path / f"got{n}-{name}"
                c.get(f"shared/{name}", got)
                assert got.read_bytes() == blob
