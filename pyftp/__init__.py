"""pyftp: verified, atomic, resumable file transfer over one framed TCP connection.

The public API:

.. code-block:: python

    from pyftp import Client, Server, ServerConfig
    with Server(ServerConfig(root="share", port=0)) as server:
        host, port = server.address
        with Client(host, port) as c:
            c.put("notes.txt")
            print(c.ls())

Names are imported lazily, so ``pyftp --version`` starts without loading sockets,
TLS or rich.
"""
from __future__ import annotations

from .hints import TYPE_CHECKING

from ._version import __version__

__all__ = [
    "__version__", "Client", "Entry", "TransferResult", "Server", "ServerConfig", "Account",
    "PyftpError", "TransportError", "ConnectError", "LocalError", "RemoteError",
    "BadRequestError", "ProtocolError", "NotPyftpError", "AuthRequiredError", "AuthFailedError",
    "PermissionDeniedError", "NotFoundError", "AlreadyExistsError", "IsDirectoryError",
    "NotDirectoryError", "NotEmptyError", "BusyError", "TooLargeError", "NoSpaceError",
    "ChecksumMismatchError", "UnsupportedVersionError", "InternalError", "error_for_code",
]

_WHERE = {"Client": "client", "Entry": "client", "TransferResult": "client",
          "Server": "server", "ServerConfig": "server", "Account": "server"}

if TYPE_CHECKING:  # pragma: no cover
    from typing import Any
    from .client import Client, Entry, TransferResult
    from .errors import *  # noqa: F401,F403
    from .server import Account, Server, ServerConfig


def __getattr__(name: str) -> Any:
    import importlib
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    if name in __all__:
        return getattr(importlib.import_module(".errors", __name__), name)
    raise AttributeError(f"module 'pyftp' has no attribute {name!r}")
