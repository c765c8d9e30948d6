"""Folders, globs, mirror, pipelining and retries (pyftp.sync and Client.*_many), all
against real servers on loopback with real files."""
from __future__ import annotations

import hashlib
import json
import os
import socket
import struct
import threading

import pytest

from helpers import best
from pyftp import Client
from pyftp.client import TransferResult
from pyftp.errors import PyftpError, TransportError
from pyftp.protocol import is_partial_name
from pyftp.server import Server, ServerConfig
from pyftp import sync

LONG = "L" * 251 + ".txt"  # 255 bytes: the longest name most file systems allow


def sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def snapshot(top) -> dict:
    """Every folder and file under ``top`` (bytes names): kind, SHA-256, mtime in ns."""
    top = os.fsencode(os.fspath(top))
    out = {}
    for dirpath, dirs, files in os.walk(top):
        for d in dirs:
            p = os.path.join(dirpath, d)
            out[os.path.relpath(p, top)] = ("dir",)
        for f in files:
            p = os.path.join(dirpath, f)
            out[os.path.relpath(p, top)] = ("file", sha(p), os.stat(p).st_mtime_ns)
    return out


def assert_same_tree(a, b, *, dir_times: bool = False) -> None:
    sa, sb = snapshot(a), snapshot(b)
    assert sorted(sa) == sorted(sb)
    for rel, val in sa.items():
        other = sb[rel]
        assert val[:2] == other[:2], rel
        if val[0] == "file":
            assert abs(val[2] - other[2]) < 1000, f"mtime of {rel!r} not kept"
        elif dir_times:
            ta = os.stat(os.path.join(os.fsencode(os.fspath(a)), rel)).st_mtime_ns
            tb = os.stat(os.path.join(os.fsencode(os.fspath(b)), rel)).st_mtime_ns
            assert abs(ta - tb) < 1000, f"folder mtime of {rel!r} not kept"


def no_partials(top) -> bool:
    return not any(is_partial_name(n) for _d, _s, files in os.walk(top) for n in files)


def make_tree(top) -> None:
    """Nested folders, empty folders, a 0-byte file, unicode, spaces, a 255-byte name."""
    files = {
        "readme.txt": b"hello\n",
        "zero.bin": b"",
        "sub dir/notes with spaces.md": b"# notes\n" * 100,
        "sub dir/deeper/deepest/x.dat": os.urandom(70_000),
        "résumé ✓/日本語.txt": "テキスト".encode(),
        f"long/{LONG}": b"long name",
        "big/blob.bin": os.urandom(1_500_000),
    }
    for rel, data in files.items():
        p = os.path.join(top, *rel.split("/"))
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
    for d in ("empty", "sub dir/empty inside", "a/b/c/empty"):
        os.makedirs(os.path.join(top, *d.split("/")))
    # distinct, old modification times with sub-second parts, so keeping them is visible
    for i, (dirpath, _dirs, names) in enumerate(os.walk(top)):
        for j, n in enumerate(names):
            t = 1_600_000_000_123_456_000 + (i * 100 + j) * 1_000_777_000
            os.utime(os.path.join(dirpath, n), ns=(t, t))


@pytest.fixture
def connect(server):
    clients = []

    def open_client(**kw) -> Client:
        c = Client(*server.address, timeout=10, **kw)
        clients.append(c)
        return c
    try:
        yield open_client
    finally:
        for c in clients:
            c.close()


# ---------------------------------------------------------------------- trees

def test_put_tree_then_get_tree_gives_an_identical_tree(connect, root, tmp_path):
    src, back = tmp_path / "src", tmp_path / "back"
    make_tree(src)
    c = connect()
    events = []
    jobs = []
    up = sync.put_tree(c, src, "/up", on_event=lambda *e: events.append(e),
                       on_job=jobs.append)
    assert up.ok, up.errors
    assert len(up.sent) == 7 and up.bytes_sent == up.bytes_total
    assert {"empty", "sub dir/empty inside", "a/b/c/empty"} <= set(up.dirs_created)
    assert_same_tree(src, root / "up")
    assert no_partials(root)
    assert jobs[-1].files_done == jobs[-1].files_total == 7
    assert jobs[-1].bytes_done == jobs[-1].bytes_total == sum(
        os.path.getsize(os.path.join(d, f)) for d, _s, fs in os.walk(src) for f in fs)
    assert ("sent", "readme.txt", "6 B") in events

    down = sync.get_tree(c, "/up", back)
    assert down.ok, down.errors
    assert sorted(down.sent) == sorted(up.sent)
    assert_same_tree(src, back)
    assert_same_tree(root / "up", back, dir_times=True)
    assert no_partials(back)


