"""Shared fixtures: a real server on 127.0.0.1:0 with a tmp_path root, a thread-leak
check around every test, and the ``slow`` lane.

``scripts/test -m "not slow"`` is the fast lane (pure tests and in-process servers);
``scripts/test`` runs everything. A test is slow when it is marked so, or lives in a
module of :data:`SLOW_MODULES` (real terminals, console-script subprocesses, signals,
fuzzing, the benchmark smoke test).
"""
from __future__ import annotations

import threading

import pytest

from pyftp import Client
from pyftp.server import Server, ServerConfig


#: modules whose tests start processes or terminals, run bounded attack loops, or many
#: examples (the attack catalogue, console scripts, inner pytest runs, pandas)
SLOW_MODULES = {"test_pty", "test_shutdown", "test_server_cli", "test_fuzz", "test_bench",
                "test_perf", "test_s3_store", "test_hostile", "test_cli", "test_shell_sync",
                "test_testing_plugin", "test_fsspec", "test_resume", "test_habits"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.module is not None and item.module.__name__.rsplit(".", 1)[-1] in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True, scope="session")
def private_cache(tmp_path_factory):
    """The console script keeps resume tokens in $XDG_CACHE_HOME/pyftp: the tests' own
    cache, never the user's (subprocesses inherit it)."""
    import os
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if old is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = old


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
