"""pyftp.Client against a real server on loopback (the conftest fixtures)."""
from __future__ import annotations

import os
import stat
import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyftp import Client, errors
from pyftp.client import Entry, TransferResult
from pyftp.protocol import partial_name
from helpers import best, cut_put, sha, wait_for



@pytest.fixture
def files(remote):
    """a.txt and sub/b.txt in what the server serves (a folder or a bucket prefix)."""
    remote.write("a.txt", b"alpha\n")
    remote.mkdir("sub")
    remote.write("sub/b.txt", b"beta")
    return remote



def local_dots(folder) -> list[str]:
    return sorted(n for n in os.listdir(folder) if n.startswith("."))


# ------------------------------------------------------------------ connection

def test_connect_says_hello(server):
    host, port = server.address
    with Client(host, port, timeout=5) as c:
        assert c.connected
        assert c.server_info["version"] == 1
        assert "sha256" in c.server_info["features"]
        assert c.address == f"{host}:{port}"
    assert not c.connected


def test_connect_later(server):
    c = Client(*server.address, connect=False)
    assert not c.connected
    with pytest.raises(errors.TransportError, match="reconnect"):
        c.pwd()
    c.connect()
    try:
        assert c.pwd() == "/"
    finally:
        c.close()
    c.close()  # twice is fine


def test_connect_error_on_a_closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with pytest.raises(errors.ConnectError, match="pyftp-server running"):
        Client("127.0.0.1", port, timeout=5)


def test_server_closing_on_a_client_gives_transport_error(make_server):
    s = make_server(idle_timeout=0.2)
    c = Client(*s.address, timeout=5)
    try:
        wait_for(lambda: s.session_count == 0, what="the server to drop the idle client")
        with pytest.raises(errors.TransportError):
            c.pwd()
        assert not c.connected
        c.reconnect()
        assert c.pwd() == "/"
    finally:
        c.close()


# ------------------------------------------------------------------ simple ops

def test_ls_stat_cd_pwd(client, files):
    entries = client.ls()
    assert [(e.name, e.type, e.size) for e in entries] == [("a.txt", "file", 6), ("sub", "dir", 0)]
    assert all(isinstance(e, Entry) for e in entries)
    assert entries[1].is_dir and not entries[0].is_dir
    assert entries[0].mtime == pytest.approx(files.mtime_ns("a.txt") / 1e9, abs=1e-5)
    assert [e.name for e in client.ls("sub")] == ["b.txt"]
    st = client.stat("sub/b.txt")
    assert (st.name, st.type, st.size) == ("b.txt", "file", 4)
    assert client.pwd() == "/"
    assert client.cd("sub") == "/sub"
    assert client.pwd() == "/sub"
    assert [e.name for e in client.ls()] == ["b.txt"]
    assert client.exists("b.txt") and not client.exists("nope")
    assert client.cd("..") == "/"


def test_names_list_what_ls_lists_with_folders_marked(client, files, root, tmp_path):
    (root / "a").mkdir()  # "a/" sorts by its name: before "a.txt"
    (root / ".a.txt.pyftp-part").write_bytes(b"x")  # a partial is never listed
    os.mkfifo(root / "fifo")  # nor what is not a file or a folder
    os.symlink("sub", root / "to-sub")  # a link inside: what it points to
    os.symlink(tmp_path, root / "out")  # a link leading out: never
    assert client.names() == ["a/", "a.txt", "sub/", "to-sub/"]
    assert [n.rstrip("/") for n in client.names()] == [e.name for e in client.ls()]
    assert client.names("sub") == ["b.txt"] and client.names("sub/b.txt") == ["b.txt"]
    many = client.ls_many(["sub", "a", "nope"], names=True)
    assert many[:2] == [["b.txt"], []] and isinstance(many[2], errors.NotFoundError)
    with pytest.raises(errors.NotFoundError):
        client.names("nope")


@pytest.mark.parametrize("payload, names", [
    (b'[{"name":"d","type":"dir","size":0,"mtime":1.5},'
     b'{"name":"f","type":"file","size":3,"mtime":1.5}]', ["d/", "f"]),  # an older server
    (b'["d/","f"]', ["d/", "f"])])
def test_a_names_listing_is_read_from_either_form(payload, names):
    from pyftp.client.pipeline import parse_names
    assert parse_names(payload) == names