def test_put_tree_again_skips_identical_files_and_refuses_changed_ones(connect, root, tmp_path):
    src = tmp_path / "src"
    make_tree(src)
    c = connect()
    assert sync.put_tree(c, src, "t").ok
    (src / "readme.txt").write_bytes(b"changed\n")
    again = sync.put_tree(c, src, "t")
    assert again.sent == []
    assert len(again.skipped) == 6
    assert [p for p, _ in again.errors] == ["readme.txt"]
    assert "differs" in again.errors[0][1]
    assert (root / "t" / "readme.txt").read_bytes() == b"hello\n"
    forced = sync.put_tree(c, src, "t", overwrite=True)
    assert forced.ok and (root / "t" / "readme.txt").read_bytes() == b"changed\n"


def test_put_tree_never_follows_symlinks_out_and_skips_special_files(connect, root, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "real.txt").write_bytes(b"real")
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"outside the tree")
    os.symlink(secret, src / "escape.txt")
    os.symlink(tmp_path, src / "escape_dir")
    os.symlink("real.txt", src / "inside_link.txt")
    os.mkfifo(src / "pipe")
    rep = sync.put_tree(connect(), src, "s")
    assert rep.ok, rep.errors
    assert sorted(rep.sent) == ["inside_link.txt", "real.txt"]
    ignored = dict(rep.ignored)
    assert set(ignored) == {"escape.txt", "escape_dir", "pipe"}
    assert "outside" in ignored["escape.txt"]
    assert sorted(os.listdir(root / "s")) == ["inside_link.txt", "real.txt"]
    assert (root / "s" / "inside_link.txt").read_bytes() == b"real"


def test_get_tree_does_not_write_through_a_local_symlink_out(connect, root, tmp_path):
    (root / "t" / "sub").mkdir(parents=True)
    (root / "t" / "sub" / "f.txt").write_bytes(b"data")
    dest, outside = tmp_path / "dest", tmp_path / "outside"
    dest.mkdir()
    outside.mkdir()
    os.symlink(outside, dest / "sub")
    rep = sync.get_tree(connect(), "t", dest)
    errors = dict(rep.errors)
    assert sorted(errors) == ["sub", "sub/f.txt"]
    assert "leads outside" in errors["sub"]
    assert os.listdir(outside) == []


def test_a_name_that_is_not_utf8_survives_listing_and_recursive_get(connect, root, tmp_path):
    raw = os.path.join(os.fsencode(str(root)), b"odd", b"caf\xe9 \xff.txt")
    os.makedirs(os.path.dirname(raw))
    with open(raw, "wb") as f:
        f.write(b"latin-1 name")
    c = connect()
    names = [e.name for e in c.ls("odd")]
    assert names == [os.fsdecode(b"caf\xe9 \xff.txt")]
    rep = sync.get_tree(c, "odd", tmp_path / "back")
    assert rep.ok, rep.errors
    assert os.listdir(os.fsencode(str(tmp_path / "back"))) == [b"caf\xe9 \xff.txt"]
    with open(os.path.join(os.fsencode(str(tmp_path / "back")), b"caf\xe9 \xff.txt"), "rb") as f:
        assert f.read() == b"latin-1 name"
    assert sync.display_name(names[0]) == "caf\\xe9 \\xff.txt"


def test_get_tree_of_a_file_or_a_missing_folder_is_a_clear_error(connect, root, tmp_path):
    (root / "f.txt").write_bytes(b"x")
    c = connect()
    with pytest.raises(PyftpError, match="not a directory.*use get"):
        sync.get_tree(c, "f.txt", tmp_path / "d")
    with pytest.raises(PyftpError, match="not found"):
        sync.get_tree(c, "nope", tmp_path / "d")
    with pytest.raises(PyftpError, match="not found"):
        sync.put_tree(c, tmp_path / "missing", "x")


