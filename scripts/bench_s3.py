#!/usr/bin/env python3
"""pyftp on an object store vs boto3 straight to the store; 1 vs 2 vs 3 servers.

    eval "$(scripts/s3-store start)"
    .venv/bin/python scripts/bench_s3.py [--big-mib 1024] [--small 1000]

Runs ``pyftp-server --root s3://BUCKET/...`` processes on 127.0.0.1 (and HAProxy in
front of 2 and 3 of them), a fresh bucket removed at the end. Prints one table (MiB/s,
seconds). Every transfer is checked (pyftp: the negotiated digest, BLAKE3 where built,
or --digest; boto3: bytes compared).
"""
from __future__ import annotations

import argparse
import concurrent.futures
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

import boto3
from botocore.config import Config

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
from balancer import start_haproxy  # noqa: E402  (tests/balancer.py)
from pyftp import Client  # noqa: E402

MiB = 1 << 20
SERVER = [os.path.join(os.path.dirname(sys.executable), "pyftp-server")]


def start_server(root: str) -> tuple[subprocess.Popen, int]:
    p = subprocess.Popen([*SERVER, "--root", root, "--port", "0", "--log-level", "warning"],
                         stderr=subprocess.PIPE, text=True)
    for _ in range(200):
        line = p.stderr.readline()
        m = re.search(r" on \S+:(\d+) ", line)
        if m:
            SERVER_PORTS[p.pid] = int(m.group(1))
            return p, int(m.group(1))
    p.kill()
    raise SystemExit("pyftp-server did not start")


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--big-mib", type=int, default=1024)
    ap.add_argument("--small", type=int, default=1000)
    ap.add_argument("--fleet-mib", type=int, default=256, help="per client, 3 clients")
    ap.add_argument("--digest", default=None, help="the digest pyftp negotiates "
                    "(sha256 or blake3; default: the client's preference)")
    args = ap.parse_args()
    if not os.environ.get("AWS_ENDPOINT_URL"):
        raise SystemExit('no store: eval "$(scripts/s3-store start)" first')
    s3 = boto3.client("s3", config=Config(s3={"addressing_style": "path"},
                                          max_pool_connections=32))
    bucket = f"pyftp-bench-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    tmp = tempfile.mkdtemp(prefix="pyftp-bench-s3-")
    procs: list[subprocess.Popen] = []
    rows: list[tuple[str, str, str]] = []
    try:
        big = os.path.join(tmp, "big.bin")
        with open(big, "wb") as f:
            for _ in range(args.big_mib):
                f.write(os.urandom(MiB))
        size = args.big_mib * MiB
        small_dir = os.path.join(tmp, "small")
        os.mkdir(small_dir)
        for i in range(args.small):
            with open(os.path.join(small_dir, f"f{i:05d}"), "wb") as f:
                f.write(os.urandom(4096))
        smalls = sorted(os.listdir(small_dir))

        # boto3 straight to the store
        t = timed(lambda: s3.upload_file(big, bucket, "direct/big.bin"))
        rows.append((f"{args.big_mib} MiB put", "boto3 upload_file", f"{size / MiB / t:.0f} MiB/s"))
        t = timed(lambda: s3.download_file(bucket, "direct/big.bin", big + ".d"))
        rows.append((f"{args.big_mib} MiB get", "boto3 download_file", f"{size / MiB / t:.0f} MiB/s"))
        os.unlink(big + ".d")

        def direct_small():
            for n in smalls:
                with open(os.path.join(small_dir, n), "rb") as f:
                    s3.put_object(Bucket=bucket, Key=f"direct/small/{n}", Body=f.read())
        t = timed(direct_small)
        rows.append((f"{args.small} x 4 KiB put", "boto3 put_object, one by one", f"{t:.1f} s"))

        # pyftp, one server
        p, port = start_server(f"s3://{bucket}/pyftp")
        procs.append(p)
        with Client("127.0.0.1", port, timeout=120, digest=args.digest) as c:
            rows.append(("digest", "negotiated by pyftp", c.algorithm))
            t = timed(lambda: c.put(big, "big.bin"))
            rows.append((f"{args.big_mib} MiB put", "pyftp on S3, 1 server", f"{size / MiB / t:.0f} MiB/s"))
            t = timed(lambda: c.get("big.bin", big + ".g"))
            rows.append((f"{args.big_mib} MiB get", "pyftp on S3, 1 server", f"{size / MiB / t:.0f} MiB/s"))
            os.unlink(big + ".g")
            c.mkdir("small")
            pairs = [(os.path.join(small_dir, n), f"small/{n}") for n in smalls]
            t = timed(lambda: c.put_many(pairs))
            rows.append((f"{args.small} x 4 KiB put", "pyftp on S3 (put_many)", f"{t:.1f} s"))
        for n in (2, 3):
            p, _ = start_server(f"s3://{bucket}/pyftp")
            procs.append(p)
        rows.extend(fleet_rows(bucket, tmp, args.fleet_mib, procs))
    finally:
        for p in procs:
            p.kill()
            p.wait()
        shutil.rmtree(tmp, ignore_errors=True)
        empty(s3, bucket)
        s3.delete_bucket(Bucket=bucket)
    width = max(len(r[1]) for r in rows)
    print(f"{'what':<22} {'how':<{width}} result")
    for what, how, result in rows:
        print(f"{what:<22} {how:<{width}} {result}")
    return 0


SERVER_PORTS: dict[int, int] = {}


def fleet_rows(bucket: str, tmp: str, mib: int, procs) -> list[tuple[str, str, str]]:
    """Three clients at once, each putting then getting ``mib`` MiB, through HAProxy
    in front of 1, 2 and 3 servers."""
    ports = [SERVER_PORTS[p.pid] for p in procs]
    src = os.path.join(tmp, "fleet.bin")
    with open(src, "wb") as f:
        f.write(os.urandom(mib * MiB))
    rows = []
    for n in (1, 2, 3):
        proxy, port = start_haproxy(ports[:n], tmp, timeout="60s")
        try:
            def one(i: int, n=n, port=port) -> None:
                with Client("127.0.0.1", port, timeout=120) as c:
                    c.put(src, f"fleet{n}-{i}.bin")
                    c.get(f"fleet{n}-{i}.bin", os.path.join(tmp, f"back{i}"))
            t0 = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(3) as ex:
                list(ex.map(one, range(3)))
            t = time.perf_counter() - t0
        finally:
            proxy.kill()
            proxy.wait()
        rows.append((f"3 clients x {mib} MiB", f"put+get via HAProxy, {n} server(s)",
                     f"{3 * 2 * mib / t:.0f} MiB/s total"))
    return rows


def empty(s3, bucket: str) -> None:
    for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
        for u in page.get("Uploads", ()):
            s3.abort_multipart_upload(Bucket=bucket, Key=u["Key"], UploadId=u["UploadId"])
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", ())]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys})


if __name__ == "__main__":
    sys.exit(main())
