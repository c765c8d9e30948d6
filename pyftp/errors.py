"""One exception tree for all of pyftp, and the table of wire error codes.

Every error a server can send has exactly one class here, carrying its wire ``code``;
:func:`error_for_code` turns a code received from the wire back into that class.
Boundaries translate into this tree with ``raise ... from``: ``OSError`` from the
file system becomes a storage error, socket failures become :class:`TransportError`,
and error replies become the class of their code.

Import rule: this module imports nothing of pyftp.
"""
from __future__ import annotations

from .hints import TYPE_CHECKING, LEAN

if TYPE_CHECKING or not LEAN:  # names for annotations; see pyftp.hints
    from typing import Any

__all__ = [
    "PyftpError", "TransportError", "ConnectError", "LocalError", "CancelledError",
    "RemoteError", "BadRequestError", "ProtocolError", "NotPyftpError", "AuthRequiredError",
    "AuthFailedError", "PermissionDeniedError", "NotFoundError", "AlreadyExistsError",
    "IsDirectoryError", "NotDirectoryError", "NotEmptyError", "BusyError",
    "TooLargeError", "NoSpaceError", "ChecksumMismatchError",
    "UnsupportedVersionError", "InternalError", "ERROR_CODES", "error_for_code",
]


class PyftpError(Exception):
    """Base class of every error pyftp raises on purpose."""

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class TransportError(PyftpError):
    """The connection failed: refused, reset, closed early or timed out."""


class ConnectError(TransportError):
    """No connection could be opened, or the TLS handshake failed."""


class LocalError(PyftpError):
    """A local file problem on the client side (missing file, unwritable folder)."""


class CancelledError(PyftpError):
    """A transfer was cancelled by the caller (for example with Ctrl-C)."""


class RemoteError(PyftpError):
    """An error reply from the peer. ``code`` is the wire code of the class."""

    code = "internal"
    #: one short, human phrase used as the prefix of error lines ("not found: /x")
    title = "server error"

    def __init__(self, message: str = "", *, code: str | None = None) -> None:
        super().__init__(message or self.title)
        if code is not None:
            self.code = code

    def to_reply(self) -> dict[str, Any]:
        """The error reply frame header for this error."""
        return {"ok": False, "error": self.code, "message": self.message}


class BadRequestError(RemoteError):
    code, title = "bad_request", "bad request"


class ProtocolError(RemoteError):
    """The byte stream broke the framing rules; the connection cannot go on."""

    code, title = "bad_frame", "protocol error"


class NotPyftpError(ProtocolError):
    """The peer is not a pyftp server (an SSH, HTTP or FTP server, or silence); the
    message says what it sent."""


class AuthRequiredError(RemoteError):
    code, title = "auth_required", "login required"


class AuthFailedError(RemoteError):
    code, title = "auth_failed", "login failed"


class PermissionDeniedError(RemoteError):
    code, title = "permission_denied", "permission denied"


class NotFoundError(RemoteError):
    code, title = "not_found", "not found"


class AlreadyExistsError(RemoteError):
    code, title = "exists", "already exists"


class IsDirectoryError(RemoteError):
    code, title = "is_a_directory", "is a directory"


class NotDirectoryError(RemoteError):
    code, title = "not_a_directory", "not a directory"


class NotEmptyError(RemoteError):
    code, title = "not_empty", "directory not empty"


class BusyError(RemoteError):
    code, title = "busy", "busy"


class TooLargeError(RemoteError):
    code, title = "too_large", "too large"


class NoSpaceError(RemoteError):
    code, title = "no_space", "no space left"


class ChecksumMismatchError(RemoteError):
    code, title = "checksum_mismatch", "checksum mismatch"


class UnsupportedVersionError(RemoteError):
    code, title = "unsupported_version", "unsupported protocol version"


class InternalError(RemoteError):
    code, title = "internal", "internal server error"


#: wire code -> exception class, in the order docs/protocol.md lists them
ERROR_CODES: dict[str, type[RemoteError]] = {
    cls.code: cls
    for cls in (
        BadRequestError, ProtocolError, AuthRequiredError, AuthFailedError,
        PermissionDeniedError, NotFoundError, AlreadyExistsError, IsDirectoryError,
        NotDirectoryError, NotEmptyError, BusyError, TooLargeError, NoSpaceError,
        ChecksumMismatchError, UnsupportedVersionError, InternalError,
    )
}


def error_for_code(code: object, message: object = "") -> RemoteError:
    """Build the exception for an error reply. Unknown codes keep their text."""
    text = message if isinstance(message, str) else ""
    if isinstance(code, str) and code in ERROR_CODES:
        return ERROR_CODES[code](text)
    return RemoteError(text or f"server error {code!r}", code=str(code))
