"""A pytest plugin: a live pyftp server on 127.0.0.1 for the tests of your own code.

Installed with pyftp and registered as the ``pytest11`` entry point ``pyftp``, so its
fixtures are available in any test suite without a ``conftest.py``:

.. code-block:: python

    def test_upload(pyftp_server, tmp_path):
        (tmp_path / "a.txt").write_text("hi")
        with pyftp_server.client() as c:
            c.put(tmp_path / "a.txt", "/a.txt")
        assert (pyftp_server.root / "a.txt").read_text() == "hi"

Fixtures:

- ``pyftp_server``: a fresh open server per test, serving an empty temporary folder.
- ``pyftp_server_session``: one such server for the whole session (files persist
  between tests that use it, so give each test its own folder).
- ``pyftp_server_factory(users=None, read_only=False, tls=False, root=None, **config)``:
  start servers with logins (``{"alice": "pw"}``), read-only access or TLS with a
  throwaway CA (from ``trustme``); ``.client()`` then logs in and trusts that CA.

Every server is shut down and its threads joined when its fixture ends, also when the
test fails. Servers answer a wrong password after 10 ms instead of the production 1 s.

Import rule: the public API (client, server, errors); ``pytest`` and ``trustme`` only
where a fixture needs them, so that loading the plugin costs next to nothing.
"""
from __future__ import annotations

import hmac
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import pytest

if TYPE_CHECKING:  # pragma: no cover
    from .client import Client
    from .server import Account, Server

__all__ = ["LiveServer", "start_server", "pyftp_server", "pyftp_server_session",
           "pyftp_server_factory"]

#: how long a stopping server lets transfers in flight finish before it cuts them
STOP_GRACE = 1.0


class LiveServer:
    """A running pyftp server started for a test (see :func:`start_server`).

    ``url`` is ``pyftp://127.0.0.1:PORT`` (with ``user@`` when it asks for a login),
    ``root`` the folder it serves, ``users`` the logins it accepts (``{}``: an open
    server), ``cafile`` the PEM file of its CA when it speaks TLS.
    """

    def __init__(self, server: "Server", root: Path, *, users: dict[str, str],
                 read_only: bool, cafile: str | None) -> None:
        self.server = server
        self.host, self.port = server.address
        self.root = root
        self.users = dict(users)
        self.read_only = read_only
        self.cafile = cafile
        self._clients: list[Client] = []

    @property
    def tls(self) -> bool:
        return self.cafile is not None

    @property
    def user(self) -> str | None:
        """The login ``client()`` uses by default: the first of ``users``, if any."""
        return next(iter(self.users), None)

    @property
    def url(self) -> str:
        login = f"{self.user}@" if self.user else ""
        return f"pyftp://{login}{self.host}:{self.port}"

    @property
    def storage_options(self) -> dict[str, Any]:
        """Keyword arguments for ``fsspec.filesystem("pyftp", ...)`` reaching this server."""
        opts: dict[str, Any] = {"host": self.host, "port": self.port}
        if self.user:
            opts.update(user=self.user, password=self.users[self.user])
        if self.cafile:
            opts.update(tls=True, cafile=self.cafile)
        return opts

    def client(self, **kw: Any) -> "Client":
        """A :class:`pyftp.Client` connected (and logged in) to this server.

        Keyword arguments go to ``Client`` and override the defaults: the first user
        and its password, TLS trusting this server's CA, a 10 s timeout. The client is
        closed when the server stops, if the test did not close it already.
        """
        from .client import Client
        opts: dict[str, Any] = {"timeout": 10.0}
        if self.user:
            opts.update(user=self.user, password=self.users[self.user])
        if self.cafile:
            opts.update(tls=True, cafile=self.cafile)
        opts.update(kw)
        c = Client(self.host, self.port, **opts)
        self._clients.append(c)
        return c

    def stop(self) -> None:
        """Close the clients handed out, shut the server down and join its threads."""
        clients, self._clients = self._clients, []
        for c in clients:
            c.close()
        self.server.shutdown(grace=STOP_GRACE)
        if self.cafile:
            Path(self.cafile).unlink(missing_ok=True)

    def __enter__(self) -> "LiveServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<LiveServer {self.url} root={str(self.root)!r}>"