# ---------------------------------------------------------------------- mirror

def test_mirror_reverse_twice_sends_nothing_the_second_time(connect, tmp_path):
    src = tmp_path / "src"
    make_tree(src)
    c = connect()
    first = sync.mirror(c, src, "/m", reverse=True)
    assert first.ok and len(first.sent) == 7
    second = sync.mirror(c, src, "/m", reverse=True)
    assert second.ok
    assert second.sent == [] and second.bytes_sent == 0
    assert len(second.skipped) == 7
    assert second.summary().startswith("sent 0 files (0 B), skipped 7, deleted 0")
    # a pull mirror of the result is just as quiet the second time
    assert len(sync.mirror(c, "/m", tmp_path / "pulled").sent) == 7
    assert sync.mirror(c, "/m", tmp_path / "pulled").sent == []


def test_mirror_sends_only_what_changed(connect, root, tmp_path):
    src = tmp_path / "src"
    make_tree(src)
    c = connect()
    sync.mirror(c, src, "m", reverse=True)
    (src / "readme.txt").write_bytes(b"hello, world\n")  # size differs
    st = os.stat(src / "zero.bin")
    os.utime(src / "zero.bin", ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))  # time
    (src / "new.txt").write_bytes(b"new")
    rep = sync.mirror(c, src, "m", reverse=True)
    assert sorted(rep.sent) == ["new.txt", "readme.txt", "zero.bin"]
    reasons = {a.path: a.reason for a in rep.plan if a.kind == "send"}
    assert reasons == {"new.txt": "new", "readme.txt": "size differs",
                       "zero.bin": "modification time differs"}
    assert_same_tree(src, root / "m")


def test_mirror_delete_removes_exactly_the_extras(connect, root, tmp_path):
    src = tmp_path / "src"
    make_tree(src)
    c = connect()
    sync.mirror(c, src, "m", reverse=True)
    (root / "m" / "extra.txt").write_bytes(b"x")
    (root / "m" / "sub dir" / "extra2.txt").write_bytes(b"y")
    (root / "m" / "gone" / "deep").mkdir(parents=True)
    (root / "m" / "gone" / "deep" / "z.txt").write_bytes(b"z")
    (root / "m" / "gone" / "empty").mkdir()
    keep_outside = root / "not-mirrored.txt"
    keep_outside.write_bytes(b"keep")

    without = sync.mirror(c, src, "m", reverse=True)
    assert without.deleted == [] and (root / "m" / "extra.txt").exists()

    rep = sync.mirror(c, src, "m", reverse=True, delete=True)
    assert rep.ok, rep.errors
    assert sorted(rep.deleted) == ["extra.txt", "gone/", "gone/deep/", "gone/deep/z.txt",
                                   "gone/empty/", "sub dir/extra2.txt"]
    assert rep.sent == []
    assert_same_tree(src, root / "m")
    assert keep_outside.read_bytes() == b"keep"


def test_mirror_pull_with_delete(connect, root, tmp_path):
    (root / "r" / "keep").mkdir(parents=True)
    (root / "r" / "keep" / "a.txt").write_bytes(b"a")
    local = tmp_path / "local"
    (local / "keep").mkdir(parents=True)
    (local / "keep" / "old.txt").write_bytes(b"old")
    (local / "stale" / "x").mkdir(parents=True)
    rep = sync.mirror(connect(), "r", local, delete=True)
    assert rep.ok, rep.errors
    assert sorted(rep.deleted) == ["keep/old.txt", "stale/", "stale/x/"]
    assert rep.sent == ["keep/a.txt"]
    assert_same_tree(root / "r", local)


def test_mirror_delete_deletes_nothing_when_the_source_cannot_be_read_whole(connect, root,
                                                                            tmp_path):
    # the server refuses paths with a backslash, so this folder lists but cannot be read
    (root / "m" / "a\\b").mkdir(parents=True)
    (root / "m" / "a\\b" / "f.txt").write_bytes(b"f")
    (root / "m" / "x.txt").write_bytes(b"x")
    local = tmp_path / "local"
    (local / "a\\b").mkdir(parents=True)
    (local / "a\\b" / "f.txt").write_bytes(b"precious")
    (local / "old.txt").write_bytes(b"old")
    rep = sync.mirror(connect(), "m", local, delete=True)
    assert rep.deleted == [] and rep.sent == ["x.txt"]
    assert any("nothing deleted" in why for _p, why in rep.errors)
    assert (local / "a\\b" / "f.txt").read_bytes() == b"precious"
    assert (local / "old.txt").exists()


