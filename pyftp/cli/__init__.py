"""The console scripts ``pyftp`` and ``pyftp-server``: ``main(argv) -> exit code``.

Nothing imports cli. Heavy modules are imported inside functions so ``pyftp --version``
stays fast.
"""
from .main import main, server_main

__all__ = ["main", "server_main"]
