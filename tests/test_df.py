"""``df``: the wire op (7.14) from raw frames, ``Client.df``, and the shell's ``df``;
against a real server on 127.0.0.1:0, an older server (a scripted peer without the
feature) and a storage backend that cannot say."""
from __future__ import annotations

import json
import os

import pytest

from helpers import RawConn, ScriptedPeer
from pyftp import Client, errors
from pyftp.protocol import FEATURES
from pyftp.server import Server, ServerConfig
from pyftp.server.storage import Storage
from shellharness import make_shell


class NoDiskStorage(Storage):
    """A backend with no file system behind it (as a bucket is): it cannot say."""

    def disk_usage(self) -> tuple[int, int] | None:
        return None


@pytest.fixture
def diskless_server(root):
    server = Server(ServerConfig(root=str(root), port=0))
    server.storage = NoDiskStorage(str(root))
    with server:
        yield server


def test_hello_offers_df_and_df_answers_total_and_free(server, root):
    with RawConn(server.address, hello=False) as conn:
        reply, _ = conn.request({"op": "hello", "version": 1})
        assert "df" in reply["features"] and reply["features"] == FEATURES
        reply, payload = conn.request({"op": "df"})
    assert payload == b"" and set(reply) == {"ok", "total", "free"}
    vfs = os.statvfs(root)
    assert reply["total"] == vfs.f_blocks * vfs.f_frsize
    assert type(reply["free"]) is int and 0 <= reply["free"] <= reply["total"]


@pytest.mark.local_only  # a bucket cannot say its size: df answers unsupported
def test_df_takes_no_payload_and_ignores_unknown_fields(server):
    with RawConn(server.address) as conn:
        reply, _ = conn.request({"op": "df", "path": "/ignored"})
        assert reply["ok"] is True
        reply, _ = conn.request({"op": "df"}, b"xx")
        assert reply["error"] == "bad_request" and "takes no payload" in reply["message"]
        assert conn.request({"op": "pwd"})[0] == {"ok": True, "cwd": "/"}


def test_a_backend_that_cannot_say_answers_unsupported_and_the_session_goes_on(
        diskless_server):
    with RawConn(diskless_server.address) as conn:
        reply, _ = conn.request({"op": "df"})
        assert (reply["ok"], reply["error"]) == (False, "unsupported")
        assert "cannot say" in reply["message"]
        assert conn.request({"op": "pwd"})[0]["ok"] is True


def test_client_df(server, root):
    with Client(*server.address, timeout=10) as c:
        usage = c.df()
    vfs = os.statvfs(root)
    assert usage.total == vfs.f_blocks * vfs.f_frsize
    assert 0 <= usage.free <= usage.total
    assert tuple(usage) == (usage.total, usage.free)


def test_client_df_on_a_backend_that_cannot_say(diskless_server):
    with Client(*diskless_server.address, timeout=10) as c:
        with pytest.raises(errors.RemoteError) as info:
            c.df()
        assert info.value.code == "unsupported"
        assert c.pwd() == "/"  # the connection stays usable


def test_client_df_on_an_older_server_asks_nothing():
    peer = ScriptedPeer(["sha256", "resume"])
    try:
        with Client(*peer.address, timeout=10) as c:
            with pytest.raises(errors.RemoteError) as info:
                c.df()
        assert info.value.code == "unsupported" and "older server" in str(info.value)
        assert "df" not in [h.get("op") for h in peer.headers]
    finally:
        peer.close()


def test_shell_df_in_blocks_and_human(server, root, tmp_path):
    sh = make_shell(server, tmp_path)
    fields, text = sh.ok_fields("df")
    header, row = text.splitlines()
    assert header.split() == ["1K-blocks", "Avail"]
    blocks, avail = row.split()
    vfs = os.statvfs(root)
    assert int(blocks) == vfs.f_blocks * vfs.f_frsize // 1024 == fields["total"] // 1024
    assert int(avail) == fields["free"] // 1024
    text = sh.ok("df -h")
    assert text.splitlines()[0].split() == ["Size", "Avail"]
    assert text.splitlines()[1].count("iB") == 2
    outcome, text = sh.run("df -x")
    assert not outcome.ok and "-x not recognized" in text and "usage: df [-h]" in text


def test_shell_df_says_when_the_server_cannot(diskless_server, tmp_path):
    sh = make_shell(diskless_server, tmp_path)
    outcome, text = sh.run("df -h")
    assert not outcome.ok and outcome.error.code == "unsupported"
    assert text.strip() == "unsupported: this server's storage cannot say how much space " \
                           "it has (df)"
    sh.ok("pwd")


@pytest.mark.local_only  # a bucket cannot say its size: df answers unsupported
def test_shell_df_json(server, tmp_path):
    from io import StringIO

    from rich.console import Console

    from pyftp.shell import Shell
    out = StringIO()
    shell = Shell(console=Console(file=out, color_system=None), err_console=Console(
        file=StringIO()), stdin=StringIO(), stdout=StringIO(), json_output=True,
        local_cwd=str(tmp_path))
    host, port = server.address
    assert shell.execute(f"open {host}:{port}").ok
    assert shell.execute("df -h").ok
    shell.close()
    obj = json.loads(out.getvalue().splitlines()[-1])
    assert obj["command"] == "df" and obj["ok"] is True
    assert set(obj) == {"command", "ok", "total", "free"} and obj["free"] <= obj["total"]


def test_shell_df_against_an_older_server_says_so(tmp_path):
    peer = ScriptedPeer(["sha256", "resume"])
    try:
        sh = make_shell(peer, tmp_path)
        outcome, text = sh.run("df")
        sh.shell.close()
    finally:
        peer.close()
    assert not outcome.ok and outcome.error.code == "unsupported"
    host, port = peer.address
    assert text.strip() == (f"unsupported: {host}:{port} cannot report disk space (an "
                            "older server, without df)")
