"""Shared fixtures: a real server on 127.0.0.1:0 with a tmp_path root, and a thread-leak
check around every test."""
from __future__ import annotations

import threading

import pytest

from pyftp import Client
from pyftp.server import Server, ServerConfig


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: a long test (deselect with -m 'not slow')")


@pytest.fixture(autouse=True)
def no_thread_leaks():
    """Fail a test that leaves threads running (servers, hashers, sessions)."""
    before = set(threading.enumerate())
    yield
    leaked = []
    for t in set(threading.enumerate()) - before:
        t.join(5.0)
        if t.is_alive():
            leaked.append(t.name)
    assert not leaked, f"threads leaked: {leaked}"


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "root"
    r.mkdir()
    return r


@pytest.fixture
def make_server(root):
    """Start servers with extra ServerConfig fields; all are shut down and joined."""
    servers = []

    def start(**overrides) -> Server:
        cfg = ServerConfig(root=str(overrides.pop("root", root)), port=0,
                           auth_fail_delay=0.01, **overrides)
        s = Server(cfg).start()
        servers.append(s)
        return s
    try:
        yield start
    finally:
        for s in servers:
            s.shutdown(grace=1.0)


@pytest.fixture
def server(make_server):
    return make_server()


@pytest.fixture
def client(server):
    host, port = server.address
    c = Client(host, port, timeout=10)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def local(tmp_path):
    """A client's local folder (the shell's lcd), empty."""
    d = tmp_path / "local"
    d.mkdir()
    return d


@pytest.fixture
def sh(server, local):
    """A shell (tests/shellharness.py) connected to the test server, closed afterwards."""
    from shellharness import make_shell
    h = make_shell(server, local)
    try:
        yield h
    finally:
        h.shell.execute("close")
