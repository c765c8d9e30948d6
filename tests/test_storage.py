"""The root jail and the file operations of pyftp.storage, on tmp_path (no sockets)."""
from __future__ import annotations

import hashlib
import json
import os
import threading

import pytest

from pyftp import errors
from pyftp.protocol import is_partial_name, partial_name
from pyftp.digests import hash_file
from pyftp.server.storage import DigestCache, Storage
from helpers import sha



@pytest.fixture
def layout(tmp_path):
    """tmp/share (the root), tmp/share-evil (a sibling), tmp/outside (a secret)."""
    root = tmp_path / "share"
    root.mkdir()
    (root / "a.txt").write_bytes(b"alpha")
    (root / "sub").mkdir()
    (root / "sub" / "b.txt").write_bytes(b"beta")
    (tmp_path / "share-evil").mkdir()
    (tmp_path / "share-evil" / "loot.txt").write_bytes(b"evil")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_bytes(b"secret")
    return tmp_path


@pytest.fixture
def store(layout):
    return Storage(str(layout / "share"))


def names(entries):
    return [e["name"] for e in entries]


# ------------------------------------------------------------------ the jail

@pytest.mark.parametrize("cwd, path, vpath", [
    ("/", "a.txt", "/a.txt"),
    ("/", "/sub/b.txt", "/sub/b.txt"),
    ("/sub", "b.txt", "/sub/b.txt"),
    ("/sub", "../a.txt", "/a.txt"),
    ("/", "../../../../etc/passwd", "/etc/passwd"),
    ("/sub", "/../../..", "/"),
    ("/", "//sub//./b.txt", "/sub/b.txt"),
    ("/", "sub/", "/sub"),
    ("/", ".", "/"),
    ("/", "%2e%2e/%2e%2e/etc", "/%2e%2e/%2e%2e/etc"),
])
def test_normalize_clamps_at_the_root(store, cwd, path, vpath):
    assert store.normalize(cwd, path) == vpath


def test_dotdot_never_leaves_the_root(store, layout):
    assert store.normalize("/", "../outside/secret.txt") == "/outside/secret.txt"
    with pytest.raises(errors.NotFoundError, match="not found: /outside/secret.txt"):
        store.resolve("/", "../outside/secret.txt")  # walked below the root: no such folder
    with pytest.raises(errors.NotFoundError):
        store.stat("/", "../outside/secret.txt")
    with pytest.raises(errors.NotFoundError):
        store.stat("/", "../share-evil/loot.txt")


def test_absolute_paths_are_from_the_root(store, layout):
    r = store.resolve("/sub", "/a.txt")
    assert r.real == str(layout / "share" / "a.txt")
    with pytest.raises(errors.NotFoundError):
        store.stat("/", str(layout / "outside" / "secret.txt"))


@pytest.mark.parametrize("path, why", [
    ("..\\outside\\secret.txt", "backslash"),
    ("a\\b", "backslash"),
    ("a.txt\x00.jpg", "NUL"),
    ("\ud800x", "surrogate"),
    ("x\udfff", "surrogate"),
])
def test_bad_characters_are_refused(store, path, why):
    with pytest.raises(errors.BadRequestError, match=why):
        store.resolve("/", path)


def test_a_normalised_path_is_at_most_4096_characters(store):
    """Both backends normalise through one function: the limit holds on each."""
    from pyftp.server.storage.base import normalize
    cwd = "/" + "/".join(["d" * 200] * 19)  # 3819 characters
    assert len(normalize(cwd, "x" * 276)) == 4096
    assert normalize(cwd, "../" * 19 + "y" * 4000) == "/" + "y" * 4000
    for path in ("x" * 277, "x/" * 139):
        with pytest.raises(errors.BadRequestError, match="path too long.*at most 4096"):
            normalize(cwd, path)
    with pytest.raises(errors.BadRequestError, match="at most 4096"):
        store.stat(cwd, "x" * 277)
    with pytest.raises(errors.BadRequestError, match="at most 4096"):
        store.chdir("/" + "a" * 4000, "b" * 100)


def test_disk_usage_is_the_root_file_systems(store, layout):
    total, free = store.disk_usage()
    vfs = os.statvfs(layout / "share")
    assert total == vfs.f_blocks * vfs.f_frsize > 0
    assert 0 <= free <= total


