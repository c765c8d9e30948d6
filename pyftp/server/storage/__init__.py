"""Where the server keeps files: the jail every client path goes through, and uploads.

``jail`` walks paths by descriptors; ``local`` is the served folder (:class:`Storage`,
the interface the handlers call); ``uploads`` owns partial files by descriptor.

Import rule: errors, protocol, digests. Never transport (no sockets here).
"""
from .local import DigestCache, Resolved, Storage, entry_for
from .uploads import Upload

__all__ = ["Storage", "Upload", "Resolved", "DigestCache", "entry_for"]