def start_server(root: str | os.PathLike[str], *, users: dict[str, str] | None = None,
                 read_only: bool = False, tls: bool = False,
                 **config: Any) -> LiveServer:
    """Start a server on 127.0.0.1, port 0, serving ``root``; stop it with ``.stop()``.

    ``users`` maps names to passwords (``None``: no login asked); ``read_only`` applies
    to everyone; ``tls`` serves a certificate for 127.0.0.1 and localhost issued by a
    new throwaway CA, whose PEM file is written beside ``root`` (``.cafile``). Other
    keyword arguments are :class:`pyftp.ServerConfig` fields.
    """
    from .server import Server, ServerConfig
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"the folder to serve does not exist: {root}; create it first")
    users = dict(users or {})
    ssl_context, cafile = _throwaway_tls(root) if tls else (None, None)
    config.setdefault("auth_fail_delay", 0.01)
    cfg = ServerConfig(root=str(root), host="127.0.0.1", port=0, read_only=read_only,
                       authenticator=_authenticator(users, read_only) if users else None,
                       ssl_context=ssl_context, **config)
    server = Server(cfg).start()
    return LiveServer(server, root, users=users, read_only=read_only, cafile=cafile)


def _authenticator(users: dict[str, str], read_only: bool) -> Callable[[str, str], "Account | None"]:
    from .server import Account
    wanted = {name: pw.encode("utf-8") for name, pw in users.items()}

    def authenticate(name: str, password: str) -> Account | None:
        expected = wanted.get(name)
        if expected is None or not hmac.compare_digest(expected, password.encode("utf-8")):
            return None
        return Account(name, read_only)
    return authenticate


def _throwaway_tls(root: Path) -> tuple[Any, str]:
    """A server SSLContext from a new CA, and the CA's PEM file for clients to trust."""
    import ssl
    try:
        import trustme
    except ImportError:
        raise RuntimeError("tls=True needs the trustme package: pip install trustme") from None
    ca = trustme.CA()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ca.issue_cert("127.0.0.1", "localhost", "::1").configure_cert(ctx)
    # beside the root, not in it: the CA file is no file the server shares
    fd, cafile = tempfile.mkstemp(prefix="pyftp-ca-", suffix=".pem", dir=root.parent)
    os.close(fd)
    ca.cert_pem.write_to_path(cafile)
    return ctx, cafile


class _Factory:
    """The ``pyftp_server_factory`` fixture's callable: starts servers, stops them all."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._tmp = tmp_path_factory
        self.servers: list[LiveServer] = []

    def __call__(self, users: dict[str, str] | None = None, read_only: bool = False,
                 tls: bool = False, root: str | os.PathLike[str] | None = None,
                 **config: Any) -> LiveServer:
        if root is None:
            root = self._tmp.mktemp("pyftp-root") / "root"
            root.mkdir()
        live = start_server(root, users=users, read_only=read_only, tls=tls, **config)
        self.servers.append(live)
        return live

    def stop_all(self) -> None:
        errors: list[BaseException] = []
        for live in reversed(self.servers):
            try:
                live.stop()
            except Exception as exc:  # stop every server before reporting any failure
                errors.append(exc)
        self.servers.clear()
        if errors:
            raise errors[0]


@pytest.fixture
def pyftp_server_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Factory]:
    """Start servers: ``pyftp_server_factory(users={"alice": "pw"}, read_only=False,
    tls=False, root=None, **ServerConfig fields)`` -> :class:`LiveServer`."""
    factory = _Factory(tmp_path_factory)
    try:
        yield factory
    finally:
        factory.stop_all()


@pytest.fixture
def pyftp_server(pyftp_server_factory: _Factory) -> LiveServer:
    """An open pyftp server for this test, serving a new empty folder (``.root``)."""
    return pyftp_server_factory()


@pytest.fixture(scope="session")
def pyftp_server_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One open pyftp server shared by the whole test session."""
    factory = _Factory(tmp_path_factory)
    try:
        yield factory()
    finally:
        factory.stop_all()
