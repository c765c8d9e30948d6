"""Folder trees, globs, mirror and retries, built on :class:`pyftp.Client`.

Import rule: errors, protocol, digests, client. Never server, ui, shell or cli.
"""
from .core import *  # noqa: F401,F403
from .core import __all__