@pytest.mark.parametrize("payload", [b'["a/b"]', b'[""]', b'["/"]', b'[3]', b'["d//"]', b'{}'])
def test_a_names_listing_with_a_bad_name_is_a_protocol_error(payload):
    from pyftp.client.pipeline import parse_names
    with pytest.raises(errors.ProtocolError):
        parse_names(payload)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet="ab/\x00\n.", max_size=4), max_size=6))
def test_the_fast_names_check_agrees_with_the_one_name_at_a_time_rule(names):
    """parse_names checks a long names listing over the joined text (C speed); it must
    accept and refuse exactly what the one-name-at-a-time rule does."""
    import json as json_
    from pyftp.client.pipeline import parse_names
    valid = all(n not in ("", "/") and "/" not in n[:-1] for n in names)
    payload = json_.dumps(names).encode()
    if valid:
        assert parse_names(payload) == names
    else:
        with pytest.raises(errors.ProtocolError):
            parse_names(payload)


def test_mkdir_rm_rmdir_mv(client, files):
    assert client.mkdir("d") == "/d"
    assert client.mkdir("x/y/z", parents=True) == "/x/y/z"
    assert files.is_dir("x/y/z")
    client.mv("a.txt", "d/a.txt")
    assert files.read("d/a.txt") == b"alpha\n"
    with pytest.raises(errors.AlreadyExistsError):
        client.mv("sub/b.txt", "d/a.txt")
    client.mv("sub/b.txt", "d/a.txt", overwrite=True)
    assert files.read("d/a.txt") == b"beta"
    client.rm("d/a.txt")
    client.rmdir("d")
    assert not files.exists("d")


def test_hash_and_upper(client, files):
    assert client.hash("a.txt") == best(b"alpha\n")
    assert client.upper("hello wörld") == "HELLO WÖRLD"
    assert client.upper("") == ""


@pytest.mark.parametrize("call, cls", [
    (lambda c: c.stat("missing"), errors.NotFoundError),
    (lambda c: c.cd("a.txt"), errors.NotDirectoryError),
    (lambda c: c.rm("sub"), errors.IsDirectoryError),
    (lambda c: c.rmdir("sub"), errors.NotEmptyError),
    (lambda c: c.mkdir("sub"), errors.AlreadyExistsError),
    (lambda c: c.stat("a\\b"), errors.BadRequestError),
    (lambda c: c.hash("sub"), errors.IsDirectoryError),
    (lambda c: c.ls(partial_name("x")), errors.PermissionDeniedError),
])
def test_error_classes_per_code_and_the_connection_goes_on(client, files, call, cls):
    with pytest.raises(cls) as info:
        call(client)
    assert info.value.code == cls.code
    assert client.connected and client.pwd() == "/"


def test_read_only_server_raises_permission_denied(make_server, files, tmp_path):
    s = make_server(read_only=True)
    src = tmp_path / "up.txt"
    src.write_bytes(b"x")
    with Client(*s.address, timeout=5) as c:
        assert "read_only" in c.server_info["features"]
        with pytest.raises(errors.PermissionDeniedError, match="read-only"):
            c.put(src, "up.txt")
        with pytest.raises(errors.PermissionDeniedError):
            c.mkdir("d")
        assert c.hash("a.txt") == best(b"alpha\n")


@pytest.mark.local_only  # free space is a disk's; an object store has none to check
def test_too_large_and_no_space(make_server, tmp_path):
    src = tmp_path / "up.bin"
    src.write_bytes(b"x" * 100)
    s = make_server(max_file_size=99)
    with Client(*s.address, timeout=5) as c:
        with pytest.raises(errors.TooLargeError):
            c.put(src)
    s2 = make_server(min_free=2**62)
    with Client(*s2.address, timeout=5) as c:
        with pytest.raises(errors.NoSpaceError):
            c.put(src)
        assert c.connected


def test_busy_when_another_upload_holds_the_path(server, remote, tmp_path):
    from helpers import RawConn
    src = tmp_path / "x.bin"
    src.write_bytes(b"mine")
    with RawConn(server.address) as raw:
        reply, _ = raw.request({"op": "put", "path": "x.bin", "total": 3})
        assert reply["ok"]
        with Client(*server.address, timeout=5) as c:
            with pytest.raises(errors.BusyError):
                c.put(src, "x.bin")
            assert c.connected
        raw.send_frame({"op": "data", "size": 3}, b"abc")
        assert raw.read_frame()[0]["ok"]
    assert remote.read("x.bin") == b"abc"