def test_mirror_delete_keeps_what_the_source_ignores_on_purpose(connect, root, tmp_path):
    src = tmp_path / "src"
    (src / "real").mkdir(parents=True)
    os.symlink(src / "real", src / "link")  # a folder symlink is not entered
    (root / "m" / "link").mkdir(parents=True)
    (root / "m" / "link" / "x.txt").write_bytes(b"x")
    (root / "m" / "extra.txt").write_bytes(b"e")
    rep = sync.mirror(connect(), src, "m", reverse=True, delete=True)
    assert rep.ok, rep.errors
    assert rep.deleted == ["extra.txt"]
    assert (root / "m" / "link" / "x.txt").exists()


def test_mirror_delete_replaces_a_file_that_stands_where_a_folder_goes(connect, root, tmp_path):
    src = tmp_path / "src"
    (src / "thing").mkdir(parents=True)
    (src / "thing" / "inside.txt").write_bytes(b"in")
    (src / "plain").write_bytes(b"file now")
    (root / "m" / "plain").mkdir(parents=True)
    (root / "m" / "plain" / "old.txt").write_bytes(b"old")
    (root / "m" / "thing").write_bytes(b"was a file")
    c = connect()
    refused = sync.mirror(c, src, "m", reverse=True)
    assert sorted(p for p, _ in refused.errors) == ["plain", "thing"]
    assert (root / "m" / "thing").read_bytes() == b"was a file"
    rep = sync.mirror(c, src, "m", reverse=True, delete=True)
    assert rep.ok, rep.errors
    assert (root / "m" / "thing" / "inside.txt").read_bytes() == b"in"
    assert (root / "m" / "plain").read_bytes() == b"file now"


def test_dry_run_plans_and_changes_nothing(connect, root, tmp_path):
    src = tmp_path / "src"
    make_tree(src)
    c = connect()
    sync.mirror(c, src, "m", reverse=True)
    (src / "readme.txt").write_bytes(b"changed!!\n")
    (src / "newdir").mkdir()
    (root / "m" / "extra.txt").write_bytes(b"x")
    before_remote, before_local = snapshot(root), snapshot(src)
    for reverse, a, b in ((True, src, "m"), (False, "m", src)):
        rep = sync.mirror(c, a, b, reverse=reverse, delete=True, dry_run=True)
        assert rep.dry_run and rep.sent == [] and rep.deleted == []
        assert snapshot(root) == before_remote and snapshot(src) == before_local
        kinds = {(x.kind, x.path) for x in rep.plan}
        if reverse:
            assert {("send", "readme.txt"), ("mkdir", "newdir"), ("delete", "extra.txt")} <= kinds
            assert rep.summary().startswith("would send 1 file")
            assert "would delete 1" in rep.summary()
        else:
            assert {("send", "readme.txt"), ("send", "extra.txt"), ("rmdir", "newdir")} <= kinds
    assert "send readme.txt 10 B (size differs)" in [a.describe() for a in rep.plan] + [
        x.describe() for x in sync.mirror(c, src, "m", reverse=True, dry_run=True).plan]


def test_checksum_mode_catches_a_same_size_same_mtime_change(connect, root, tmp_path):
    src = tmp_path / "src"
    make_tree(src)
    c = connect()
    sync.mirror(c, src, "m", reverse=True)
    target = src / "sub dir" / "notes with spaces.md"
    st = os.stat(target)
    data = bytearray(target.read_bytes())
    data[10] ^= 0xFF
    target.write_bytes(bytes(data))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert sync.mirror(c, src, "m", reverse=True).sent == []  # size+time cannot see it
    rep = sync.mirror(c, src, "m", reverse=True, checksum=True)
    assert rep.sent == ["sub dir/notes with spaces.md"]
    assert [a.reason for a in rep.plan if a.kind == "send"] == ["checksum differs"]
    assert len(rep.skipped) == 6
    assert sha(root / "m" / "sub dir" / "notes with spaces.md") == sha(target)
    # and in the pull direction
    data[11] ^= 0xFF
    (root / "m" / "sub dir" / "notes with spaces.md").write_bytes(bytes(data))
    os.utime(root / "m" / "sub dir" / "notes with spaces.md", ns=(st.st_atime_ns, st.st_mtime_ns))
    assert sync.mirror(c, "m", src, checksum=True).sent == ["sub dir/notes with spaces.md"]
    assert target.read_bytes() == bytes(data)


