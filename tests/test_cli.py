"""``pyftp -c`` and ``pyftp -b`` as real subprocesses, the way scripts and CI run them:
every exit code, --json parsed line by line, stdout vs stderr, env defaults."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading

import pytest

from pyftp import digests
from pyftp._version import __version__
from pyftp.server import Account
from helpers import best, wait_for
from shellharness import PYFTP, clean_env, pyftp

@pytest.fixture
def target(server) -> str:
    host, port = server.address
    return f"{host}:{port}"


@pytest.fixture
def local(tmp_path):
    d = tmp_path / "local"
    d.mkdir()
    (d / "a.txt").write_bytes(b"hello pyftp\n")
    return d


#: the digest the default session verifies with (BLAKE3 when this build has it)
A_SHA = best(b"hello pyftp\n")


# ------------------------------------------------------------------ exit 0, stdout/stderr
def test_c_runs_commands_with_results_on_stdout_only(target, local, root):
    r = pyftp(target, "-c", "put a.txt; ls; hash a.txt; upper done", cwd=local)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("put a.txt -> /a.txt  12 B")
    assert lines[1:] == ["a.txt", f"{A_SHA}  a.txt", "DONE"]
    assert r.stderr == ""  # nothing to report: a quiet success
    assert (root / "a.txt").read_bytes() == b"hello pyftp\n"


def test_quiet_keeps_only_requested_output(target, local):
    r = pyftp("--quiet", target, "-c", "put a.txt; hash a.txt", cwd=local)
    assert r.returncode == 0
    assert r.stdout == f"{A_SHA}  a.txt\n"
    assert r.stderr == ""


def test_python_dash_m_runs_the_same_client(target, local):
    r = subprocess.run([sys.executable, "-m", "pyftp", target, "-c", "pwd"], cwd=local,
                       env=clean_env(), capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stdout) == (0, "/\n")


# ------------------------------------------------------------------ exit 1
def test_failed_operation_exits_1_and_stops(target, local):
    r = pyftp(target, "-c", "get docs/x.txt; ls", cwd=local)
    assert r.returncode == 1
    assert "pyftp: not found: /docs/x.txt" in r.stderr
    assert r.stdout == ""  # ls never ran
    assert sorted(os.listdir(local)) == ["a.txt"]


# ------------------------------------------------------------------ exit 2
@pytest.mark.parametrize("args, message", [
    (["TARGET", "-c", "frobnicate"], "unknown command: frobnicate"),
    (["TARGET", "-c", "get"], "usage: get REMOTE [LOCAL]"),
    (["--limit-rate", "abc", "TARGET", "-c", "ls"], "not a size"),
    (["--timeout", "0", "TARGET", "-c", "ls"], "more than zero"),
    (["-c", "ls"], "not connected"),
    (["TARGET", "-c", "ls", "-b", "f"], "not allowed with argument"),
    (["TARGET", "-b", "no-such-file"], "cannot read the batch file"),
    (["TARGET", "-c", " ; "], "no commands to run"),
    (["nohost:notaport", "-c", "ls"], "bad port"),
])
def test_usage_errors_exit_2(target, local, args, message):
    r = pyftp(*[target if a == "TARGET" else a for a in args], cwd=local)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr and r.stdout == ""
    assert "Traceback" not in r.stderr


def test_user_without_password_and_without_a_terminal_is_a_usage_error(target, local):
    r = pyftp("--user", "ann", target, "-c", "ls", cwd=local)
    assert r.returncode == 2 and "PYFTP_PASSWORD" in r.stderr


# ------------------------------------------------------------------ exit 3
def test_connection_refused_exits_3(local):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    r = pyftp(f"127.0.0.1:{port}", "-c", "ls", cwd=local)
    assert r.returncode == 3
    assert "could not connect to 127.0.0.1:" in r.stderr and "Traceback" not in r.stderr


@pytest.fixture
def auth_target(make_server):
    server = make_server(authenticator=lambda u, p: Account(u) if (u, p) == ("ann", "s3cret") else None)
    host, port = server.address
    return f"{host}:{port}"


def test_login_with_user_and_password_from_the_environment(auth_target, local):
    r = pyftp("--user", "ann", auth_target, "-c", "pwd", cwd=local,
              env=clean_env(PYFTP_PASSWORD="s3cret"))
    assert (r.returncode, r.stdout) == (0, "/\n"), r.stderr
    r = pyftp(auth_target, "-c", "pwd", cwd=local,
              env=clean_env(PYFTP_USER="ann", PYFTP_PASSWORD="s3cret"))
    assert r.returncode == 0


@pytest.mark.parametrize("env", [{"PYFTP_USER": "ann", "PYFTP_PASSWORD": "wrong"}, {}])
def test_login_failed_or_missing_exits_3(auth_target, local, env):
    r = pyftp(auth_target, "-c", "ls", cwd=local, env=clean_env(**env))
    assert r.returncode == 3
    assert ("login failed" if env else "login required") in r.stderr


# ------------------------------------------------------------------ exit 4
def _frame(header: dict) -> bytes:
    body = json.dumps(header).encode()
    return len(body).to_bytes(4, "big") + body


@pytest.fixture
def garbage_server():
    """A TCP server that logs the client in properly, then answers the first real
    command with a frame whose header is not JSON."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(20)

    def serve() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn, conn.makefile("rb") as f:
            conn.settimeout(20)
            try:
                while True:
                    head = f.read(4)
                    if len(head) < 4:
                        return
                    op = json.loads(f.read(int.from_bytes(head, "big")))["op"]
                    if op == "hello":
                        conn.sendall(_frame({"ok": True, "version": 1, "server": "odd/1",
                                             "features": []}))
                    elif op == "pwd":
                        conn.sendall(_frame({"ok": True, "cwd": "/"}))
                    else:
                        conn.sendall(b"\x00\x00\x00\x09not json!")
            except (OSError, ValueError):
                pass
    t = threading.Thread(target=serve, name="garbage-server")
    t.start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()
        t.join(20)