def test_percent_encoding_is_literal(store, layout):
    (layout / "share" / "%2e%2e").mkdir()
    (layout / "share" / "%2e%2e" / "x").write_bytes(b"lit")
    r = store.resolve("/", "%2e%2e/x")
    assert r.real == str(layout / "share" / "%2e%2e" / "x")
    with pytest.raises(errors.NotFoundError):
        store.stat("/", "%2e%2e/outside/secret.txt")


def test_symlink_to_a_file_outside_is_refused(store, layout):
    os.symlink(layout / "outside" / "secret.txt", layout / "share" / "link.txt")
    with pytest.raises(errors.PermissionDeniedError, match="outside"):
        store.open_read("/", "link.txt")
    with pytest.raises(errors.PermissionDeniedError):
        store.stat("/", "link.txt")
    with pytest.raises(errors.PermissionDeniedError):
        store.hash("/", "link.txt")
    assert "link.txt" not in names(store.list("/", "."))


def test_symlink_to_a_folder_outside_is_refused_in_the_middle_of_a_path(store, layout):
    os.symlink(layout / "outside", layout / "share" / "door")
    for op in (lambda: store.open_read("/", "door/secret.txt"),
               lambda: store.list("/", "door"),
               lambda: store.chdir("/", "door"),
               lambda: store.mkdir("/", "door/new"),
               lambda: store.rm("/", "door/secret.txt"),
               lambda: store.begin_upload("/", "door/planted.txt", 1)):
        with pytest.raises(errors.PermissionDeniedError):
            op()
    assert sorted(os.listdir(layout / "outside")) == ["secret.txt"]
    assert "door" not in names(store.list("/", "."))


def test_sibling_whose_name_extends_the_root_is_outside(store, layout):
    os.symlink(layout / "share-evil", layout / "share" / "evil")
    with pytest.raises(errors.PermissionDeniedError):
        store.open_read("/", "evil/loot.txt")
    os.symlink(layout / "share-evil" / "loot.txt", layout / "share" / "loot")
    with pytest.raises(errors.PermissionDeniedError):
        store.stat("/", "loot")
    assert names(store.list("/", ".")) == ["a.txt", "sub"]


def test_symlinks_inside_the_root_are_followed(store, layout):
    os.symlink(layout / "share" / "sub" / "b.txt", layout / "share" / "b-link")
    os.symlink("sub", layout / "share" / "sub-link")
    f, st, vpath = store.open_read("/", "b-link")
    with f:
        assert f.read() == b"beta"
    assert vpath == "/b-link"
    assert store.chdir("/", "sub-link") == "/sub-link"
    assert {e["name"]: e["type"] for e in store.list("/", ".")} == {
        "a.txt": "file", "b-link": "file", "sub": "dir", "sub-link": "dir"}


def test_the_root_itself_may_be_reached_through_a_symlink(layout):
    os.symlink(layout / "share", layout / "alias")
    s = Storage(str(layout / "alias"))
    assert s.root == str(layout / "share")
    assert names(s.list("/", "/")) == ["a.txt", "sub"]


def test_symlink_loop_is_not_found(store, layout):
    os.symlink("loop2", layout / "share" / "loop1")
    os.symlink("loop1", layout / "share" / "loop2")
    with pytest.raises((errors.NotFoundError, errors.PermissionDeniedError)):
        store.open_read("/", "loop1")
    assert names(store.list("/", ".")) == ["a.txt", "sub"]


