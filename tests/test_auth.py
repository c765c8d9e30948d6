"""Logins: the users file, the hello check, read-only users, and the CLI that manages them."""
from __future__ import annotations

import hashlib
import logging
import os
import stat
import subprocess

import pytest

from helpers import RawConn, wait_for
from pyftp import Client
from pyftp.server import auth
from pyftp.server.auth import Users, UsersFileError, add_user, load_users, remove_user
from pyftp.server.tls import file_authenticator
from pyftp.errors import AuthFailedError, AuthRequiredError, PermissionDeniedError
from serverproc import ServerProcess, server_command

PASSWORD = "correct horse battery staple"
RO_PASSWORD = "read only pw 9"
#: cheap scrypt for in-process tests (the defaults are for real use and cost ~70 ms)
FAST = dict(n=2**10, r=8, p=1)


@pytest.fixture
def users_file(tmp_path):
    path = tmp_path / "users.json"
    auth.save_users(path, {
        "alice": auth.hash_password("alice", PASSWORD, **FAST),
        "rob": auth.hash_password("rob", RO_PASSWORD, read_only=True, **FAST),
    })
    return path


@pytest.fixture
def auth_server(make_server, users_file):
    return make_server(authenticator=file_authenticator(Users(users_file)),
                       max_auth_failures=3)


def hello(conn: RawConn, **fields) -> dict:
    reply, _ = conn.request({"op": "hello", "version": 1, **fields})
    return reply


# ---------------------------------------------------------------------- the hello check
def test_no_credentials_gets_auth_required(auth_server):
    with RawConn(auth_server.address, hello=False) as c:
        reply = hello(c)
        assert reply["error"] == "auth_required" and "user" in reply["message"]
        reply, _ = c.request({"op": "ls"})
        assert reply["error"] == "auth_required"
        assert hello(c, user="alice", password=PASSWORD)["ok"] is True  # may still log in
    with pytest.raises(AuthRequiredError):
        Client(*auth_server.address, timeout=5)


def test_wrong_password_and_unknown_user_get_the_same_answer(auth_server):
    with RawConn(auth_server.address, hello=False) as c:
        wrong = hello(c, user="alice", password="not it")
        unknown = hello(c, user="mallory", password="not it")
    assert wrong["error"] == unknown["error"] == "auth_failed"
    assert wrong["message"] == unknown["message"]
    with pytest.raises(AuthFailedError):
        Client(*auth_server.address, user="alice", password="nope", timeout=5)


def test_unknown_user_costs_the_same_scrypt_work(users_file, monkeypatch):
    calls = []
    real = auth.hashlib.scrypt

    def counting(*args, **kw):
        calls.append((kw["n"], kw["r"], kw["p"]))
        return real(*args, **kw)
    monkeypatch.setattr(auth.hashlib, "scrypt", counting)
    users = Users(users_file)
    assert users.authenticate("alice", "wrong") is None
    assert users.authenticate("nobody", "wrong") is None
    assert users.authenticate("alice", PASSWORD).name == "alice"
    assert calls == [(FAST["n"], FAST["r"], FAST["p"])] * 3


def test_connection_closes_after_max_failures(auth_server):
    with RawConn(auth_server.address, hello=False) as c:
        for _ in range(3):
            assert hello(c, user="alice", password="guess")["error"] == "auth_failed"
        assert c.is_closed()
    with Client(*auth_server.address, user="alice", password=PASSWORD, timeout=5) as ok:
        assert ok.pwd() == "/"  # the real user is not locked out


def test_good_login_can_transfer(auth_server, root, tmp_path):
    data = os.urandom(200_000)
    (tmp_path / "up.bin").write_bytes(data)
    with Client(*auth_server.address, user="alice", password=PASSWORD, timeout=5) as c:
        assert "read_only" not in c.server_info["features"]
        c.put(tmp_path / "up.bin", "up.bin")
        c.get("up.bin", tmp_path / "down.bin")
        c.mkdir("d")
    assert (root / "up.bin").read_bytes() == data == (tmp_path / "down.bin").read_bytes()


