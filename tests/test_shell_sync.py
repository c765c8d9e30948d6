"""Folders, globs, mirror, retries and resume as the shell and the one-shot CLI offer
them: ``get -r``, ``put -r``, ``mget -r``, ``mput -r``, ``mirror [-R] [--delete]
[--checksum] [--dry-run]``, ``--retries`` and ``--no-resume``.

The shell is driven through ``Shell.execute`` / ``Shell.onecmd`` with a captured console
against a real server on 127.0.0.1:0; ``pyftp -c`` and ``pyftp -b`` run as real
subprocesses, one of them across a ``pyftp-server`` process that is killed in the
middle of an upload and started again on the same port.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from io import StringIO
from types import SimpleNamespace

import pytest
from rich.console import Console

from helpers import RawConn, best, sha
from pyftp.cli.client import client_parser
from pyftp.protocol import is_partial_name, partial_name
from pyftp.shell import JobError, UsageError
from shellharness import make_shell
from pyftp.ui import LinesReporter, Reporter, job_display
from serverproc import ServerProcess

BIN = os.path.join(os.path.dirname(sys.executable), "pyftp")
PYFTP = [BIN] if os.path.exists(BIN) else [sys.executable, "-m", "pyftp"]
MiB = 1 << 20


# ------------------------------------------------------------------ helpers

def snapshot(top) -> dict:
    """Every folder and file under ``top``: ("dir",) or ("file", SHA-256, mtime_ns)."""
    out = {}
    for dirpath, dirs, files in os.walk(top):
        for d in dirs:
            out[os.path.relpath(os.path.join(dirpath, d), top)] = ("dir",)
        for f in files:
            p = os.path.join(dirpath, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, top)] = ("file", sha(fh.read()), os.stat(p).st_mtime_ns)
    return out


def assert_same_tree(a, b) -> None:
    sa, sb = snapshot(a), snapshot(b)
    assert sorted(sa) == sorted(sb)
    for rel, val in sa.items():
        assert val[:2] == sb[rel][:2], rel
        if val[0] == "file":
            assert abs(val[2] - sb[rel][2]) < 1000, f"mtime of {rel} not kept"


def partials(top) -> list[str]:
    return [n for _d, _s, files in os.walk(top) for n in files if is_partial_name(n)]


def make_tree(top) -> None:
    """Nested and empty folders, a 0-byte file, spaces, unicode, one multi-chunk file."""
    files = {"index.html": b"<h1>hi</h1>\n", "zero.bin": b"",
             "sub dir/notes with spaces.md": b"# notes\n" * 50,
             "café/naïve ü.txt": "ünïcödé".encode(), "a/b/c/deep.dat": os.urandom(300_000)}
    for rel, data in files.items():
        p = os.path.join(top, *rel.split("/"))
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
    os.makedirs(os.path.join(top, "empty"))
    for i, (dirpath, _dirs, names) in enumerate(os.walk(top)):
        for j, n in enumerate(names):  # old, distinct times with sub-second parts
            t = 1_600_000_000_123_456_000 + (i * 100 + j) * 1_000_777_000
            os.utime(os.path.join(dirpath, n), ns=(t, t))


def wait_until(condition, what: str, limit: float = 20.0, proc=None) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the client ended before {what}: {proc.communicate()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)




def pyftp(*args: str, cwd, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYFTP_")}
    return subprocess.run([*PYFTP, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


# ------------------------------------------------------------------ get -r / put -r
def test_put_r_then_get_r_gives_an_identical_tree(sh, root, local):
    make_tree(local / "site")
    fields, text = sh.ok_fields("put -r site")
    assert_same_tree(local / "site", root / "site")
    assert fields["recursive"] and fields["sent"] == 5 and fields["errors"] == []
    assert {f["path"] for f in fields["files"]} >= {"/site/index.html", "/site/café/naïve ü.txt"}
    assert "put site/index.html -> /site/index.html" in text
    assert "put -r: sent 5 files" in text
    fields, text = sh.ok_fields("get -r site back")
    assert_same_tree(local / "site", local / "back")
    assert fields["sent"] == 5 and "get -r: sent 5 files" in text
    assert partials(root) == [] and partials(local) == []


def test_a_rerun_of_get_r_sends_nothing_by_times_or_by_checksum(sh, root, local):
    make_tree(root / "site")
    assert sh.ok_fields("get -r site back")[0]["sent"] == 5
    for line in ("get -r site back", "get -r --checksum site back"):
        fields, text = sh.ok_fields(line)
        assert (fields["sent"], fields["skipped"], fields["bytes_sent"]) == (0, 5, 0), text
    # same size and time, other bytes: only --checksum sees it
    index = local / "back" / "index.html"
    st = index.stat()
    index.write_bytes(bytes(b ^ 1 for b in index.read_bytes()))
    os.utime(index, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert sh.ok_fields("get -r site back")[0]["sent"] == 0
    fields, _text = sh.ok_fields("get -r --checksum site back")
    assert fields["sent"] == 1 and [f["path"] for f in fields["files"]] == ["/site/index.html"]
    assert_same_tree(root / "site", local / "back")
    outcome, text = sh.run("get --checksum site/index.html")
    assert not outcome.ok and "only with -r" in text


def test_put_r_skips_identical_files_and_replaces_changed_ones_only_with_f(sh, root, local):
    make_tree(local / "site")
    sh.ok_fields("put -r site /www")
    fields, text = sh.ok_fields("put -r site /www")
    assert fields["sent"] == 0 and fields["skipped"] == 5
    (local / "site" / "index.html").write_bytes(b"changed")
    outcome, text = sh.run("put -r site /www")
    assert not outcome.ok and isinstance(outcome.error, JobError)
    assert "put -r: site/index.html: already exists on the server and differs" in text
    assert "use put -r -f to replace it" in text
    assert outcome.error.fields["errors"][0]["path"] == "index.html"
    assert (root / "www" / "index.html").read_bytes() == b"<h1>hi</h1>\n"
    fields, _ = sh.ok_fields("put -r -f site /www")  # -f sends every file (mirror -R: only changes)
    assert fields["sent"] == 5 and (root / "www" / "index.html").read_bytes() == b"changed"


def test_get_r_names_and_errors(sh, root, local):
    (root / "docs" / "inner").mkdir(parents=True)
    (root / "docs" / "inner" / "a.txt").write_text("a")
    sh.ok_fields("cd docs")
    sh.ok_fields("get -r .")  # "." is the remote folder /docs: its name is the default target
    assert (local / "docs" / "inner" / "a.txt").read_text() == "a"
    outcome, text = sh.run("get -r /")
    assert isinstance(outcome.error, UsageError) and "name the target folder" in text
    outcome, text = sh.run("get -r nowhere")
    assert not outcome.ok and "not found: /docs/nowhere" in text
    outcome, text = sh.run("get inner")
    assert not outcome.ok and "use get -r to copy a folder" in text
    outcome, text = sh.run("put inner")
    assert not outcome.ok


def test_mget_and_mput_copy_folders_only_with_r(sh, root, local):
    (root / "logs" / "old").mkdir(parents=True)
    (root / "logs" / "old" / "1.log").write_text("one")
    (root / "logs" / "2.log").write_text("two")
    outcome, text = sh.run("mget logs")
    assert not outcome.ok and "skipping folder /logs (use mget -r" in text
    fields, text = sh.ok_fields("mget -r logs")
    assert (local / "logs" / "old" / "1.log").read_text() == "one"
    assert fields["count"] == 2 and fields["size"] == 6
    fields, _ = sh.ok_fields("mget logs/*.log logs/2.log")  # the same file twice: fetched once
    assert fields["count"] == 1 and (local / "2.log").read_text() == "two"
    (local / "up" / "in").mkdir(parents=True)
    (local / "up" / "in" / "x.txt").write_text("x")
    (local / "up" / "y.txt").write_text("y")
    sh.ok_fields("lcd up")
    sh.ok_fields("mkdir dest")
    sh.ok_fields("cd dest")
    fields, text = sh.ok_fields("mput *")
    assert sorted(p.name for p in (root / "dest").iterdir()) == ["y.txt"]
    assert "skipping folder in (use mput -r" in text
    fields, _ = sh.ok_fields("mput -r *")
    assert (root / "dest" / "in" / "x.txt").read_text() == "x"
    assert fields["sent"] == 1 and fields["skipped"] == 1


# ------------------------------------------------------------------ mirror
def test_mirror_pull_dry_run_delete_and_checksum(sh, root, local):
    make_tree(root / "site")
    fields, text = sh.ok_fields("mirror --dry-run site")
    assert not (local / "site").exists(), "a dry run changed something"
    assert "send index.html 12 B (new)" in text and "mkdir empty" in text
    assert "mirror: would send 5 files" in text
    assert {"action": "send", "path": "zero.bin", "size": 0, "reason": "new"} in fields["plan"]
    fields, text = sh.ok_fields("mirror site")
    assert_same_tree(root / "site", local / "site")
    assert fields["sent"] == 5
    fields, text = sh.ok_fields("mirror site")
    assert fields["sent"] == 0 and fields["up_to_date"]
    assert "mirror: up to date, sent 0 files (0 B), skipped 5, deleted 0" in text
    (local / "site" / "extra.txt").write_text("extra")
    (local / "site" / "empty" / "more").mkdir()
    fields, text = sh.ok_fields("mirror --delete --dry-run site")
    assert "delete extra.txt" in text and "rmdir empty/more" in text
    assert (local / "site" / "extra.txt").exists()
    fields, text = sh.ok_fields("mirror --delete site")
    assert fields["deleted"] == 2 and "deleted site/extra.txt" in text
    assert_same_tree(root / "site", local / "site")
    # the same size and time, other bytes: only --checksum sees it
    remote = root / "site" / "index.html"
    st = remote.stat()
    remote.write_bytes(b"<h1>HO</h1>\n")
    os.utime(remote, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert sh.ok_fields("mirror site")[0]["sent"] == 0
    fields, _ = sh.ok_fields("mirror --checksum site")
    assert fields["sent"] == 1 and (local / "site" / "index.html").read_bytes() == b"<h1>HO</h1>\n"


def test_mirror_reverse_twice_sends_nothing_and_delete_removes_exactly_the_extras(sh, root,
                                                                                   local):
    make_tree(local / "site")
    (root / "www" / "old").mkdir(parents=True)
    (root / "www" / "old" / "gone.txt").write_text("x")
    (root / "www" / "stale.txt").write_text("x")
    fields, _ = sh.ok_fields("mirror -R site /www")
    assert fields["sent"] == 5 and fields["deleted"] == 0 and (root / "www" / "stale.txt").exists()
    fields, text = sh.ok_fields("mirror -R site /www")
    assert fields["sent"] == 0 and fields["up_to_date"] and "up to date" in text
    fields, text = sh.ok_fields("mirror -R --delete site /www")
    assert fields["sent"] == 0 and fields["deleted"] == 3
    assert "deleted /www/stale.txt" in text
    assert_same_tree(local / "site", root / "www")


def test_mirror_json_is_one_object_with_the_counts(server, local):
    make_tree(local / "site")
    h = make_shell(server, local, json_output=True, err_console=Console(file=StringIO()))
    try:
        for line in ("mirror -R --dry-run site", "mirror -R site", "mirror -R site",
                     "mirror -R nosuchdir"):
            h.shell.execute(line)
    finally:
        h.shell.execute("close")
    objs = json_lines(h.out.getvalue())
    assert [o["command"] for o in objs] == ["open"] + ["mirror"] * 4 + ["close"]
    dry, first, second, bad = objs[1:5]
    assert dry["ok"] and dry["dry_run"] and len([a for a in dry["plan"] if a["action"] == "send"]) == 5
    assert first["ok"] and first["sent"] == 5 and first["bytes_total"] == first["bytes_sent"] > 0
    assert second["ok"] and second["sent"] == 0 and second["skipped"] == 5 and second["up_to_date"]
    assert not bad["ok"] and bad["error"] == "local_error" and "nosuchdir" in bad["message"]


def test_no_resume_per_command_and_for_the_session(server, root, sh, local):
    data = os.urandom(400_000)
    (root / "big.bin").write_bytes(data)
    partial = local / partial_name("big.bin")
    partial.write_bytes(data[:100_000])
    fields, text = sh.ok_fields("get big.bin")
    assert fields["resumed_from"] == 100_000 and "resumed at" in text
    partial.write_bytes(data[:100_000])
    fields, _ = sh.ok_fields("get --no-resume big.bin")
    assert fields["resumed_from"] == 0
    assert (local / "big.bin").read_bytes() == data and not partial.exists()
    fresh = make_shell(server, local, resume=False)
    try:
        partial.write_bytes(data[:100_000])
        fields, _ = fresh.ok_fields("get big.bin")
        assert fields["resumed_from"] == 0
    finally:
        fresh.shell.execute("close")


# ------------------------------------------------------------------ help and completion
def test_help_usage_and_completion_of_the_new_flags(sh, root, local):
    (root / "remote_dir").mkdir()
    (local / "local_dir").mkdir()
    assert "get -r REMOTE_DIR [LOCAL_DIR]" in sh.ok_fields("help")[1]
    text = sh.ok_fields("help mirror")[1]
    for flag in ("-R", "--delete", "--checksum", "--dry-run", "--no-resume"):
        assert flag in text
    outcome, text = sh.run("mirror --frob x")
    assert isinstance(outcome.error, UsageError) and "--frob not recognized" in text
    outcome, text = sh.run("mirror")
    assert "usage: mirror [OPTIONS] REMOTE_DIR [LOCAL_DIR] or mirror -R" in text
    assert sh.complete("mirror --d") == ["--delete ", "--dry-run "]
    assert sh.complete("get -") == ["--checksum ", "--no-resume ", "-r ", "-v "]
    assert sh.complete("mirror ") == ["remote_dir/"]  # the source is remote ...
    assert sh.complete("mirror -R ") == ["local_dir/"]  # ... unless -R swaps the sides
    assert sh.complete("mirror -R --delete local_dir/ ") == ["remote_dir/"]
    assert sh.complete("put -r ") == ["local_dir/"]


def test_cli_help_documents_retries_and_no_resume():
    text = client_parser().format_help()
    assert "--retries N" in text and "--no-resume" in text and "mirror -R" in text


# ------------------------------------------------------------------ progress
class Recorder(Reporter):
    """A progress display that writes down what it was asked to draw."""

    def __init__(self) -> None:
        self.calls: list = []

    def job(self, label, files, total):
        self.calls.append(("job", label, files, total))
        return super().job(label, files, total)

    def job_update(self, files_done, files, done, total):
        self.calls.append(("update", files_done, files, done, total))

    def transfer(self, label, total=None):
        self.calls.append(("file", label))
        return super().transfer(label, total)


def jp(done, files, bdone, btotal, current):
    return SimpleNamespace(files_done=done, files_total=files, bytes_done=bdone,
                           bytes_total=btotal, current=current)


def test_job_display_turns_sync_callbacks_into_file_bars_and_one_growing_job():
    rec = Recorder()
    with job_display(rec, "mget", "get") as d:
        d.on_job(jp(0, 2, 50, 300, "a"))     # a starts, resumed at 50
        d.on_progress(100, 100)
        d.on_job(jp(1, 2, 100, 300, "a"))    # a ends
        d.on_job(jp(2, 2, 300, 300, "b"))    # b ends without a byte (skipped or failed)
        d.on_job(jp(0, 1, 0, 40, "c"))       # a second part (a folder under mget -r)
        d.on_job(jp(1, 1, 40, 40, "c"))
    assert rec.calls == [
        ("job", "mget", 2, 300), ("file", "get a"), ("update", 0, 2, 0, 300),
        ("update", 1, 2, 100, 300), ("update", 2, 2, 300, 300),
        ("file", "get c"), ("update", 2, 3, 300, 340), ("update", 3, 3, 340, 340)]


def test_nothing_to_move_draws_nothing():
    rec = Recorder()
    with job_display(rec, "mirror", "put"):
        pass
    assert rec.calls == []


def test_shell_draws_a_file_bar_and_a_job_bar_in_each_mode(server, local):
    make_tree(local / "site")
    rich_out = StringIO()
    err = Console(file=rich_out, width=120, force_terminal=True, color_system=None)
    h = make_shell(server, local, progress="rich", err_console=err)
    try:
        h.ok_fields("put -r site")
    finally:
        h.shell.execute("close")
    assert "put -r (" in rich_out.getvalue() and "put a/b/c/deep.dat" in rich_out.getvalue()

    tqdm_out = StringIO()
    h = make_shell(server, local, progress="tqdm", progress_stream=tqdm_out)
    try:
        h.ok_fields("get -r site back")
    finally:
        h.shell.execute("close")
    assert "get -r (5 files)" in tqdm_out.getvalue() and "get a/b/c/deep.dat" in tqdm_out.getvalue()

    # a CI log: every clock reading is 10 s later, so each step is worth a line
    ticks = iter(range(0, 10_000, 10))
    lines_out = StringIO()
    h = make_shell(server, local, progress="lines", progress_stream=lines_out,
                   clock=lambda: float(next(ticks)))
    try:
        h.ok_fields("mirror --delete site again")
    finally:
        h.shell.execute("close")
    assert isinstance(h.shell.reporter, LinesReporter)
    assert "mirror: 5/5 files, 293.4 KiB / 293.4 KiB (100%)" in lines_out.getvalue()


# ------------------------------------------------------------------ one-shot and batch
@pytest.fixture
def target(server) -> str:
    host, port = server.address
    return f"{host}:{port}"


def test_c_mirror_reverse_twice_says_the_second_run_sent_nothing(target, root, local):
    make_tree(local / "site")
    r = pyftp(target, "-c", "mirror -R site /www", cwd=local)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == "mirror: sent 5 files (293.4 KiB), skipped 0, deleted 0"
    r = pyftp(target, "-c", "mirror -R site /www", cwd=local)
    assert r.returncode == 0 and r.stderr == ""
    assert r.stdout == "mirror: up to date, sent 0 files (0 B), skipped 5, deleted 0\n"
    r = pyftp("--json", target, "-c", "mirror -R site /www", cwd=local)
    _open, obj = json_lines(r.stdout)
    assert obj["ok"] and obj["sent"] == 0 and obj["skipped"] == 5 and obj["up_to_date"]
    assert_same_tree(local / "site", root / "www")


def test_b_dry_run_then_delete_removes_exactly_the_extras(target, root, local):
    make_tree(local / "site")
    (root / "www" / "keep").mkdir(parents=True)
    (root / "www" / "keep" / "extra.txt").write_text("extra")
    (local / "deploy.pyftp").write_text("# push the site\nmirror -R --delete --dry-run site /www\n"
                                        "mirror -R --delete site /www\nls /www\n")
    r = pyftp(target, "-b", "deploy.pyftp", cwd=local)
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert "delete keep/extra.txt (not in the source)" in out and "rmdir keep (not in the source)" in out
    assert "mirror: would send 5 files (293.4 KiB), skipped 0, would delete 2" in out
    assert "deleted /www/keep/extra.txt" in out and "deleted /www/keep" in out
    assert_same_tree(local / "site", root / "www")


def test_a_job_with_a_failed_file_exits_1_with_one_line_per_failure(target, root, local):
    make_tree(local / "site")
    (root / "site").mkdir()
    (root / "site" / "index.html").write_text("someone else's")
    r = pyftp("--json", target, "-c", "put -r site; ls", cwd=local)
    assert r.returncode == 1
    _open, obj = json_lines(r.stdout)  # the run stopped at the failing command
    assert obj["command"] == "put" and obj["recursive"] and not obj["ok"]
    assert obj["error"] == "incomplete" and obj["sent"] == 4
    assert obj["errors"] == [{"path": "index.html", "kind": "exists",
                              "message": "already exists on the server and differs: "
                                         "site/index.html (use overwrite to replace it)"}]
    assert r.stderr.splitlines() == [
        "pyftp: put -r: site/index.html: already exists on the server and differs: "
        "site/index.html (use put -r -f to replace it)",
        "pyftp: put -r: sent 4 files (293.4 KiB), skipped 0, 1 error; fix what the lines "
        "above say and run it again (what is done is not sent again)"]
    assert (root / "site" / "index.html").read_text() == "someone else's"


def _leave_partial(server, root, name: str, data: bytes, cut: int) -> None:
    """An upload cut after ``cut`` bytes by a raw connection that just goes away."""
    with RawConn(server.address) as conn:
        reply, _ = conn.request({"op": "put", "path": name, "total": len(data),
                                 "sha256": sha(data)})
        assert reply["ok"] and reply["offset"] == 0
        body = json.dumps({"op": "data", "size": len(data)}).encode()
        conn.send_raw(len(body).to_bytes(4, "big") + body + data[:cut])
    wait_until(lambda: server.session_count == 0, "the server to drop the cut upload")
    assert (root / partial_name(name)).stat().st_size == cut


def test_no_resume_forces_a_fresh_upload(server, target, root, local):
    data = os.urandom(300_000)
    (local / "big.bin").write_bytes(data)
    _leave_partial(server, root, "big.bin", data, 120_000)
    r = pyftp("--json", "--no-resume", target, "-c", "put big.bin", cwd=local)
    assert r.returncode == 0, r.stderr
    assert json_lines(r.stdout)[1]["resumed_from"] == 0
    _leave_partial(server, root, "again.bin", data, 120_000)
    # a version 1 partial (pinned by SHA-256) is continued by a SHA-256 session
    r = pyftp("--json", "--digest", "sha256", target, "-c", "put big.bin again.bin", cwd=local)
    assert json_lines(r.stdout)[1]["resumed_from"] == 120_000
    assert (root / "again.bin").read_bytes() == data and partials(root) == []
    assert pyftp("--retries", "-1", target, "-c", "ls", cwd=local).returncode == 2


def test_retries_carry_a_put_across_a_server_restart(root, local):
    data = os.urandom(3 * MiB)
    (local / "big.bin").write_bytes(data)
    partial = root / partial_name("big.bin")
    args = ("--root", str(root), "--log-level", "warning", "--limit-rate", "1M")
    first = ServerProcess(*args)
    with first:
        port = first.port
        proc = subprocess.Popen([*PYFTP, "--json", "--retries", "6", f"127.0.0.1:{port}",
                                 "-c", "put big.bin"], cwd=local, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            wait_until(lambda: partial.exists() and partial.stat().st_size >= 256 * 1024,
                       "the upload to start", proc=proc)
            first.proc.send_signal(signal.SIGKILL)
            first.proc.wait(20)
            kept = partial.stat().st_size
            with ServerProcess(*args, "--port", str(port)):
                out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 0, err
    assert "retry 1 of 6" in err and "Traceback" not in err
    put = json_lines(out)[1]
    assert put["ok"] and put["digest"] == best(data)
    assert put["resumed_from"] == kept > 0  # continued from what reached the disk
    assert (root / "big.bin").read_bytes() == data and partials(root) == []


def test_retries_0_gives_up_in_one_line_and_the_rerun_resumes(root, local):
    data = os.urandom(3 * MiB)
    (local / "big.bin").write_bytes(data)
    partial = root / partial_name("big.bin")
    args = ("--root", str(root), "--log-level", "warning", "--limit-rate", "1M")
    with ServerProcess(*args) as srv:
        port = srv.port
        proc = subprocess.Popen([*PYFTP, "--retries", "0", f"127.0.0.1:{srv.port}", "-c",
                                 "put big.bin"], cwd=local, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            wait_until(lambda: partial.exists() and partial.stat().st_size >= 256 * 1024,
                       "the upload to start", proc=proc)
            srv.proc.send_signal(signal.SIGKILL)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 1
    assert len(err.splitlines()) == 1 and err.startswith("pyftp: put ")
    assert "gave up after 0 retries" in err and "run the same command again to resume" in err
    assert not (root / "big.bin").exists()
    # the server is back on its port (resume tokens are kept per server: host and port)
    with ServerProcess("--root", str(root), "--log-level", "warning", "--port", str(port)) as srv:
        r = pyftp("--json", f"127.0.0.1:{srv.port}", "-c", "put big.bin", cwd=local)
    assert r.returncode == 0, r.stderr
    assert json_lines(r.stdout)[1]["resumed_from"] > 0
    assert (root / "big.bin").read_bytes() == data


def test_at_the_prompt_a_job_prints_its_summary_and_each_file_only_with_v(server, root,
                                                                          local):
    from shellharness import make_shell
    make_tree(root / "site")
    h = make_shell(server, local, interactive=True)
    try:
        text = h.ok("get -r site back")
        assert "get -r: sent 5 files" in text and "get /site/index.html" not in text
        text = h.ok("get -r -v --no-resume site again")
        assert "get /site/index.html -> again/index.html" in text
        assert "get -r: sent 5 files" in text
        (local / "third" / "index.html").mkdir(parents=True)  # a folder where a file goes
        outcome, text = h.run("get -r site third")
        assert not outcome.ok and "index.html" in text  # a failure is always named
    finally:
        h.shell.close()
