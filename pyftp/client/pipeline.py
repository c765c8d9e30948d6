"""Many requests on one connection: the window of requests in flight, and the batches.

A folder of small files must not cost a round trip each. The server answers requests
strictly in order, so :meth:`Batches._pipeline` keeps a window of requests in flight
and reads the replies as they come. The window is bounded in count and in request
bytes: requests the server has not read yet always fit in the socket buffers, so this
side never blocks sending while the server blocks sending replies to it (the
pipelining deadlock).

Every transfer of the client runs here, one file or many: :meth:`Batches._download`
drives :class:`~.download.Download` objects through the window, :meth:`Batches._upload`
drives :class:`~.upload.Upload` objects (a put is two exchanges, so puts overlap by
sending the next ``put`` header right behind the current data). A resumed transfer that
fails verification is redone once from zero, by :func:`redo_from_zero`, for both.

Import rule: errors, protocol, transport, digests. Never server, sync, ui, shell, cli.
"""
from __future__ import annotations

import json
import os
import time
from collections import deque
from collections.abc import Callable

from ..hints import TYPE_CHECKING, LEAN, cast, overload

from ..errors import (BadRequestError, ChecksumMismatchError, LocalError, ProtocolError,
                      PyftpError, RemoteError, TransportError)
from ..protocol import PIPELINE_OPS, JSONObject, digest_in, encode_frame, read_reply
from .connection import Connection
from ..transport import Channel
from .download import Download, ProgressCallback, TransferResult, file_target, reply_error
from .entry import Entry
from .ranges import RangeInfo, RangeRead, writable_view
from .upload import TokenBook, Upload

if TYPE_CHECKING or not LEAN:  # names for annotations; see pyftp.hints
    from typing import Any, Literal, Sequence, TypeVar
    _T = TypeVar("_T")

__all__ = ["Batches", "PIPELINE_WINDOW", "PIPELINE_BYTES", "LISTING_LIMIT", "redo_from_zero"]

#: requests kept in flight by the pipelined methods
PIPELINE_WINDOW = 64
#: request bytes in flight beyond which no more are sent (far below any socket buffer)
PIPELINE_BYTES = 16 * 1024
#: the largest listing payload accepted
LISTING_LIMIT = 1 << 30

#: a batch's per-file report: ``on_file(index, result_or_error)``
FileCallback = Callable[[int, "TransferResult | PyftpError"], object]
#: a batch's per-file bytes: ``on_bytes(index, done, total)``
BytesCallback = Callable[[int, int, int], object]
#: ``finish(index, result_or_error)``: records a file's outcome and reports it
Finish = Callable[[int, "TransferResult | PyftpError"], None]


def redo_from_zero(run: Callable[[list[int], bool], list[int]], count: int,
                   resume: bool) -> None:
    """Run a batch; redo once, from byte 0, the files whose resumed attempt failed
    verification. ``run(indices, resume)`` returns the indices to redo (only ever
    asked with ``resume`` true). The one place a transfer is retried from zero."""
    again = run(list(range(count)), resume)
    if again:
        run(again, False)




def _filled(results: list[_T | None]) -> list[_T]:
    """The outcomes of a batch that ran to its end: every slot holds a result or an
    error (None would mean a file was never accounted for, a bug in the batch)."""
    done = [r for r in results if r is not None]
    if len(done) != len(results):
        raise RuntimeError("a batch ended with a file neither done nor failed")
    return done


def _collector(count: int, on_file: FileCallback | None
               ) -> tuple[list[TransferResult | PyftpError | None], Finish]:
    """A batch's result list (None: still pending) and the ``finish(i, result)`` that
    fills it and tells ``on_file`` at once (a caller's progress must not wait for the
    batch's end)."""
    results: list[TransferResult | PyftpError | None] = [None] * count

    def finish(i: int, res: TransferResult | PyftpError) -> None:
        results[i] = res
        if on_file:
            on_file(i, res)
    return results, finish


def _listing_items(data: bytes) -> list[Any]:
    """The items of a listing payload (a JSON array); ProtocolError for anything else."""
    try:
        items = json.loads(data.decode("utf-8"))
    except ValueError as exc:
        raise ProtocolError("the server sent a listing that is not JSON") from exc
    if not isinstance(items, list):
        raise ProtocolError("the server sent a listing that is not a JSON array")
    return items