# ------------------------------------------------------------------ get

def test_get_to_a_new_name(client, files, tmp_path):
    out = tmp_path / "copy.txt"
    res = client.get("a.txt", out)
    assert isinstance(res, TransferResult)
    assert out.read_bytes() == b"alpha\n"
    assert (res.remote, res.local, res.total, res.sent, res.offset, res.sha256) == (
        "a.txt", str(out), 6, 6, 0, best(b"alpha\n"))
    # the remote mtime is kept
    assert os.stat(out).st_mtime == pytest.approx(files.mtime_ns("a.txt") / 1e9, abs=1e-5)
    assert local_dots(tmp_path) == []


def test_get_into_an_existing_folder(client, files, tmp_path):
    dest = tmp_path / "dl"
    dest.mkdir()
    res = client.get("sub/b.txt", dest)
    assert res.local == str(dest / "b.txt")
    assert (dest / "b.txt").read_bytes() == b"beta"


def test_get_without_a_local_name_uses_the_cwd(client, files, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    client.get("sub/b.txt")
    assert (tmp_path / "b.txt").read_bytes() == b"beta"


def test_get_into_a_missing_local_folder(client, files, tmp_path):
    with pytest.raises(errors.LocalError, match="does not exist"):
        client.get("a.txt", tmp_path / "nope" / "a.txt")
    assert client.connected


def test_get_of_a_missing_file_leaves_nothing(client, files, tmp_path):
    with pytest.raises(errors.NotFoundError):
        client.get("missing.txt", tmp_path / "m.txt")
    assert os.listdir(tmp_path) == ["root"]
    assert client.connected


def test_get_replaces_an_existing_local_file_only_when_verified(client, files, tmp_path):
    out = tmp_path / "a.txt"
    out.write_bytes(b"old")
    client.get("a.txt", out)
    assert out.read_bytes() == b"alpha\n"


def test_download_resumes_a_partial(client, remote, tmp_path):
    data = os.urandom(700_000)
    remote.write("big.bin", data)
    out = tmp_path / "big.bin"
    (tmp_path / partial_name("big.bin")).write_bytes(data[:250_000])
    seen: list[tuple[int, int]] = []
    res = client.get("big.bin", out, on_progress=lambda d, t: seen.append((d, t)))
    assert out.read_bytes() == data
    assert (res.offset, res.sent, res.total) == (250_000, 450_000, 700_000)
    assert seen[0] == (250_000, 700_000) and seen[-1] == (700_000, 700_000)
    assert local_dots(tmp_path) == []


def test_download_with_a_corrupt_prefix_starts_over(client, remote, tmp_path):
    data = os.urandom(300_000)
    remote.write("f.bin", data)
    out = tmp_path / "f.bin"
    (tmp_path / partial_name("f.bin")).write_bytes(b"\x00" * 100_000)  # not this file
    res = client.get("f.bin", out)
    assert out.read_bytes() == data and res.offset == 0
    assert local_dots(tmp_path) == []


def test_download_with_a_partial_longer_than_the_file_starts_over(client, files, tmp_path):
    out = tmp_path / "a.txt"
    (tmp_path / partial_name("a.txt")).write_bytes(b"much longer than six bytes")
    client.get("a.txt", out)
    assert out.read_bytes() == b"alpha\n"
    assert local_dots(tmp_path) == []


def test_download_resume_false_ignores_the_partial(client, files, tmp_path):
    (tmp_path / partial_name("a.txt")).write_bytes(b"alp")
    res = client.get("a.txt", tmp_path / "a.txt", resume=False)
    assert res.offset == 0 and (tmp_path / "a.txt").read_bytes() == b"alpha\n"


def test_progress_is_absolute_and_monotonic(client, remote, tmp_path):
    data = os.urandom(3 * 1024 * 1024 + 7)
    remote.write("big", data)
    seen: list[tuple[int, int]] = []
    client.get("big", tmp_path / "big", on_progress=lambda d, t: seen.append((d, t)))
    dones = [d for d, _ in seen]
    assert dones == sorted(dones) and dones[0] == 0 and dones[-1] == len(data)
    assert {t for _, t in seen} == {len(data)}
    up: list[tuple[int, int]] = []
    client.put(tmp_path / "big", "big2", on_progress=lambda d, t: up.append((d, t)))
    dones = [d for d, _ in up]
    assert dones == sorted(dones) and dones[0] == 0 and dones[-1] == len(data)
    assert {t for _, t in up} == {len(data)}


def test_progress_for_an_empty_file(client, remote, tmp_path):
    remote.write("empty", b"")
    seen: list = []
    client.get("empty", tmp_path / "empty", on_progress=lambda d, t: seen.append((d, t)))
    assert seen and seen[-1] == (0, 0)
    assert (tmp_path / "empty").read_bytes() == b""
    up: list = []
    res = client.put(tmp_path / "empty", "empty2", on_progress=lambda d, t: up.append((d, t)))
    assert up and up[-1] == (0, 0)
    assert res.sha256 == best(b"") and remote.read("empty2") == b""


# ------------------------------------------------------------------ put

def test_put_and_get_round_trip_many_chunks(client, remote, tmp_path):
    src = tmp_path / "src.bin"
    data = os.urandom(5 * 1024 * 1024 + 333)
    src.write_bytes(data)
    os.utime(src, ns=(1_600_000_000_123_456_000, 1_600_000_000_123_456_000))
    res = client.put(src, "copy.bin")
    assert (res.remote, res.total, res.sent, res.offset, res.sha256) == (
        "/copy.bin", len(data), len(data), 0, best(data))
    assert remote.read("copy.bin") == data
    assert remote.mtime_ns("copy.bin") // 1000 == 1_600_000_000_123_456
    back = tmp_path / "back.bin"
    assert client.get("copy.bin", back).sha256 == best(data)
    assert back.read_bytes() == data


def test_put_default_remote_name_and_overwrite(client, remote, tmp_path):
    src = tmp_path / "notes.txt"
    src.write_bytes(b"v1")
    client.put(src)
    assert remote.read("notes.txt") == b"v1"
    src.write_bytes(b"v2")
    with pytest.raises(errors.AlreadyExistsError):
        client.put(src)
    assert remote.read("notes.txt") == b"v1"
    assert client.connected
    client.put(src, overwrite=True)
    assert remote.read("notes.txt") == b"v2"


def test_put_into_the_remote_cwd(client, files, tmp_path):
    src = tmp_path / "n.txt"
    src.write_bytes(b"n")
    client.cd("sub")
    assert client.put(src).remote == "/sub/n.txt"
    assert files.read("sub/n.txt") == b"n"


def test_put_of_a_directory_or_missing_file(client, remote, tmp_path):
    with pytest.raises(errors.LocalError, match="directory"):
        client.put(tmp_path)
    with pytest.raises(errors.LocalError, match="cannot read"):
        client.put(tmp_path / "missing.bin")
    assert client.connected and remote.names() == []


def test_put_resumes_a_partial_on_the_server(server, root, tmp_path):
    data = os.urandom(400_000)
    src = tmp_path / "r.bin"
    src.write_bytes(data)
    cut_put(server, root / partial_name("r.bin"), "r.bin", data, data[:100_000])
    # a version 1 partial is pinned by its SHA-256: a SHA-256 session may continue it
    with Client(*server.address, timeout=5, digest="sha256") as c:
        res = c.put(src, "r.bin")
        assert res.offset == 100_000 and res.sent == 300_000
    assert (root / "r.bin").read_bytes() == data
    assert os.listdir(root) == ["r.bin"]


def test_put_whose_server_partial_is_corrupt_is_sent_again(server, root, tmp_path):
    data = os.urandom(200_000)
    src = tmp_path / "r.bin"
    src.write_bytes(data)
    # a partial with matching metadata but wrong bytes (say, a disk error)
    cut_put(server, root / partial_name("r.bin"), "r.bin", data, b"\x00" * 50_000)
    with Client(*server.address, timeout=5) as c:
        res = c.put(src, "r.bin")
        assert res.offset == 0 and res.sha256 == best(data)
    assert (root / "r.bin").read_bytes() == data


# ------------------------------------------------------------------ broken state

def test_broken_connection_sticks_until_reconnect(make_server, files):
    s = make_server(idle_timeout=0.5)
    c = Client(*s.address, timeout=5)
    try:
        c.cd("sub")
        # the server drops the connection under the client
        wait_for(lambda: s.session_count == 0, what="the server to drop the client")
        with pytest.raises(errors.TransportError):
            c.pwd()
        assert not c.connected
        with pytest.raises(errors.TransportError, match="reconnect"):
            c.ls()  # never reused out of step
        c.reconnect()
        assert c.connected
        assert c.pwd() == "/sub"  # the session's directory is restored
        assert [e.name for e in c.ls()] == ["b.txt"]
    finally:
        c.close()


def test_unsupported_version_is_raised(server, monkeypatch):
    import pyftp.client.connection as client_mod
    monkeypatch.setattr(client_mod, "VERSION", 99)
    with pytest.raises(errors.UnsupportedVersionError):
        Client(*server.address, timeout=5)


# ------------------------------------------------------------------ a peer that is not pyftp

@pytest.fixture
def fake_peer():
    """A one-shot TCP listener that answers the first bytes it gets with ``answer``."""
    import threading
    made: list = []

    def start(answer: bytes, speaks_first: bool = False, close: bool = True):
        # speaks_first: the answer goes out on connect, as SSH and FTP banners do;
        # close=False: the peer then stays silent instead of closing
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(1)
        lsock.settimeout(10)

        def serve():
            try:
                conn, _ = lsock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(10)
                try:
                    if not speaks_first:
                        conn.recv(65536)
                    conn.sendall(answer)
                    if close:
                        conn.shutdown(socket.SHUT_WR)
                    conn.recv(65536)  # until the client closes
                    conn.recv(65536)
                except OSError:
                    pass
        t = threading.Thread(target=serve, name="fake-peer")
        t.start()
        made.append((lsock, t))
        return lsock.getsockname()
    try:
        yield start
    finally:
        for lsock, t in made:
            lsock.close()
            t.join(10)


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 400 Bad Request\r\n\r\n",
    b"\x00\x00\x00\x00",
    b"\x00\x00\x00\x02[]",
    b"\x00\x00\x00\x02{}",  # no boolean "ok"
])
def test_a_peer_that_is_not_pyftp_gives_a_clear_error(fake_peer, answer):
    host, port = fake_peer(answer)
    # a pyftp error that says what is wrong, never a hang or a stray exception
    with pytest.raises((errors.ConnectError, errors.ProtocolError)) as info:
        Client(host, port, timeout=5)
    assert f"{host}:{port}" in str(info.value) or "frame" in str(info.value)


