"""The real dependencies of the object-store backend, checked for the behaviour pyftp
relies on: the S3 store that `scripts/s3-store start` runs (a one-node Ceph RADOS
Gateway; its `env` exports AWS_ENDPOINT_URL and the credentials), and HAProxy in TCP
mode in front of several servers.

These tests talk to the store with boto3 directly, not through pyftp: they pin down
what the store does (multipart uploads continued from another process, ranged reads,
user metadata, create-only puts), so the backend can be written against facts.
Imports: pytest, boto3 and the standard library only; nothing of pyftp.
"""

import concurrent.futures
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import uuid

import pytest

boto3 = pytest.importorskip("boto3",
                            reason="the object-store tests need boto3 (pip install boto3)")
from botocore.config import Config  # noqa: E402  (after the importorskip above)
from botocore.exceptions import ClientError  # noqa: E402


pytestmark = [pytest.mark.s3, pytest.mark.slow]

MiB = 1 << 20
needs_store = pytest.mark.skipif(
    not os.environ.get("AWS_ENDPOINT_URL"),
    reason="no S3 store: run `eval \"$(scripts/s3-store start)\"` first (AWS_ENDPOINT_URL unset)",
)

# A second process continues the upload: it learns where to go on from the store alone
# (ListParts), the way a server of the fleet resumes an upload another server began.
CONTINUE_UPLOAD = r"""
import sys, boto3
from botocore.config import Config
bucket, key, upload_id = sys.argv[1:4]
s3 = boto3.client("s3", config=Config(s3={"addressing_style": "path"}))
parts = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id).get("Parts", [])
stored = sum(p["Size"] for p in parts)
number = max((p["PartNumber"] for p in parts), default=0) + 1
s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number,
               Body=sys.stdin.buffer.read())
print(stored, number)
"""


def client():
    # Path-style addressing: a local gateway has no DNS name per bucket.
    return boto3.client("s3", config=Config(s3={"addressing_style": "path"},
                                            retries={"max_attempts": 2}))


def error_code(exc: ClientError) -> str:
    return exc.response["Error"]["Code"]


@pytest.fixture
def bucket():
    s3 = client()
    name = f"pyftp-test-{uuid.uuid4().hex[:16]}"
    s3.create_bucket(Bucket=name)
    try:
        yield s3, name
    finally:
        uploads = s3.list_multipart_uploads(Bucket=name).get("Uploads", [])
        for u in uploads:
            s3.abort_multipart_upload(Bucket=name, Key=u["Key"], UploadId=u["UploadId"])
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
            for obj in page.get("Contents", []):
                s3.delete_object(Bucket=name, Key=obj["Key"])
        s3.delete_bucket(Bucket=name)


def parts_of(s3, name, key, upload_id):
    parts = s3.list_parts(Bucket=name, Key=key, UploadId=upload_id).get("Parts", [])
    return [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in parts]


@needs_store
def test_multipart_upload_continued_by_another_process(bucket):
    s3, name = bucket
    key = "folder/.pyftp-partial.big.bin"
    meta = {"pyftp-digest": "sha256:" + "ab" * 32, "pyftp-mtime": "1700000000.250"}
    first, second = os.urandom(5 * MiB), os.urandom(3 * MiB + 17)
    data = first + second
    upload_id = s3.create_multipart_upload(Bucket=name, Key=key, Metadata=meta)["UploadId"]
    s3.upload_part(Bucket=name, Key=key, UploadId=upload_id, PartNumber=1, Body=first)

    child = subprocess.run([sys.executable, "-c", CONTINUE_UPLOAD, name, key, upload_id],
                           input=second, capture_output=True, timeout=120, check=False)
    assert child.returncode == 0, child.stderr.decode(errors="replace")
    assert child.stdout.split() == [str(len(first)).encode(), b"2"]

    with pytest.raises(ClientError) as hidden:  # nothing visible before completion
        s3.head_object(Bucket=name, Key=key)
    assert error_code(hidden.value) in ("404", "NoSuchKey")
    listed = s3.list_multipart_uploads(Bucket=name, Prefix="folder/").get("Uploads", [])
    assert [u["UploadId"] for u in listed] == [upload_id]

    s3.complete_multipart_upload(Bucket=name, Key=key, UploadId=upload_id,
                                 MultipartUpload={"Parts": parts_of(s3, name, key, upload_id)})
    head = s3.head_object(Bucket=name, Key=key)
    assert head["ContentLength"] == len(data)
    assert head["Metadata"] == meta
    boundary = len(first)
    ranged = s3.get_object(Bucket=name, Key=key, Range=f"bytes={boundary - 10}-{boundary + 9}")
    assert ranged["Body"].read() == data[boundary - 10:boundary + 10]
    tail = s3.get_object(Bucket=name, Key=key, Range=f"bytes={len(data) - 100}-")
    assert tail["Body"].read() == data[-100:]
    assert s3.get_object(Bucket=name, Key=key)["Body"].read() == data


