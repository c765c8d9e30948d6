"""The ``handle_<op>`` methods: one per op declared in :data:`~pyftp.protocol.COMMANDS`.

:class:`Handlers` is a mixin that :class:`~pyftp.server.session.Session` inherits; a
handler reads its checked arguments, calls storage, and sends its reply. Errors are
raised, never answered here: the session's one ``except`` ladder turns them into replies.

Import rule: errors, protocol, digests, _version (storage only through the session's
``self.storage``; transport, storage and the listener for type hints only). Never
client, ui, shell or cli.
"""
from __future__ import annotations

import os
import tempfile
import threading
import time
from typing import TYPE_CHECKING, BinaryIO, Callable

from .. import digests
from .._version import __version__
from ..errors import (AuthFailedError, AuthRequiredError, BadRequestError, BusyError,
                      RemoteError, TooLargeError, TransportError, UnsupportedVersionError)
from ..protocol import (FEATURES, NEGOTIATED_FEATURES, VERSION, GetArgs, HelloArgs, JSONObject,
                        LsArgs, MkdirArgs, MvArgs, NoArgs, PathArgs, PutArgs, digest_fields,
                        dump_json, encode_frame, ok, wire_mtime)

if TYPE_CHECKING:
    from ..transport import Channel
    from .listener import Account, Authenticator, Server, ServerConfig
    from .storage import StorageBackend

__all__ = ["Handlers", "SpoolBudget"]

#: files up to this size are sent as one buffer (header + bytes + digest in one write)
SMALL_FILE = 256 * 1024

#: listings of more entries than this are spooled to a temporary file, not held whole
LISTING_INLINE = 2000


def _spool_listing(entries: list[str] | list[JSONObject]) -> BinaryIO:
    """Write ``dump_json(entries)`` to an unlinked temporary file, a batch at a time
    (the same bytes: compact JSON of a list is its items' JSON joined by commas)."""
    spool = tempfile.TemporaryFile(prefix="pyftp-ls-")
    try:
        step = LISTING_INLINE
        for start in range(0, len(entries), step):
            piece = dump_json(entries[start:start + step])
            # each batch is a JSON list: keep its inside, joined to the others by ","
            spool.write((b"[" if start == 0 else b",") + piece[1:-1])
        spool.write(b"]")  # entries is never empty here (short listings go inline)
    except BaseException:
        spool.close()
        raise
    return spool


class SpoolBudget:
    """Bytes of spooled listings held at once, server-wide, up to a limit."""

    def __init__(self, limit: int) -> None:
        self.limit, self.used = limit, 0
        self._lock = threading.Lock()

    def take(self, n: int) -> bool:
        with self._lock:
            if self.used + n > self.limit:
                return False
            self.used += n
            return True

    def give(self, n: int) -> None:
        with self._lock:
            self.used -= n


def file_version(st: os.stat_result) -> str:
    """A tag that changes whenever the file does and that no client can set: a put or a
    move makes a new file (another inode), a write in place moves the ctime, and an
    object store's object another ETag (its stat's inode). Readers of a file in ranges
    pin it at the first range (section 14)."""
    ident = f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"
    return digests.hash_bytes(ident.encode(), "sha256")[:16]


