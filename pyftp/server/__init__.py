"""The server: listener (accept, admission, shutdown, the janitor), session (the frame
loop and its one except ladder), handlers (``handle_<op>``), throttle (failed logins
across connections), storage (the jail), uploads and auth.

Import rule: errors, protocol, transport, digests, _version. Never client, sync, ui,
shell or cli; rich and tqdm never.
"""
from .listener import Account, Server, ServerConfig

__all__ = ["Server", "ServerConfig", "Account"]