# ---------------------------------------------------------------------- globs

def test_mget_and_mput_expand_globs(connect, root, tmp_path):
    for name in ("a1.txt", "a2.txt", "b.log", ".hidden.txt"):
        (root / name).write_bytes(name.encode())
    (root / "sub").mkdir()
    (root / "sub" / "a3.txt").write_bytes(b"a3")
    c = connect()
    assert sync.expand_remote(c, "*.txt") == ["a1.txt", "a2.txt"]
    assert sync.expand_remote(c, "/*/a?.txt") == ["/sub/a3.txt"]
    assert sync.expand_remote(c, ".h*") == [".hidden.txt"]
    out = tmp_path / "out"
    out.mkdir()
    rep = sync.mget(c, ["a*.txt", "*/a*.txt", "nomatch*", "sub"], out)
    assert sorted(rep.sent) == ["a1.txt", "a2.txt", "sub/a3.txt"]
    assert sorted(os.listdir(out)) == ["a1.txt", "a2.txt", "a3.txt"]
    assert [p for p, _ in rep.errors] == ["nomatch*"]
    assert [p for p, _ in rep.ignored] == ["sub"]
    rec = sync.mget(c, ["su*"], out, recursive=True)
    assert rec.ok and (out / "sub" / "a3.txt").read_bytes() == b"a3"

    (tmp_path / "up").mkdir()
    for name in ("x1.csv", "x2.csv", "y.txt"):
        (tmp_path / "up" / name).write_bytes(name.encode())
    c.mkdir("in")
    rep = sync.mput(c, [str(tmp_path / "up" / "*.csv"), str(tmp_path / "none*")], "in")
    assert sorted(os.listdir(root / "in")) == ["x1.csv", "x2.csv"]
    assert len(rep.sent) == 2 and [p for p, _ in rep.errors] == [str(tmp_path / "none*")]
    assert sync.expand_local(str(tmp_path / "up" / "*.csv")) == [
        str(tmp_path / "up" / "x1.csv"), str(tmp_path / "up" / "x2.csv")]


def test_problems_are_typed_where_they_happen(connect, root, tmp_path):
    from pyftp.errors import AlreadyExistsError, LocalError, NotFoundError
    (root / "sub").mkdir()
    (root / "f.txt").write_bytes(b"f")
    c = connect()
    out = tmp_path / "out"
    out.mkdir()
    rep = sync.mget(c, ["nomatch*", "sub", "f.txt"], out)
    (nomatch,), (folder,) = rep.errors, rep.ignored
    assert (nomatch.kind, nomatch.path, nomatch.message) == ("no_match", "nomatch*",
                                                             "no remote file matches")
    assert isinstance(nomatch.error, NotFoundError)
    assert folder.kind == "folder" and folder.path == "sub" and folder.hint
    local = sync.mput(c, [str(tmp_path / "none*")], ".")
    assert local.errors[0].kind == "no_match" and isinstance(local.errors[0].error, LocalError)
    src = tmp_path / "src"
    src.mkdir()
    (src / "f.txt").write_bytes(b"different")
    os.mkfifo(src / "pipe")
    rep = sync.put_tree(c, src, ".")
    (exists,) = rep.errors
    assert exists.kind == "exists" and isinstance(exists.error, AlreadyExistsError)
    assert exists.hint == "use overwrite to replace it" and "differs" in exists.message
    assert [(p.path, p.kind) for p in rep.ignored] == [("pipe", "special")]


