"""What sftp, lftp and rclone users type first (issue 13): ls flags, wildcards, rm -r/-f,
server names, login prompts, batch echo and comments, reget/reput, !cmd, cd -.

The shell is driven through Shell.execute against a real server on 127.0.0.1:0, and the
console script as a subprocess; nothing is mocked."""
from __future__ import annotations

import os

import pytest

from helpers import best
from pyftp.errors import NotFoundError
from pyftp.server import Account
from pyftp.shell import JobError, UsageError
from pyftp.shell.parsing import (ServerName, glob_literal, glob_pattern, has_glob,
                                 parse_server, strip_comment)
from shellharness import clean_env, make_shell, pyftp

# ------------------------------------------------------------------ 1. flags people type
def test_ls_flags_alone_and_combined(sh, root):
    (root / "small.txt").write_bytes(b"x" * 10)
    (root / "big.bin").write_bytes(b"x" * 5000)
    (root / ".hidden").write_text("h")
    os.utime(root / "small.txt", (2_000_000_000, 2_000_000_000))  # the newest
    os.utime(root / "big.bin", (1_000_000_000, 1_000_000_000))
    assert ".hidden" in sh.ok("ls -a")
    long = sh.ok("ls -la")
    assert "4.9 KiB" in long and "small.txt" in long
    assert sh.ok("ls -lh") == long
    assert sh.ok("ls -1").splitlines() == [".hidden", "big.bin", "small.txt"]
    assert sh.ok("ls -1t").splitlines()[0] == "small.txt"
    assert sh.ok("ls -1S").splitlines()[0] == "big.bin"
    assert sh.ok("ls -1Sr").splitlines()[-1] == "big.bin"
    outcome, text = sh.run("ls -Z")
    assert isinstance(outcome.error, UsageError) and "-Z not recognized" in text


def test_get_put_accept_p_and_a_and_reget_reput(sh, root, local):
    (root / "r.txt").write_text("remote")
    (local / "l.txt").write_text("local")
    sh.ok("get -p r.txt")
    sh.ok("get -a -p r.txt copy.txt")
    sh.ok("put -p l.txt")
    assert (local / "copy.txt").read_text() == "remote" and (root / "l.txt").exists()
    sh.ok("reget r.txt again.txt")
    sh.ok("reput l.txt l2.txt")
    assert (local / "again.txt").read_text() == "remote"
    assert (root / "l2.txt").read_text() == "local"


def test_bye_ends_the_session(sh):
    assert sh.run("bye")[0].ok and sh.shell.finished


def test_bang_runs_a_local_command_in_the_local_folder(sh, local):
    sh.ok("!echo made > bang.txt")
    assert (local / "bang.txt").read_text().strip() == "made"
    outcome, text = sh.run("!exit 3")
    assert not outcome.ok and "status 3" in text


def test_lmkdir_lrm_and_their_errors(sh, local):
    sh.ok("lmkdir new")
    sh.ok("lmkdir -p deep/er/est")
    assert (local / "new").is_dir() and (local / "deep" / "er" / "est").is_dir()
    (local / "gone.txt").write_text("x")
    sh.ok("lrm gone.txt")
    assert not (local / "gone.txt").exists()
    outcome, text = sh.run("lrm new")
    assert not outcome.ok and "lrm removes files only" in text and (local / "new").is_dir()
    outcome, text = sh.run("lrm missing.txt")
    assert not outcome.ok and "cannot remove" in text


def test_cd_dash_goes_back(sh, root):
    (root / "a" / "b").mkdir(parents=True)
    outcome, text = sh.run("cd -")
    assert isinstance(outcome.error, UsageError) and "no previous folder" in text
    sh.ok("cd a/b")
    sh.ok("cd /")
    assert sh.ok("cd -").strip() == "/a/b"
    assert sh.ok("cd -").strip() == "/"


def test_a_mistyped_local_command_never_suggests_a_remote_one(sh):
    for typo in ("lrn", "lrmm", "lmkdri"):
        outcome, text = sh.run(f"{typo} x")
        assert isinstance(outcome.error, UsageError)
        assert "did you mean rm" not in text and "did you mean mkdir" not in text
    assert "did you mean lrm?" in sh.run("lrn x")[1]
    assert "did you mean rm" in sh.run("rmm x")[1]