def parse_listing(data: bytes) -> list[Entry]:
    return [Entry.from_wire(d) for d in _listing_items(data) if isinstance(d, dict)]


def _well_formed(names: list[str]) -> bool:
    """True when no name is empty or ``/`` and a ``/`` only ever ends a name (the check
    parse_names makes one name at a time), counted in C over the joined names: a
    Python loop over a thousand names cost ~0.15 ms a listing."""
    if "" in names or "/" in names:
        return False
    text = "\0".join(names) + "\0"  # each name ends in a NUL: count the "/" that end one
    return text.count("\0") == len(names) and text.count("/") == text.count("/\0")


def parse_names(data: bytes) -> list[str]:
    """A names listing (``ls`` with ``names``): a folder's name ends in ``/``. A server
    without the feature ignores the field and sends entries: they are named the same way."""
    items = _listing_items(data)
    if set(map(type, items)) <= {str} and _well_formed(items):  # the names form, as asked
        return items
    names = [(f"{e.name}/" if e.is_dir else e.name) if isinstance(d, dict) and
             (e := Entry.from_wire(d)) else d for d in items]
    # one name each: no "/" but the one that ends a folder's, nothing empty
    bad = [n for n in names if type(n) is not str or "/" in n[:-1] or n in ("", "/")]
    if bad:
        raise ProtocolError(f"the server sent a listing with a bad name: {bad[0]!r:.80}")
    return names


