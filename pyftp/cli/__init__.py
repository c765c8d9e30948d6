"""The console scripts ``pyftp`` and ``pyftp-server``: ``main(argv) -> exit code``.

Nothing imports cli. Heavy modules are imported inside functions so ``pyftp --version``
stays fast: even the two entry points load their module only when called.
"""
from __future__ import annotations

import os
import sys

from ..hints import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import NoReturn

__all__ = ["main", "server_main", "console"]


def main(argv: list[str] | None = None) -> int:
    """``pyftp``: the client."""
    from .client import main as run
    return run(argv)


def console() -> NoReturn:
    """The ``pyftp`` console script: :func:`main`, then the process ends at once.

    Its work is done by then (files closed, the connection said goodbye, history
    written), so tearing the interpreter down object by object (a final garbage
    collection, every module's objects freed) would only cost a one-shot run about a
    tenth of its time. Output is flushed first; if that fails (a full disk, a closed
    pipe), the exit code says so, as Python's own exit would.
    """
    from .. import hints
    hints.lean()  # before the client's modules load: none of typing, dataclasses
    code = main()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            code = code or 1
    os._exit(code)


def server_main(argv: list[str] | None = None) -> int:
    """``pyftp-server``: serve a folder, or manage a users file."""
    from .server import server_main as run
    return run(argv)
