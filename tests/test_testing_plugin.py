"""The pytest plugin (pyftp.testing): its fixtures in a real inner pytest run, loaded
through the installed ``pytest11`` entry point, and the example of docs/ecosystem.md
run exactly as written."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from pyftp import AuthFailedError, Client, PermissionDeniedError
from pyftp.errors import ConnectError

pytest_plugins = ["pytester"]

DOC = Path(__file__).resolve().parent.parent / "docs" / "ecosystem.md"

#: an inner conftest that fails any inner test leaving threads behind, like ours
LEAK_CHECK = '''
import threading
import pytest

@pytest.fixture(autouse=True)
def no_thread_leaks():
    before = set(threading.enumerate())
    yield
    for t in set(threading.enumerate()) - before:
        t.join(5.0)
        assert not t.is_alive(), f"thread leaked: {t.name}"
'''


def doc_files(text: str) -> dict[str, str]:
    """The code blocks of a Markdown text that follow a ``<!-- file: NAME -->`` line."""
    found = re.findall(r"<!-- file: (\S+) -->\n```python\n(.*?)```", text, re.S)
    return dict(found)


def test_the_documented_example_runs_as_written(pytester):
    files = doc_files(DOC.read_text(encoding="utf-8"))
    assert set(files) == {"upload.py", "test_upload.py"}
    for name, text in files.items():
        pytester.path.joinpath(name).write_text(text, encoding="utf-8")
    pytester.makeconftest(LEAK_CHECK)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


def test_fixtures_in_an_inner_run(pytester):
    pytester.makeconftest(LEAK_CHECK)
    pytester.makepyfile(test_inner='''
        import pytest
        from pyftp import AuthFailedError, Client

        SEEN = []

        def test_function_server(pyftp_server, tmp_path):
            assert pyftp_server.url == f"pyftp://127.0.0.1:{pyftp_server.port}"
            assert pyftp_server.host == "127.0.0.1" and pyftp_server.port > 0
            assert list(pyftp_server.root.iterdir()) == []
            (tmp_path / "a.txt").write_bytes(b"abc")
            with pyftp_server.client() as c:
                c.put(tmp_path / "a.txt", "/a.txt")
            assert (pyftp_server.root / "a.txt").read_bytes() == b"abc"
            SEEN.append(pyftp_server.root)

        def test_each_test_gets_a_new_server(pyftp_server):
            assert pyftp_server.root not in SEEN
            assert not (pyftp_server.root / "a.txt").exists()

        @pytest.mark.parametrize("n", [1, 2])
        def test_session_server_is_shared(pyftp_server_session, n):
            (pyftp_server_session.root / f"s{n}").write_text("x")
            names = {p.name for p in pyftp_server_session.root.iterdir()}
            assert {f"s{i}" for i in range(1, n + 1)} <= names

        def test_factory_users_read_only_tls(pyftp_server_factory):
            s = pyftp_server_factory(users={"alice": "pw"}, read_only=True, tls=True)
            assert s.url == f"pyftp://alice@127.0.0.1:{s.port}"
            with s.client() as c:
                assert c.ls("/") == []
                assert "read_only" in c.server_info["features"]
            with pytest.raises(AuthFailedError):
                s.client(password="wrong")

        def test_stop_is_explicit_too(pyftp_server):
            c = pyftp_server.client()
            pyftp_server.stop()
            pyftp_server.stop()   # twice is fine, and the fixture stops it once more
            with pytest.raises(Exception):
                Client(pyftp_server.host, pyftp_server.port, timeout=5)
    ''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=6)


def test_the_plugin_is_registered_as_an_entry_point():
    from importlib.metadata import entry_points
    eps = entry_points(group="pytest11")
    assert [ep.value for ep in eps if ep.name == "pyftp"] == ["pyftp.testing"]


# ---------------------------------------------------------------- used here, directly

def test_factory_refuses_a_wrong_password(pyftp_server_factory):
    s = pyftp_server_factory(users={"alice": "pw", "bob": "pw2"})
    with s.client(user="bob", password="pw2") as c:
        assert c.pwd() == "/"
    with pytest.raises(AuthFailedError):
        s.client(password="nope")
    with pytest.raises(AuthFailedError):
        Client(s.host, s.port, user="mallory", password="pw", timeout=10)


def test_read_only_server_refuses_changes(pyftp_server_factory, tmp_path):
    s = pyftp_server_factory(read_only=True)
    (s.root / "kept.txt").write_text("kept")
    with s.client() as c:
        assert [e.name for e in c.ls("/")] == ["kept.txt"]
        with pytest.raises(PermissionDeniedError):
            c.rm("/kept.txt")
    assert (s.root / "kept.txt").read_text() == "kept"


def test_tls_server_trusts_only_its_ca(pyftp_server_factory):
    s = pyftp_server_factory(tls=True)
    assert s.tls and Path(s.cafile).is_file()
    assert not Path(s.cafile).is_relative_to(s.root)
    with s.client() as c:
        assert "tls" in c.server_info["features"]
    with pytest.raises(ConnectError):
        Client(s.host, s.port, tls=True, timeout=10)   # the system CAs do not know it
    cafile = s.cafile
    s.stop()
    assert not Path(cafile).exists()


def test_a_root_given_must_exist(pyftp_server_factory, tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        pyftp_server_factory(root=tmp_path / "missing")
    s = pyftp_server_factory(root=tmp_path)
    assert s.root == tmp_path


def test_session_server_is_live(pyftp_server_session, tmp_path):
    with pyftp_server_session.client() as c:
        assert c.upper("hi") == "HI"


def test_storage_options_reach_the_server(pyftp_server_factory):
    s = pyftp_server_factory(users={"alice": "pw"}, tls=True)
    opts = s.storage_options
    assert opts == {"host": "127.0.0.1", "port": s.port, "user": "alice", "password": "pw",
                    "tls": True, "cafile": s.cafile}
    with Client(**opts, timeout=10) as c:
        assert c.pwd() == "/"
