"""The users file: who may log in to a pyftp server, and the check of their passwords.

A users file is a small JSON document holding, per user, a salted ``hashlib.scrypt``
hash (with its n, r, p parameters and salt, so they can be raised later without
breaking old entries) and a read-only flag. It never holds a password. It is written
atomically (a temporary file in the same folder, then ``os.replace``) with mode 0600,
so a crash mid-write leaves the old file whole and other local users cannot read the
hashes to guess at them offline.

:class:`Users` checks a login in constant work: an unknown user name costs the same
scrypt run as a wrong password and gets the same answer, so neither the reply nor its
timing tells an attacker which names exist. Passwords are never logged or stored.

Import rule: imports :mod:`pyftp.errors` only, plus the standard library. The server
gets its authenticator from here through ``ServerConfig.authenticator`` (wired up by
the CLI), so this module knows nothing of sessions or sockets.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import stat as stat_
import tempfile
import threading
from contextlib import contextmanager
from typing import Iterator

from ..records import dataclass
from ..errors import PyftpError

__all__ = [
    "UsersFileError", "UserRecord", "Users", "SCRYPT_N", "SCRYPT_R", "SCRYPT_P",
    "hash_password", "verify_password", "check_user_name", "load_users", "save_users",
    "add_user", "remove_user", "insecure_mode",
]

#: scrypt cost: n=2**14, r=8 takes 16 MiB and roughly 50-100 ms per check on a laptop
#: core, which makes an offline guess expensive while a login still feels instant.
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
HASH_BYTES = 32
#: the largest cost a users file may ask for (n*r*128 bytes of memory per check)
_MAX_MEMORY = 256 * 1024 * 1024
FORMAT = "pyftp-users/1"
_NAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")

# Each check holds n*r*128 bytes (16 MiB) for its duration. Without a cap, a few
# hundred simultaneous logins could take gigabytes; with it, extra logins just queue.
_SLOTS = threading.BoundedSemaphore(max(2, os.cpu_count() or 2))


class UsersFileError(PyftpError):
    """The users file is missing, unreadable, malformed, or the change asked is invalid."""


@dataclass(frozen=True)
class UserRecord:
    """One user as stored: name, read-only flag and scrypt parameters with the hash."""

    name: str
    read_only: bool
    n: int
    r: int
    p: int
    salt: bytes
    hash: bytes

    def to_json(self) -> dict[str, object]:
        return {"read_only": self.read_only, "scrypt": {
            "n": self.n, "r": self.r, "p": self.p,
            "salt": base64.b64encode(self.salt).decode("ascii"),
            "hash": base64.b64encode(self.hash).decode("ascii")}}

    @classmethod
    def from_json(cls, name: str, d: object) -> "UserRecord":
        def bad(why: str) -> UsersFileError:
            return UsersFileError(f"user {name!r}: malformed entry ({why})")
        s = d.get("scrypt") if isinstance(d, dict) else None
        if not isinstance(d, dict) or not isinstance(s, dict):
            raise bad("expected an object with an 'scrypt' object")
        n, r, p = s.get("n"), s.get("r"), s.get("p")
        if not (type(n) is int and type(r) is int and type(p) is int) or min(n, r, p) <= 0:
            raise bad("n, r and p must be positive integers")
        if n < 2 or n & (n - 1):
            raise bad("n must be a power of two")
        if 128 * n * r * p > _MAX_MEMORY:
            raise bad("scrypt cost too high")
        try:
            salt = base64.b64decode(s.get("salt", ""), validate=True)
            digest = base64.b64decode(s.get("hash", ""), validate=True)
        except (TypeError, ValueError):
            raise bad("salt and hash must be base64") from None
        if not salt or not digest:
            raise bad("empty salt or hash")
        read_only = d.get("read_only", False)
        if type(read_only) is not bool:
            raise bad("read_only must be true or false")
        return cls(name, read_only, n, r, p, salt, digest)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    # surrogatepass: a JSON string may hold lone surrogates; they must not crash a login
    secret = password.encode("utf-8", "surrogatepass")
    with _SLOTS:
        return hashlib.scrypt(secret, salt=salt, n=n, r=r, p=p, dklen=dklen,
                              maxmem=128 * n * r * p + (1 << 20))


def check_user_name(name: str) -> str:
    """Return ``name`` if it is a valid user name (1-64 of ``A-Z a-z 0-9 . _ @ -``)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise UsersFileError(f"invalid user name {name!r}: use 1 to 64 letters, digits, "
                             "'.', '_', '@' or '-'")
    return name


