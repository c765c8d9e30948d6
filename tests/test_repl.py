"""The shell, driven through Shell.onecmd / Shell.execute with a captured console, against
a real server on 127.0.0.1:0; completion functions called directly."""
from __future__ import annotations

import json
import os
from contextlib import contextmanager

import pytest

from pyftp.client import Client
from pyftp.errors import AuthFailedError, LocalError, NotFoundError
from pyftp.protocol import COMMANDS
from pyftp.server import Account
from pyftp.shell import (SHELL_COMMANDS, Shell, UsageError, history_path, parse_target,
                        split_commands, split_partial)
from shellharness import make_shell
from pyftp.ui import Reporter
from helpers import best, sha





# ------------------------------------------------------------------ listing and folders
def test_ls_short_and_long(sh, root):
    (root / "docs").mkdir()
    (root / "a.txt").write_bytes(b"x" * 1536)
    short = sh.ok("ls")
    assert short.splitlines() == ["a.txt", "docs/"]
    long = sh.ok("ls -l")
    assert "a.txt" in long and "1.5 KiB" in long and "docs/" in long
    assert "1 folder, 1 file, 1.5 KiB" in long
    assert sh.ok("ls -l docs").count("0 folders, 0 files") == 1


def test_cd_pwd_and_the_prompt(sh, root, server):
    (root / "sub" / "deeper").mkdir(parents=True)
    host, port = server.address
    assert sh.shell.prompt == f"pyftp {host}:{port}:/> "
    assert sh.ok("cd sub") == ""
    assert sh.ok("pwd").strip() == "/sub"
    sh.shell.onecmd("cd deeper")
    assert sh.shell.prompt == f"pyftp {host}:{port}:/sub/deeper> "
    sh.ok("cd")
    assert sh.ok("pwd").strip() == "/"
    outcome, text = sh.run("cd nowhere")
    assert not outcome.ok and text.strip() == "not found: /nowhere"


def test_mkdir_p_rm_rmdir_mv_stat(sh, root):
    sh.ok("mkdir -p a/b/c")
    assert (root / "a" / "b" / "c").is_dir()
    outcome, text = sh.run("mkdir a")
    assert not outcome.ok and "already exists" in text
    (root / "f.txt").write_text("hello")
    sh.ok("mv f.txt a/b")  # into the folder, as mv does
    assert (root / "a" / "b" / "f.txt").read_text() == "hello"
    stat = sh.ok("stat a/b/f.txt")
    assert "/a/b/f.txt" in stat and "5 B (5 bytes)" in stat and "file" in stat
    (root / "g.txt").write_text("other")
    outcome, text = sh.run("mv g.txt a/b/f.txt")
    assert not outcome.ok and "mv -f" in text
    sh.ok("mv -f g.txt a/b/f.txt")
    assert (root / "a" / "b" / "f.txt").read_text() == "other"
    outcome, text = sh.run("rmdir a/b")
    assert not outcome.ok and "not empty" in text
    sh.ok("rm a/b/f.txt")
    sh.ok("rmdir a/b/c a/b a")
    assert list(root.iterdir()) == []


def test_hash_and_upper(sh, root):
    zeros = bytes(1000)
    (root / "d.bin").write_bytes(zeros)
    assert sh.ok("hash d.bin").strip() == f"{best(zeros)}  d.bin"
    assert sh.ok("upper pyftp ends sticky packets").strip() == "PYFTP ENDS STICKY PACKETS"
    assert sh.ok('upper "two  spaces"').strip() == "TWO  SPACES"
    assert sh.ok("upper don't panic").strip() == "DON'T PANIC"