def test_a_peer_that_closes_during_hello_gives_connect_error(fake_peer):
    host, port = fake_peer(b"")
    with pytest.raises(errors.ConnectError, match="closed the connection during hello"):
        Client(host, port, timeout=5)


def test_listing_entries_from_the_wire_are_ordinary_frozen_entries():
    wire = {"name": "a.txt", "type": "file", "size": 6, "mtime": 1767225600}
    e = Entry.from_wire(wire)
    assert e == Entry("a.txt", "file", 6, 1767225600.0) and type(e.mtime) is float
    assert hash(e) == hash(Entry("a.txt", "file", 6, 1767225600.0))
    assert repr(e) == "Entry(name='a.txt', type='file', size=6, mtime=1767225600.0)"
    with pytest.raises(AttributeError):
        e.size = 7  # frozen, like one made by Entry(...)
    # loose types are converted, missing optional fields default, junk is a ProtocolError
    assert Entry.from_wire({"name": "d", "type": "dir", "size": "0"}) == Entry("d", "dir", 0, 0.0)
    for bad in ({"type": "file"}, {"name": "x", "type": "file", "size": "big"},
                {"name": "x", "type": "file", "mtime": [1]}):
        with pytest.raises(errors.ProtocolError, match="malformed listing entry"):
            Entry.from_wire(bad)