@pytest.mark.parametrize("header", [
    {"op": "put", "path": "new.bin", "total": 5},
    {"op": "mkdir", "path": "newdir"},
    {"op": "rm", "path": "keep.txt"},
    {"op": "rmdir", "path": "keepdir"},
    {"op": "mv", "src": "keep.txt", "dst": "moved.txt"},
], ids=lambda h: h["op"])
def test_read_only_user_is_refused_before_any_payload(auth_server, root, header):
    (root / "keep.txt").write_bytes(b"keep")
    (root / "keepdir").mkdir()
    with RawConn(auth_server.address, user="rob", password=RO_PASSWORD) as c:
        # only the header goes out; the refusal must not wait for a data frame
        reply, _ = c.request(header)
        assert reply["error"] == "permission_denied" and "read-only" in reply["message"]
        reply, payload = c.request({"op": "get", "path": "keep.txt"})
        assert reply["ok"] and payload == b"keep"  # reading is still allowed
    assert sorted(p.name for p in root.iterdir()) == ["keep.txt", "keepdir"]


def test_read_only_user_told_at_hello(auth_server, tmp_path):
    (tmp_path / "f").write_bytes(b"x")
    with Client(*auth_server.address, user="rob", password=RO_PASSWORD, timeout=5) as c:
        assert "read_only" in c.server_info["features"]
        with pytest.raises(PermissionDeniedError):
            c.put(tmp_path / "f", "f")


def test_passwords_never_reach_the_log(make_server, users_file, caplog):
    caplog.set_level(logging.DEBUG)
    server = make_server(authenticator=file_authenticator(Users(users_file)))
    with RawConn(server.address, hello=False) as c:
        hello(c, user="alice", password="a-wrong-guess")
        hello(c, user="alice", password=PASSWORD)
        c.request({"op": "ls"})
    text = "\n".join(r.getMessage() + repr(r.args) for r in caplog.records)
    assert "alice" in text  # the log does say who logged in
    assert PASSWORD not in text and "a-wrong-guess" not in text


def test_users_file_is_reloaded_when_it_changes(auth_server, users_file):
    auth.add_user(users_file, "carol", "carol's pw")
    with Client(*auth_server.address, user="carol", password="carol's pw", timeout=5) as c:
        assert c.pwd() == "/"
    remove_user(users_file, "carol")
    with pytest.raises(AuthFailedError):
        Client(*auth_server.address, user="carol", password="carol's pw", timeout=5)


def test_a_broken_users_file_keeps_the_last_good_copy(auth_server, users_file):
    users_file.write_text("{ half written")
    with Client(*auth_server.address, user="alice", password=PASSWORD, timeout=5) as c:
        assert c.pwd() == "/"