# ------------------------------------------------------------------ transfers
def test_get_verifies_and_names_the_file(sh, root, local):
    data = os.urandom(3 * 1024 * 1024 + 17)
    (root / "big.bin").write_bytes(data)
    text = sh.ok("get big.bin")
    assert (local / "big.bin").read_bytes() == data
    assert text.startswith("get /big.bin -> big.bin  3.0 MiB")
    sh.ok("get big.bin renamed.bin")
    assert sha((local / "renamed.bin").read_bytes()) == sha(data)
    (local / "into").mkdir()
    sh.ok("get big.bin into")
    assert (local / "into" / "big.bin").stat().st_size == len(data)


def test_get_of_a_missing_file_is_one_line_and_the_shell_goes_on(sh, local):
    outcome, text = sh.run("get docs/x.txt")
    assert not outcome.ok and isinstance(outcome.error, NotFoundError)
    assert text == "not found: /docs/x.txt\n"
    assert list(local.iterdir()) == []
    assert sh.ok("pwd").strip() == "/"


def test_put_plain_into_a_folder_and_refusing_to_replace(sh, root, local):
    (local / "a.txt").write_text("one")
    (root / "in").mkdir()
    text = sh.ok("put a.txt")
    assert (root / "a.txt").read_text() == "one"
    assert text.startswith("put a.txt -> /a.txt")
    sh.ok("put a.txt in/")
    sh.ok("put a.txt in/b.txt")
    assert sorted(p.name for p in (root / "in").iterdir()) == ["a.txt", "b.txt"]
    (local / "a.txt").write_text("two")
    outcome, text = sh.run("put a.txt")
    assert not outcome.ok and "already exists: /a.txt" in text and "put -f" in text
    assert (root / "a.txt").read_text() == "one"
    sh.ok("put -f a.txt")
    assert (root / "a.txt").read_text() == "two"
    outcome, text = sh.run("put missing.txt")
    assert not outcome.ok and isinstance(outcome.error, LocalError) and "missing.txt" in text


def test_names_with_spaces_and_zero_bytes(sh, root, local):
    (local / "my file.txt").write_bytes(b"")
    sh.ok('put "my file.txt"')
    assert (root / "my file.txt").read_bytes() == b""
    sh.ok("get my\\ file.txt 'copy of it.txt'")
    assert (local / "copy of it.txt").read_bytes() == b""


def test_mget_and_mput_with_patterns(sh, root, local):
    for i in range(3):
        (root / f"log{i}.txt").write_text(f"log {i}")
    (root / "keep.bin").write_bytes(b"k")
    (root / "logs.d").mkdir()
    outcome, text = sh.run("mget log*")
    assert outcome.ok, text
    assert sorted(p.name for p in local.iterdir()) == ["log0.txt", "log1.txt", "log2.txt"]
    assert outcome.fields["count"] == 3 and outcome.fields["size"] == 15
    assert text.count("get /log") == 3
    outcome, text = sh.run("mget nothing*")
    assert not outcome.ok and "nothing matches nothing*" in text
    outcome, text = sh.run("mget logs.*")
    assert not outcome.ok and "skipping folder /logs.d" in text and "only folders" in text
    up = local / "up"
    up.mkdir()
    for name in ("a.csv", "b.csv", "c.txt"):
        (up / name).write_text(name)
    sh.ok("lcd up")
    sh.ok("mkdir csv")
    sh.ok("cd csv")
    outcome, _ = sh.run("mput *.csv c.txt")
    assert outcome.ok and outcome.fields["count"] == 3
    assert sorted(p.name for p in (root / "csv").iterdir()) == ["a.csv", "b.csv", "c.txt"]
    outcome, text = sh.run("mput *.none")
    assert not outcome.ok and "no local file matches *.none" in text


def test_local_commands_never_move_the_process(sh, local):
    before = os.getcwd()
    (local / "sub").mkdir()
    (local / "sub" / "x.txt").write_text("12345")
    sh.ok("lcd sub")
    assert sh.ok("lpwd").strip() == str(local / "sub")
    assert "x.txt" in sh.ok("lls") and "5 B" in sh.ok("lls -l")
    outcome, text = sh.run("lcd nope")
    assert not outcome.ok and "no such local folder" in text
    assert os.getcwd() == before