def test_get_tree_again_sends_only_what_changed(connect, root, tmp_path):
    make_tree(root / "t")
    c = connect()
    back = tmp_path / "back"
    first = sync.get_tree(c, "t", back)
    assert first.ok and len(first.sent) == 7 and first.skipped == []
    again = sync.get_tree(c, "t", back)
    assert again.ok and again.sent == [] and len(again.skipped) == 7
    assert again.bytes_sent == 0 and "sent 0 files (0 B), skipped 7" in again.summary()
    (root / "t" / "readme.txt").write_bytes(b"changed on the server\n")
    changed = sync.get_tree(c, "t", back)
    assert changed.sent == ["readme.txt"] and len(changed.skipped) == 6
    assert (back / "readme.txt").read_bytes() == b"changed on the server\n"
    assert_same_tree(root / "t", back)


def test_get_tree_with_checksum_sees_a_change_that_keeps_size_and_time(connect, root,
                                                                       tmp_path):
    make_tree(root / "t")
    c = connect()
    back = tmp_path / "back"
    assert sync.get_tree(c, "t", back).ok
    target = back / "readme.txt"
    st = target.stat()
    target.write_bytes(bytes(b ^ 1 for b in target.read_bytes()))  # same size
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))            # same time
    assert sync.get_tree(c, "t", back).sent == []  # size + time cannot see it
    rep = sync.get_tree(c, "t", back, checksum=True)
    assert rep.sent == ["readme.txt"] and len(rep.skipped) == 6
    assert sha(target) == sha(root / "t" / "readme.txt")


# ---------------------------------------------------------------------- pipelining

class CountingSocket:
    """Counts the sends a client makes on its real socket (everything else passes)."""

    def __init__(self, sock):
        self._sock, self.sends = sock, 0

    def sendall(self, data):
        self.sends += 1
        return self._sock.sendall(data)

    def __getattr__(self, name):
        return getattr(self._sock, name)


def test_get_many_of_500_small_files_is_pipelined_and_verified(connect, root, tmp_path):
    (root / "many").mkdir()
    expected = {}
    for i in range(500):
        data = f"file {i}\n".encode() * (i % 7)
        (root / "many" / f"f{i:03}.txt").write_bytes(data)
        expected[f"f{i:03}.txt"] = data
    out = tmp_path / "out"
    out.mkdir()
    c = connect()
    writes = c.writes
    done = []
    results = c.get_many([(f"many/{n}", out / n) for n in sorted(expected)],
                         on_file=lambda i, r: done.append(i))
    assert all(isinstance(r, TransferResult) for r in results)
    assert sorted(done) == list(range(500))
    for n, data in expected.items():
        assert (out / n).read_bytes() == data
    assert [r.sha256 for r in results] == [best(expected[n])
                                            for n in sorted(expected)]
    # 500 requests went out in a few dozen writes: not one round trip per file
    assert c.writes - writes <= 500 // 16
    assert no_partials(out)


def test_get_many_and_put_many_report_per_file_errors_and_go_on(connect, root, tmp_path):
    (root / "ok.txt").write_bytes(b"fine")
    (root / "adir").mkdir()
    c = connect()
    res = c.get_many([("ok.txt", tmp_path / "a"), ("missing", tmp_path / "b"),
                      ("adir", tmp_path / "c"), ("ok.txt", tmp_path / "no" / "such" / "d")])
    assert isinstance(res[0], TransferResult)
    assert res[1].code == "not_found" and res[2].code == "is_a_directory"
    assert "cannot write" in str(res[3])
    assert (tmp_path / "a").read_bytes() == b"fine"
    assert c.hash("ok.txt")  # the connection is still in step
    (tmp_path / "up.txt").write_bytes(b"up")
    res = c.put_many([(tmp_path / "up.txt", "ok.txt"), (tmp_path / "nope", "x"),
                      (tmp_path / "up.txt", "new.txt"), (tmp_path, "dir")])
    assert res[0].code == "exists" and "cannot read" in str(res[1])
    assert isinstance(res[2], TransferResult) and "directory" in str(res[3])
    assert (root / "new.txt").read_bytes() == b"up" and (root / "ok.txt").read_bytes() == b"fine"
    assert c.hash_many(["ok.txt", "missing"])[1].code == "not_found"