def test_protocol_error_from_the_peer_exits_4(garbage_server, local):
    r = pyftp("--json", garbage_server, "-c", "ls", cwd=local)
    assert r.returncode == 4
    assert "pyftp: protocol error: frame header is not valid JSON" in r.stderr
    opened, failure = (json.loads(line) for line in r.stdout.splitlines())
    assert opened["ok"] is True and opened["server"] == "odd/1"
    assert failure["command"] == "ls" and failure["ok"] is False
    assert failure["error"] == "bad_frame"


# ------------------------------------------------------------------ exit 130
def test_sigint_during_a_transfer_exits_130_and_publishes_nothing(target, local, root):
    (local / "big.bin").write_bytes(os.urandom(4 * 1024 * 1024))
    p = subprocess.Popen([*PYFTP, "--limit-rate", "512K", target, "-c", "put big.bin"],
                         cwd=local, env=clean_env(), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: any(n.startswith(".big.bin") for n in os.listdir(root)), 20.0,
                 "the upload to start")
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 130, err
    assert "cancelled: put" in err and "Traceback" not in err
    assert not (root / "big.bin").exists()


# ------------------------------------------------------------------ --json
def test_json_is_one_object_per_command(target, local):
    r = pyftp("--json", target, "-c", "put a.txt; ls; get nope.txt; ls", cwd=local)
    assert r.returncode == 1
    objs = [json.loads(line) for line in r.stdout.splitlines()]
    assert [o["command"] for o in objs] == ["open", "put", "ls", "get"]
    put = objs[1]
    assert put["ok"] is True and put["path"] == "/a.txt" and put["size"] == 12
    assert put["digest"] == A_SHA and isinstance(put["seconds"], float)
    assert [e["name"] for e in objs[2]["entries"]] == ["a.txt"]
    assert objs[3] == {"command": "get", "ok": False, "error": "not_found",
                       "message": "not found: /nope.txt"}


# ------------------------------------------------------------------ -b
def test_batch_file_comments_dash_prefix_and_first_failure_stops(target, local, root):
    (local / "deploy.pyftp").write_text(
        "# upload the build\n"
        "mkdir out\n"
        "-mkdir out\n"
        "\n"
        "put a.txt out/\n"
        "get missing.txt\n"
        "mkdir never\n")
    r = pyftp("--json", target, "-b", "deploy.pyftp", cwd=local)
    assert r.returncode == 1
    objs = [json.loads(line) for line in r.stdout.splitlines()]
    assert [(o["command"], o["ok"]) for o in objs] == [
        ("open", True), ("mkdir", True), ("mkdir", False), ("put", True), ("get", False)]
    assert "pyftp: line 3: already exists" in r.stderr
    assert "pyftp: line 6: not found: /missing.txt" in r.stderr
    assert (root / "out" / "a.txt").exists() and not (root / "never").exists()