class Handlers:
    """The op handlers of a session (``self`` is the :class:`Session`: it supplies
    ``chan``, ``config``, ``storage``, ``server``, ``cwd``, ``user``, ``read_only`` and
    the per-request log fields)."""

    # what the session supplies (declared here for type checkers; set by Session)
    server: Server
    config: ServerConfig
    storage: StorageBackend
    chan: Channel
    cwd: str
    user: str | None
    read_only: bool
    hello_done: bool
    algorithm: str | None
    peer_ip: str
    auth_failures: int
    interrupt: Callable[[], None]
    _log_path: str
    _log_bytes: int
    _streaming: bool
    _closing: bool

    # One per op in protocol.COMMANDS (a test keeps the two in step). Each sends its
    # reply; errors are raised and answered by the session's loop. Each takes its op's
    # checked arguments (protocol.ARGS names their shapes).

    def handle_hello(self, a: HelloArgs) -> None:
        if self.hello_done:
            raise BadRequestError("hello was already sent on this connection")
        if a["version"] != VERSION:
            raise UnsupportedVersionError(
                f"unsupported protocol version {a['version']}; this server speaks version {VERSION}")
        auth = self.config.authenticator
        if auth is not None:
            user, password = a.get("user"), a.get("password")
            if user is None or password is None:
                raise AuthRequiredError("this server requires a user name and password "
                                        "(pyftp --user NAME; password from PYFTP_PASSWORD)")
            self._log_path = user
            account = self._login(auth, user, password)
            self.user = account.name
            self.read_only = self.read_only or account.read_only
        algorithm = self._negotiate(a.get("digests"))
        self.hello_done = True
        self.algorithm = algorithm
        features = list(FEATURES)
        if self.config.ssl_context is not None:
            features.append("tls")
        if self.read_only:
            features.append("read_only")
        if algorithm is None:  # version 1 exactly, byte for byte
            self.chan.send(ok(version=VERSION, server=f"pyftp/{__version__}", features=features))
            return
        features += NEGOTIATED_FEATURES
        self.chan.send(ok(version=VERSION, server=f"pyftp/{__version__}", features=features,
                          digest=algorithm))

    def _negotiate(self, offered: list[str] | None) -> str | None:
        """The digest this session uses: the first of the client's ``digests`` this
        server offers; None for a client that offered none (version 1)."""
        if offered is None:
            return None
        have = [n for n in (self.config.digests or digests.ALGORITHMS)
                if n in digests.ALGORITHMS] or ["sha256"]
        picked = digests.pick(offered, have)
        if picked is None:
            shown = ", ".join(str(n)[:32] for n in offered)
            raise BadRequestError(f"hello: none of the digests offered ({shown}) is available "
                                  f"here; this server has: {', '.join(have)}")
        return picked

    def _login(self, auth: Authenticator, user: str, password: str) -> Account:
        """Check a login through the server-wide throttle; raise AuthFailedError."""
        throttle = self.server.throttle
        wait = throttle.reserve(self.peer_ip, user)
        account = None
        if wait is not None:
            if wait > 0 and self.server.pause(wait):
                raise TransportError("the server is stopping")
            account = auth(user, password)
        if account is not None:
            throttle.succeeded(self.peer_ip, user)
            return account
        throttle.failed(self.peer_ip, user)
        self.auth_failures += 1
        time.sleep(self.config.auth_fail_delay)  # slows down guessing on this connection
        if self.auth_failures >= self.config.max_auth_failures:
            self._closing = True
        if wait is None:  # refused unchecked: the same code, and what to do about it
            raise AuthFailedError(f"login failed: too many failed logins from this address "
                                  f"or for this user; wait {self.config.auth_fail_cap:g}s "
                                  "and try again")
        raise AuthFailedError("login failed: unknown user or wrong password")

    def handle_ls(self, a: LsArgs) -> None:
        # the entries are built a few listings at a time (their memory is transient),
        # and a long listing is spooled to an unlinked temporary file and sent from
        # there: a peer that never reads then holds a file, not the server's memory
        with self.server.listing_slots:
            path = a.get("path", ".")
            entries: list[str] | list[JSONObject] = \
                self.storage.list_names(self.cwd, path) if a.get("names") \
                else self.storage.list(self.cwd, path)
            if len(entries) <= LISTING_INLINE:
                payload = dump_json(entries)
                self._log_bytes = len(payload)
                self.chan.send(ok(), payload)
                return
            spool = _spool_listing(entries)
            del entries
        size = spool.tell()
        budget = self.server.spool_budget
        if not budget.take(size):
            spool.close()
            raise BusyError("busy: too many long listings are waiting for their readers; "
                            "try again later")
        with spool:
            try:
                self._send_spool(spool, size)
            finally:
                budget.give(size)

    def _send_spool(self, spool: BinaryIO, size: int) -> None:
        spool.flush()  # sendfile reads the fd itself
        spool.seek(0)  # over TLS it falls back to reading from the file position
        self._log_bytes = size
        self._streaming = True
        self.chan.send_header(ok(size=size))
        sent = self.chan.send_file(spool, 0, size)
        if sent != size:
            raise TransportError(f"listing spool shrank ({sent} of {size} bytes)")
        self._streaming = False

    def handle_stat(self, a: PathArgs) -> None:
        self.chan.send(ok(entry=self.storage.stat(self.cwd, a["path"])))

    def handle_cd(self, a: PathArgs) -> None:
        self.cwd = self.storage.chdir(self.cwd, a["path"])
        self.chan.send(ok(cwd=self.cwd))

    def handle_pwd(self, a: NoArgs) -> None:
        self.chan.send(ok(cwd=self.cwd))

    def handle_mkdir(self, a: MkdirArgs) -> None:
        vpath = self.storage.mkdir(self.cwd, a["path"], a.get("parents", False))
        self.chan.send(ok(path=vpath))

    def handle_rm(self, a: PathArgs) -> None:
        self.chan.send(ok(path=self.storage.rm(self.cwd, a["path"])))

    def handle_rmdir(self, a: PathArgs) -> None:
        self.chan.send(ok(path=self.storage.rmdir(self.cwd, a["path"])))

    def handle_mv(self, a: MvArgs) -> None:
        src, dst = self.storage.mv(self.cwd, a["src"], a["dst"], a.get("overwrite", False))
        self._log_path = f"{src} -> {dst}"
        self.chan.send(ok(src=src, dst=dst))

    def handle_hash(self, a: PathArgs) -> None:
        digest, total, vpath = self.storage.hash(self.cwd, a["path"], self.algorithm or "sha256")
        self._log_path = vpath
        self.chan.send(ok(**digest_fields(digest, self.algorithm), total=total, path=vpath))

    def handle_upper(self, a: NoArgs) -> None:
        size = self.chan.decoder.payload_left
        if size > self.config.max_upper:
            raise TooLargeError(f"too large: upper takes at most {self.config.max_upper} bytes")
        data = self.chan.recv_payload(self.config.max_upper, self.config.idle_timeout)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadRequestError(f"upper: the text is not valid UTF-8 ({exc.reason} at "
                                  f"byte {exc.start})") from exc
        out = text.upper().encode("utf-8")
        self._log_bytes = len(out)
        self.chan.send(ok(), out)

    def handle_df(self, a: NoArgs) -> None:
        usage = self.storage.disk_usage()
        if usage is None:  # a backend without a disk (a bucket) cannot say
            raise RemoteError("unsupported: this server's storage cannot say how much "
                              "space it has (df)", code="unsupported")
        total, free = usage
        self.chan.send(ok(total=total, free=free))

    def handle_quit(self, a: NoArgs) -> None:
        self.chan.send(ok())
        self._closing = True

    def handle_get(self, a: GetArgs) -> None:
        f, st, vpath = self.storage.open_read(self.cwd, a["path"])
        self._log_path = vpath
        with f:
            offset = a.get("offset", 0)
            total = st.st_size
            if offset > total:
                raise BadRequestError(f"offset {offset} is past the end of {vpath} ({total} bytes)")
            count = total - offset
            length = a.get("length") if self.algorithm is not None else None
            if length is not None:  # a ranged read (section 14): the digest of the range
                if length > count:
                    raise BadRequestError(f"range {offset}+{length} is past the end of {vpath} "
                                          f"({total} bytes)")
                count = length
            reply = ok(size=count, offset=offset, total=total,
                       mtime=wire_mtime(st.st_mtime_ns))
            if self.algorithm is not None:  # section 14: which version of the file this is
                reply["version"] = file_version(st)
            if length is not None:
                self._send_range(f, reply, offset, count)
            elif total <= SMALL_FILE:
                self._send_small(f, st, reply, offset, vpath)
            else:
                self._send_large(f, st, reply, offset, count)
            self._log_bytes = count

    def _recv_verify(self) -> str:
        """Read the ``verify`` frame that ends a trailer put; return its digest."""
        cfg = self.config
        fields = self.chan.recv_header(cfg.idle_timeout, cfg.frame_timeout)
        if fields is None:
            raise TransportError("closed before sending the digest of a put")
        name = "sha256" if self.algorithm is None else "digest"
        digest = fields.get(name)
        if (fields.get("op") != "verify" or fields.get("size", 0) or not isinstance(digest, str)
                or len(digest) != 64 or digest.strip("0123456789abcdef")):
            self._closing = True
            raise BadRequestError(f"put: expected a verify frame with the file's {name} "
                                  "(64 lower-case hex digits) right after the data")
        return digest

    def _send_range(self, f: BinaryIO, reply: JSONObject, offset: int, count: int) -> None:
        """A ranged get: the bytes, then the digest of exactly those bytes (for a large
        range, hashed as the storage sees fit while ``sendfile`` sends them: from disk
        on a second thread, or as an object store's bytes pass)."""
        h = digests.new(self.algorithm or "sha256")
        if count <= SMALL_FILE:
            data = self.storage.read_range(f, offset, count)
            if len(data) != count:
                raise BusyError("busy: the file changed while being read; try again")
            h.update(data)
            self.chan.send_bytes(encode_frame(reply) + data + encode_frame(
                ok(**digest_fields(h.hexdigest(), self.algorithm))))
            return
        hasher = self.storage.range_hasher(f, h, offset, offset + count)
        try:
            self._stream(f, reply, offset, count)
            hasher.result()
        finally:
            hasher.cancel()
        if hasher.hashed != count:
            raise TransportError("file shrank while being hashed")
        self.chan.send(ok(**digest_fields(h.hexdigest(), self.algorithm)))

    def _send_small(self, f: BinaryIO, st: os.stat_result, reply: JSONObject, offset: int,
                    vpath: str) -> None:
        """Reply, bytes and digest frame in one write: one syscall per small get."""
        data = os.pread(f.fileno(), st.st_size, 0)
        if len(data) != st.st_size:
            # another writer is shrinking the file right now: nothing is wrong with the request
            raise BusyError(f"busy: {vpath} changed while being read; try again")
        algorithm = self.algorithm or "sha256"
        digest = self.storage.digests.get(st, algorithm)
        if digest is None:
            digest = digests.hash_bytes(data, algorithm)
            self.storage.digests.put(st, digest, algorithm)
        self.chan.send_bytes(encode_frame(reply) + data[offset:]
                             + encode_frame(ok(**digest_fields(digest, self.algorithm))))

    def _stream(self, f: BinaryIO, reply: JSONObject, offset: int, count: int) -> None:
        """The reply header, then ``count`` bytes of ``f`` from ``offset`` by sendfile
        (an error now can only cut the connection: the payload has begun)."""
        self._streaming = True
        self.chan.send_header(reply)
        sent = self.chan.send_file(f, offset, count)
        if sent != count:
            raise TransportError(f"file shrank while being sent ({sent} of {count} bytes)")
        self._streaming = False

    def _send_large(self, f: BinaryIO, st: os.stat_result, reply: JSONObject, offset: int,
                    count: int) -> None:
        """sendfile the bytes while another thread hashes the whole file from disk."""
        algorithm = self.algorithm or "sha256"
        digest = self.storage.digests.get(st, algorithm)
        hashed: list[str] = []
        failed: list[BaseException] = []
        hasher = None
        if digest is None:
            def work() -> None:
                try:
                    hashed.append(self.storage.digest(f, st, algorithm))
                except BaseException as exc:  # reported in the digest frame
                    failed.append(exc)
            hasher = threading.Thread(target=work, name="pyftp-hash", daemon=True)
            hasher.start()
        try:
            self._stream(f, reply, offset, count)
        finally:
            if hasher is not None:
                hasher.join()
        if digest is None:  # hashed on the thread above
            if failed:
                self.server.log.error("hashing failed: %r", failed[0])
                self.chan.send({"ok": False, "error": "internal",
                                "message": "the server could not hash the file; retry"})
                return
            digest = hashed[0]
        self.chan.send(ok(**digest_fields(digest, self.algorithm)))

    def handle_put(self, a: PutArgs) -> None:
        cfg = self.config
        # trailer (feature sha256_trailer): the client hashes while it sends and puts
        # the digest in a "verify" frame after the data, instead of reading the whole
        # file once before sending; publishing still waits for that digest
        trailer = a.get("trailer", False)
        name = "sha256" if self.algorithm is None else "digest"  # section 14
        if self.algorithm is not None and a.get("sha256") is not None:
            raise BadRequestError(f"put: this session negotiated {self.algorithm}: send its "
                                  "hex digest as 'digest', not 'sha256'")
        if trailer and a.get(name) is not None:
            raise BadRequestError(f"put: give either {name} or trailer, not both")
        up = self.storage.begin_upload(
            self.cwd, a["path"], a["total"],
            a.get("sha256") if self.algorithm is None else a.get("digest"),
            overwrite=a.get("overwrite", False), resume=a.get("resume", True),
            mtime=a.get("mtime"), owner=self.interrupt, trailer=trailer, token=a.get("token"),
            algorithm=self.algorithm or "sha256")
        self._log_path = up.vpath
        try:
            reply = ok(offset=up.offset, token=up.token)
            if up.prefix_sha256 is not None:
                reply["prefix_" + name] = up.prefix_sha256
            self.chan.send(reply)
            fields = self.chan.recv_header(cfg.idle_timeout, cfg.frame_timeout)
            if fields is None:
                raise TransportError("closed before sending the data of a put")
            if trailer and up.offset and fields.get("offset") == 0:
                up.restart()  # the client's bytes differ from the kept prefix
            if fields.get("op") != "data" or fields.get("size", 0) != up.remaining:
                if trailer:
                    self._closing = True  # a verify frame may follow: out of step
                raise BadRequestError(
                    f"put {up.vpath}: expected a data frame of {up.remaining} bytes, got "
                    f"op={str(fields.get('op'))[:20]!r} size={fields.get('size', 0)}")
            failure: list[RemoteError] = []

            def sink(chunk: bytes | memoryview) -> None:
                if not failure:
                    try:
                        up.write(chunk, hashed=True)
                    except RemoteError as exc:  # keep reading so the stream stays in step
                        failure.append(exc)
            # the transport feeds the hash (on a second thread for large payloads)
            self._log_bytes = self.chan.recv_payload_into(sink, timeout=cfg.idle_timeout,
                                                          hasher=up.hasher)
            if trailer:
                up.expected = self._recv_verify()
            if failure:
                up.discard()
                raise failure[0]
            digest = up.commit()
        except BaseException:
            up.abort()
            raise
        self.chan.send(ok(total=up.total, **digest_fields(digest, self.algorithm), path=up.vpath))