def hash_password(name: str, password: str, *, read_only: bool = False,
                  n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> UserRecord:
    """A new record for ``name`` with a fresh random salt."""
    if not password:
        raise UsersFileError("the password is empty")
    salt = os.urandom(SALT_BYTES)
    return UserRecord(check_user_name(name), read_only, n, r, p, salt,
                      _scrypt(password, salt, n, r, p, HASH_BYTES))


def verify_password(record: UserRecord, password: str) -> bool:
    """True if ``password`` is the one ``record`` was made from (constant-time compare)."""
    got = _scrypt(password, record.salt, record.n, record.r, record.p, len(record.hash))
    return hmac.compare_digest(got, record.hash)


# ---------------------------------------------------------------------- the file
def load_users(path: str | os.PathLike[str]) -> dict[str, UserRecord]:
    """Read a users file. A missing file is an error: a typo must not open the server."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except FileNotFoundError:
        raise UsersFileError(f"users file {path} does not exist (create it with: "
                             f"pyftp-server user add NAME --users {path})") from None
    except OSError as exc:
        raise UsersFileError(f"cannot read users file {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise UsersFileError(f"users file {path} is not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(
            doc.get("users"), dict):
        raise UsersFileError(f"{path} is not a pyftp users file (expected format {FORMAT!r})")
    users = {}
    for name, entry in doc["users"].items():
        check_user_name(name)
        users[name] = UserRecord.from_json(name, entry)
    return users


def save_users(path: str | os.PathLike[str], users: dict[str, UserRecord]) -> None:
    """Write a users file atomically with mode 0600 (replacing any earlier one)."""
    path = os.path.abspath(os.fspath(path))
    folder = os.path.dirname(path)
    doc = {"format": FORMAT,
           "users": {name: users[name].to_json() for name in sorted(users)}}
    data = (json.dumps(doc, indent=2) + "\n").encode("utf-8")
    try:
        # mkstemp creates the file 0600 from the start: the hashes are never readable
        # by others, not even for the moment between create and chmod
        fd, tmp = tempfile.mkstemp(prefix=".pyftp-users-", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise UsersFileError(f"cannot write users file {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise UsersFileError(f"cannot write users file {path}: {exc.strerror or exc}") from None
    try:
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)  # make the rename itself survive a power cut
        finally:
            os.close(dfd)
    except OSError:
        pass


@contextmanager
def _changing(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold ``FILE.lock`` while a users file is read, changed and written back.

    Two ``user add`` runs at once would otherwise both read the old file and the
    second write would drop the first one's user. The lock is on a file beside it
    (the users file itself is replaced on every write, so a lock on it would be on
    an inode that is already gone); a second run waits for the first.
    """
    try:
        import fcntl
    except ImportError:  # not POSIX: no advisory locks, the old behaviour
        yield
        return
    lock = os.fspath(path) + ".lock"
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise UsersFileError(f"cannot create lock file {lock}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def add_user(path: str | os.PathLike[str], name: str, password: str, *, read_only: bool = False,
             replace: bool = False) -> UserRecord:
    """Add ``name`` to the users file (created if missing); return the new record."""
    check_user_name(name)
    record = hash_password(name, password, read_only=read_only)  # slow: before the lock
    with _changing(path):
        users = load_users(path) if os.path.exists(path) else {}
        if name in users and not replace:
            raise UsersFileError(f"user {name!r} already exists in {os.fspath(path)} "
                                 "(add --replace to set a new password)")
        users[name] = record
        save_users(path, users)
    return record


def remove_user(path: str | os.PathLike[str], name: str) -> None:
    """Remove ``name`` from the users file."""
    with _changing(path):
        users = load_users(path)
        if name not in users:
            raise UsersFileError(f"no user {name!r} in {os.fspath(path)}")
        del users[name]
        save_users(path, users)


def insecure_mode(path: str | os.PathLike[str]) -> bool:
    """True if group or others may read or write the file (its hashes could leak)."""
    try:
        return bool(os.stat(path).st_mode & (stat_.S_IRWXG | stat_.S_IRWXO))
    except OSError:
        return False


# ---------------------------------------------------------------------- checking
class Users:
    """The login check a server uses: ``users.authenticate(name, password)``.

    The file is re-read when it changes on disk, so ``pyftp-server user add`` takes
    effect on a running server at the next login. If a changed file cannot be read,
    the last good copy stays in force (a half-edited file never opens the server).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.path.abspath(os.fspath(path))
        self._lock = threading.Lock()
        self._users = load_users(self.path)
        self._stamp = self._stat()
        # an unknown name is checked against this, so it costs the same scrypt run
        self._decoy = UserRecord("", False, SCRYPT_N, SCRYPT_R, SCRYPT_P,
                                 os.urandom(SALT_BYTES), os.urandom(HASH_BYTES))

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def _current(self) -> dict[str, UserRecord]:
        stamp = self._stat()
        with self._lock:
            if stamp is not None and stamp != self._stamp:
                try:
                    self._users = load_users(self.path)
                except UsersFileError:
                    pass  # keep the last good copy; the admin sees the error on `user list`
                self._stamp = stamp
            return self._users

    @property
    def names(self) -> list[str]:
        """The user names, sorted."""
        return sorted(self._current())

    def get(self, name: str) -> UserRecord | None:
        """The record for ``name``, or None."""
        return self._current().get(name)

    def authenticate(self, name: str, password: str) -> UserRecord | None:
        """The user's record if the password is right, else None (same work either way)."""
        users = self._current()
        record = users.get(name)
        if record is None:
            # spend the same scrypt work as a real check, at the cost real users have
            like = next(iter(users.values()), self._decoy)
            verify_password(UserRecord("", False, like.n, like.r, like.p, self._decoy.salt,
                                       self._decoy.hash), password)
            return None
        return record if verify_password(record, password) else None