class Batches(Connection):
    """The pipelined half of :class:`pyftp.Client` (see the module docstring)."""

    def _pipeline(self, count: int, make_frame: Callable[[int], bytes | None],
                  on_reply: Callable[[int, JSONObject], object], window: int) -> None:
        """Send up to ``window`` requests ahead and hand each reply header to ``on_reply``.

        ``make_frame(i)`` encodes request ``i`` when it is about to be sent (None skips
        it: the caller has recorded why). ``on_reply(i, header)`` must read everything
        that belongs to reply ``i`` (payload, digest frame) and must not raise for a
        per-file error. Anything that escapes drops the connection: it is out of step.
        """
        chan = self._channel()
        window = max(1, int(window))
        inflight: deque[tuple[int, int]] = deque()
        queued = 0  # request bytes sent and not yet answered
        nxt = 0
        try:
            while nxt < count or inflight:
                if nxt < count and len(inflight) <= window // 2:
                    batch: list[bytes] = []
                    while nxt < count and len(inflight) < window and (
                            not inflight or queued < PIPELINE_BYTES):
                        frame = make_frame(nxt)
                        if frame is not None:
                            batch.append(frame)
                            inflight.append((nxt, len(frame)))
                            queued += len(frame)
                        nxt += 1
                    if batch:
                        chan.send_bytes(b"".join(batch))
                if not inflight:
                    continue
                i, size = inflight.popleft()
                queued -= size
                on_reply(i, self._recv_reply())
        except BaseException:
            self._drop("a pipelined batch was interrupted")
            raise

    def call_many(self, requests: Sequence[JSONObject], *,
                  window: int = PIPELINE_WINDOW) -> list[JSONObject | RemoteError]:
        """Send many payload-free requests pipelined; return each reply or its error.

        Only ops whose reply has no payload are allowed (stat, hash, mkdir, rm, rmdir,
        mv, pwd). Per-request errors are returned in place, in order; a connection
        failure raises :class:`~pyftp.errors.TransportError`.
        """
        for r in requests:
            if r.get("op") not in PIPELINE_OPS:
                raise ValueError(f"call_many() cannot pipeline {r.get('op')!r}; "
                                 f"allowed: {', '.join(sorted(PIPELINE_OPS))}")
        results: list[JSONObject | RemoteError | None] = [None] * len(requests)

        def frame(i: int) -> bytes | None:
            try:
                return encode_frame(requests[i])
            except ValueError as exc:
                results[i] = BadRequestError(f"request too large: {exc}")
                return None

        def reply(i: int, header: JSONObject) -> None:
            if header.get("size"):
                raise ProtocolError(f"unexpected payload in a reply to {requests[i].get('op')}")
            op: str = requests[i]["op"]
            results[i] = read_reply(op, header) if header.get("ok") is True else reply_error(header)
        self._pipeline(len(requests), frame, reply, window)
        return _filled(results)

    def hash_many(self, paths: Sequence[str], *,
                  window: int = PIPELINE_WINDOW) -> list[str | RemoteError]:
        """The digests (in :attr:`algorithm`) of many remote files, pipelined; an error
        in place of a failed one."""
        out: list[str | RemoteError] = []
        session = self.algorithm if self.negotiated else None
        for r in self.call_many([{"op": "hash", "path": p} for p in paths], window=window):
            out.append(r if isinstance(r, RemoteError) else str(digest_in("hash", r, session)))
        return out

    @overload
    def ls_many(self, paths: Sequence[str], *, window: int = ...,
                names: Literal[False] = ...) -> list[list[Entry] | RemoteError]: ...

    @overload
    def ls_many(self, paths: Sequence[str], *, window: int = ...,
                names: Literal[True]) -> list[list[str] | RemoteError]: ...

    def ls_many(self, paths: Sequence[str], *, window: int = PIPELINE_WINDOW,
                names: bool = False) -> list[list[Entry] | RemoteError] | \
            list[list[str] | RemoteError]:
        """List many remote directories pipelined; an error in place of a failed one.
        ``names``: each listing as :meth:`~pyftp.Client.names` gives it."""
        results: list[list[Entry] | list[str] | RemoteError | None] = [None] * len(paths)
        parse: Callable[[bytes], list[Entry] | list[str]] = \
            parse_names if names else parse_listing

        def frame(i: int) -> bytes | None:
            req: dict[str, object] = {"op": "ls", "path": paths[i]}
            if names:
                req["names"] = True
            try:
                return encode_frame(req)
            except ValueError as exc:
                results[i] = BadRequestError(f"path too long: {exc}")
                return None

        def reply(i: int, header: JSONObject) -> None:
            if header.get("ok") is not True:
                results[i] = reply_error(header)
                return
            read_reply("ls", header)
            results[i] = parse(self._channel().recv_payload(LISTING_LIMIT, self.timeout))
        self._pipeline(len(paths), frame, reply, window)
        out: list[list[Entry] | list[str] | RemoteError] = _filled(results)
        # names=False fills it with entries only, names=True with names only
        return cast("list[list[Entry] | RemoteError] | list[list[str] | RemoteError]", out)

    def get_many(self, pairs: Sequence[tuple[str, str | os.PathLike[str]]], *,
                 resume: bool = True, keep_mtime: bool = True,
                 window: int = PIPELINE_WINDOW,
                 on_bytes: BytesCallback | None = None,
                 on_file: FileCallback | None = None,
                 ) -> list[TransferResult | PyftpError]:
        """Download many ``(remote, local_file)`` pairs with requests pipelined.

        Each file is verified and published exactly as :meth:`get` does it: written to a
        hidden partial beside ``local_file`` (which must name a file in an existing
        folder; a symlink is followed), continued from that partial when ``resume``,
        checked against the server's SHA-256 and only then renamed into place (a resumed
        file that does not match is fetched once more from zero). Per-file failures (not
        found, a local write error, a checksum mismatch) are returned in place of the
        result and do not stop the batch. A connection failure raises
        :class:`~pyftp.errors.TransportError`; files finished before it were already
        reported through ``on_file(index, result_or_error)`` and are complete.
        ``on_bytes(index, done, total)`` reports each file's bytes.
        """
        loads = []
        for i, (remote, local) in enumerate(pairs):
            target, refused = os.fspath(local), None
            try:
                target = file_target(target)
            except LocalError as exc:
                refused = exc
            loads.append(Download(str(remote), target, keep_mtime=keep_mtime, refused=refused,
                                  progress=_per_file(on_bytes, i)))
        return self._download(loads, resume, window, on_file)

    def _download(self, loads: list[Download], resume: bool, window: int,
                  on_file: FileCallback | None) -> list[TransferResult | PyftpError]:
        """The one download loop: ``loads`` pipelined, each verified and published."""
        results, finish = _collector(len(loads), on_file)
        for load in loads:
            load.session = self.algorithm if self.negotiated else None

        def run(indices: list[int], resume_now: bool) -> list[int]:
            again: list[int] = []

            def frame(k: int) -> bytes | None:
                try:
                    return encode_frame(loads[indices[k]].request(resume_now))
                except ValueError as exc:
                    finish(indices[k], BadRequestError(f"path too long: {exc}"))
                except LocalError as exc:
                    finish(indices[k], exc)
                return None

            def reply(k: int, header: JSONObject) -> None:
                load = loads[indices[k]]
                res = load.receive(self._channel(), header, self._recv_reply, self.timeout)
                if resume_now and load.retry_from_zero(res):
                    again.append(indices[k])
                else:
                    finish(indices[k], res)
            self._pipeline(len(indices), frame, reply, window)
            return again
        redo_from_zero(run, len(loads), resume)
        return _filled(results)

    def get_ranges(self, reads: Sequence[tuple[str, int, int]], *,
                   window: int = PIPELINE_WINDOW) -> list[bytearray | PyftpError]:
        """Many ranged reads ``(remote, offset, length)`` pipelined on this connection
        (protocol section 14: a server that lists ``ranges``); each read's bytes, or
        its error in place (not found, a range past the end: BadRequestError, a
        ChecksumMismatchError). Every range is verified against the server's digest of
        exactly that range. A connection failure raises TransportError."""
        for _, offset, length in reads:
            if type(offset) is not int or type(length) is not int or offset < 0 or length < 0:
                raise ValueError("get_ranges: offsets and lengths must be integers >= 0")
        bufs = [bytearray(length) for _, _, length in reads]
        got = self.get_ranges_into([(remote, offset, buf)
                                    for (remote, offset, _), buf in zip(reads, bufs)],
                                   window=window)
        return [buf if isinstance(res, RangeInfo) else res for buf, res in zip(bufs, got)]

    def get_ranges_into(self, reads: Sequence[tuple[str, int, bytearray | memoryview]], *,
                        window: int = PIPELINE_WINDOW) -> list[RangeInfo | PyftpError]:
        """:meth:`get_ranges`, each read ``(remote, offset, buffer)`` filling its buffer
        (``len(buffer)`` bytes) straight from the socket; each read's
        :class:`~.ranges.RangeInfo` (the file's length and mtime while it was sent),
        or its error in place. A buffer is only to be trusted if its read succeeded."""
        if "ranges" not in self.server_info.get("features", ()):
            raise ProtocolError(f"{self.address} does not offer ranged reads (an older "
                                "server); use get")
        ranges = [RangeRead(remote, offset, writable_view(into)) for remote, offset, into in reads]
        results: list[RangeInfo | PyftpError | None] = [None] * len(ranges)

        def frame(i: int) -> bytes | None:
            try:
                return encode_frame(ranges[i].request())
            except ValueError as exc:
                results[i] = BadRequestError(f"path too long: {exc}")
                return None

        def reply(i: int, header: JSONObject) -> None:
            results[i] = ranges[i].receive(self._channel(), header, self._recv_reply,
                                           self.timeout, self.algorithm)
        self._pipeline(len(ranges), frame, reply, window)
        return _filled(results)

    def put_many(self, pairs: Sequence[tuple[str | os.PathLike[str], str]], *,
                 overwrite: bool = False, resume: bool = True, keep_mtime: bool = True,
                 on_bytes: BytesCallback | None = None,
                 on_file: FileCallback | None = None,
                 ) -> list[TransferResult | PyftpError]:
        """Upload many ``(local_file, remote)`` pairs, one round trip per file.

        A put is two exchanges (header -> offset reply, data -> final reply), and the
        data frame's size depends on the offset the server picks, so puts cannot be
        sent blindly ahead. What is overlapped instead: the next file is read and
        hashed while the server verifies the current one, and its ``put`` header
        travels right behind the current data frame, so the final reply of one file
        and the offset reply of the next come back together. Files up to 1 MiB are
        read once into memory (hash and bytes from the same read); larger ones are sent
        with ``sendfile``, hashed while they are sent when the server lists
        ``sha256_trailer``.

        Verification, publishing and resume are those of :meth:`put`. Per-file
        failures (exists, busy, a local read error) are returned in place of the
        result; a connection failure raises
        :class:`~pyftp.errors.TransportError` after ``on_file`` reported every file
        already finished.
        """
        trailer = "sha256_trailer" in self.server_info.get("features", ())
        session = self.algorithm if self.negotiated else None
        ups = [Upload(os.fspath(local), str(remote), overwrite=overwrite,
                      keep_mtime=keep_mtime, trailer=trailer, session=session)
               for local, remote in pairs]
        ticks = [_per_file(on_bytes, i) for i in range(len(ups))]
        return self._upload(ups, resume, ticks, on_file)

    def _tokens(self) -> TokenBook | None:
        """The token book, on a server that hands out resume tokens (C1)."""
        if "resume_token" not in self.server_info.get("features", ()):
            return None
        return self.resume_tokens

    def _upload(self, ups: list[Upload], resume: bool, ticks: list[ProgressCallback | None],
                on_file: FileCallback | None) -> list[TransferResult | PyftpError]:
        """The one upload loop (see :meth:`put_many`)."""
        results, finish = _collector(len(ups), on_file)

        def run(indices: list[int], resume_now: bool) -> list[int]:
            return _PutRun(self, ups, indices, resume_now, ticks, finish).run()
        redo_from_zero(run, len(ups), resume)
        return _filled(results)