def test_get_many_retries_a_resumed_file_from_zero_when_the_partial_is_stale(connect, root,
                                                                             tmp_path):
    data = os.urandom(300_000)
    (root / "f.bin").write_bytes(data)
    from pyftp.protocol import partial_name
    (tmp_path / partial_name("f.bin")).write_bytes(b"not the same bytes" * 1000)
    res = connect().get_many([("f.bin", tmp_path / "f.bin")])[0]
    assert isinstance(res, TransferResult) and res.offset == 0
    assert (tmp_path / "f.bin").read_bytes() == data
    assert no_partials(tmp_path)


# ---------------------------------------------------------------------- retries

def _swap_server_when(server_box: dict, root, port: int, threshold: int,
                      rate: int | None = None):
    """An on_progress callback that kills the server mid-file and starts a fresh one on
    the same root and port, exactly once: the job sees a dropped connection."""
    def on_progress(done: int, total: int) -> None:
        if done >= threshold and not server_box.get("swapped") and total > threshold * 2:
            server_box["swapped"] = True
            server_box["old"].shutdown(grace=0)
            server_box["new"] = Server(ServerConfig(root=str(root), port=port,
                                                    limit_rate=rate)).start()
    return on_progress


@pytest.mark.parametrize("direction", ["get", "put"])
def test_a_dropped_connection_is_retried_and_the_file_resumed(root, tmp_path, direction):
    big = os.urandom(2_000_000)
    src = tmp_path / "src"
    src.mkdir()
    (src / "small.txt").write_bytes(b"small")
    (src / "big.bin").write_bytes(big)
    if direction == "get":
        (root / "t").mkdir()
        for n in ("small.txt", "big.bin"):
            (root / "t" / n).write_bytes((src / n).read_bytes())
    box: dict = {"old": Server(ServerConfig(root=str(root), port=0, limit_rate=4_000_000)).start()}
    port = box["old"].address[1]
    c = Client("127.0.0.1", port, timeout=10)
    events = []
    delays = []
    try:
        progress = _swap_server_when(box, root, port, 500_000)
        if direction == "get":
            rep = sync.get_tree(c, "t", tmp_path / "back", on_progress=progress,
                                on_event=lambda *e: events.append(e), sleep=delays.append)
            out = tmp_path / "back" / "big.bin"
        else:
            rep = sync.put_tree(c, src, "t", on_progress=progress,
                                on_event=lambda *e: events.append(e), sleep=delays.append)
            out = root / "t" / "big.bin"
    finally:
        c.close()
        box["old"].shutdown(grace=0)
        if "new" in box:
            box["new"].shutdown(grace=0)
    assert box.get("swapped")
    assert rep.ok, rep.errors
    assert rep.retries >= 1 and delays and delays[0] == sync.RetryPolicy().delay(1) == 5.0
    retry_lines = [d for kind, _p, d in events if kind == "retry"]
    assert retry_lines and retry_lines[0].startswith("connection lost (")
    assert retry_lines[0].endswith("; retry 1 of 3 in 5 s")
    assert sha(out) == hashlib.sha256(big).hexdigest()
    resumed = [r for r in rep.results if r.total == len(big)]
    assert resumed and resumed[-1].offset > 0, "the retry started over instead of resuming"
    assert no_partials(root) and no_partials(tmp_path)


def test_retries_give_up_with_a_clear_error_when_the_server_stays_away(root, tmp_path):
    (root / "t").mkdir()
    (root / "t" / "f.txt").write_bytes(b"x" * 10)
    srv = Server(ServerConfig(root=str(root), port=0)).start()
    c = Client(*srv.address, timeout=5)
    try:
        tree = sync.walk_remote(c, "t")
        assert list(tree.files) == ["f.txt"]
        srv.shutdown(grace=0)
        delays, events = [], []
        with pytest.raises(TransportError, match="gave up after 2 retries.*run the same command"
                           ) as info:
            sync.mirror(c, "t", tmp_path / "d", retries=2, sleep=delays.append,
                        on_event=lambda *e: events.append(e))
        assert delays == [5.0, 25.0] == sync.RetryPolicy(retries=2).delays()
        lines = [detail for kind, _p, detail in events if kind == "retry"]
        assert len(lines) == 2 and lines[0].endswith("; retry 1 of 2 in 5 s")
        assert lines[1].startswith("could not connect") and lines[1].endswith(
            "; retry 2 of 2 in 25 s")
    finally:
        c.close()
        srv.shutdown(grace=0)
    assert info.value is not None


