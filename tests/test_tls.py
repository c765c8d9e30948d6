"""TLS: verified transfers, refused certificates, and plain/TLS mismatches that fail fast.

Certificates come from trustme (a throwaway CA per test session). "Fast" is checked
without timing anything: clients get a generous timeout, and the assertion is that the
error says what is wrong (TLS, certificate, closed) rather than "timed out".
"""
from __future__ import annotations

import hashlib
import os
import selectors
import socket
import ssl
import time
import warnings

import pytest
import trustme

from conftest import Remote
from helpers import RawConn, best
from pyftp import Client
from pyftp.server.tls import server_tls_context
from pyftp.errors import ConnectError, TransportError
from serverproc import ServerProcess

TIMEOUT = 10.0


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture(scope="module")
def pems(ca, tmp_path_factory):
    """cafile, certfile, keyfile for a server on 127.0.0.1 / localhost."""
    d = tmp_path_factory.mktemp("pki")
    cert = ca.issue_cert("127.0.0.1", "localhost", "::1")
    paths = (d / "ca.pem", d / "cert.pem", d / "key.pem")
    ca.cert_pem.write_to_path(str(paths[0]))
    cert.cert_chain_pems[0].write_to_path(str(paths[1]))
    for extra in cert.cert_chain_pems[1:]:
        extra.write_to_path(str(paths[1]), append=True)
    cert.private_key_pem.write_to_path(str(paths[2]))
    return tuple(str(p) for p in paths)


@pytest.fixture
def tls_server(make_server, pems):
    _ca, certfile, keyfile = pems
    return make_server(ssl_context=server_tls_context(certfile, keyfile))


def tls_client(server, cafile, **kw) -> Client:
    return Client(*server.address, tls=True, cafile=cafile, timeout=TIMEOUT, **kw)


def _roundtrip(c: Client, remote: Remote, tmp_path, size: int, name: str) -> None:
    """Put and get ``size`` bytes, checking what the server stored too."""
    data = os.urandom(size)
    src = tmp_path / f"{name}.src"
    src.write_bytes(data)
    res = c.put(src, name)
    assert res.sha256 == best(data)
    assert remote.read(name) == data
    out = tmp_path / f"{name}.out"
    c.get(name, out)
    assert out.read_bytes() == data


def test_put_and_get_over_tls(tls_server, pems, remote, tmp_path):
    with tls_client(tls_server, pems[0]) as c:
        assert "tls" in c.server_info["features"]
        assert isinstance(c.socket, ssl.SSLSocket)
        assert c.socket.version() in ("TLSv1.2", "TLSv1.3")
        for size, name in ((0, "empty"), (1000, "small"), (3 * 1024 * 1024 + 7, "big")):
            _roundtrip(c, remote, tmp_path, size, name)
        assert [e.name for e in c.ls()] == ["big", "empty", "small"]


def test_untrusted_certificate_is_refused(tls_server):
    with pytest.raises(ConnectError, match="not trusted"):
        Client(*tls_server.address, tls=True, timeout=TIMEOUT)  # system CAs only
    other_ctx = ssl.create_default_context()
    trustme.CA().configure_trust(other_ctx)
    with pytest.raises(ConnectError, match="not trusted"):
        Client(*tls_server.address, tls=other_ctx, timeout=TIMEOUT)


def test_certificate_for_another_name_is_refused(make_server, ca, pems, tmp_path):
    cert = ca.issue_cert("files.example.org")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(ctx)
    server = make_server(ssl_context=ctx)
    with pytest.raises(ConnectError, match="not trusted|mismatch"):
        tls_client(server, pems[0])


def test_insecure_is_an_explicit_opt_out(tls_server, remote, tmp_path):
    with Client(*tls_server.address, insecure=True, timeout=TIMEOUT) as c:
        _roundtrip(c, remote, tmp_path, 5000, "insecure.bin")


def test_plain_client_against_tls_server_fails_fast(tls_server, pems, remote, tmp_path):
    with pytest.raises(ConnectError) as err:
        Client(*tls_server.address, timeout=TIMEOUT)
    assert "--tls" in str(err.value) and "timed out" not in str(err.value)
    with tls_client(tls_server, pems[0]) as c:  # still serving
        _roundtrip(c, remote, tmp_path, 2000, "after.bin")


def test_tls_client_against_plain_server_fails_fast(server, pems, remote, tmp_path):
    with pytest.raises(ConnectError) as err:
        tls_client(server, pems[0])
    assert "TLS" in str(err.value) and "timed out" not in str(err.value)
    with Client(*server.address, timeout=TIMEOUT) as c:  # still serving
        _roundtrip(c, remote, tmp_path, 2000, "after.bin")


def test_raw_frame_at_tls_server_is_closed(tls_server):
    with RawConn(tls_server.address, hello=False, timeout=TIMEOUT) as raw:
        raw.send_frame({"op": "hello", "version": 1})
        assert raw.is_closed()


