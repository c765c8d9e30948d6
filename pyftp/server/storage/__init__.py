"""Where the server keeps files: the jail every client path goes through, and uploads.

Import rule: errors, protocol, digests. Never transport (no sockets here).
"""
from .local import DigestCache, Resolved, Storage, Upload, entry_for

__all__ = ["Storage", "Upload", "Resolved", "DigestCache", "entry_for"]