# ------------------------------------------------------------------ syntax and help
@pytest.mark.parametrize("line, message", [
    ("get", "usage: get REMOTE [LOCAL]"),
    ("ls -z", "ls: option -z not recognized"),
    ("mv a", "usage: mv [-f] SRC DST"),
    ('get "unclosed', "no closing quotation"),
    ("gett x", "unknown command: gett; did you mean get?"),
    ("frobnicate", "type help for the list"),
    ("help nosuch", "unknown command: nosuch"),
])
def test_usage_errors_are_one_line(sh, line, message):
    outcome, text = sh.run(line)
    assert not outcome.ok and isinstance(outcome.error, UsageError)
    assert message in text and len(text.splitlines()) == 1


def test_help_lists_every_command_and_explains_one(sh):
    text = sh.ok("help")
    for spec in SHELL_COMMANDS.values():
        assert spec.usage in text
    assert "download" in sh.ok("help get") and "get REMOTE [LOCAL]" in sh.ok("? get")


def test_every_protocol_op_is_a_shell_command_of_the_same_name():
    for op in COMMANDS:
        if op != "hello":  # the hello is what open does
            assert op in SHELL_COMMANDS and callable(getattr(Shell, f"do_{op}"))


def test_empty_line_does_nothing_and_quit_stops(sh):
    sh.out.truncate(0)
    assert sh.shell.onecmd("") is False
    assert sh.out.getvalue() == ""
    assert sh.shell.onecmd("   ") is False
    assert sh.shell.onecmd("exit") is True
    assert sh.shell.client is None
    assert sh.shell.prompt == "pyftp> "


def test_not_connected_commands_say_how_to_connect(local):
    h = make_shell(None, local)
    outcome, text = h.run("ls")
    assert isinstance(outcome.error, UsageError) and "use open HOST[:PORT]" in text
    assert h.ok("lpwd").strip() == str(local)
    outcome, text = h.run("open 127.0.0.1:99999")
    assert isinstance(outcome.error, UsageError) and "bad port" in text


def test_open_with_a_user_asks_for_the_password(make_server, local, monkeypatch):
    monkeypatch.delenv("PYFTP_PASSWORD", raising=False)
    server = make_server(authenticator=lambda u, p: Account(u) if (u, p) == ("ann", "pw") else None)
    host, port = server.address
    asked = []

    def getpass(prompt):
        asked.append(prompt)
        return "pw" if len(asked) == 1 else "wrong"
    h = make_shell(None, local, getpass=getpass)
    try:
        h.ok(f"open -u ann {host}:{port}")
        assert asked == [f"password for ann@{host}: "]
        assert h.shell.prompt == f"pyftp ann@{host}:{port}:/> "
        outcome, text = h.run(f"open -u bob {host}:{port}")
        assert isinstance(outcome.error, AuthFailedError) and "login failed" in text
        assert h.shell.client is None  # the old session was closed for the new one
        h.ok(f"open {host}:{port}")  # the last good login is remembered, not bob's
        assert len(asked) == 2 and h.shell.prompt.startswith("pyftp ann@")
    finally:
        h.shell.execute("close")


def test_names_that_are_not_utf8_display_escaped(sh, root):
    raw = os.fsencode(str(root)) + b"/bad\xff name.txt"
    with open(raw, "wb") as f:
        f.write(b"x")
    (root / "\x1b[31mred").write_text("")
    text = sh.ok("ls -l")
    assert "bad\\xff name.txt" in text and "\\x1b[31mred" in text and "\x1b" not in text