def test_old_tls_versions_are_refused(tls_server, pems):
    ctx = ssl.create_default_context(cafile=pems[0])
    ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    except (ValueError, ssl.SSLError):
        pytest.skip("this OpenSSL cannot even offer TLS 1.1")
    with pytest.raises(ConnectError):
        Client(*tls_server.address, tls=ctx, timeout=TIMEOUT)
    assert server_tls_context(pems[1], pems[2]).minimum_version == ssl.TLSVersion.TLSv1_2


def _client_hello() -> bytes:
    """The bytes a real TLS client sends first."""
    ctx = ssl.create_default_context()
    obj = ctx.wrap_bio(ssl.MemoryBIO(), out := ssl.MemoryBIO(), server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return out.read()


@pytest.mark.parametrize("style", ["stalled", "drip"])
def test_slow_tls_handshake_is_cut_at_the_frame_deadline(make_server, pems, style):
    """A handshake dribbled in one byte at a time must not hold a thread past its deadline."""
    server = make_server(ssl_context=server_tls_context(pems[1], pems[2]), frame_timeout=0.5)
    hello = _client_hello()
    socks = [socket.create_connection(server.address, timeout=TIMEOUT) for _ in range(5)]
    try:
        for s in socks:
            s.sendall(hello[:1])
            s.setblocking(False)
        left = {s: 1 for s in socks}
        deadline = time.monotonic() + 15
        with selectors.DefaultSelector() as sel:
            for s in socks:
                sel.register(s, selectors.EVENT_READ)
            while left and time.monotonic() < deadline:
                for key, _ in sel.select(timeout=0.2):
                    try:
                        data = key.fileobj.recv(4096)
                    except (BlockingIOError, ConnectionError):
                        data = b""
                    if not data:
                        sel.unregister(key.fileobj)
                        del left[key.fileobj]
                if style == "drip":
                    for s, pos in list(left.items()):
                        if pos < len(hello):
                            try:
                                s.send(hello[pos:pos + 1])
                                left[s] = pos + 1
                            except (BlockingIOError, ConnectionError):
                                pass
        assert not left, f"{len(left)} slow handshakes were never cut"
    finally:
        for s in socks:
            s.close()


def test_full_tls_server_says_so(make_server, pems):
    server = make_server(ssl_context=server_tls_context(pems[1], pems[2]), max_clients=1)
    with tls_client(server, pems[0]) as first:
        with pytest.raises(ConnectError, match="full"):
            tls_client(server, pems[0])
        assert first.pwd() == "/"


def test_shutdown_reaches_idle_tls_sessions(make_server, pems):
    server = make_server(ssl_context=server_tls_context(pems[1], pems[2]))
    c = tls_client(server, pems[0])
    try:
        assert c.pwd() == "/"
        server.shutdown(grace=0.5)
        assert server.session_count == 0
        with pytest.raises(TransportError):
            c.pwd()
    finally:
        c.close()


@pytest.mark.parametrize("cert,key,message", [
    ("missing.pem", None, "no such file"),
    ("KEY", None, "cannot load the certificate"),
    ("CERT", "OTHERKEY", "cannot load the certificate"),
])
def test_bad_tls_files_are_refused_clearly(pems, tmp_path, cert, key, message):
    other = trustme.CA().issue_cert("x").private_key_pem
    other.write_to_path(str(tmp_path / "other.pem"))
    names = {"KEY": pems[2], "CERT": pems[1], "OTHERKEY": str(tmp_path / "other.pem"),
             "missing.pem": str(tmp_path / "missing.pem")}
    with pytest.raises(ValueError, match=message):
        server_tls_context(names[cert], names.get(key) if key else None)


def test_tls_server_from_the_command_line(pems, root, tmp_path):
    cafile, certfile, keyfile = pems
    with ServerProcess("--root", str(root), "--tls-cert", certfile, "--tls-key", keyfile) as srv:
        assert "; TLS" in srv.stderr
        with Client(*srv.address, tls=True, cafile=cafile, timeout=TIMEOUT) as c:
            _roundtrip(c, Remote(str(root)), tmp_path, 100_000, "cli.bin")
        with pytest.raises(ConnectError, match="--tls"):
            Client(*srv.address, timeout=TIMEOUT)
        assert srv.stop() == 0


def test_a_long_listing_spooled_by_the_server_arrives_whole_over_tls(tls_server, pems, root):
    """Over 2,000 entries the server sends the listing from a spool file; over TLS
    that file goes through the TLS socket, not sendfile."""
    cafile = pems[0]
    (root / "many").mkdir()
    names = [f"n{i:05d}" for i in range(2500)]
    for name in names:
        (root / "many" / name).touch()
    with tls_client(tls_server, cafile) as c:
        assert [e.name for e in c.ls("/many")] == names
        assert c.pwd() == "/"