# ------------------------------------------------------------------ 2. rm -r, -f, many
def test_rm_r_removes_a_tree_deepest_first(sh, root):
    (root / "t" / "a" / "b").mkdir(parents=True)
    (root / "t" / "a" / "b" / "f1").write_text("1")
    (root / "t" / "a" / "f2").write_text("2")
    (root / "t" / "empty").mkdir()
    outcome, text = sh.run("rm t")
    assert not outcome.ok and "use rm -r" in text and (root / "t").is_dir()
    sh.ok("rm -r t")
    assert not (root / "t").exists()


def test_rm_r_of_a_wide_tree_in_one_pipelined_run(sh, root):
    for d in range(3):
        (root / "w" / f"d{d}" / "sub").mkdir(parents=True)
        for f in range(150):  # more than one pipeline window (64)
            (root / "w" / f"d{d}" / f"f{f}").write_text("x")
        (root / "w" / f"d{d}" / "sub" / "deep").write_text("y")
    sh.ok("rm -r w")
    assert not (root / "w").exists()


def test_rm_r_stops_at_what_the_server_refuses_and_says_why(make_server, root, local):
    (root / "t" / "a").mkdir(parents=True)
    (root / "t" / "a" / "f").write_text("1")
    h = make_shell(make_server(read_only=True), local)
    try:
        outcome, text = h.run("rm -r t")
    finally:
        h.shell.close()
    assert not outcome.ok and "permission denied" in text and "read-only" in text
    assert (root / "t" / "a" / "f").read_text() == "1"


def test_rm_f_ignores_missing_names(sh, root):
    (root / "x").write_text("x")
    sh.ok("rm -f x nothing-here")
    sh.ok("rm -f nothing*")
    assert not (root / "x").exists()


def test_rm_tries_every_name_and_fails_at_the_end(sh, root):
    for n in ("a", "c"):
        (root / n).write_text(n)
    outcome, text = sh.run("rm a b c")
    assert isinstance(outcome.error, JobError)
    assert not (root / "a").exists() and not (root / "c").exists()  # c was still tried
    assert "not found: /b" in text and "removed 2, 1 failed" in text
    outcome, text = sh.run("rm b")  # one name: the plain error, as before
    assert isinstance(outcome.error, NotFoundError) and text.strip() == "not found: /b"


# ------------------------------------------------------------------ 3. wildcards
def test_wildcards_in_get_ls_hash_stat_and_rm(sh, root, local):
    for n in ("f001.txt", "f002.txt", "g.bin"):
        (root / n).write_text(n)
    (root / "a*b").write_text("star")
    assert sh.ok("ls -1 f00?.txt").splitlines() == ["f001.txt", "f002.txt"]
    fields, text = sh.ok_fields("get f*.txt")
    assert (local / "f001.txt").read_text() == "f001.txt" and (local / "f002.txt").exists()
    (local / "into").mkdir()
    sh.ok("get f00[12].txt g.bin into")
    assert sorted(os.listdir(local / "into")) == ["f001.txt", "f002.txt", "g.bin"]
    hashes = sh.ok("hash *.txt").splitlines()
    assert hashes == [f"{best(n.encode())}  {n}" for n in ("f001.txt", "f002.txt")]
    assert sh.ok("stat g.*").count("file") == 1
    sh.ok("get a\\*b")  # an escaped star is a plain one
    assert (local / "a*b").read_text() == "star"
    assert sh.ok("ls -1 a\\*b").strip() == "a*b"
    sh.ok("rm f00*")
    assert sorted(os.listdir(root)) == ["a*b", "g.bin"]
    for command in ("get", "ls", "rm", "hash", "stat"):
        outcome, text = sh.run(f"{command} nomatch*")
        assert not outcome.ok and "nothing matches nomatch*" in text, command
        assert len(text.strip().splitlines()) == 1, text


def test_wildcards_in_put(sh, root, local):
    for n in ("p1.log", "p2.log", "keep.txt"):
        (local / n).write_text(n)
    (root / "logs").mkdir()
    sh.ok("put *.log logs")
    assert sorted(os.listdir(root / "logs")) == ["p1.log", "p2.log"]
    sh.ok("put p?.log")
    assert (root / "p1.log").exists() and not (root / "keep.txt").exists()
    outcome, text = sh.run("put *.none")
    assert not outcome.ok and "*.none" in text
    outcome, text = sh.run("put p1.log p2.log not-a-folder")
    assert isinstance(outcome.error, UsageError) and "not a folder" in text