@needs_store
def test_aborted_upload_is_gone_and_uploads_list_by_prefix(bucket):
    s3, name = bucket
    ids = {}
    for key in ("a/one", "a/two", "b/three"):
        ids[key] = s3.create_multipart_upload(Bucket=name, Key=key)["UploadId"]
        s3.upload_part(Bucket=name, Key=key, UploadId=ids[key], PartNumber=1, Body=b"x" * 100)
    in_a = s3.list_multipart_uploads(Bucket=name, Prefix="a/").get("Uploads", [])
    assert sorted(u["Key"] for u in in_a) == ["a/one", "a/two"]
    assert all("Initiated" in u for u in in_a)  # what a janitor ages uploads by

    s3.abort_multipart_upload(Bucket=name, Key="a/one", UploadId=ids["a/one"])
    with pytest.raises(ClientError) as gone:
        s3.list_parts(Bucket=name, Key="a/one", UploadId=ids["a/one"])
    # AWS answers NoSuchUpload; Ceph 16 answers NoSuchKey: a backend accepts both
    assert error_code(gone.value) in ("NoSuchUpload", "NoSuchKey")
    left = s3.list_multipart_uploads(Bucket=name, Prefix="a/").get("Uploads", [])
    assert [u["Key"] for u in left] == ["a/two"]


@needs_store
def test_copy_keeps_or_replaces_metadata_and_listing_by_delimiter(bucket):
    s3, name = bucket
    s3.put_object(Bucket=name, Key="d/f", Body=b"abc", Metadata={"pyftp-mtime": "1"})
    s3.put_object(Bucket=name, Key="d/sub/", Body=b"")  # an empty-folder marker
    s3.put_object(Bucket=name, Key="d/sub/g", Body=b"g")
    s3.copy_object(Bucket=name, Key="d/kept", CopySource={"Bucket": name, "Key": "d/f"})
    s3.copy_object(Bucket=name, Key="d/new", CopySource={"Bucket": name, "Key": "d/f"},
                   MetadataDirective="REPLACE", Metadata={"pyftp-mtime": "2"})
    assert s3.head_object(Bucket=name, Key="d/kept")["Metadata"] == {"pyftp-mtime": "1"}
    assert s3.head_object(Bucket=name, Key="d/new")["Metadata"] == {"pyftp-mtime": "2"}
    listing = s3.list_objects_v2(Bucket=name, Prefix="d/", Delimiter="/")
    assert sorted(o["Key"] for o in listing["Contents"]) == ["d/f", "d/kept", "d/new"]
    assert [p["Prefix"] for p in listing["CommonPrefixes"]] == ["d/sub/"]


@needs_store
def test_create_only_put_has_exactly_one_winner(bucket):
    """`If-None-Match: *` on PutObject: Ceph 16 honours it (412 for the losers)."""
    s3, name = bucket
    writers, rounds, bad_rounds = 4, 10, []
    for r in range(rounds):
        key = f"race/{r}"
        start = threading.Barrier(writers)

        def write(j, key=key, start=start):
            start.wait(timeout=30)
            try:
                s3.put_object(Bucket=name, Key=key, Body=bytes([65 + j]) * 65536, IfNoneMatch="*")
                return j
            except ClientError as exc:
                assert error_code(exc) == "PreconditionFailed"
                return None

        with concurrent.futures.ThreadPoolExecutor(writers) as pool:
            winners = [j for j in pool.map(write, range(writers)) if j is not None]
        stored = s3.get_object(Bucket=name, Key=key)["Body"].read()
        if len(winners) != 1 or stored != bytes([65 + winners[0]]) * 65536:
            bad_rounds.append((r, winners))
    assert bad_rounds == []