# ---------------------------------------------------------------------- the file
def test_users_file_mode_and_contents(tmp_path):
    path = tmp_path / "u.json"
    add_user(path, "alice", PASSWORD)
    os.chmod(path, 0o644)  # an admin's mistake; the next write puts it right
    add_user(path, "bob", "bob's secret", read_only=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    raw = path.read_bytes()
    assert PASSWORD.encode() not in raw and b"bob's secret" not in raw
    assert hashlib.sha256(PASSWORD.encode()).hexdigest().encode() not in raw
    users = load_users(path)
    assert set(users) == {"alice", "bob"} and users["bob"].read_only
    assert users["alice"].salt != users["bob"].salt and len(users["alice"].salt) >= 16
    assert users["alice"].n >= 2**14  # the default cost is a real one
    # nothing left behind by the atomic writes; the (empty, private) lock file stays, as
    # removing it could let a waiting run lock a file that a third run no longer sees
    assert sorted(p.name for p in tmp_path.iterdir()) == ["u.json", "u.json.lock"]
    lock = (tmp_path / "u.json.lock").stat()
    assert lock.st_size == 0 and stat.S_IMODE(lock.st_mode) == 0o600


def test_same_password_gets_different_hashes(tmp_path):
    a = auth.hash_password("a", PASSWORD, **FAST)
    b = auth.hash_password("b", PASSWORD, **FAST)
    assert a.hash != b.hash
    assert auth.verify_password(a, PASSWORD) and not auth.verify_password(a, PASSWORD + " ")


@pytest.mark.parametrize("content,message", [
    ("not json", "not valid JSON"),
    ('{"format": "other", "users": {}}', "not a pyftp users file"),
    ('{"format": "pyftp-users/1", "users": {"a": {"scrypt": {"n": 3, "r": 8, "p": 1, '
     '"salt": "AA==", "hash": "AA=="}}}}', "power of two"),
    ('{"format": "pyftp-users/1", "users": {"a b": {}}}', "invalid user name"),
    ('{"format": "pyftp-users/1", "users": {"a": {"scrypt": {"n": 1048576, "r": 64, "p": 1,'
     ' "salt": "AA==", "hash": "AA=="}}}}', "cost too high"),
])
def test_bad_users_files_are_refused_clearly(tmp_path, content, message):
    path = tmp_path / "u.json"
    path.write_text(content)
    with pytest.raises(UsersFileError, match=message):
        load_users(path)


def test_missing_users_file_is_an_error_not_an_open_server(tmp_path):
    with pytest.raises(UsersFileError, match="does not exist"):
        Users(tmp_path / "typo.json")


def test_odd_passwords_do_not_crash(users_file):
    users = Users(users_file)
    assert users.authenticate("alice", "\ud800") is None  # a lone surrogate from JSON
    assert users.authenticate("alice", "") is None
    assert users.authenticate("", PASSWORD) is None


# ---------------------------------------------------------------------- the CLI
def run_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([*server_command(), *args], input=stdin, capture_output=True,
                          text=True, timeout=60)


def test_cli_user_add_list_del(tmp_path):
    f = str(tmp_path / "users.json")
    r = run_cli("user", "add", "alice", "--users", f, stdin=PASSWORD + "\n")
    assert r.returncode == 0, r.stderr
    assert "alice" in r.stderr and PASSWORD not in r.stdout + r.stderr
    r = run_cli("user", "add", "rob", "--users", f, "--read-only", stdin=RO_PASSWORD + "\n")
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE(os.stat(f).st_mode) == 0o600
    r = run_cli("user", "list", "--users", f)
    assert r.returncode == 0
    assert r.stdout.split("\n")[:2] == ["alice\tread-write", "rob\tread-only"]
    # an existing name is refused unless --replace
    r = run_cli("user", "add", "alice", "--users", f, stdin="other\n")
    assert r.returncode == 1 and "already exists" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("user", "add", "alice", "--users", f, "--replace", stdin="new pw\n")
    assert r.returncode == 0
    assert auth.verify_password(load_users(f)["alice"], "new pw")
    r = run_cli("user", "del", "rob", "--users", f)
    assert r.returncode == 0
    assert list(load_users(f)) == ["alice"]
    r = run_cli("user", "del", "rob", "--users", f)
    assert r.returncode == 1 and "no user 'rob'" in r.stderr and "Traceback" not in r.stderr


def _blocked_on(lock_path: str) -> bool:
    """True if some process waits (in /proc/locks) for a lock on this file."""
    ino = os.stat(lock_path).st_ino
    with open("/proc/locks") as f:
        return any("->" in line and line.split()[6].endswith(f":{ino}") for line in f)


@pytest.mark.skipif(not os.path.exists("/proc/locks"), reason="needs Linux /proc/locks")
def test_cli_user_add_waits_for_another_change_and_loses_no_user(tmp_path):
    """Two changes at once: the second reads the file only after the first wrote it."""
    import fcntl
    f = str(tmp_path / "users.json")
    add_user(f, "alice", PASSWORD)
    fd = os.open(f + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as a `user add` in the middle of its change
        proc = subprocess.Popen([*server_command(), "user", "add", "bob", "--users", f],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        proc.stdin.write(PASSWORD + "\n")
        proc.stdin.close()
        wait_for(lambda: _blocked_on(f + ".lock"), 30, "user add to wait for the lock")
        assert proc.poll() is None
        # the change that holds the lock ends: it added carol
        users = load_users(f)
        users["carol"] = auth.hash_password("carol", PASSWORD)
        auth.save_users(f, users)
    finally:
        os.close(fd)
    assert proc.wait(60) == 0, proc.stderr.read()
    proc.stdout.close()
    proc.stderr.close()
    assert sorted(load_users(f)) == ["alice", "bob", "carol"]


@pytest.mark.parametrize("args,stdin,message", [
    (["add", "bad name"], "pw\n", "invalid user name"),
    (["add", "alice"], "", "no password on stdin"),
    (["add", "alice"], "\n", "no password on stdin"),
])
def test_cli_user_add_refuses_bad_input(tmp_path, args, stdin, message):
    f = str(tmp_path / "users.json")
    r = run_cli("user", *args, "--users", f, stdin=stdin)
    assert r.returncode == 1 and message in r.stderr and "Traceback" not in r.stderr
    assert not os.path.exists(f)


def test_cli_password_is_never_an_argument(tmp_path):
    r = run_cli("user", "add", "alice", PASSWORD, "--users", str(tmp_path / "u.json"))
    assert r.returncode == 2 and "unrecognized arguments" in r.stderr


def test_server_with_users_file_requires_and_accepts_login(tmp_path, root):
    f = str(tmp_path / "users.json")
    assert run_cli("user", "add", "alice", "--users", f, stdin=PASSWORD + "\n").returncode == 0
    with ServerProcess("--root", str(root), "--users", f, "--log-level", "debug") as srv:
        assert "login required, 1 user" in srv.stderr
        with pytest.raises(AuthRequiredError):
            Client(*srv.address, timeout=10)
        with pytest.raises(AuthFailedError):
            Client(*srv.address, user="alice", password="Wr0ng-Guess-77", timeout=10)
        with Client(*srv.address, user="alice", password=PASSWORD, timeout=10) as c:
            c.mkdir("made-by-alice")
        srv.wait_for(r" alice mkdir \S*made-by-alice ok", 10)
        assert srv.stop() == 0
        assert PASSWORD not in srv.stderr and "Wr0ng-Guess-77" not in srv.stderr
    assert (root / "made-by-alice").is_dir()


def test_server_refuses_a_missing_users_file(tmp_path, root):
    r = run_cli("--root", str(root), "--port", "0", "--users", str(tmp_path / "nope.json"))
    assert r.returncode == 2 and "does not exist" in r.stderr and "user add" in r.stderr
    assert "Traceback" not in r.stderr


def test_help_says_where_passwords_come_from():
    r = run_cli("user", "--help")
    assert r.returncode == 0 and "never from the command line" in " ".join(r.stdout.split())
    assert "--password" not in run_cli("user", "add", "--help").stdout


# ---------------------------------------------------------------------- exposure
@pytest.mark.parametrize("host,users,tls,expect", [
    ("127.0.0.1", False, False, []),
    ("127.0.0.5", False, False, []),
    ("::1", False, False, []),
    ("::ffff:127.0.0.1", False, False, []),
    ("0.0.0.0", False, False, ["all network interfaces", "no TLS: files"]),
    ("::", True, False, ["no TLS: passwords and files"]),
    ("192.168.1.7", False, True, ["192.168.1.7"]),
    ("10.0.0.1", True, True, []),
])
def test_exposure_warnings_name_what_is_exposed(host, users, tls, expect):
    from pyftp.server.tls import exposure_warnings
    lines = exposure_warnings(host, 6971, "/srv/x", users=users, tls=tls, read_only=False)
    assert len(lines) == len(expect)
    for line, word in zip(lines, expect):
        assert word in line
    if not users and expect:
        assert "--users" in lines[0] and "/srv/x" in lines[0] and "delete" in lines[0]


def test_loopback_server_prints_no_warning(root):
    with ServerProcess("--root", str(root)) as srv:
        assert srv.stop() == 0
        assert "warning" not in srv.stderr


def test_cli_defaults_are_the_server_defaults():
    """--help shows the limits a server really gets when no option is given."""
    from pyftp.cli.server import SERVER_DEFAULTS, server_parser
    from pyftp.server import ServerConfig
    cfg = ServerConfig(root=".")
    for name, value in SERVER_DEFAULTS.items():
        assert getattr(cfg, name) == value, name
    args = server_parser().parse_args(["--root", "."])
    for name, value in SERVER_DEFAULTS.items():
        assert getattr(args, name) == value, name


def test_cli_user_add_prompts_twice_on_a_terminal(tmp_path):
    pexpect = pytest.importorskip("pexpect")
    f = str(tmp_path / "users.json")
    cmd = server_command()
    child = pexpect.spawn(cmd[0], [*cmd[1:], "user", "add", "alice", "--users", f],
                          timeout=30, encoding="utf-8")
    try:
        child.expect("password for alice: ")
        child.sendline(PASSWORD)
        child.expect("again: ")
        child.sendline(PASSWORD + "x")
        child.expect("do not match")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 1 and not os.path.exists(f)
    child = pexpect.spawn(cmd[0], [*cmd[1:], "user", "add", "alice", "--users", f],
                          timeout=30, encoding="utf-8")
    try:
        child.expect("password for alice: ")
        child.sendline(PASSWORD)
        child.expect("again: ")
        child.sendline(PASSWORD)
        child.expect(pexpect.EOF)
        assert PASSWORD not in child.before  # getpass does not echo
    finally:
        child.close()
    assert child.exitstatus == 0
    assert auth.verify_password(load_users(f)["alice"], PASSWORD)


# ---------------------------------------------------------------------- throttling
from pyftp.server.throttle import LoginThrottle  # noqa: E402


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _fail(t: LoginThrottle, address: str, user: str) -> float | None:
    wait = t.reserve(address, user)
    t.failed(address, user)
    return wait


def test_throttle_spaces_attempts_by_a_doubling_capped_delay():
    clock = _Clock()
    t = LoginThrottle(base=1.0, cap=8.0, clock=clock)
    assert [t.penalty(n) for n in range(7)] == [0, 1, 2, 4, 8, 8, 8]
    waits = [_fail(t, "10.0.0.1", "alice") for _ in range(5)]  # all at one instant
    assert waits == [0.0, 1.0, 3.0, 7.0, None]  # booked one after another, then refused
    clock.now += 100
    assert t.reserve("10.0.0.1", "alice") == 0.0  # the bookings are behind us


def test_throttle_never_slows_a_clean_address_for_a_hammered_name():
    clock = _Clock()
    t = LoginThrottle(base=1.0, cap=8.0, clock=clock)
    for _ in range(20):
        _fail(t, "10.0.0.1", "alice")
    assert t.reserve("10.0.0.2", "alice") == 0.0
    t.succeeded("10.0.0.2", "alice")
    # a second address that fails too is held by the name's penalty
    _fail(t, "10.0.0.3", "alice")
    wait = t.reserve("10.0.0.3", "alice")
    assert wait is None or wait > 1.0


def test_throttle_success_clears_the_address():
    clock = _Clock()
    t = LoginThrottle(base=1.0, cap=8.0, clock=clock)
    for _ in range(3):
        _fail(t, "10.0.0.1", "bob")
    clock.now += 10
    assert t.reserve("10.0.0.1", "bob") == 0.0
    t.succeeded("10.0.0.1", "bob")
    assert t.reserve("10.0.0.1", "carol") == 0.0  # clean again: the failures are gone


def test_throttle_tracks_a_bounded_number_of_addresses_and_forgets():
    clock = _Clock()
    t = LoginThrottle(base=1.0, cap=8.0, track=100, forget=60.0, clock=clock)
    for i in range(5000):
        _fail(t, f"10.{i // 65536}.{i // 256 % 256}.{i % 256}", f"user{i % 7}")
    assert t.tracked() == (100, 7)
    _fail(t, "10.9.9.9", "zed")
    clock.now += 61  # older than forget, and its booking is past: forgotten
    assert t.reserve("10.9.9.9", "zed") == 0.0


def test_throttle_counts_an_ipv6_host_by_its_64():
    clock = _Clock()
    t = LoginThrottle(base=1.0, cap=8.0, clock=clock)
    _fail(t, "2001:db8:1:2::1", "alice")
    assert t.reserve("2001:db8:1:2:ffff::9", "bob") == 1.0  # same /64: same record
    assert t.reserve("2001:db8:1:3::1", "carol") == 0.0
    assert t.reserve("::ffff:10.0.0.1", "dave") == 0.0
    _fail(t, "::ffff:10.0.0.5", "erin")
    assert t.reserve("10.0.0.5", "frank") == 1.0  # a mapped IPv4 is that IPv4