def test_glob_words():
    assert has_glob("*.txt") and has_glob("a[12]") and not has_glob("a\\*b")
    assert glob_literal("a\\*b\\?") == "a*b?" and glob_pattern("a\\*b*") == "a[*]b*"
    assert strip_comment("put a.txt  # the report") == "put a.txt"
    assert strip_comment('put "a #1.txt"') == 'put "a #1.txt"'
    assert strip_comment("put a#b") == "put a#b"
    assert strip_comment("get my\\ #1.txt  # one file") == "get my\\ #1.txt"
    assert strip_comment("# all of it") == "" and strip_comment("ls '#'") == "ls '#'"


# ------------------------------------------------------------------ 4. server names
@pytest.mark.parametrize("text, expected", [
    ("host", ServerName("host")),
    ("host:2222", ServerName("host", 2222)),
    ("alice@host:2222", ServerName("host", 2222, "alice")),
    ("alice@host/in/box", ServerName("host", None, "alice", "/in/box")),
    ("pyftp://alice@host:2222/in", ServerName("host", 2222, "alice", "/in")),
    ("pyftp://[::1]:2222/x", ServerName("::1", 2222, None, "/x")),
    ("[::1]", ServerName("::1")),
    ("::1", ServerName("::1")),
    ("bob@[fe80::1]:7", ServerName("fe80::1", 7, "bob")),
])
def test_server_names(text, expected):
    assert parse_server(text) == expected


def test_bad_server_names_say_what_to_type():
    for text, says in [("http://host", "only pyftp://"), ("@host", "no user name"),
                       ("alice@::1", "in brackets"), ("host:0", "bad port"),
                       ("host:x", "bad port")]:
        with pytest.raises(ValueError, match=says):
            parse_server(text)


def test_open_starts_in_the_path_and_takes_p(server, root, local):
    (root / "in" / "box").mkdir(parents=True)
    host, port = server.address
    h = make_shell(None, local)
    try:
        h.ok(f"open pyftp://{host}:{port}/in/box")
        assert h.shell.cwd == "/in/box"
        h.ok("cd /")
        h.ok(f"open -p {port} {host}/in")
        assert h.shell.cwd == "/in"
        # cd - leads back to where the server started the session, never to a folder
        # of the connection before
        assert h.ok("cd -").strip() == "/" and h.ok("cd -").strip() == "/in"
        h.ok(f"open {host}:{port}")
        assert "no previous folder" in h.run("cd -")[1]
        outcome, text = h.run(f"open -p 0 {host}")
        assert isinstance(outcome.error, UsageError) and "bad port" in text
    finally:
        h.shell.execute("close")


def test_cli_takes_user_at_host_port_path_and_p(make_server, root, local):
    server = make_server(authenticator=lambda u, p: Account(u) if (u, p) == ("ann", "pw")
                         else None)
    host, port = server.address
    (root / "sub").mkdir()
    env = {"PYFTP_PASSWORD": "pw"}
    r = pyftp(f"ann@{host}:{port}/sub", "-c", "pwd", cwd=local, env=clean_env(**env))
    assert (r.returncode, r.stdout) == (0, "/sub\n"), r.stderr
    r = pyftp("-p", str(port), "-u", "ann", host, "-c", "pwd", cwd=local,
              env=clean_env(**env))
    assert (r.returncode, r.stdout) == (0, "/\n"), r.stderr
    r = pyftp(f"pyftp://ann@{host}:{port}/sub", "-c", "pwd", cwd=local, env=clean_env(**env))
    assert (r.returncode, r.stdout) == (0, "/sub\n"), r.stderr
    r = pyftp("-p", str(port), "-c", "pwd", cwd=local)
    assert r.returncode == 2 and "name the server too" in r.stderr


# ------------------------------------------------------------------ 5. login, ;, batch
def test_open_asks_for_user_and_password_when_the_server_wants_a_login(make_server, local,
                                                                       monkeypatch):
    monkeypatch.delenv("PYFTP_PASSWORD", raising=False)
    server = make_server(authenticator=lambda u, p: Account(u) if (u, p) == ("ann", "pw")
                         else None)
    host, port = server.address
    asked = []

    def ask(prompt):
        asked.append(prompt)
        return "ann"
    h = make_shell(None, local, getpass=lambda prompt: asked.append(prompt) or "pw", ask=ask)
    try:
        h.ok(f"open {host}:{port}")
        assert asked == [f"user for {host}: ", f"password for ann@{host}: "]
        assert h.shell.prompt.startswith("pyftp ann@")
    finally:
        h.shell.execute("close")


