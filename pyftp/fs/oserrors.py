"""pyftp's error classes as the builtin ``OSError`` subclasses fsspec callers expect
(``FileNotFoundError`` for ``not_found``, ``FileExistsError`` for ``exists``, ...).

Import rule: pyftp.errors only.
"""
from __future__ import annotations

import errno
from typing import Any

from ..errors import (AlreadyExistsError, AuthFailedError, IsDirectoryError, NotDirectoryError,
                      NotEmptyError, NotFoundError, PermissionDeniedError, PyftpError)

__all__ = ["as_oserror", "raise_first"]


def as_oserror(exc: PyftpError, path: Any = None) -> Exception:
    """The builtin OSError fsspec callers expect for a pyftp error (others unchanged)."""
    table: list[tuple[type[PyftpError], type[OSError], int]] = [
        (NotFoundError, FileNotFoundError, errno.ENOENT),
        (AlreadyExistsError, FileExistsError, errno.EEXIST),
        (IsDirectoryError, IsADirectoryError, errno.EISDIR),
        (NotDirectoryError, NotADirectoryError, errno.ENOTDIR),
        (NotEmptyError, OSError, errno.ENOTEMPTY),
        (PermissionDeniedError, PermissionError, errno.EACCES),
        (AuthFailedError, PermissionError, errno.EACCES),
    ]
    for theirs, ours, code in table:
        if isinstance(exc, theirs):
            return ours(code, str(exc), path) if path is not None else ours(code, str(exc))
    return exc



def raise_first(results: list[Any], paths: list[str], *, missing_ok: bool = False) -> None:
    """Raise the first error among the results of a batch, as an OSError."""
    for result, path in zip(results, paths):
        if missing_ok and isinstance(result, NotFoundError):
            continue
        if isinstance(result, PyftpError):
            raise as_oserror(result, path) from result