def test_json_output_one_object_per_command(server, local):
    h = make_shell(server, local, json_output=True)
    (local / "a.txt").write_bytes(b"abc")
    try:
        assert h.ok("put a.txt") .count("\n") == 1
        put = json.loads(h.out.getvalue())
        assert put["command"] == "put" and put["ok"] is True and put["path"] == "/a.txt"
        assert put["size"] == 3 and put["digest"] == best(b"abc") and put["seconds"] >= 0
        listing = json.loads(h.ok("ls"))
        assert [e["name"] for e in listing["entries"]] == ["a.txt"]
        outcome, text = h.run("get nope.txt")
        err = json.loads(text.splitlines()[-1])
        assert err == {"command": "get", "ok": False, "error": "not_found",
                       "message": "not found: /nope.txt"}
    finally:
        h.shell.execute("close")


# ------------------------------------------------------------------ Ctrl-C
class InterruptAfter(Reporter):
    """Raises KeyboardInterrupt from inside the transfer once ``limit`` bytes moved,
    exactly where a Ctrl-C lands during a real transfer."""

    def __init__(self, limit: int) -> None:
        self.limit = limit

    @contextmanager
    def transfer(self, label, total=None):
        def on_progress(done, total_):
            if done >= self.limit:
                raise KeyboardInterrupt
        yield on_progress


def test_ctrl_c_cancels_reconnects_and_the_rerun_resumes(server, root, local):
    data = os.urandom(3 * 1024 * 1024)
    (root / "big.bin").write_bytes(data)

    def connector(host, port, user, password):
        # a rate limit makes the client move data in small steps (like a slow link),
        # so the interrupt lands while most of the file is still to come
        return Client(host, port, limit_rate=16 * 1024 * 1024)
    h = make_shell(server, local, interactive=True, connector=connector)
    try:
        h.shell.execute("cd /")
        h.shell.reporter = InterruptAfter(1024 * 1024)
        outcome, text = h.run("get big.bin")
        assert isinstance(outcome.error, KeyboardInterrupt)
        assert "cancelled: get" in text and "reconnected" in text
        assert not (local / "big.bin").exists()  # never a half file under the real name
        assert h.shell.client.connected
        h.shell.reporter = Reporter()
        outcome, _ = h.run("get big.bin")
        assert outcome.ok and outcome.fields["resumed_from"] >= 1024 * 1024
        assert sha((local / "big.bin").read_bytes()) == sha(data)
        (local / "up.bin").write_bytes(data)
        h.shell.reporter = InterruptAfter(1)
        outcome, text = h.run("put up.bin")
        assert isinstance(outcome.error, KeyboardInterrupt) and "never published" in text
        assert not (root / "up.bin").exists()
        h.shell.reporter = Reporter()
        outcome, _ = h.run("put up.bin")
        assert outcome.ok and outcome.fields["resumed_from"] > 0
        assert sha((root / "up.bin").read_bytes()) == sha(data)
    finally:
        h.shell.execute("close")


def test_a_dropped_connection_is_reopened_by_the_next_command(sh, root):
    sh.shell.client.abort("the network went away")
    assert not sh.shell.client.connected
    (root / "x").write_text("")
    assert "x" in sh.ok("ls")


# ------------------------------------------------------------------ completion
def test_command_names_complete(sh):
    assert sh.complete("g") == ["get "]
    assert sh.complete("m") == ["mget ", "mirror ", "mkdir ", "mput ", "mv "]
    assert sh.complete("ex") == ["exit "]
    assert sh.complete("help g") == ["get "]


def test_remote_paths_complete_with_spaces_and_folders(sh, root):
    (root / "my file.txt").write_text("")
    (root / "my folder").mkdir()
    (root / "my folder" / "inner.txt").write_text("")
    (root / "docs").mkdir()
    (root / ".hidden").write_text("")
    assert sh.complete("get my") == ["my\\ file.txt ", "my\\ folder/"]
    assert sh.complete("get my\\ fi") == ["file.txt "]
    assert sh.complete('get "my fi') == ['file.txt" ']
    assert sh.complete("get 'my fo") == ["folder/"]
    assert sh.complete("get my\\ folder/") == ["folder/inner.txt "]
    assert sh.complete("get ") == ["docs/", "my\\ file.txt ", "my\\ folder/"]
    assert sh.complete("get .h") == [".hidden "]
    assert sh.complete("cd ") == ["docs/", "my\\ folder/"]  # folders only
    assert sh.complete("ls -l do") == ["docs/"]  # flags do not count as arguments
    assert sh.complete("get docs/ ") == []  # LOCAL: nothing remote offered here
    assert sh.complete("mv docs ") == ["docs/", "my\\ file.txt ", "my\\ folder/"]