def test_semicolons_at_the_prompt(sh, root):
    sh.shell.onecmd("mkdir a; mkdir b ;mkdir 'c;d'")
    assert sorted(os.listdir(root)) == ["a", "b", "c;d"]
    sh.shell.onecmd("mkdir a; mkdir e")  # as in -c, the first failure stops the line
    assert not (root / "e").exists()


def test_batch_echoes_each_command_and_takes_trailing_comments(server, local):
    host, port = server.address
    batch = local / "job.pyftp"
    batch.write_text("# setup\nmkdir logs   # where logs go\nls -1  # list\n")
    r = pyftp(f"{host}:{port}", "-b", str(batch), cwd=local)
    assert r.returncode == 0, r.stderr
    assert "pyftp> mkdir logs\n" in r.stderr and "pyftp> ls -1\n" in r.stderr
    assert "#" not in r.stderr and r.stdout == "created /logs\nlogs/\n"
    r = pyftp(f"{host}:{port}", "-q", "-b", str(batch), cwd=local)
    assert r.returncode == 1 and "pyftp>" not in r.stderr  # mkdir logs exists now
    assert "already exists" in r.stderr


def test_open_without_a_terminal_to_ask_on_says_open_u(make_server, local):
    server = make_server(authenticator=lambda u, p: None)
    host, port = server.address
    h = make_shell(None, local, interactive=True)
    outcome, text = h.run(f"open {host}:{port}")
    assert not outcome.ok and f"wants a login: open -u USER {host}:{port}" in text


# ------------------------------------------------------------------ help names everything
def _words(text: str) -> set[str]:
    import re
    return set(re.findall(r"(?<![\w-])(![A-Z]+|[a-z]+)", text))


def test_every_shell_command_is_in_help_the_readme_table_and_pyftp_help(local):
    import re
    from pathlib import Path

    from pyftp.shell import SHELL_COMMANDS
    names = {"!COMMAND" if n == "!" else n for n in SHELL_COMMANDS}
    h = make_shell(None, local)
    listed = {line.split()[0] for line in h.ok("help").splitlines() if line.strip()}
    assert names <= listed, names - listed
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    table = readme.split("## The shell", 1)[1].split("Coming from sftp", 1)[0]
    in_table = {m for cell in re.findall(r"^\| (.*?) \|", table, re.M)
                for m in re.findall(r"`(!?[A-Za-z]+)", cell)}
    assert names <= in_table, names - in_table
    r = pyftp("--help", cwd=local)
    assert r.returncode == 0
    section = r.stdout.split("shell commands", 1)[1].split("exit codes:", 1)[0]
    assert names <= _words(section), names - _words(section)
    for alias in ("exit", "bye"):
        assert alias in section and alias in h.ok("help quit")


def test_help_names_the_flags_people_type(local):
    h = make_shell(None, local)
    assert "ls [-1ahlrtS]" in h.ok("help")
    for command, flags in {"get": ("-r", "--checksum", "-p, -a", "--no-resume"),
                           "put": ("-r", "-f", "-p, -a"), "rm": ("-r", "-f"),
                           "df": ("-h",), "ls": ("-1", "-a", "-h", "-t", "-S", "-r")}.items():
        text = h.ok(f"help {command}")
        for flag in flags:
            assert f"  {flag} " in text, (command, flag)
    assert "cd [PATH|-]" in h.ok("help cd")
    assert "[USER@]HOST[:PORT][/PATH]" in h.ok("help open")


# ------------------------------------------------------------------ the hello deadline

def test_an_http_server_that_waits_for_its_client_is_named(local):
    """http.server says nothing until a request line ends: past the hello deadline the
    client's blank line makes it answer, and the answer names it (exit 4)."""
    import http.server
    import threading
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    host, port = httpd.server_address[:2]
    try:
        r = pyftp("--hello-timeout", "0.5", f"{host}:{port}", "-c", "pwd", cwd=local)
    finally:
        httpd.shutdown()
        httpd.server_close()
        t.join(10)
    assert r.returncode == 4, r.stderr
    assert f"{host}:{port} is an HTTP server, not a pyftp server" in r.stderr
    assert "Traceback" not in r.stderr

