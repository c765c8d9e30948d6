"""The server: listener (accept, admission, shutdown), sessions (the frame loop and the
``handle_<op>`` handlers), storage (the jail), uploads and auth.

Import rule: errors, protocol, transport, digests, _version. Never client, sync, ui,
shell or cli; rich and tqdm never.
"""
from .listener import Account, Server, ServerConfig

__all__ = ["Server", "ServerConfig", "Account"]
