"""pyftp:// for fsspec (pyftp.fs) against a live server from the pytest plugin."""
from __future__ import annotations

import pytest

fsspec = pytest.importorskip("fsspec")
from fsspec.tests.abstract import AbstractFixtures  # noqa: E402
from fsspec.tests.abstract.copy import AbstractCopyTests  # noqa: E402
from fsspec.tests.abstract.get import AbstractGetTests  # noqa: E402
from fsspec.tests.abstract.put import AbstractPutTests  # noqa: E402


class PyftpFixtures(AbstractFixtures):
    """fsspec's abstract suites, wired the way its memory implementation wires them."""

    @pytest.fixture
    def fs(self, pyftp_server):
        fs = fsspec.filesystem("pyftp", skip_instance_cache=True, **pyftp_server.storage_options)
        try:
            yield fs
        finally:
            fs.close_connections()

    @pytest.fixture
    def fs_join(self):
        return lambda *parts: "/".join(parts)

    @pytest.fixture
    def fs_path(self):
        return ""


@pytest.mark.slow
class TestPyftpCopy(AbstractCopyTests, PyftpFixtures):
    pass


@pytest.mark.slow
class TestPyftpGet(AbstractGetTests, PyftpFixtures):
    pass


@pytest.mark.slow
class TestPyftpPut(AbstractPutTests, PyftpFixtures):
    pass


# ---------------------------------------------------------------- the file system itself

import hashlib  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import pickle  # noqa: E402

from helpers import best, wait_for  # noqa: E402
from pyftp.fs import PyftpFileSystem  # noqa: E402


@pytest.fixture
def fs(pyftp_server):
    fs = PyftpFileSystem(skip_instance_cache=True, **pyftp_server.storage_options)
    try:
        yield fs
    finally:
        fs.close_connections()


def test_registered_for_the_pyftp_protocol():
    assert fsspec.get_filesystem_class("pyftp") is PyftpFileSystem
    from importlib.metadata import entry_points
    assert [ep.value for ep in entry_points(group="fsspec.specs") if ep.name == "pyftp"] \
        == ["pyftp.fs:PyftpFileSystem"]


@pytest.mark.parametrize("url, path, kwargs", [
    ("pyftp://h/a/b", "/a/b", {"host": "h"}),
    ("pyftp://alice@files.example.org:7000/x/y.csv", "/x/y.csv",
     {"user": "alice", "host": "files.example.org", "port": 7000}),
    ("pyftp://al%40ice:p%3Aw@127.0.0.1:1/", "/",
     {"user": "al@ice", "password": "p:w", "host": "127.0.0.1", "port": 1}),
    ("pyftp://[::1]:6971/dir/", "/dir", {"host": "::1", "port": 6971}),
    ("pyftp://h/a#1?.txt", "/a#1?.txt", {"host": "h"}),
    ("/already/stripped/", "/already/stripped", {}),
    ("relative/name", "/relative/name", {}),
])
def test_urls(url, path, kwargs):
    assert PyftpFileSystem._strip_protocol(url) == path
    assert PyftpFileSystem._get_kwargs_from_urls(url) == kwargs


def test_a_bad_port_in_a_url_says_so():
    with pytest.raises(ValueError, match="bad port 'http'"):
        PyftpFileSystem._get_kwargs_from_urls("pyftp://h:http/x")


def test_listing_and_info(fs, pyftp_server):
    root = pyftp_server.root
    (root / "d" / "sub").mkdir(parents=True)
    (root / "d" / "a.txt").write_bytes(b"hello")
    (root / "d" / "d").mkdir()
    (root / "only").mkdir()
    (root / "only" / "only").write_bytes(b"x")   # a folder holding one file of its name
    assert fs.ls("/d", detail=False) == ["/d/a.txt", "/d/d", "/d/sub"]
    a = fs.info("pyftp://ignored/d/a.txt")
    assert (a["name"], a["size"], a["type"]) == ("/d/a.txt", 5, "file")
    assert a["mtime"] == pytest.approx(os.stat(root / "d" / "a.txt").st_mtime, abs=1e-3)
    assert fs.ls("/d/a.txt") == [a]
    assert fs.ls("/only", detail=False) == ["/only/only"]
    assert fs.info("/")["type"] == "directory"
    assert fs.isdir("/d/sub") and fs.isfile("/d/a.txt") and not fs.exists("/nope")
    assert fs.find("/", withdirs=False) == ["/d/a.txt", "/only/only"]
    assert fs.checksum("/d/a.txt") == int(best(b"hello"), 16)
    with pytest.raises(FileNotFoundError):
        fs.info("/nope")
    with pytest.raises(FileNotFoundError):
        fs.ls("/nope")