@needs_store
def test_put_if_match_is_a_compare_and_swap(bucket):
    """`If-Match: ETAG` on PutObject: how a claim's lease is renewed or taken over."""
    s3, name = bucket
    # Ceph 16 matches the ETag only without its quotes (GET takes both forms)
    first = s3.put_object(Bucket=name, Key="claim", Body=b"server-1")["ETag"].strip('"')
    second = s3.put_object(Bucket=name, Key="claim", Body=b"server-2", IfMatch=first)["ETag"]
    with pytest.raises(ClientError) as stale:
        s3.put_object(Bucket=name, Key="claim", Body=b"server-3", IfMatch=first)
    assert error_code(stale.value) == "PreconditionFailed"
    assert s3.get_object(Bucket=name, Key="claim")["Body"].read() == b"server-2"
    assert second.strip('"') != first


# ------------------------------------------------------------------ scripts/s3-store
SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                      "scripts", "s3-store")


def store_script(*args):
    return subprocess.run([SCRIPT, *args], capture_output=True, text=True, timeout=300,
                          check=False)


def test_store_script_refuses_bad_usage_and_foreign_folders(tmp_path):
    assert store_script("bogus").returncode == 2
    assert store_script().returncode == 2
    (tmp_path / "keep").write_text("not a store")
    refused = store_script("stop", str(tmp_path))
    assert refused.returncode == 1
    assert "not a store made by scripts/s3-store" in refused.stderr
    assert (tmp_path / "keep").read_text() == "not a store"
    assert store_script("status", str(tmp_path / "none")).returncode == 1


@pytest.mark.skipif(any(shutil.which(p) is None for p in ("ceph-mon", "ceph-osd", "radosgw")),
                    reason="Ceph is not installed (scripts/s3-store start installs it as root)")
def test_store_script_runs_a_cluster_of_its_own():
    """A second store beside any running one: start, status, env, start again, stop."""
    parent = tempfile.mkdtemp(prefix="pyftp-s3-test-", dir="/var/tmp")
    folder = os.path.join(parent, "store")
    try:
        started = store_script("start", folder)
        if started.returncode == 3:
            pytest.skip(started.stderr.strip().splitlines()[-1])
        assert started.returncode == 0, started.stderr
        exports = dict(line.removeprefix("export ").split("=", 1)
                       for line in started.stdout.splitlines())
        assert exports["PYFTP_S3_STORE_DIR"] == folder
        assert exports["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
        assert exports["AWS_ENDPOINT_URL"] != os.environ.get("AWS_ENDPOINT_URL")
        assert store_script("status", folder).returncode == 0
        assert store_script("env", folder).stdout == started.stdout
        again = store_script("start", folder)  # idempotent: the same store, the same exports
        assert (again.returncode, again.stdout) == (0, started.stdout)
        s3 = boto3.client("s3", endpoint_url=exports["AWS_ENDPOINT_URL"],
                          aws_access_key_id=exports["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=exports["AWS_SECRET_ACCESS_KEY"],
                          region_name=exports["AWS_DEFAULT_REGION"],
                          config=Config(s3={"addressing_style": "path"}))
        s3.create_bucket(Bucket="own")
        s3.put_object(Bucket="own", Key="k", Body=b"v")
        assert s3.get_object(Bucket="own", Key="k")["Body"].read() == b"v"
    finally:
        stopped = store_script("stop", folder)
        shutil.rmtree(parent, ignore_errors=True)
    assert stopped.returncode == 0, stopped.stderr
    assert not os.path.exists(folder)
    assert store_script("status", folder).returncode == 1


# ------------------------------------------------------------------ HAProxy
class NameServer:
    """A TCP listener that answers every connection with its own name, then closes."""

    def __init__(self, name: str):
        self.name = name.encode()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.sendall(self.name)

    def close(self):
        self.stopping.set()
        self.thread.join(timeout=5)
        self.sock.close()


def ask(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        return c.recv(64)


@pytest.mark.skipif(shutil.which("haproxy") is None,
                    reason="HAProxy is not installed (apt-get install haproxy)")
def test_haproxy_balances_and_fails_over():
    from balancer import start_haproxy  # the fleet test's balancer, config and all
    backends = [NameServer("one"), NameServer("two")]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            proxy, port = start_haproxy([b.port for b in backends], tmp)
            try:
                answers = [ask(port) for _ in range(10)]
                assert set(answers) == {b"one", b"two"}, answers  # round robin reaches both

                backends[0].close()  # one server dies: new connections go to the other
                answers = []
                for _ in range(200):  # bounded: the health check marks it down in ~200 ms
                    answers.append(ask(port))
                    if answers[-5:] == [b"two"] * 5:
                        break
                assert answers[-5:] == [b"two"] * 5, answers
            finally:
                proxy.terminate()
                try:
                    proxy.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proxy.kill()
                    proxy.wait(timeout=10)
    finally:
        for b in backends:
            b.close()
