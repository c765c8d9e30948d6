"""The console scripts ``pyftp`` and ``pyftp-server``: ``main(argv) -> exit code``.

Nothing imports cli. Heavy modules are imported inside functions so ``pyftp --version``
stays fast: even the two entry points load their module only when called.
"""
from __future__ import annotations

__all__ = ["main", "server_main"]


def main(argv: list[str] | None = None) -> int:
    """``pyftp``: the client."""
    from .client import main as run
    return run(argv)


def server_main(argv: list[str] | None = None) -> int:
    """``pyftp-server``: serve a folder, or manage a users file."""
    from .server import server_main as run
    return run(argv)