def test_mkdir_makedirs_rm_rmdir(fs, pyftp_server):
    root = pyftp_server.root
    fs.mkdir("/a/b/c")                       # create_parents=True by default
    assert (root / "a" / "b" / "c").is_dir()
    with pytest.raises(FileExistsError):
        fs.mkdir("/a/b")
    with pytest.raises(FileNotFoundError):
        fs.mkdir("/x/y", create_parents=False)
    fs.makedirs("/a/b/c", exist_ok=True)
    with pytest.raises(FileExistsError):
        fs.makedirs("/a/b/c")
    fs.pipe("/a/b/c/f.bin", b"data")
    with pytest.raises(OSError):
        fs.rm("/a")                          # not empty, not recursive
    with pytest.raises(OSError):
        fs.rmdir("/a/b/c")
    fs.rm("/a/b/c/f.bin")
    fs.rmdir("/a/b/c")
    fs.pipe("/a/b/g.bin", b"g")
    fs.rm("/a", recursive=True)
    assert list(root.iterdir()) == []


def test_mv_renames_on_the_server(fs, pyftp_server):
    root = pyftp_server.root
    fs.pipe({"/src/one.txt": b"1", "/src/two.txt": b"2", "/old.txt": b"old"})
    fs.mkdir("/dest")
    fs.mv("/src/one.txt", "/dest")            # into an existing folder
    assert (root / "dest" / "one.txt").read_bytes() == b"1"
    fs.mv("/src/two.txt", "/old.txt")         # replaces a file, like a local mv
    assert (root / "old.txt").read_bytes() == b"2"
    fs.mv("/src", "/new/place")               # a folder, parents made
    assert (root / "new" / "place").is_dir() and not (root / "src").exists()
    with pytest.raises(FileNotFoundError):
        fs.mv("/missing", "/elsewhere")


def test_cp_file_and_cat_file_ranges(fs, pyftp_server):
    data = os.urandom(300_000)
    fs.pipe("/in/data.bin", data)
    fs.cp_file("/in/data.bin", "/out/copy.bin")
    assert (pyftp_server.root / "out" / "copy.bin").read_bytes() == data
    assert fs.cat_file("/in/data.bin") == data
    for start, end in [(0, 10), (100, 200_000), (-50, None), (None, -7), (10, 5), (299_990, 10**9)]:
        assert fs.cat_file("/in/data.bin", start, end) == data[start:end]
    assert fs.cat("/in/data.bin", ) == data


def test_buffered_reads_seek_anywhere(fs, pyftp_server):
    data = os.urandom(3 * 1024 * 1024 + 11)
    (pyftp_server.root / "big.bin").write_bytes(data)
    with fs.open("/big.bin", "rb", block_size=64 * 1024) as f:
        assert f.size == len(data)
        f.seek(2_000_000)
        assert f.read(1000) == data[2_000_000:2_001_000]
        f.seek(-5, 2)
        assert f.read() == data[-5:]
        f.seek(0)
        assert f.read() == data
    with fsspec.open(pyftp_server.url + "/big.bin", "rb") as f:
        assert hashlib.sha256(f.read()).digest() == hashlib.sha256(data).digest()


def test_a_write_is_published_only_on_close(fs, pyftp_server):
    target = pyftp_server.root / "reports" / "out.csv"
    with fs.open("/reports/out.csv", "wb", block_size=5 * 2**20) as f:
        f.write(b"a,b\n" * 1000)
        f.flush()
        assert not target.exists()           # nothing under the name before close
    assert target.read_bytes() == b"a,b\n" * 1000
    with fs.open("/reports/out.csv", "w") as f:   # text mode, replaces it
        f.write("x\n")
    assert target.read_text() == "x\n"


def test_writes_of_any_buffer_and_size_arrive_whole_and_in_order(fs, pyftp_server):
    """Pieces of every kind PyArrow and friends hand over (bytes, bytearray, views,
    many tiny ones, some larger than a block) make up the file exactly; nothing is
    published before close, and writing after close is refused."""
    pieces = [b"head", bytearray(os.urandom(70_000)), memoryview(os.urandom(9)),
              *[os.urandom(n % 50) for n in range(300)], memoryview(os.urandom(200_000))[7:]]
    target = pyftp_server.root / "w.bin"
    with fs.open("/w.bin", "wb", block_size=64 * 1024) as f:
        for piece in pieces:
            assert f.write(piece) == len(piece)
        assert f.tell() == sum(len(p) for p in pieces) and not target.exists()
    assert target.read_bytes() == b"".join(bytes(p) for p in pieces)
    with pytest.raises(ValueError, match="closed"):
        f.write(b"late")


