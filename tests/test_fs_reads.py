"""pyftp:// reads through verified ranged gets (protocol section 14): large reads
straight into the returned buffer, PyArrow's column chunks, a file replaced while
open, cat_ranges and cat_file. Against a live server from the pytest plugin; the
server's log says which requests moved how many bytes."""
from __future__ import annotations

import errno
import logging
import os

import pytest

pytest.importorskip("fsspec")

from helpers import wait_for  # noqa: E402
from pyftp.fs import PyftpFileSystem  # noqa: E402


@pytest.fixture
def fs(pyftp_server):
    """A file system of its own (no cached instance), its connections closed after."""
    made = PyftpFileSystem(skip_instance_cache=True, **pyftp_server.storage_options)
    yield made
    made.close_connections()


def _gets(caplog, name: str, count: int) -> list[int]:
    """The byte counts of the server's first ``count`` logged gets of ``name`` (waited
    for: the server logs a request just after its reply has left)."""
    def logged() -> list[int]:
        return [int(r.getMessage().split()[-2].rstrip("B")) for r in caplog.records
                if f" get {name} " in r.getMessage()]
    wait_for(lambda: len(logged()) >= count, what=f"the server to log {count} gets")
    return logged()


def test_a_large_read_skips_the_cache_and_lands_in_the_buffer_it_returns(
        fs, pyftp_server, caplog):
    """A read of at least a block is one ranged get of exactly its bytes, received into
    the buffer handed back (``read_buffer``, which PyArrow's PythonFile calls), or into
    the caller's (``readinto``); a small one goes through fsspec's cache."""
    data = os.urandom(2 * 1024 * 1024 + 100)
    (pyftp_server.root / "big.bin").write_bytes(data)
    with caplog.at_level(logging.INFO, logger="pyftp.server"):
        with fs.open("/big.bin", "rb", block_size=64 * 1024) as f:
            buf = f.read_buffer(1_000_000)
            assert isinstance(buf, memoryview) and buf == data[:1_000_000]
            assert f.read(500_000) == data[1_000_000:1_500_000] and f.tell() == 1_500_000
            into = bytearray(1_000_000)
            assert f.readinto(into) == len(data) - 1_500_000
            assert into[:len(data) - 1_500_000] == data[1_500_000:]
            assert f.read_buffer(10) == b"" and f.read() == b""
            f.seek(10)
            assert f.read_buffer(100) == data[10:110]   # through the cache: one block
        assert fs.cat_file("/big.bin", 5, 25) == data[5:25]
        sizes = _gets(caplog, "/big.bin", 5)
    assert sizes == [1_000_000, 500_000, len(data) - 1_500_000, 64 * 1024 + 100, 20]


def test_pyarrow_reads_parquet_in_whole_column_chunks(pyftp_server, caplog):
    """pd.read_parquet: the footer once, then the column chunks in ranges as PyArrow
    coalesces them, no byte fetched twice and the file never downloaded whole."""
    pd = pytest.importorskip("pandas")
    np = pytest.importorskip("numpy")
    pytest.importorskip("pyarrow")
    rng = np.random.default_rng(7)
    df = pd.DataFrame({"a": rng.random(700_000), "b": rng.random(700_000)})
    df.to_parquet(pyftp_server.root / "t.parquet")   # one row group, 2 x 5.6 MB
    size = (pyftp_server.root / "t.parquet").stat().st_size
    with caplog.at_level(logging.INFO, logger="pyftp.server"):
        got = pd.read_parquet(pyftp_server.url + "/t.parquet",
                              storage_options={"skip_instance_cache": True})
        sizes = _gets(caplog, "/t.parquet", 2)
    pd.testing.assert_frame_equal(got, df)
    assert len(sizes) == 2 and sum(sizes) <= size + 64 * 1024, (sizes, size)
    PyftpFileSystem(**pyftp_server.storage_options).close_connections()


def test_a_file_replaced_while_open_is_never_mixed_with_its_old_bytes(fs, pyftp_server):
    """Every range must come from the version that was opened (size and mtime)."""
    p = pyftp_server.root / "v.bin"
    p.write_bytes(os.urandom(300_000))
    for change in ("size", "mtime"):
        with fs.open("/v.bin", "rb", block_size=1024) as f:
            assert len(f.read(10)) == 10
            if change == "size":
                p.write_bytes(os.urandom(300_001))
            else:
                st = p.stat()
                os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
            for offset, length in ((20, 100_000), (200_000, 10)):  # past the cache, through it
                f.seek(offset)
                with pytest.raises(OSError) as caught:
                    f.read(length)
                assert caught.value.errno == errno.ESTALE and "open it again" in str(caught.value)
    with fs.open("/v.bin", "rb") as f:
        assert f.read() == p.read_bytes()


def test_cat_ranges_travel_together_with_errors_in_place(fs, pyftp_server):
    from fsspec.spec import AbstractFileSystem
    a, b = os.urandom(100_000), os.urandom(5000)
    (pyftp_server.root / "a.bin").write_bytes(a)
    (pyftp_server.root / "b.bin").write_bytes(b)
    (pyftp_server.root / "d").mkdir()
    paths = ["/a.bin", "/b.bin", "/missing", "pyftp:///a.bin", "/d", "/b.bin", "/a.bin"]
    starts = [0, -10, 0, 50_000, 0, None, 70_000]
    ends = [10, None, 5, 10**9, 1, -4990, 60_000]
    got = fs.cat_ranges(paths, starts, ends)
    assert got[:2] == [a[:10], b[-10:]] and got[3] == a[50_000:] and got[5:] == [b[:10], b""]
    assert isinstance(got[2], FileNotFoundError) and isinstance(got[4], IsADirectoryError)
    theirs = AbstractFileSystem.cat_ranges(fs, paths, starts, ends)
    assert [type(x) for x in got] == [type(x) for x in theirs]
    assert [x for x in got if isinstance(x, bytes)] == [x for x in theirs if isinstance(x, bytes)]
    with pytest.raises(FileNotFoundError):
        fs.cat_ranges(paths, starts, ends, on_error="raise")
    assert fs.cat_ranges(["/a.bin", "/b.bin"], 5, 8) == [a[5:8], b[5:8]]
    with pytest.raises(ValueError):
        fs.cat_ranges(["/a.bin"], [1, 2], 3)


def test_a_whole_cat_file_is_one_get(fs, pyftp_server, caplog):
    data = os.urandom(100_000)
    (pyftp_server.root / "w.bin").write_bytes(data)
    (pyftp_server.root / "dir").mkdir()
    with caplog.at_level(logging.INFO, logger="pyftp.server"):
        assert fs.cat_file("/w.bin") == data and fs.cat_file("/w.bin", 0) == data
        assert _gets(caplog, "/w.bin", 2) == [len(data)] * 2
    assert not [r for r in caplog.records if " stat /w.bin " in r.getMessage()]
    with pytest.raises(IsADirectoryError):
        fs.cat_file("/dir")
    with pytest.raises(FileNotFoundError):
        fs.cat_file("/nope")
