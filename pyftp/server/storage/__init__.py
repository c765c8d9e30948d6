"""Where the server keeps files: the jail every client path goes through, and uploads.

``jail`` walks paths by descriptors; ``local`` is the served folder (:class:`Storage`,
the local backend), ``base`` the interface the handlers call and
the factory, ``s3`` a bucket prefix of an object store (needs boto3); ``uploads`` owns partial files by descriptor.

Import rule: errors, protocol, digests. Never transport (no sockets here).
"""
from .base import StorageBackend, open_storage
from .local import DigestCache, Resolved, Storage, entry_for
from .uploads import Upload

__all__ = ["StorageBackend", "open_storage", "Storage", "Upload", "Resolved", "DigestCache", "entry_for"]