def _per_file(on_bytes: BytesCallback | None, i: int) -> ProgressCallback | None:
    """File ``i``'s ``progress(done, total)``, told to a batch's ``on_bytes``."""
    if on_bytes is None:
        return None
    return lambda done, total: on_bytes(i, done, total)


class _PutRun:
    """One pass of puts over ``indices``: the next ``put`` header rides behind the
    current data, so its offset reply arrives with the current final reply."""

    def __init__(self, conn: Batches, ups: list[Upload], indices: list[int], resume: bool,
                 ticks: list[ProgressCallback | None], finish: Finish) -> None:
        self.conn, self.ups, self.indices, self.resume = conn, ups, indices, resume
        self.ticks, self.finish = ticks, finish
        self.book = conn._tokens()
        self.again: list[int] = []
        self.last_opened: int | None = None  # closed on the way out, whatever happened

    def _open_from(self, k: int) -> int | None:
        """Open the first file from position ``k`` that can be read; its position."""
        for k in range(k, len(self.indices)):
            up = self.ups[self.indices[k]]
            try:
                up.open(self.resume, self.book, self.conn._cwd, self.conn.address, self.conn.user)
                self.last_opened = k
                return k
            except LocalError as exc:
                self.finish(self.indices[k], exc)
        return None

    def run(self) -> list[int]:
        chan = self.conn._channel()
        cur = self._open_from(0)
        nxt = None
        try:
            if cur is not None:
                chan.send_bytes(self.ups[self.indices[cur]].frame)
            while cur is not None:
                nxt = self._one(chan, cur)
                cur, nxt = nxt, None
        except BaseException:
            self.conn._drop("a batch upload was interrupted")
            raise
        finally:
            for k in (cur, nxt, self.last_opened):
                if k is not None:
                    self.ups[self.indices[k]].close()
        return self.again

    def _one(self, chan: Channel, cur: int) -> int | None:
        """Finish the put at position ``cur`` (its header is sent); send the next one's
        header as early as possible and return its position."""
        i = self.indices[cur]
        up, started = self.ups[i], time.monotonic()
        header = self.conn._recv_reply()
        if header.get("ok") is not True:
            err = reply_error(header)
            up.close()
            nxt = self._send_next(chan, cur)
            self.finish(i, err)
            return nxt
        reply = read_reply("put", header)
        if self.book is not None and up.token_key is not None:
            self.book.remember(up.token_key, reply.get("token"), up.durable_token)
        opened: list[int | None] = []

        def next_frame() -> bytes:
            # overlap: read and hash the next file while the server verifies this one;
            # its header leaves right behind this file's data
            opened.append(self._open_from(cur + 1))
            return self.ups[self.indices[opened[0]]].frame if opened[0] is not None else b""
        try:
            up.send(chan, reply, self.ticks[i], next_frame)
        except LocalError as exc:
            self.finish(i, exc)
            raise TransportError(f"the connection was closed because {exc}") from exc
        up.close()
        nxt = opened[0] if opened else None
        final = self.conn._recv_reply()
        if final.get("ok") is True:
            if self.book is not None and up.token_key is not None:
                self.book.forget(up.token_key, up.durable_token)
            self.finish(i, up.result(read_reply("put.final", final), started))
        else:
            err = reply_error(final)
            if self.resume and up.offset and isinstance(err, ChecksumMismatchError):
                self.again.append(i)
            else:
                self.finish(i, err)
        return nxt

    def _send_next(self, chan: Channel, cur: int) -> int | None:
        nxt = self._open_from(cur + 1)
        if nxt is not None:
            chan.send_bytes(self.ups[self.indices[nxt]].frame)
        return nxt