def test_hello_timeout_gives_up_on_a_peer_that_never_speaks(local):
    import socket

    # the kernel completes the handshake from the backlog: accepted, and silent forever
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)
    host, port = silent.getsockname()
    try:
        r = pyftp("--hello-timeout", "0.5", f"{host}:{port}", "-c", "pwd", cwd=local)
    finally:
        silent.close()
    assert r.returncode == 4, r.stderr
    assert f"{host}:{port} did not answer the hello within 0.5 s" in r.stderr
    assert "--tls" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("value", ["0", "-1", "soon"])
def test_hello_timeout_refuses_what_is_not_a_duration(local, value):
    r = pyftp(f"--hello-timeout={value}", "127.0.0.1", "-c", "pwd", cwd=local)
    assert r.returncode == 2 and "--hello-timeout" in r.stderr and "Traceback" not in r.stderr


def test_hello_timeout_default_is_the_clients():
    from pyftp.cli.client import client_parser
    from pyftp.client.connection import DEFAULT_HELLO_TIMEOUT
    assert client_parser().parse_args(["h"]).hello_timeout == DEFAULT_HELLO_TIMEOUT
    assert client_parser().parse_args(["--hello-timeout", "2m", "h"]).hello_timeout == 120


@pytest.mark.local_only  # a bucket cannot say its size: df answers unsupported
def test_cli_df(server, local):
    host, port = server.address
    r = pyftp(f"{host}:{port}", "-c", "df -h", cwd=local)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].split() == ["Size", "Avail"]


def test_get_to_a_terminal_draws_no_bar_over_the_bytes(server, root, local):
    import io
    import pty
    (root / "f.txt").write_bytes(b"text 1\n")
    master, slave = pty.openpty()
    try:
        with open(slave, "wb", buffering=0, closefd=False) as tty:
            for out, bars in ((tty, False), (io.BytesIO(), True)):
                progress = io.StringIO()
                h = make_shell(server, local, progress="tqdm", progress_stream=progress,
                               binary_out=out)
                h.ok("get f.txt -")
                h.shell.close()
                assert ("f.txt" in progress.getvalue()) is bars, progress.getvalue()
        assert os.read(master, 100).replace(b"\r\n", b"\n") == b"text 1\n"
    finally:
        os.close(master)
        os.close(slave)


def test_a_pattern_job_is_named_by_the_command_typed(sh, root, local):
    for name in ("a.txt", "b.txt"):
        (root / name).write_text(name)
        (local / f"l{name}").write_text(name)
    assert sh.ok("get *.txt").splitlines()[-1].startswith("get: sent 2 files")
    assert sh.ok("put l*.txt").splitlines()[-1].startswith("put: sent 2 files")
    assert sh.ok("mget *.txt").splitlines()[-1].startswith("mget: sent")


@pytest.mark.parametrize("line", ["ls -l", "?ls", "?", "!echo hi", "", "   ", "-x", "get_x y",
                                  "é x", "  put  a b ", "ls", "123 x", "ls\tx", "get-x"])
def test_a_line_splits_into_command_and_argument_as_cmd_splits_it(line):
    """The runner reads a line as the interactive prompt (cmd.Cmd) does, without
    loading cmd."""
    import cmd
    from pyftp.shell.base import ShellBase
    prompt = cmd.Cmd()
    prompt.do_shell = lambda arg: None  # the shell has a command for "!"
    assert ShellBase().parseline(line) == prompt.parseline(line)


@pytest.mark.parametrize("cwd, path", [
    ("/tmp/x", p) for p in ("/tmp/x/a", "/tmp/x/a/b", "/tmp/x", "/tmp/x/", "/tmp/xy/a",
                            "/tmp/x/../y", "/tmp/x/./a", "/tmp", "/other/a", "/tmp/x//a")
] + [("/", p) for p in ("/a", "/a/b", "/", "//a", "///a")])
def test_a_local_path_is_shown_as_relpath_shows_it(cwd, path):
    from pyftp.shell.base import shown_local
    rel = os.path.relpath(path, cwd)
    assert shown_local(path, cwd) == (path if rel.startswith("..") else rel)
