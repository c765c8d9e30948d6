"""The client: one connection to a pyftp server (:class:`Client`), one method per op.

Import rule: errors, protocol, transport, digests, _version. Never server, sync, ui,
shell or cli.
"""
from .client import Client, Entry, ProgressCallback, TransferResult
from .ranges import RangeInfo

__all__ = ["Client", "Entry", "TransferResult", "ProgressCallback", "RangeInfo"]