def test_the_jail_walk_agrees_with_realpath(store, layout):
    """Storage looks only below the root; it must land where os.path.realpath lands."""
    root = layout / "share"
    (root / "deep" / "er").mkdir(parents=True)
    (root / "deep" / "er" / "f.txt").write_bytes(b"f")
    os.symlink("deep/er", root / "in-link")                      # relative, inside
    os.symlink(root / "deep", root / "abs-in-link")               # absolute, inside
    os.symlink("../outside", root / "out-link")                  # leads out
    os.symlink("in-link", root / "chain")                        # a link to a link
    os.symlink("nowhere", root / "dangling")
    os.symlink("loop-b", root / "loop-a")
    os.symlink("loop-a", root / "loop-b")
    os.symlink("..", root / "deep" / "up")                       # back to the root
    cases = [[], ["a.txt"], ["sub", "b.txt"], ["missing"], ["missing", "x", "y"],
             ["a.txt", "below-a-file"], ["deep", "er", "f.txt"], ["in-link", "f.txt"],
             ["abs-in-link", "er"], ["out-link", "secret.txt"], ["chain", "f.txt"],
             ["dangling"], ["dangling", "x"], ["loop-a"], ["loop-a", "x"],
             ["deep", "up", "a.txt"], ["deep", "up", "out-link"], ["sub", "nope", "in-link"]]
    for parts in cases:
        real = os.path.realpath(os.path.join(root, *parts))
        try:
            got = store.resolve("/", "/".join(parts) or "/").real
        except errors.PermissionDeniedError:
            assert not real.startswith(str(root) + os.sep), parts  # refused: it leads out
        except (errors.NotFoundError, errors.NotDirectoryError):
            # a folder on the way is missing or a file, or a loop: nothing to act on
            assert not os.path.isdir(os.path.dirname(real)) or "loop" in real, parts
        else:
            assert got == real, parts
    outcomes = []
    for parts in cases:
        try:
            store.resolve("/", "/".join(parts) or "/")
            outcomes.append("ok")
        except errors.RemoteError as exc:
            outcomes.append(exc.code)
    # the walk lands inside for the good cases and refuses the rest (none "internal")
    assert outcomes.count("ok") == 10 and outcomes.count("permission_denied") == 2, outcomes


def test_reserved_partial_names_are_refused(store):
    for path in (partial_name("a.txt"), partial_name("a.txt") + ".json",
                 "sub/" + partial_name("x"), partial_name("d") + "/inner"):
        with pytest.raises(errors.PermissionDeniedError, match="reserved"):
            store.resolve("/", path)


# ------------------------------------------------------------------ listing