def test_local_paths_complete(sh, local):
    (local / "report final.pdf").write_text("")
    (local / "reports").mkdir()
    assert sh.complete("put rep") == ["report\\ final.pdf ", "reports/"]
    assert sh.complete("lcd rep") == ["reports/"]
    assert sh.complete("get remote.txt rep") == ["report\\ final.pdf ", "reports/"]
    assert sh.complete("mput a b rep") == ["report\\ final.pdf ", "reports/"]


def test_listing_cache_is_per_folder_and_refreshed_after_changes(sh, root, local):
    (root / "one.txt").write_text("")
    assert sh.complete("get ") == ["one.txt "]
    fetched = sh.shell.cache.fetches
    (root / "sneaky.txt").write_text("")  # changed behind the shell's back
    assert sh.complete("get ") == ["one.txt "]  # served from the cache
    assert sh.shell.cache.fetches == fetched
    (local / "new.txt").write_text("n")
    sh.ok("put new.txt")
    assert sh.complete("get ") == ["new.txt ", "one.txt ", "sneaky.txt "]
    sh.ok("mkdir sub")
    assert "sub/" in sh.complete("get ")
    assert sh.complete("get sub/") == []
    sh.ok("put new.txt sub/")
    assert sh.complete("get sub/") == ["sub/new.txt "]
    sh.ok("rm one.txt")
    assert "one.txt " not in sh.complete("get ")
    sh.ok("mv sneaky.txt sub/")
    assert sh.complete("get sub/") == ["sub/new.txt ", "sub/sneaky.txt "]
    sh.ok("rm sub/new.txt sub/sneaky.txt")
    sh.ok("rmdir sub")
    assert sh.complete("get ") == ["new.txt "]


def test_listing_cache_expires(server, root, local):
    now = [0.0]
    h = make_shell(server, local, clock=lambda: now[0], cache_seconds=30)
    try:
        assert h.complete("get ") == []
        (root / "late.txt").write_text("")
        assert h.complete("get ") == []
        now[0] += 31
        assert h.complete("get ") == ["late.txt "]
    finally:
        h.shell.execute("close")


def test_completion_without_a_connection_offers_nothing(local):
    h = make_shell(None, local)
    assert h.complete("get ") == []


# ------------------------------------------------------------------ helpers
@pytest.mark.parametrize("text, expected", [
    ("host", ("host", 6971)), ("host:21", ("host", 21)), ("[::1]:7000", ("::1", 7000)),
    ("::1", ("::1", 6971)), ("[::1]", ("::1", 6971)),
])
def test_parse_target(text, expected):
    assert parse_target(text) == expected


@pytest.mark.parametrize("bad", [":21", "host:x", "host:0", "host:70000", "[::1]x"])
def test_parse_target_refuses(bad):
    with pytest.raises(ValueError):
        parse_target(bad)


def test_split_commands_respects_quotes():
    assert split_commands('put "a;b"; ls ;; get \'c;d\' x\\;y') == [
        'put "a;b"', "ls", "get 'c;d' x\\;y"]


def test_split_partial():
    assert split_partial('get "my fi') == (["get"], "my fi", 4, '"')
    assert split_partial("get my\\ fi") == (["get"], "my fi", 4, None)
    assert split_partial("get a ") == (["get", "a"], "", 6, None)


def test_history_path_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert history_path() == str(tmp_path / "pyftp" / "history")
    monkeypatch.setenv("XDG_STATE_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert history_path() == str(tmp_path / ".local" / "state" / "pyftp" / "history")
