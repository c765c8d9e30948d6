"""Shared fixtures: a real server on 127.0.0.1:0 with a tmp_path root, a thread-leak
check around every test, and the ``slow`` lane.

Backends: a test using the ``server``/``make_server`` fixtures runs against the local
folder and, when an S3-compatible store is reachable (``AWS_ENDPOINT_URL`` set, boto3
installed: ``eval "$(scripts/s3-store start)"``), against a prefix of a bucket made for
this test run ([s3] in the test id). A test that reaches into the served folder itself
(it asks for ``root``) or is marked ``local_only`` is about the local disk and runs on
the folder only.

``scripts/test -m "not slow"`` is the fast lane (pure tests and in-process servers);
``scripts/test`` runs everything. A test is slow when it is marked so, or lives in a
module of :data:`SLOW_MODULES` (real terminals, console-script subprocesses, signals,
fuzzing, the benchmark smoke test).
"""
from __future__ import annotations

import itertools
import os
import threading
from pathlib import Path

import pytest

from pyftp import Client
from pyftp.server import Server, ServerConfig


#: modules whose tests start processes or terminals, run bounded attack loops, or many
#: examples (the attack catalogue, console scripts, inner pytest runs, pandas)
SLOW_MODULES = {"test_pty", "test_shutdown", "test_server_cli", "test_fuzz", "test_bench",
                "test_perf", "test_s3_store", "test_hostile", "test_cli", "test_shell_sync",
                "test_testing_plugin", "test_fsspec", "test_resume", "test_habits"}


def s3_unavailable() -> str:
    """Why the object-store backend cannot be tested here ('' when it can)."""
    import os
    if not os.environ.get("AWS_ENDPOINT_URL"):
        return "no object store: AWS_ENDPOINT_URL is not set (eval \"$(scripts/s3-store start)\")"
    try:
        import boto3  # noqa: F401
    except ImportError:
        return "boto3 is not installed (pip install -e '.[s3]')"
    return ""


def pytest_generate_tests(metafunc):
    if "backend" not in metafunc.fixturenames:
        return
    # the test, or a fixture it uses (other than the server's own chain), reaches into
    # the served folder: it is about the local disk
    users = set(metafunc.definition._fixtureinfo.argnames)
    for name, defs in metafunc._arg2fixturedefs.items():
        if name not in ("served", "make_server"):
            for d in defs:
                if "root" in d.argnames:
                    users.add("root")
    local_only = "root" in users or metafunc.definition.get_closest_marker("local_only")
    if metafunc.definition.get_closest_marker("s3_too"):
        local_only = False  # a test that knows both backends
    backends = ["local"] if local_only or s3_unavailable() else ["local", "s3"]
    if metafunc.definition.get_closest_marker("s3"):
        backends = ["s3"]  # the object store's own tests (they skip without one)
    metafunc.parametrize("backend", backends, indirect=True)


@pytest.fixture
def backend(request):
    return getattr(request, "param", "local")


@pytest.fixture(scope="session")
def s3_bucket():
    """A bucket for this test run, emptied and removed at the end."""
    import uuid

    import boto3
    from botocore.config import Config
    s3 = boto3.client("s3", config=Config(s3={"addressing_style": "path"}))
    name = f"pyftp-test-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    yield name
    empty_bucket(s3, name)
    s3.delete_bucket(Bucket=name)


def empty_bucket(s3, name: str, prefix: str = "") -> None:
    for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=name, Prefix=prefix):
        for u in page.get("Uploads", ()):
            s3.abort_multipart_upload(Bucket=name, Key=u["Key"], UploadId=u["UploadId"])
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name, Prefix=prefix):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", ())]
        if keys:
            s3.delete_objects(Bucket=name, Delete={"Objects": keys})


@pytest.fixture
def served(request, backend, root):
    """What the ``server`` fixture serves: the root folder, or a fresh bucket prefix."""
    if backend == "local":
        return str(root)
    bucket = request.getfixturevalue("s3_bucket")
    n = next(_prefixes)
    return f"s3://{bucket}/t{n}"


_prefixes = itertools.count(1)