@pytest.mark.parametrize("banner, speaks_first, what", [
    (b"SSH-2.0-OpenSSH_9.6\r\n", True, "an SSH server"),
    (b"220 ProFTPD Server ready.\r\n", True, "an FTP server"),
    (b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", False, "an HTTP server"),
    (b"+OK POP3 server ready\r\n", True, "not a pyftp server"),
])
def test_a_peer_that_is_not_pyftp_is_named(fake_peer, banner, speaks_first, what):
    host, port = fake_peer(banner, speaks_first)
    with pytest.raises(errors.NotPyftpError) as info:
        Client(host, port, timeout=5)
    text = str(info.value)
    assert what in text and f"{host}:{port}" in text
    assert "length" not in text and "1397966893" not in text
    assert isinstance(info.value, errors.ProtocolError)  # the CLI's exit 4


def test_a_silent_peer_is_given_up_on_after_the_hello_deadline(fake_peer):
    # the peer never answers: the hello deadline, not the 30 s timeout, ends the wait
    host, port = fake_peer(b"", close=False)
    with pytest.raises(errors.NotPyftpError, match="did not answer the hello within 0.3 s"):
        Client(host, port, timeout=30, hello_timeout=0.3)


def test_the_console_script_exits_4_for_an_ssh_server(fake_peer, tmp_path):
    import subprocess
    import sys
    host, port = fake_peer(b"SSH-2.0-OpenSSH_9.6\r\n", speaks_first=True)
    proc = subprocess.run([sys.executable, "-m", "pyftp", f"{host}:{port}", "-c", "pwd"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 4, proc.stderr
    assert "an SSH server" in proc.stderr and "Traceback" not in proc.stderr


# ------------------------------------------------------------------ download targets (C2)

def test_get_through_a_symlink_replaces_the_file_it_points_to(client, files, tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (real / "old.txt").write_bytes(b"old contents")
    link = tmp_path / "link.txt"
    link.symlink_to(real / "old.txt")
    res = client.get("a.txt", link)
    assert link.is_symlink() and os.readlink(link) == str(real / "old.txt")
    assert (real / "old.txt").read_bytes() == b"alpha\n"
    assert res.local == str(real / "old.txt")
    assert local_dots(real) == [] and local_dots(tmp_path) == []


def test_get_into_a_fifo_streams_and_leaves_the_fifo(client, files, tmp_path):
    import threading
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []

    def read():
        with open(fifo, "rb") as f:
            got.append(f.read())
    t = threading.Thread(target=read)
    t.start()
    try:
        res = client.get("a.txt", fifo)
    finally:
        t.join(10)
    assert got == [b"alpha\n"] and res.sha256 == best(b"alpha\n") and res.local == str(fifo)
    import stat
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert local_dots(tmp_path) == []


def test_get_into_dev_null_keeps_the_device(client, files):
    res = client.get("a.txt", "/dev/null")
    import stat
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert res.total == 6 and res.sha256 == best(b"alpha\n")
    assert not os.path.exists("/dev/.null.pyftp-part")


def test_getfo_writes_to_a_file_object_and_verifies(client, files):
    import io
    buf = io.BytesIO()
    seen: list = []
    res = client.getfo("a.txt", buf, on_progress=lambda d, t: seen.append((d, t)))
    assert buf.getvalue() == b"alpha\n" and res.local == "<stream>"
    assert res.sha256 == best(b"alpha\n") and seen[-1] == (6, 6)
    assert client.connected


def test_getfo_of_a_missing_file_raises_and_the_connection_goes_on(client, files):
    import io
    with pytest.raises(errors.NotFoundError):
        client.getfo("nope", io.BytesIO())
    assert client.pwd() == "/"


def test_getfo_reports_a_mismatch_after_the_fact(server, files, tmp_path):
    """A server whose digest frame disagrees: the bytes were streamed, then the error."""
    import io
    import threading
    from pyftp.protocol import encode_frame
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)

    def serve():
        conn, _ = lsock.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(encode_frame({"ok": True, "version": 1, "features": ["sha256"]}))
            conn.recv(65536)
            conn.sendall(encode_frame({"ok": True, "size": 3, "offset": 0, "total": 3})
                         + b"abc" + encode_frame({"ok": True, "sha256": "0" * 64}))
            conn.recv(65536)
    t = threading.Thread(target=serve)
    t.start()
    try:
        with Client(*lsock.getsockname(), timeout=5) as c:
            out = io.BytesIO()
            with pytest.raises(errors.ChecksumMismatchError, match="already written"):
                c.getfo("x", out)
            assert out.getvalue() == b"abc"
    finally:
        t.join(10)
        lsock.close()


def test_get_refuses_to_replace_a_socket_file(client, files, tmp_path):
    s = socket.socket(socket.AF_UNIX)
    path = tmp_path / "sock"
    s.bind(str(path))
    try:
        with pytest.raises(errors.LocalError, match="not a regular file"):
            client.get("a.txt", path)
    finally:
        s.close()


# ------------------------------------------------------------------ public hooks

def test_abort_drops_the_connection_like_a_network_failure(client, files):
    assert client.socket is not None
    client.abort("the network went away")
    assert not client.connected and client.socket is None
    with pytest.raises(errors.TransportError, match="the network went away"):
        client.pwd()
    client.reconnect()
    assert client.pwd() == "/"


def test_reconnect_returns_to_the_root_when_the_sessions_folder_is_gone(client, files):
    assert client.cd("sub") == "/sub"
    client.abort("the network went away")
    with Client(client.host, client.port) as other:  # another client takes it away
        other.rm("sub/b.txt")
        other.rmdir("sub")
    client.reconnect()
    assert client.connected and client.pwd() == "/"


# ------------------------------------------------------------------ resume tokens (C1)

def test_token_book_keys_by_server_user_path_total_and_local_file(tmp_path):
    from pyftp.client.upload import TokenBook
    f = tmp_path / "b.bin"
    f.write_bytes(b"0123456789")
    st = os.stat(f)
    book = TokenBook()
    key = book.key("h", "ann", "/in", "a/../b.bin", 10, st)
    assert book.key("h", "ann", "/", "/in/b.bin", 10, st) == key
    book.remember(key, "tok_1-A")
    book.remember(book.key("h", None, "/", "x", 1), None)  # an old server: nothing kept
    assert book.get(key) == "tok_1-A" and len(book) == 1
    # another size, user, server or local file never gets the token
    assert book.get(book.key("h", "ann", "/", "/in/b.bin", 11, st)) is None
    assert book.get(book.key("h", "bob", "/", "/in/b.bin", 10, st)) is None
    assert book.get(book.key("other", "ann", "/", "/in/b.bin", 10, st)) is None
    f.write_bytes(b"9876543210")
    assert book.get(book.key("h", "ann", "/", "/in/b.bin", 10, os.stat(f))) is None
    book.forget(key)
    assert book.get(key) is None and len(book) == 0


def test_a_token_file_outlives_the_process_and_stays_private(tmp_path):
    from pyftp.client.upload import TokenBook
    path = tmp_path / "cache" / "pyftp" / "tokens.json"
    TokenBook(path).remember("k", "tok")
    assert TokenBook(path).get("k") == "tok"  # a new process reads it back
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    small = TokenBook(path)
    small.LIMIT = 3
    for i in range(10):
        small.remember(f"k{i}", f"t{i}")
    assert len(TokenBook(path)) == 3 and TokenBook(path).get("k9") == "t9"
    path.write_text("{not json")  # damaged: resuming is lost, nothing fails
    assert TokenBook(path).get("k") is None
    TokenBook(path).remember("k", "again")
    assert TokenBook(path).get("k") == "again"


def test_get_many_follows_links_and_never_replaces_a_fifo(client, files, tmp_path):
    real = tmp_path / "real.txt"
    real.write_bytes(b"old")
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    res = client.get_many([("a.txt", link), ("sub/b.txt", fifo), ("sub/b.txt", tmp_path / "b")])
    assert isinstance(res[0], TransferResult) and real.read_bytes() == b"alpha\n"
    assert link.is_symlink()
    assert isinstance(res[1], errors.LocalError) and "not a regular file" in str(res[1])
    import stat
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert (tmp_path / "b").read_bytes() == b"beta" and local_dots(tmp_path) == []


def test_no_token_is_sent_to_a_server_that_does_not_list_resume_token(tmp_path):
    from helpers import ScriptedPeer
    peer = ScriptedPeer(["sha256", "resume", "sha256_trailer"], tokens=["T1", "T1"],
                        finals=[{"ok": False, "error": "internal", "message": "disk"}])
    src = tmp_path / "f.bin"
    src.write_bytes(b"x" * 100)
    try:
        with Client(*peer.address, timeout=5) as c:
            with pytest.raises(errors.InternalError):
                c.put(src, "f.bin")
            c.put(src, "f.bin")
    finally:
        peer.close()
    puts = [h for h in peer.headers if h["op"] == "put"]
    assert len(puts) == 2 and all("token" not in h for h in puts)


def test_a_resume_token_is_sent_again_until_the_put_published(tmp_path):
    from helpers import ScriptedPeer
    fail = {"ok": False, "error": "internal", "message": "disk"}
    peer = ScriptedPeer(["sha256", "resume", "sha256_trailer", "resume_token"],
                        tokens=["T1", "T1", "T2", "T3"], finals=[fail])
    small, big = tmp_path / "small.bin", tmp_path / "big.bin"
    small.write_bytes(b"x" * 100)
    big.write_bytes(os.urandom(3 << 20))  # a trailer put
    try:
        with Client(*peer.address, timeout=5) as c:
            c.cd("/in")
            with pytest.raises(errors.InternalError):
                c.put(small, "s.bin")     # T1 handed out, not published
            c.put(small, "s.bin")         # sends T1, publishes: forgotten
            c.put(small, "s.bin")         # nothing to send; T2 handed out and published
            c.put_many([(big, "b.bin")])  # trailer form: T3, published
    finally:
        peer.close()
    puts = [h for h in peer.headers if h["op"] == "put"]
    assert [h.get("token") for h in puts] == [None, "T1", None, None]
    assert puts[3].get("trailer") is True and "sha256" not in puts[3]
    verify = [h for h in peer.headers if h["op"] == "verify"]
    assert len(verify) == 1 and verify[0]["sha256"] == sha(big.read_bytes())


def test_get_into_a_process_fd_link_writes_to_the_open_file(client, files, tmp_path):
    # /dev/stdout redirected to a file: a link into /proc that must be written through,
    # not replaced by a new file the redirect never sees (appended, as >> would keep)
    out = tmp_path / "out.txt"
    out.write_bytes(b"before\n")
    fd = os.open(out, os.O_WRONLY | os.O_APPEND)
    try:
        link = tmp_path / "stdout"
        link.symlink_to(f"/proc/self/fd/{fd}")
        ino = os.stat(out).st_ino
        client.get("a.txt", link)
    finally:
        os.close(fd)
    assert out.read_bytes() == b"before\nalpha\n" and os.stat(out).st_ino == ino
    assert link.is_symlink() and local_dots(tmp_path) == []


def test_get_into_a_pipe_link_streams(client, files, tmp_path):
    r, w = os.pipe()
    try:
        link = tmp_path / "stdout"
        link.symlink_to(f"/proc/self/fd/{w}")
        client.get("a.txt", link)
        assert os.read(r, 100) == b"alpha\n"
    finally:
        os.close(r)
        os.close(w)


def test_a_tls_answer_to_a_plain_hello_says_use_tls(fake_peer):
    host, port = fake_peer(b"\x15\x03\x03\x00\x02\x02\x32")  # a TLS alert record
    with pytest.raises(errors.ConnectError, match="connect with --tls"):
        Client(host, port, timeout=5)


def test_a_silent_peer_ends_a_tls_handshake_at_the_hello_deadline(fake_peer):
    host, port = fake_peer(b"", close=False)
    with pytest.raises(errors.ConnectError, match="TLS"):
        Client(host, port, timeout=30, hello_timeout=0.3, tls=True, insecure=True)


def test_small_uploads_keep_their_tokens_in_memory(server, tmp_path):
    """A file sent in one frame is sent whole by a rerun anyway: its resume token is
    not written to the token file (a put -r of many small files would rewrite it twice
    per file), while a large upload's is, until it publishes."""
    from pyftp.client.upload import SMALL_PUT, TokenBook
    path = tmp_path / "cache" / "tokens.json"
    book = TokenBook(path)
    book.remember("small", "t1", durable=False)
    assert book.get("small", durable=False) == "t1" and not path.exists()
    assert TokenBook(path).get("small") is None  # another process never sees it
    small = tmp_path / "small.bin"
    small.write_bytes(b"s" * 1000)
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(SMALL_PUT + 1))
    with Client(*server.address, resume_tokens=book) as c:
        c.put(str(small), "small.bin")
        assert not path.exists()
        c.put(str(big), "big.bin")
    assert path.exists() and len(TokenBook(path)) == 0  # written, then forgotten