def test_a_failed_with_block_publishes_nothing(fs, pyftp_server):
    (pyftp_server.root / "kept.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with fs.open("/kept.txt", "wb") as f:
            f.write(b"half of the new")
            raise RuntimeError("the writer died")
    with pytest.raises(RuntimeError):
        with fs.open("/new.txt", "wb") as f:
            f.write(b"x")
            raise RuntimeError("the writer died")
    assert (pyftp_server.root / "kept.txt").read_text() == "old"
    assert sorted(p.name for p in pyftp_server.root.iterdir()) == ["kept.txt"]


def test_exclusive_empty_and_append_writes(fs, pyftp_server):
    fs.touch("/empty")
    assert (pyftp_server.root / "empty").read_bytes() == b""
    with pytest.raises(FileExistsError):
        with fs.open("/empty", "xb") as f:
            f.write(b"no")
    with pytest.raises(FileExistsError):
        fs.pipe_file("/empty", b"no", mode="create")
    assert (pyftp_server.root / "empty").read_bytes() == b""
    with pytest.raises(ValueError, match="no append"):
        fs.open("/empty", "ab")


def test_recursive_get_and_put_of_many_files(fs, pyftp_server, tmp_path):
    src = tmp_path / "src"
    files = {f"d{i % 7}/sub/f{i}.bin": os.urandom(i * 37) for i in range(150)}
    for rel, data in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
    (src / "empty_dir").mkdir()
    fs.put(str(src), "/up", recursive=True)
    for rel, data in files.items():
        assert (pyftp_server.root / "up" / rel).read_bytes() == data
    assert (pyftp_server.root / "up" / "empty_dir").is_dir()
    out = tmp_path / "out"
    fs.get("/up", str(out), recursive=True)
    for rel, data in files.items():
        assert (out / rel).read_bytes() == data
    assert (out / "empty_dir").is_dir()
    fs.get("/up/d1/sub/f1.bin", str(tmp_path / "one.bin"))
    assert (tmp_path / "one.bin").read_bytes() == files["d1/sub/f1.bin"]
    with pytest.raises(FileNotFoundError):
        fs.get(["/up/d1/sub/f1.bin", "/up/gone"], [str(tmp_path / "x"), str(tmp_path / "y")])


def test_errors_name_the_path(fs, pyftp_server_factory):
    ro = pyftp_server_factory(read_only=True)
    ro_fs = PyftpFileSystem(skip_instance_cache=True, **ro.storage_options)
    try:
        with pytest.raises(PermissionError, match="permission denied"):
            ro_fs.pipe("/x.txt", b"x")
    finally:
        ro_fs.close_connections()
    with pytest.raises(FileNotFoundError) as info:
        fs.cat_file("/not/here.txt")
    assert info.value.filename == "/not/here.txt"


def test_login_and_tls_through_url_and_storage_options(pyftp_server_factory):
    s = pyftp_server_factory(users={"alice": "pw"}, tls=True)
    (s.root / "t.csv").write_text("a\n1\n")
    opts = {"password": "pw", "tls": True, "cafile": s.cafile}
    with fsspec.open(f"{s.url}/t.csv", "rt", **opts) as f:
        assert f.read() == "a\n1\n"
    fs, path = fsspec.core.url_to_fs(f"pyftp://alice:pw@127.0.0.1:{s.port}/t.csv",
                                     tls=True, cafile=s.cafile)
    assert (fs.user, path) == ("alice", "/t.csv")
    assert fs.cat_file(path) == b"a\n1\n"
    bad = PyftpFileSystem(port=s.port, user="alice", password="wrong", tls=True,
                          cafile=s.cafile, skip_instance_cache=True)
    with pytest.raises(PermissionError, match="login failed"):
        bad.ls("/")
    for one in (fs, bad):
        one.close_connections()


def test_connections_are_pooled(pyftp_server_factory):
    s = pyftp_server_factory(max_clients=1)  # a second connection would get busy
    fs = PyftpFileSystem(skip_instance_cache=True, **s.storage_options)
    other = PyftpFileSystem(skip_instance_cache=True, **s.storage_options)
    try:
        for i in range(30):
            fs.pipe(f"/f{i}", b"x")
            assert other.cat_file(f"/f{i}") == b"x"
            assert fs.exists(f"/f{i}")
    finally:
        fs.close_connections()


def test_a_dead_pooled_connection_is_replaced(pyftp_server_factory):
    s = pyftp_server_factory(idle_timeout=0.3)
    fs = PyftpFileSystem(skip_instance_cache=True, **s.storage_options)
    try:
        fs.pipe("/a", b"1")
        # the server closes the pooled connection once it has been idle too long
        wait_for(lambda: s.server.session_count == 0, what="the idle connection closed")
        assert fs.cat_file("/a") == b"1"
    finally:
        fs.close_connections()


def test_pickles_for_dask_workers(fs, pyftp_server):
    fs.pipe("/p.txt", b"pickled")
    clone = pickle.loads(pickle.dumps(fs))
    assert clone.cat_file("/p.txt") == b"pickled"
    clone.close_connections()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_never_uses_its_parents_connection(fs, pyftp_server):
    """Parent and child list at the same time, many times: if the child spoke on the
    parent's pooled socket, replies would cross and one side would fail."""
    fs.pipe("/f.txt", b"x" * 1000)
    assert fs.ls("/", detail=False) == ["/f.txt"]       # the parent now holds a pooled connection
    rounds = 200
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report through the pipe, leave without pytest's clean-up
        ok = 0
        try:
            os.close(read_end)
            for _ in range(rounds):
                ok += fs.cat_file("/f.txt") == b"x" * 1000
            fs.close_connections()
        finally:
            os.write(write_end, str(ok).encode())
            os._exit(0)
    os.close(write_end)
    try:
        parent_ok = sum(fs.ls("/", detail=False) == ["/f.txt"] for _ in range(rounds))
    finally:
        with os.fdopen(read_end, "rb") as r:
            child_ok = int(r.read() or b"0")
        os.waitpid(pid, 0)
    assert (parent_ok, child_ok) == (rounds, rounds)


def test_pandas_csv_and_parquet_through_pyftp_urls(pyftp_server):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    df = pd.DataFrame({"day": ["mon", "tue", "wed"], "total": [12, 7, 30],
                       "ratio": [0.5, 1.25, 3.0]})
    base = pyftp_server.url + "/tables"
    df.to_csv(base + "/sales.csv", index=False)
    df.to_parquet(base + "/sales.parquet")
    assert (pyftp_server.root / "tables" / "sales.csv").read_text().startswith("day,total,ratio")
    pd.testing.assert_frame_equal(pd.read_csv(base + "/sales.csv"), df)
    pd.testing.assert_frame_equal(pd.read_parquet(base + "/sales.parquet"), df)
    local = pd.read_parquet(pyftp_server.root / "tables" / "sales.parquet")
    pd.testing.assert_frame_equal(local, df)
    PyftpFileSystem(**pyftp_server.storage_options).close_connections()


def test_get_file_into_an_open_file_and_transactions(fs, pyftp_server):
    import io
    data = os.urandom(70_000)
    fs.pipe("/t/data.bin", data)
    buf = io.BytesIO(b"keep:")
    buf.seek(5)
    fs.get_file("/t/data.bin", buf)
    assert buf.getvalue() == b"keep:" + data
    with fs.transaction:
        fs.pipe("/t/a.txt", b"a")
        with fs.open("/t/b.txt", "wb") as f:
            f.write(b"b")
        assert not (pyftp_server.root / "t" / "a.txt").exists()   # not before the commit
    assert (pyftp_server.root / "t" / "a.txt").read_bytes() == b"a"
    assert (pyftp_server.root / "t" / "b.txt").read_bytes() == b"b"


def test_download_uses_getfo_when_the_client_has_it(pyftp_server, tmp_path):
    """Contract C2: a client with getfo streams into the file object; without it, the
    download goes through a verified temporary copy. Both give the same bytes."""
    import io

    from pyftp import Client
    from pyftp.fs.files import download_into

    calls = []

    class StreamingClient(Client):
        def getfo(self, remote, f, *, on_progress=None):
            calls.append(remote)
            local = tmp_path / "via-getfo"
            result = self.get(remote, local)
            f.write(local.read_bytes())
            return result

    data = os.urandom(10_000)
    (pyftp_server.root / "s.bin").write_bytes(data)
    for cls in (Client, StreamingClient):
        with cls(pyftp_server.host, pyftp_server.port, timeout=10) as c:
            out = io.BytesIO()
            download_into(c, "/s.bin", out)
            assert out.getvalue() == data
    assert calls == ["/s.bin"]


def test_a_changed_file_is_read_anew(fs, pyftp_server):
    """Readers share a verified copy for a few seconds, but only of the same version."""
    p = pyftp_server.root / "c.txt"
    p.write_bytes(b"one")
    assert fs.cat_file("/c.txt") == b"one"
    p.write_bytes(b"three")                       # another size
    assert fs.cat_file("/c.txt") == b"three"
    fs.pipe("/c.txt", b"fiver")                   # written through this file system
    assert fs.cat_file("/c.txt") == b"fiver"
    p.write_bytes(b"sixty")                       # same size, another mtime
    os.utime(p, ns=(1_000_000_000, 1_000_000_000))
    with fs.open("/c.txt", "rb") as f:
        assert f.read() == b"sixty"
    fs.rm("/c.txt")
    with pytest.raises(FileNotFoundError):
        fs.cat_file("/c.txt")
    uncached = PyftpFileSystem(copy_ttl=0, skip_instance_cache=True, **pyftp_server.storage_options)
    fs.pipe("/d.txt", b"d")
    assert uncached.cat_file("/d.txt") == b"d"


def test_threads_share_one_file_system(fs, pyftp_server):
    """Dask's threaded scheduler: many threads, one instance, each call on its own
    pooled connection, so no exchange ever interleaves with another."""
    import threading
    errors, done = [], []

    def worker(n: int) -> None:
        try:
            for i in range(15):
                data = os.urandom(1000 + n * 100 + i)
                fs.pipe(f"/w{n}/f{i}", data)
                assert fs.cat_file(f"/w{n}/f{i}") == data
                assert fs.info(f"/w{n}/f{i}")["size"] == len(data)
            done.append(n)
        except Exception as exc:  # reported below, with the thread joined
            errors.append(exc)
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and sorted(done) == list(range(8))
    assert len(fs.find("/")) == 8 * 15


def test_an_unreachable_server_is_an_error_not_a_missing_file(pyftp_server_factory):
    from pyftp.errors import ConnectError
    s = pyftp_server_factory()
    fs = PyftpFileSystem(skip_instance_cache=True, **s.storage_options)
    assert fs.exists("/") and not fs.exists("/nope") and not fs.exists("/nope/deeper")
    fs.close_connections()
    s.stop()
    with pytest.raises(ConnectError):
        fs.exists("/")


def test_pipelined_find_agrees_with_fsspecs_walk(fs, pyftp_server):
    from fsspec.spec import AbstractFileSystem
    root = pyftp_server.root
    for rel in ("a/b/c/f1", "a/b/f2", "a/f3", "a/e/g/h/f4", "top", "z/f5"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(rel.encode())
    (root / "a" / "empty").mkdir()
    for path in ("/", "/a", "/a/b", "/top", "/missing"):
        for maxdepth in (None, 1, 2, 3):
            for withdirs in (False, True):
                ours = fs.find(path, maxdepth=maxdepth, withdirs=withdirs)
                theirs = AbstractFileSystem.find(fs, path, maxdepth=maxdepth, withdirs=withdirs)
                assert ours == theirs, (path, maxdepth, withdirs)
    details = fs.find("/a", detail=True)
    assert details["/a/f3"]["size"] == 4 and details["/a/f3"]["type"] == "file"


def test_buffered_reads_fetch_only_their_blocks(fs, pyftp_server, caplog):
    """On a server with ranged reads (protocol section 14) a seek-and-read moves the
    blocks it needs, each verified by the digest of its range, not the whole file."""
    data = os.urandom(3 * 1024 * 1024)
    (pyftp_server.root / "big.bin").write_bytes(data)
    with caplog.at_level(logging.INFO, logger="pyftp.server"):
        with fs.open("/big.bin", "rb", block_size=64 * 1024, cache_type="bytes") as f:
            f.seek(2_000_000)
            assert f.read(1000) == data[2_000_000:2_001_000]
        # the server logs a request just after its reply has left
        wait_for(lambda: any(" get /big.bin " in r.getMessage() for r in caplog.records),
                 what="the server to log the get")
    gets = [r.getMessage() for r in caplog.records if " get /big.bin " in r.getMessage()]
    assert gets and all(int(m.split()[-2].rstrip("B")) <= 64 * 1024 + 1000 for m in gets), gets