def test_batch_from_stdin_ends_at_quit(target, local):
    r = pyftp(target, "-b", "-", cwd=local,
              input="put a.txt\n  # a comment\nhash a.txt\nquit\nget never-run.txt\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == f"{A_SHA}  a.txt"


# ------------------------------------------------------------------ env, version, options
def test_host_and_port_from_the_environment(server, local):
    host, port = server.address
    r = pyftp("-c", "pwd", cwd=local, env=clean_env(PYFTP_HOST=host, PYFTP_PORT=str(port)))
    assert (r.returncode, r.stdout) == (0, "/\n"), r.stderr
    r = pyftp("-c", "pwd", cwd=local, env=clean_env(PYFTP_HOST=host, PYFTP_PORT="http"))
    assert r.returncode == 2 and "PYFTP_PORT" in r.stderr


def test_version_is_fast_to_import(tmp_path):
    r = pyftp("--version", cwd=tmp_path)
    assert (r.returncode, r.stdout.strip()) == (
        0, f"pyftp {__version__} (digests: {', '.join(digests.ALGORITHMS)})")
    probe = ("import sys\nfrom pyftp.cli import main\ntry:\n    main(['--version'])\n"
             "except SystemExit:\n    pass\n"
             "print(sorted(m for m in ('rich', 'tqdm', 'socket', 'ssl') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                       timeout=60, cwd=tmp_path)
    assert r.stdout.strip().endswith("[]"), r.stdout + r.stderr


def test_a_plain_one_shot_command_does_not_load_tls(server, tmp_path):
    """ssl is a tenth of a one-shot command's start-up; it loads only for --tls."""
    host, port = server.address
    probe = ("import sys\nfrom pyftp.cli import main\n"
             f"code = main(['{host}:{port}', '-c', 'pwd'])\n"
             "print(code, 'ssl' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                       timeout=60, cwd=tmp_path)
    assert r.stdout.strip().splitlines()[-1] == "0 False", r.stdout + r.stderr


def test_a_one_shot_run_to_a_pipe_does_not_load_rich(server, root, tmp_path):
    """Results to a pipe are plain lines: rich (and tqdm) load only to draw something."""
    host, port = server.address
    (root / "f").write_bytes(b"x" * 1000)
    probe = ("import sys\nfrom pyftp.cli import main\n"
             f"code = main(['{host}:{port}', '-c', 'ls -l; get f; hash f; stat f; ls'])\n"
             "print(code, sorted(m for m in ('rich', 'tqdm') if m in sys.modules), "
             "file=sys.stderr)")
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                       timeout=60, cwd=tmp_path)
    assert r.stderr.strip().splitlines()[-1] == "0 []", r.stdout + r.stderr
    assert (tmp_path / "f").read_bytes() == b"x" * 1000
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["Name", "Size", "Modified"]
    assert lines[1].split()[:3] == ["f", "1000", "B"] and lines[-1] == "f"
    assert lines[2] == "0 folders, 1 file, 1000 B"
    assert lines[3].startswith("get /f -> f  1000 B")


def test_help_documents_the_exit_codes(tmp_path):
    r = pyftp("--help", cwd=tmp_path)
    assert r.returncode == 0
    for line in ("0    every command", "1    an operation failed", "2    usage error",
                 "3    could not connect", "4    protocol error", "130  interrupted"):
        assert line in r.stdout
    assert "--limit-rate RATE" in r.stdout and "PYFTP_PASSWORD" in r.stdout


def test_limit_rate_is_accepted_and_said(target, local, root):
    r = pyftp("--limit-rate", "10M", "--timeout", "20s", target, "-c", "put a.txt", cwd=local)
    assert r.returncode == 0, r.stderr
    assert "transfers limited to 10.0 MiB/s" in r.stderr
    assert (root / "a.txt").read_bytes() == b"hello pyftp\n"


def test_tls_options_reach_the_client(make_server, local, tmp_path):
    trustme = pytest.importorskip("trustme")
    import ssl
    ca = trustme.CA()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(ctx)
    cafile = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    host, port = make_server(ssl_context=ctx).address
    r = pyftp("--cafile", str(cafile), f"{host}:{port}", "-c", "pwd", cwd=local)
    assert (r.returncode, r.stdout) == (0, "/\n"), r.stderr
    r = pyftp("--insecure", f"{host}:{port}", "-c", "pwd", cwd=local)
    assert r.returncode == 0, r.stderr
    r = pyftp("--tls", f"{host}:{port}", "-c", "pwd", cwd=local)  # system CAs: not trusted
    assert r.returncode == 3 and "--cafile" in r.stderr
    r = pyftp(f"{host}:{port}", "-c", "pwd", cwd=local, timeout=60)  # plain client, TLS server
    assert r.returncode == 3 and "--tls" in r.stderr


# ------------------------------------------------------------------ pipelined runs
def test_a_run_of_gets_is_reported_in_order_and_stops_at_the_first_failure(target, local,
                                                                            root):
    for i in range(6):
        (root / f"f{i}.bin").write_bytes(bytes([i]) * (1000 + i))
    lines = [f"get f{i}.bin" for i in range(3)] + ["get missing.bin"] + \
        [f"get f{i}.bin" for i in range(3, 6)]
    (local / "run.pyftp").write_text("\n".join(lines) + "\n")
    r = pyftp("--json", target, "-b", "run.pyftp", cwd=local)
    assert r.returncode == 1
    objs = [json.loads(line) for line in r.stdout.splitlines()][1:]
    assert [(o["command"], o["ok"]) for o in objs] == [("get", True)] * 3 + [("get", False)]
    assert [o["path"] for o in objs[:3]] == ["/f0.bin", "/f1.bin", "/f2.bin"]
    # nothing after the failure was published, and the stop is said
    assert sorted(p.name for p in local.iterdir()) == ["a.txt", "f0.bin", "f1.bin",
                                                       "f2.bin", "run.pyftp"]
    assert "pyftp: line 4: not found: /missing.bin" in r.stderr
    assert "not run: 3 later lines" in r.stderr
    assert r.stderr.index("pyftp> get f2.bin") < r.stderr.index("pyftp> get missing.bin")


def test_an_ignored_failure_in_a_run_of_gets_lets_the_rest_through(target, local, root):
    for i in range(3):
        (root / f"f{i}.bin").write_bytes(b"x" * i)
    r = pyftp(target, "-c", "get f0.bin; -get nope.bin; get f1.bin; get f2.bin local.bin",
              cwd=local)
    assert r.returncode == 0, r.stderr
    assert [line.split(" ->")[0] for line in r.stdout.splitlines()] == [
        "get /f0.bin", "get /f1.bin", "get /f2.bin"]
    assert (local / "local.bin").read_bytes() == b"xx" and (local / "f1.bin").exists()


def test_runs_of_ls_hash_and_stat_print_what_single_commands_print(target, local, root):
    (root / "d").mkdir()
    for name in ("a", "b", "c"):
        (root / "d" / name).write_bytes(name.encode())
    (root / "d" / "e").mkdir()
    words = ["ls d", "ls -l d", "ls -t d", "ls -1r d", "hash d/a", "hash d/b d/c", "stat d/a",
             "stat d"]
    together = pyftp(target, "-c", "; ".join(w for w in words for _ in (0, 1)), cwd=local)
    alone = [pyftp(target, "-c", w, cwd=local) for w in words]
    assert together.returncode == 0, together.stderr
    assert together.stdout == "".join(r.stdout * 2 for r in alone)


def test_ls_to_a_pipe_prints_names_as_ls_l_and_json_name_them(target, local, root):
    """A listing to a pipe asks only for names (no stat per file on the server): it
    must print what the full listing would."""
    (root / "d").mkdir()
    (root / "d" / "sub").mkdir()
    for name in ("b", "a", "a.b", "c d"):
        (root / "d" / name).write_bytes(b"x")
    short = pyftp(target, "-c", "ls d; ls -r d", cwd=local)
    assert short.returncode == 0, short.stderr
    names = ["a", "a.b", "b", "c d", "sub/"]
    assert short.stdout.splitlines() == names + names[::-1]
    full = pyftp(target, "--json", "-c", "ls d", cwd=local)
    assert [e["name"] + "/" * (e["type"] == "dir") for e in
            json.loads(full.stdout.splitlines()[-1])["entries"]] == names


def test_a_failure_in_a_run_of_hashes_discards_the_rest(target, local, root):
    (root / "a").write_bytes(b"a")
    r = pyftp(target, "-c", "hash a; hash nope; hash a", cwd=local)
    assert r.returncode == 1
    assert r.stdout.count("  a\n") == 1
    assert "not found" in r.stderr and "not run: 1 later line " in r.stderr


# ------------------------------------------------------------------ streaming to stdout
needs_getfo = pytest.mark.skipif(not hasattr(__import__("pyftp").Client, "getfo"),
                                 reason="needs Client.getfo")


@needs_getfo
def test_cat_and_get_dash_stream_verified_bytes_to_stdout(target, local, root):
    data = os.urandom(300_000)
    (root / "a.bin").write_bytes(data)
    (root / "b.txt").write_bytes(b"second\n")
    r = subprocess.run([*PYFTP, target, "-c", "cat a.bin b.txt; get b.txt -"], cwd=local,
                       env=clean_env(), capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == data + b"second\n" + b"second\n"
    assert sorted(os.listdir(local)) == ["a.txt"]  # no file named '-', no partial
    r = subprocess.run([*PYFTP, target, "-c", "cat nope.bin"], cwd=local, env=clean_env(),
                       capture_output=True, timeout=60)
    assert r.returncode == 1 and b"not found" in r.stderr and r.stdout == b""


@needs_getfo
def test_cat_is_refused_with_json(target, local, root):
    (root / "b.txt").write_bytes(b"x")
    r = pyftp("--json", target, "-c", "cat b.txt", cwd=local)
    assert r.returncode == 2 and "--json" in r.stderr


def test_a_run_naming_one_thing_twice_asks_once_per_line(target, local, root):
    (root / "a").write_bytes(b"a")
    (root / "b").write_bytes(b"b")
    r = pyftp(target, "-c", "hash a; hash a b; hash a; ls; ls; ls -1", cwd=local)
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert [line.split()[1] for line in out[:4]] == ["a", "a", "b", "a"]
    assert out[4:] == ["a", "b"] * 3


#: modules a plain one-shot put has no use for; each one cost it milliseconds of start-up
NOT_FOR_A_PUT = ("typing", "dataclasses", "inspect", "ast", "hashlib", "shutil", "ssl",
                 "rich", "tqdm", "encodings.idna", "pyftp.protocol.shapes",
                 # the prompt's: a one-shot run has the Runner, not the interactive Shell
                 "cmd", "readline", "pyftp.shell.shell", "pyftp.shell.completion")


def test_a_one_shot_put_loads_only_what_it_uses(server, root, tmp_path):
    """The start-up budget of a one-shot run (issue 12), seen in the console script's
    own import log: no typing, dataclasses or inspect (pyftp.hints, pyftp.records), no
    hashlib in a BLAKE3 session, no shutil (argparse's help width), no IDNA codec for
    an ASCII host, and none of the interactive shell."""
    host, port = server.address
    (tmp_path / "small.txt").write_text("hello\n")
    r = pyftp(f"{host}:{port}", "-c", "put small.txt; ls", cwd=tmp_path,
              env=clean_env(PYTHONPROFILEIMPORTTIME="1"))
    assert r.returncode == 0, r.stderr
    loaded = {line.rsplit("|", 1)[1].strip() for line in r.stderr.splitlines()
              if line.startswith("import time:")}
    assert "pyftp.client.upload" in loaded  # the log is there, and it is the put's
    assert sorted(set(NOT_FOR_A_PUT) & loaded) == []
    assert (root / "small.txt").read_text() == "hello\n"


def test_the_console_script_flushes_before_it_ends(server, root, tmp_path):
    """pyftp ends with os._exit (no interpreter teardown): what it wrote must all be
    there, and the exit code must be main's."""
    host, port = server.address
    for i in range(300):
        (root / f"file-{i:04d}-{'x' * 60}.txt").write_text("x")
    r = pyftp(f"{host}:{port}", "-c", "ls", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == sorted(f"file-{i:04d}-{'x' * 60}.txt" for i in range(300))
    r = pyftp(f"{host}:{port}", "-c", "get missing.txt", cwd=tmp_path)
    assert r.returncode == 1 and "not found" in r.stderr


def test_a_full_disk_for_the_results_fails_the_run(server, root, tmp_path):
    """Output that cannot be written is an error, as Python's own exit makes it."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    host, port = server.address
    (root / "f").write_text("x")
    with open("/dev/full", "w") as full:
        r = subprocess.run([*PYFTP, f"{host}:{port}", "-c", "ls"], cwd=tmp_path,
                           stdout=full, stderr=subprocess.PIPE, text=True, timeout=60,
                           env=clean_env())
    assert r.returncode != 0


def test_ls_to_a_pipe_escapes_names_a_terminal_would_obey(server, root, tmp_path):
    """Names listings take a fast path when every name is printable; one that is not
    is still shown escaped, and the rest as they are."""
    host, port = server.address
    (root / "plain.txt").write_text("x")
    (root / "evil\x1b[31mred\nline").write_text("x")
    r = pyftp(f"{host}:{port}", "-c", "ls", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["evil\\x1b[31mred\\x0aline", "plain.txt"]