def test_list_hides_partials_escaping_symlinks_and_fifos(store, layout):
    share = layout / "share"
    (share / partial_name("a.txt")).write_bytes(b"half")
    (share / (partial_name("a.txt") + ".json")).write_text("{}")
    os.symlink(layout / "outside", share / "out-dir")
    os.symlink(layout / "outside" / "secret.txt", share / "out-file")
    os.symlink(share / "nowhere", share / "dangling")
    os.mkfifo(share / "pipe")
    assert store.list("/", ".") == sorted(store.list("/", "/"), key=lambda e: e["name"])
    listing = store.list("/", ".")
    assert names(listing) == ["a.txt", "sub"]
    a = listing[0]
    assert a == {"name": "a.txt", "type": "file", "size": 5,
                 "mtime": ((os.stat(share / "a.txt").st_mtime_ns + 500) // 1000 / 1e6)}
    assert listing[1]["type"] == "dir" and listing[1]["size"] == 0


def test_list_of_a_file_is_that_file(store):
    assert names(store.list("/", "sub/b.txt")) == ["b.txt"]


def test_list_and_stat_errors(store, layout):
    with pytest.raises(errors.NotFoundError):
        store.list("/", "missing")
    with pytest.raises(errors.NotDirectoryError):
        store.list("/", "a.txt/x")
    os.mkfifo(layout / "share" / "pipe")
    with pytest.raises(errors.NotFoundError):
        store.stat("/", "pipe")
    with pytest.raises(errors.PermissionDeniedError):
        store.open_read("/", "pipe")
    assert store.stat("/", "/")["name"] == "/"
    assert store.stat("/", "sub") ["type"] == "dir"


def test_chdir(store):
    assert store.chdir("/", "sub") == "/sub"
    assert store.chdir("/sub", "..") == "/"
    with pytest.raises(errors.NotDirectoryError):
        store.chdir("/", "a.txt")
    with pytest.raises(errors.NotFoundError):
        store.chdir("/", "nope")


def test_non_utf8_names_are_listed_and_opened(store, layout):
    raw_name = b"caf\xe9.txt"
    with open(os.fsencode(layout / "share") + b"/" + raw_name, "wb") as f:
        f.write(b"latin-1")
    wire_name = raw_name.decode("utf-8", "surrogateescape")
    assert wire_name in names(store.list("/", "."))
    f, st, vpath = store.open_read("/", wire_name)
    with f:
        assert f.read() == b"latin-1"


def test_open_read_of_a_directory(store):
    with pytest.raises(errors.IsDirectoryError):
        store.open_read("/", "sub")


# ------------------------------------------------------------------ changes

def test_mkdir(store, layout):
    assert store.mkdir("/", "new") == "/new"
    assert (layout / "share" / "new").is_dir()
    with pytest.raises(errors.AlreadyExistsError):
        store.mkdir("/", "new")
    with pytest.raises(errors.AlreadyExistsError):
        store.mkdir("/", "a.txt")
    with pytest.raises(errors.NotFoundError):
        store.mkdir("/", "x/y/z")
    with pytest.raises(errors.NotDirectoryError):
        store.mkdir("/", "a.txt/y")
    assert store.mkdir("/", "x/y/z", parents=True) == "/x/y/z"
    assert store.mkdir("/", "x/y/z", parents=True) == "/x/y/z"  # like mkdir -p
    assert (layout / "share" / "x" / "y" / "z").is_dir()
    with pytest.raises(errors.AlreadyExistsError):
        store.mkdir("/", "a.txt", parents=True)
    with pytest.raises(errors.AlreadyExistsError):
        store.mkdir("/", "/")
    assert store.mkdir("/", "/", parents=True) == "/"  # mkdir -p of an existing folder


def test_rm(store, layout):
    assert store.rm("/", "a.txt") == "/a.txt"
    assert not (layout / "share" / "a.txt").exists()
    with pytest.raises(errors.NotFoundError):
        store.rm("/", "a.txt")
    with pytest.raises(errors.IsDirectoryError, match="rmdir"):
        store.rm("/", "sub")
    with pytest.raises(errors.NotDirectoryError):
        store.rm("/", "sub/b.txt/x")


def test_rm_of_a_symlink_removes_the_link_not_its_target(store, layout):
    os.symlink(layout / "outside" / "secret.txt", layout / "share" / "link")
    store.rm("/", "link")
    assert not os.path.lexists(layout / "share" / "link")
    assert (layout / "outside" / "secret.txt").read_bytes() == b"secret"


def test_rmdir(store, layout):
    with pytest.raises(errors.NotEmptyError):
        store.rmdir("/", "sub")
    with pytest.raises(errors.NotDirectoryError, match="rm"):
        store.rmdir("/", "a.txt")
    with pytest.raises(errors.NotFoundError):
        store.rmdir("/", "missing")
    with pytest.raises(errors.PermissionDeniedError):
        store.rmdir("/", "/")
    store.rm("/", "sub/b.txt")
    # a leftover partial upload does not keep a folder from being removed
    (layout / "share" / "sub" / partial_name("c")).write_bytes(b"x")
    assert store.rmdir("/", "sub") == "/sub"
    assert not (layout / "share" / "sub").exists()


def test_mv(store, layout):
    share = layout / "share"
    assert store.mv("/", "a.txt", "sub/c.txt") == ("/a.txt", "/sub/c.txt")
    assert (share / "sub" / "c.txt").read_bytes() == b"alpha"
    with pytest.raises(errors.AlreadyExistsError, match="overwrite"):
        store.mv("/", "sub/c.txt", "sub/b.txt")
    assert (share / "sub" / "b.txt").read_bytes() == b"beta"
    store.mv("/", "sub/c.txt", "sub/b.txt", overwrite=True)
    assert (share / "sub" / "b.txt").read_bytes() == b"alpha"
    assert not (share / "sub" / "c.txt").exists()
    with pytest.raises(errors.NotFoundError):
        store.mv("/", "missing", "x")
    with pytest.raises(errors.NotFoundError):
        store.mv("/", "sub/b.txt", "nofolder/x")
    with pytest.raises(errors.BadRequestError, match="into itself"):
        store.mv("/", "sub", "sub/deeper")
    (share / "d2").mkdir()
    with pytest.raises(errors.IsDirectoryError):
        store.mv("/", "sub/b.txt", "d2", overwrite=True)
    with pytest.raises(errors.PermissionDeniedError):
        store.mv("/", "/", "x")
    with pytest.raises(errors.PermissionDeniedError):
        store.mv("/", "sub", "../outside-ish/" + partial_name("x"))
    assert store.mv("/", "sub", "sub") == ("/sub", "/sub")
    assert store.mv("/", "sub", "moved") == ("/sub", "/moved")
    assert (share / "moved" / "b.txt").is_file()


def test_mv_into_a_symlinked_folder_outside_is_refused(store, layout):
    os.symlink(layout / "outside", layout / "share" / "door")
    with pytest.raises(errors.PermissionDeniedError):
        store.mv("/", "a.txt", "door/a.txt")
    assert (layout / "share" / "a.txt").exists()
    assert not (layout / "outside" / "a.txt").exists()


def test_read_only_refuses_every_change(layout):
    s = Storage(str(layout / "share"), read_only=True)
    for op in (lambda: s.mkdir("/", "n"), lambda: s.rm("/", "a.txt"),
               lambda: s.rmdir("/", "sub"), lambda: s.mv("/", "a.txt", "b"),
               lambda: s.begin_upload("/", "u", 1)):
        with pytest.raises(errors.PermissionDeniedError, match="read-only"):
            op()
    assert sorted(os.listdir(layout / "share")) == ["a.txt", "sub"]
    assert names(s.list("/", ".")) == ["a.txt", "sub"]


# ------------------------------------------------------------------ hashing

def test_hash_and_digest_cache(store, layout):
    digest, total, vpath = store.hash("/", "a.txt")
    assert (digest, total, vpath) == (sha(b"alpha"), 5, "/a.txt")
    assert hash_file(str(layout / "share" / "a.txt")) == digest
    assert hash_file(str(layout / "share" / "a.txt"), limit=2) == sha(b"al")
    st = os.stat(layout / "share" / "a.txt")
    assert store.digests.get(st) == digest
    with open(layout / "share" / "a.txt", "ab") as f:
        f.write(b"!")
    assert store.digests.get(os.stat(layout / "share" / "a.txt")) is None
    assert store.hash("/", "a.txt")[0] == sha(b"alpha!")


def test_digest_cache_changes_with_any_rewrite_of_the_same_size(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"1111")
    cache = DigestCache(size=2)
    st1 = os.stat(p)
    cache.put(st1, "one")
    os.utime(p, ns=(st1.st_atime_ns, st1.st_mtime_ns))  # same mtime, new ctime
    p.write_bytes(b"2222")
    os.utime(p, ns=(st1.st_atime_ns, st1.st_mtime_ns))
    assert cache.get(os.stat(p)) is None  # ctime moved even though size and mtime did not
    assert cache.get(st1) == "one"


def test_digest_cache_is_bounded(tmp_path):
    cache = DigestCache(size=2)
    stats = []
    for i in range(3):
        p = tmp_path / f"f{i}"
        p.write_bytes(b"x" * i)
        stats.append(os.stat(p))
        cache.put(stats[-1], str(i))
    assert cache.get(stats[0]) is None
    assert cache.get(stats[1]) == "1" and cache.get(stats[2]) == "2"


# ------------------------------------------------------------------ uploads

DATA = b"0123456789" * 1000


def partial_of(layout, name: str):
    return layout / "share" / partial_name(name)


def test_upload_commit_publishes_atomically(store, layout):
    up = store.begin_upload("/", "new.bin", len(DATA), sha(DATA), mtime=1_600_000_000.5)
    assert up.offset == 0 and up.remaining == len(DATA)
    up.write(DATA[:4000])
    assert not (layout / "share" / "new.bin").exists()
    assert partial_of(layout, "new.bin").exists()
    assert "new.bin" not in names(store.list("/", "."))
    up.write(DATA[4000:])
    assert up.commit() == sha(DATA)
    assert (layout / "share" / "new.bin").read_bytes() == DATA
    assert os.stat(layout / "share" / "new.bin").st_mtime_ns == 1_600_000_000_500_000_000
    assert not partial_of(layout, "new.bin").exists()
    assert [n for n in os.listdir(layout / "share") if n.startswith(".")] == []
    # the digest of the bytes received is not taken on trust for the file on disk (a
    # local process may have written into the partial): the first hash reads the file,
    # and that digest is remembered
    st = os.stat(layout / "share" / "new.bin")
    assert store.digests.get(st) is None
    assert store.hash("/", "new.bin")[0] == sha(DATA)
    assert store.digests.get(st) == sha(DATA)
    # the claim is released
    store.begin_upload("/", "new.bin", 1, overwrite=True).abort()


def test_upload_without_sha256_is_published_when_complete(store, layout):
    up = store.begin_upload("/", "n", 3)
    up.write(b"abc")
    assert up.commit() == sha(b"abc")
    assert (layout / "share" / "n").read_bytes() == b"abc"


def test_upload_mismatch_discards_and_keeps_the_old_file(store, layout):
    up = store.begin_upload("/", "a.txt", len(DATA), sha(b"other"), overwrite=True)
    up.write(DATA)
    with pytest.raises(errors.ChecksumMismatchError, match="upload it again"):
        up.commit()
    assert (layout / "share" / "a.txt").read_bytes() == b"alpha"
    assert not partial_of(layout, "a.txt").exists()
    assert [n for n in os.listdir(layout / "share") if n.startswith(".")] == []


def test_upload_whose_name_became_a_folder_fails_and_leaves_no_partial(store, layout):
    up = store.begin_upload("/", "late", len(DATA), sha(DATA), overwrite=True)
    up.write(DATA[:100])
    up.abort()  # cut off: the partial and its metadata are kept for a resume
    up = store.begin_upload("/", "late", len(DATA), sha(DATA), overwrite=True)
    assert up.offset == 100
    up.write(DATA[100:])
    (layout / "share" / "late").mkdir()  # another client, while the bytes came in
    (layout / "share" / "late" / "theirs.txt").write_bytes(b"theirs")
    with pytest.raises(errors.RemoteError):
        up.commit()
    assert (layout / "share" / "late" / "theirs.txt").read_bytes() == b"theirs"
    assert [n for n in os.listdir(layout / "share") if n.startswith(".")] == []
    store.begin_upload("/", "late2", 1).abort()  # the claim was released


def test_upload_short_is_a_mismatch(store, layout):
    up = store.begin_upload("/", "short", 10)
    up.write(b"abc")
    with pytest.raises(errors.ChecksumMismatchError, match="3 bytes"):
        up.commit()
    assert not (layout / "share" / "short").exists()


def test_upload_refusals_before_any_byte(layout):
    share = layout / "share"
    s = Storage(str(share), max_file_size=100)
    with pytest.raises(errors.AlreadyExistsError, match="overwrite"):
        s.begin_upload("/", "a.txt", 1)
    with pytest.raises(errors.IsDirectoryError):
        s.begin_upload("/", "sub", 1, overwrite=True)
    with pytest.raises(errors.IsDirectoryError):
        s.begin_upload("/", "/", 1)
    with pytest.raises(errors.NotFoundError):
        s.begin_upload("/", "nofolder/x", 1)
    with pytest.raises(errors.NotDirectoryError):
        s.begin_upload("/", "a.txt/x", 1)
    with pytest.raises(errors.TooLargeError, match="100 bytes"):
        s.begin_upload("/", "big", 101)
    s.begin_upload("/", "ok", 100).abort()
    big = Storage(str(share), min_free=2**62)
    with pytest.raises(errors.NoSpaceError):
        big.begin_upload("/", "x", 1)
    assert sorted(os.listdir(share)) == ["a.txt", "sub"]  # no partial left behind


def test_upload_abort_keeps_the_partial_and_resume_continues(store, layout):
    digest = sha(DATA)
    up = store.begin_upload("/", "r.bin", len(DATA), digest)
    up.write(DATA[:3000])
    up.abort()
    assert not (layout / "share" / "r.bin").exists()
    assert partial_of(layout, "r.bin").read_bytes() == DATA[:3000]
    meta = json.loads((layout / "share" / (partial_name("r.bin") + ".json")).read_text())
    assert meta == {"total": len(DATA), "sha256": digest, "token": up.token}
    again = store.begin_upload("/", "r.bin", len(DATA), digest)
    assert again.offset == 3000 and again.remaining == len(DATA) - 3000
    again.write(DATA[3000:])
    assert again.commit() == digest
    assert (layout / "share" / "r.bin").read_bytes() == DATA
    assert [n for n in os.listdir(layout / "share") if n.startswith(".")] == []


def test_resume_of_a_complete_partial_needs_no_more_bytes(store, layout):
    up = store.begin_upload("/", "r.bin", len(DATA), sha(DATA))
    up.write(DATA)
    up.abort()
    again = store.begin_upload("/", "r.bin", len(DATA), sha(DATA))
    assert again.remaining == 0
    assert again.commit() == sha(DATA)


@pytest.mark.parametrize("change", ["total", "sha256", "no-sha", "resume-false"])
def test_resume_with_other_meta_restarts(store, layout, change):
    up = store.begin_upload("/", "r.bin", len(DATA), sha(DATA))
    up.write(DATA[:3000])
    up.abort()
    other = DATA[:-1] + b"!"
    total, digest, resume = len(DATA), sha(DATA), True
    if change == "total":
        other = DATA + b"more"
        total, digest = len(other), sha(other)
    elif change == "sha256":
        digest = sha(other)
    elif change == "no-sha":
        digest = None
    else:
        other, resume = DATA, False
    again = store.begin_upload("/", "r.bin", total, digest, resume=resume)
    assert again.offset == 0
    again.write(other)
    again.commit()
    assert (layout / "share" / "r.bin").read_bytes() == other


def test_resume_of_a_partial_longer_than_the_file_restarts(store, layout):
    up = store.begin_upload("/", "r.bin", len(DATA), sha(DATA))
    up.write(DATA[:10])
    up.abort()
    with open(partial_of(layout, "r.bin"), "ab") as f:  # grown behind our back
        f.write(b"x" * len(DATA))
    again = store.begin_upload("/", "r.bin", len(DATA), sha(DATA))
    assert again.offset == 0
    again.write(DATA)
    assert again.commit() == sha(DATA)


def test_abort_without_sha256_or_bytes_leaves_nothing(store, layout):
    up = store.begin_upload("/", "a", 10)  # no sha256: a resume could not be verified
    up.write(b"12345")
    up.abort()
    up2 = store.begin_upload("/", "b", 10, sha(b"x"))
    up2.abort()  # nothing received
    assert sorted(os.listdir(layout / "share")) == ["a.txt", "sub"]


def test_concurrent_claim_is_busy(store, layout):
    up = store.begin_upload("/", "x.bin", 3, sha(b"abc"))
    with pytest.raises(errors.BusyError, match="in progress"):
        store.begin_upload("/", "x.bin", 3, sha(b"abc"))
    with pytest.raises(errors.BusyError):
        store.begin_upload("/sub", "../x.bin", 3)  # the same file by another path
    other = store.begin_upload("/", "y.bin", 1)  # another name is free
    other.abort()
    up.write(b"abc")
    up.commit()
    store.begin_upload("/", "x.bin", 3, overwrite=True).abort()


def test_only_one_of_many_racing_claims_wins(store):
    wins, busy = [], []
    barrier = threading.Barrier(8)

    def claim():
        barrier.wait(5)
        try:
            wins.append(store.begin_upload("/", "race", 1))
        except errors.BusyError:
            busy.append(1)
    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(wins) == 1 and len(busy) == 7
    wins[0].abort()


def test_commit_refuses_a_target_created_meanwhile(store, layout):
    up = store.begin_upload("/", "late", 3)
    (layout / "share" / "late").write_bytes(b"first")
    up.write(b"abc")
    with pytest.raises(errors.AlreadyExistsError, match="while uploading"):
        up.commit()
    assert (layout / "share" / "late").read_bytes() == b"first"


def test_upload_through_a_symlink_replaces_the_link_not_its_target(store, layout):
    os.symlink(layout / "outside" / "secret.txt", layout / "share" / "link")
    with pytest.raises(errors.AlreadyExistsError):
        store.begin_upload("/", "link", 3)
    up = store.begin_upload("/", "link", 3, overwrite=True)
    up.write(b"new")
    up.commit()
    assert (layout / "outside" / "secret.txt").read_bytes() == b"secret"
    assert not os.path.islink(layout / "share" / "link")
    assert (layout / "share" / "link").read_bytes() == b"new"


def test_clean_partials_ttl(store, layout):
    share = layout / "share"
    old = share / "sub" / partial_name("old")
    old.write_bytes(b"x")
    (share / "sub" / (partial_name("old") + ".json")).write_text("{}")
    fresh = share / partial_name("fresh")
    fresh.write_bytes(b"y")
    os.utime(old, (1000, 1000))
    os.utime(share / "sub" / (partial_name("old") + ".json"), (1000, 1000))
    active = store.begin_upload("/", "active", 10, sha(b"z"))
    os.utime(partial_of(layout, "active"), (1000, 1000))
    removed = store.clean_partials(ttl=3600)
    assert removed == 2
    assert not old.exists() and fresh.exists()
    assert partial_of(layout, "active").exists()  # an upload in progress is never cut
    active.abort()
    assert store.clean_partials(ttl=0, now=10**10) >= 1
    assert not fresh.exists()
    assert (share / "a.txt").exists() and (share / "sub" / "b.txt").exists()


def test_os_errors_name_the_virtual_path_never_the_real_one(store, layout):
    with pytest.raises(errors.NotFoundError) as info:
        store.stat("/", "sub/missing")
    assert "/sub/missing" in info.value.message
    assert str(layout) not in info.value.message


def test_a_name_too_long_for_the_file_system_is_refused_before_any_byte(store, layout):
    with pytest.raises(errors.BadRequestError, match="invalid name"):
        store.begin_upload("/", "n" * 300, 10, sha(b"x" * 10))
    assert sorted(os.listdir(layout / "share")) == ["a.txt", "sub"]  # no partial left
    with pytest.raises(errors.BadRequestError):
        store.mkdir("/", "d" * 300)


def test_rmdir_refuses_a_folder_with_an_upload_in_flight(store, layout):
    os.mkdir(layout / "share" / "incoming")
    up = store.begin_upload("/", "incoming/f.bin", 3, sha(b"abc"))
    up.write(b"ab")
    with pytest.raises(errors.BusyError):
        store.rmdir("/", "incoming")
    assert os.path.exists(layout / "share" / "incoming" / up.partial), "the partial of the upload in flight must survive"
    up.write(b"c")
    up.commit()
    assert (layout / "share" / "incoming" / "f.bin").read_bytes() == b"abc"
    store.rm("/", "incoming/f.bin")
    store.rmdir("/", "incoming")
    assert not (layout / "share" / "incoming").exists()


# ------------------------------------------------------------------ descriptors

def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_a_thousand_operations_leak_no_descriptor(store, layout):
    share = layout / "share"
    os.symlink("../outside", share / "out")
    os.symlink("sub", share / "in")
    before = _open_fds()
    for i in range(100):  # 10 operations a round, successes and failures alike
        store.list("/", "in")
        store.stat("/", "in/b.txt")
        f, _st, _v = store.open_read("/", "sub/b.txt")
        f.close()
        store.mkdir("/", f"m{i}/n", parents=True)
        store.mv("/", f"m{i}", f"k{i}")
        store.rmdir("/", f"k{i}/n")
        up = store.begin_upload("/", f"u{i}", 3, sha(b"abc"))
        up.write(b"abc")
        up.commit()
        store.rm("/", f"u{i}")
        for bad in ("out/secret.txt", "missing/x", "a.txt/x"):
            with pytest.raises(errors.RemoteError):
                store.stat("/", bad)
        with pytest.raises(errors.AlreadyExistsError):
            store.mv("/", "a.txt", f"k{i}")
    assert _open_fds() == before
    assert store.clean_partials(0) == 0 and _open_fds() == before


def test_partial_names_of_long_and_hex_names_differ(store):
    long_name = "L" * 240
    digest = hashlib.sha256(long_name.encode()).hexdigest()
    hashed = partial_name(long_name)
    assert hashed.endswith(".pyftp-hpart") and is_partial_name(hashed)
    assert is_partial_name(hashed + ".json") and is_partial_name(hashed + ".json.tmp")
    assert hashed not in {partial_name(digest[:32]), partial_name(digest)}
    with pytest.raises(errors.PermissionDeniedError, match="reserved"):
        store.resolve("/", hashed)


def test_bad_resume_tokens_are_refused(store):
    for token in ("", "a" * 65, "a b", "../x", "é"):
        with pytest.raises(errors.BadRequestError, match="token"):
            store.begin_upload("/", "t", 1, token=token)
