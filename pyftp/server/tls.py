"""Server set-up that is not serving: the TLS context, the users-file authenticator and
the warnings for a server exposed beyond loopback.

Import rule: errors and the server package; ``ssl`` only inside the functions.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # pragma: no cover
    import ssl

    from .auth import Users
    from .listener import Account

__all__ = ["server_tls_context", "file_authenticator", "exposure_warnings"]


def file_authenticator(users: Users) -> Callable[[str, str], Account | None]:
    """A ``ServerConfig.authenticator`` checking logins against a :class:`pyftp.auth.Users`."""
    from .listener import Account

    def authenticate(name: str, password: str) -> Account | None:
        record = users.authenticate(name, password)
        return Account(record.name, record.read_only) if record is not None else None
    return authenticate


def server_tls_context(cert: str | None, key: str | None = None) -> ssl.SSLContext:
    """A server-side ``ssl.SSLContext`` (TLS 1.2 or newer) from PEM files.

    Raises ValueError with a message fit for a user when the files are missing,
    unreadable or do not match.
    """
    import ssl
    if not cert:
        raise ValueError("--tls-key needs --tls-cert FILE too")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(cert, key)
    except ssl.SSLError as exc:  # before OSError: SSLError is one
        raise ValueError(f"TLS: cannot load the certificate {cert}"
                         f"{' and key ' + key if key else ''} ({exc.reason or exc}); both must "
                         "be PEM files and the key must belong to the certificate") from None
    except FileNotFoundError as exc:
        raise ValueError(f"TLS: no such file: {exc.filename or cert}") from None
    except OSError as exc:
        raise ValueError(f"TLS: cannot read {exc.filename or cert}: {exc.strerror or exc}") from None
    return ctx


def exposure_warnings(host: str, port: int, root: str, *, users: bool, tls: bool,
                      read_only: bool) -> list[str]:
    """Why a server bound beyond loopback may be exposed; empty on loopback."""
    import ipaddress
    try:
        addr = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return []  # server.address is always an IP; nothing to judge otherwise
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if addr.is_loopback:
        return []
    where = "all network interfaces" if addr.is_unspecified else host
    out = []
    if not users:
        can = "read" if read_only else "read, overwrite and delete"
        out.append(f"listening on {where} (port {port}) with no --users: anyone who can "
                   f"reach it can {can} every file in {root}. Require a login with --users "
                   "FILE (create it: pyftp-server user add NAME --users FILE), or bind "
                   "--host 127.0.0.1")
    if not tls:
        what = "passwords and files" if users else "files"
        out.append(f"no TLS: {what} cross the network in clear text; add --tls-cert FILE "
                   "--tls-key FILE")
    return out
