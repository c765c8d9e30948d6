"""Folder trees, globs, mirror and retries, built on :class:`pyftp.Client`.

The package is cut by responsibility:

* :mod:`.options`: the one :class:`RetryPolicy` and the options every job carries,
* :mod:`.walk` and :mod:`.globs`: reading a side (trees, patterns),
* :mod:`.plan`: what to send, skip, delete and create (pure, no I/O),
* :mod:`.execute` and :mod:`.localfs`: carrying a plan out, with retries,
* :mod:`.report`: :class:`SyncReport`, :class:`Action`, :class:`JobProgress` and the
  typed :class:`Problem`,
* :mod:`.api`: the public jobs.

Import rule: errors, protocol, digests, client. Never server, ui, shell or cli.
"""
from .api import get_file, get_tree, mget, mirror, mput, put_file, put_tree
from .globs import expand_local, expand_remote
from .options import MAX_DEPTH, MTIME_TOLERANCE, RetryPolicy, TransferOptions
from .report import (PROBLEM_KINDS, Action, JobProgress, Problem, RetriesExhaustedError,
                     SyncReport, display_name)
from .walk import walk_local, walk_remote

__all__ = [
    "Action", "JobProgress", "SyncReport", "RetriesExhaustedError", "get_tree", "put_tree",
    "mirror", "mget", "mput", "get_file", "put_file", "expand_remote", "expand_local",
    "walk_local", "walk_remote", "display_name", "MTIME_TOLERANCE", "MAX_DEPTH",
    "Problem", "PROBLEM_KINDS", "RetryPolicy", "TransferOptions",
]