def test_put_file_and_get_file_retry_across_a_server_restart(root, tmp_path):
    data = os.urandom(1_500_000)
    (tmp_path / "f.bin").write_bytes(data)
    box: dict = {"old": Server(ServerConfig(root=str(root), port=0, limit_rate=3_000_000)).start()}
    port = box["old"].address[1]
    c = Client("127.0.0.1", port, timeout=10)
    try:
        res = sync.put_file(c, tmp_path / "f.bin", "f.bin",
                            on_progress=_swap_server_when(box, root, port, 300_000,
                                                          rate=3_000_000),
                            sleep=lambda s: None)
        assert res.offset > 0 and (root / "f.bin").read_bytes() == data
        box["old"], box["swapped"] = box.pop("new"), False
        got = sync.get_file(c, "f.bin", tmp_path / "g.bin",
                            on_progress=_swap_server_when(box, root, port, 300_000),
                            sleep=lambda s: None)
        assert got.offset > 0 and (tmp_path / "g.bin").read_bytes() == data
    finally:
        c.close()
        box["old"].shutdown(grace=0)
        if "new" in box:
            box["new"].shutdown(grace=0)


# ---------------------------------------------------------------------- hostile server

def _fake_server(listing: list[dict]):
    """A server that answers hello, stat and ls with a crafted listing (names that try
    to climb out of the folder), to check the client never trusts them."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)

    def frame(h: dict, payload: bytes = b"") -> bytes:
        if payload:
            h = {**h, "size": len(payload)}
        body = json.dumps(h).encode()
        return struct.pack(">I", len(body)) + body + payload

    def serve():
        conn, _ = lsock.accept()
        buf = b""
        with conn:
            while True:
                while len(buf) < 4 or len(buf) < 4 + struct.unpack(">I", buf[:4])[0]:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                n = struct.unpack(">I", buf[:4])[0]
                req, buf = json.loads(buf[4:4 + n]), buf[4 + n:]
                op = req["op"]
                if op == "hello":
                    conn.sendall(frame({"ok": True, "version": 1}))
                elif op == "stat":
                    conn.sendall(frame({"ok": True, "entry": {"name": "t", "type": "dir",
                                                              "size": 0, "mtime": 1.0}}))
                elif op == "ls":
                    conn.sendall(frame({"ok": True}, json.dumps(listing).encode()))
                else:
                    conn.sendall(frame({"ok": True}))
                    if op == "quit":
                        return
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return lsock, t


def test_names_from_a_hostile_listing_never_leave_the_local_folder(tmp_path):
    evil = [{"name": n, "type": "file", "size": 1, "mtime": 1.0}
            for n in ("..", "../escape.txt", "a/b.txt", "", ".")]
    lsock, t = _fake_server(evil)
    c = Client(*lsock.getsockname(), timeout=5)
    try:
        rep = sync.get_tree(c, "t", tmp_path / "dest")
    finally:
        c.close()
        t.join(5)
        lsock.close()
    assert rep.sent == [] and len(rep.ignored) == 5
    assert all("unsafe name" in why for _p, why in rep.ignored)
    assert sorted(os.listdir(tmp_path)) == ["dest"] and os.listdir(tmp_path / "dest") == []


# ---------------------------------------------------------------------- TLS

def test_trees_and_mirror_over_tls(make_server, root, tmp_path):
    """Over TLS sendfile falls back to plain reads from the file position: large files
    in put_many must still go out whole."""
    import ssl

    import trustme
    ca = trustme.CA()
    sctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(sctx)
    cctx = ssl.create_default_context()
    ca.configure_trust(cctx)
    srv = make_server(ssl_context=sctx)
    src = tmp_path / "src"
    make_tree(src)
    with Client(*srv.address, tls=cctx, timeout=10) as c:
        up = sync.put_tree(c, src, "t")
        assert up.ok and up.retries == 0, up.errors
        down = sync.get_tree(c, "t", tmp_path / "back")
        assert down.ok, down.errors
        again = sync.mirror(c, src, "t", reverse=True, checksum=True)
        assert again.sent == [] and len(again.skipped) == 7
    assert_same_tree(src, root / "t")
    assert_same_tree(src, tmp_path / "back")