class Remote:
    """What the server serves, read and written beside it (the way an admin or another
    tool would): the root folder, or the objects under the bucket prefix. Tests that
    only seed and check files through this run on both backends."""

    def __init__(self, served: str) -> None:
        self.served = served
        self.s3 = None
        if served.startswith("s3://"):
            bucket, _, prefix = served[len("s3://"):].partition("/")
            self.bucket, self.prefix = bucket, (prefix.strip("/") + "/" if prefix else "")
            self.s3 = _s3_client()
        else:
            self.root = Path(served)

    def _key(self, rel: str) -> str:
        return self.prefix + rel.strip("/")

    def write(self, rel: str, data: bytes = b"") -> None:
        """A file (its folders made as needed); on a bucket an object without pyftp's
        metadata, as another tool makes it."""
        if self.s3 is not None:
            self.s3.put_object(Bucket=self.bucket, Key=self._key(rel), Body=data)
            return
        p = self.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)

    def mkdir(self, rel: str) -> None:
        if self.s3 is not None:
            self.s3.put_object(Bucket=self.bucket, Key=self._key(rel) + "/", Body=b"")
        else:
            (self.root / rel).mkdir(parents=True, exist_ok=True)

    def read(self, rel: str) -> bytes:
        if self.s3 is not None:
            return self.s3.get_object(Bucket=self.bucket, Key=self._key(rel))["Body"].read()
        return (self.root / rel).read_bytes()

    def is_file(self, rel: str) -> bool:
        if self.s3 is not None:
            r = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=self._key(rel), MaxKeys=1)
            return any(o["Key"] == self._key(rel) for o in r.get("Contents", ()))
        return (self.root / rel).is_file()

    def is_dir(self, rel: str) -> bool:
        if self.s3 is not None:
            r = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=self._key(rel) + "/",
                                        MaxKeys=1)
            return r.get("KeyCount", 0) > 0
        return (self.root / rel).is_dir()

    def exists(self, rel: str) -> bool:
        return self.is_file(rel) or self.is_dir(rel)

    def names(self, rel: str = "") -> list[str]:
        """Every name in a folder, sorted, hidden partials included (on a bucket: the
        keys and sub-prefixes one level down, the folder's own marker left out)."""
        if self.s3 is None:
            return sorted(os.listdir(self.root / rel))
        base = self._key(rel) + "/" if rel.strip("/") else self.prefix
        r = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=base, Delimiter="/")
        found = [p["Prefix"][len(base):-1] for p in r.get("CommonPrefixes", ())]
        found += [o["Key"][len(base):] for o in r.get("Contents", ()) if o["Key"] != base]
        return sorted(found)

    def mtime_ns(self, rel: str) -> int:
        """The mtime the server keeps for ``rel`` (on a bucket a folder's is when its
        marker was made; one only implied by keys under it has none: 0)."""
        if self.s3 is None:
            return os.stat(self.root / rel).st_mtime_ns
        if self.is_dir(rel):  # a folder's time is its marker's (as a HEAD says), if any
            try:
                h = self.s3.head_object(Bucket=self.bucket, Key=self._key(rel) + "/")
            except self.s3.exceptions.ClientError:
                return 0
            return int(h["LastModified"].timestamp() * 1e9)
        h = self.s3.head_object(Bucket=self.bucket, Key=self._key(rel))
        return int(h["Metadata"].get("pyftp-mtime-ns") or h["LastModified"].timestamp() * 1e9)

    def mtime(self, rel: str) -> float:
        """The mtime the server reports for ``rel``, as on the wire."""
        from pyftp.protocol import wire_mtime
        return wire_mtime(self.mtime_ns(rel))


_S3 = []


def _s3_client():
    if not _S3:
        import boto3
        from botocore.config import Config
        _S3.append(boto3.client("s3", config=Config(s3={"addressing_style": "path"})))
    return _S3[0]


@pytest.fixture
def remote(served) -> Remote:
    """The served root as a :class:`Remote`, on whichever backend this test runs."""
    return Remote(served)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.module is not None and item.module.__name__.rsplit(".", 1)[-1] in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True, scope="session")
def private_cache(tmp_path_factory):
    """The console script keeps resume tokens in $XDG_CACHE_HOME/pyftp: the tests' own
    cache, never the user's (subprocesses inherit it)."""
    import os
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if old is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = old


@pytest.fixture(autouse=True)
def no_thread_leaks():
    """Fail a test that leaves threads running (servers, hashers, sessions)."""
    before = set(threading.enumerate())
    yield
    leaked = []
    for t in set(threading.enumerate()) - before:
        t.join(5.0)
        if t.is_alive():
            leaked.append(t.name)
    assert not leaked, f"threads leaked: {leaked}"


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "root"
    r.mkdir()
    return r


@pytest.fixture
def make_server(served):
    """Start servers with extra ServerConfig fields; all are shut down and joined."""
    servers = []

    def start(**overrides) -> Server:
        cfg = ServerConfig(root=str(overrides.pop("root", served)), port=0,
                           auth_fail_delay=0.01, **overrides)
        s = Server(cfg).start()
        servers.append(s)
        return s
    try:
        yield start
    finally:
        for s in servers:
            s.shutdown(grace=1.0)


@pytest.fixture
def server(make_server):
    return make_server()


@pytest.fixture
def client(server):
    host, port = server.address
    c = Client(host, port, timeout=10)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def local(tmp_path):
    """A client's local folder (the shell's lcd), empty."""
    d = tmp_path / "local"
    d.mkdir()
    return d


@pytest.fixture
def sh(server, local):
    """A shell (tests/shellharness.py) connected to the test server, closed afterwards."""
    from shellharness import make_shell
    h = make_shell(server, local)
    try:
        yield h
    finally:
        h.shell.execute("close")
