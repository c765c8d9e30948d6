"""Pooled client connections for the fsspec file system, one pool per server login and
per process.

fsspec code opens many short operations (an ``info``, a ``cat_file``, a listing) from
many threads, and Dask forks worker processes that inherit the parent's sockets. So:
each operation borrows a connection for its own use only and gives it back; a
connection that broke is dropped rather than pooled (an exchange cut in the middle
leaves it out of step); and a child process never touches a connection its parent
opened, however it was forked: the pools remember the process id that made them,
and ``os.register_at_fork`` forgets them in the child as well (a lock held by another
thread at the fork would otherwise stay held in the child forever).

Import rule: the public client API only (``pyftp.client``, ``pyftp.errors``).
"""
from __future__ import annotations

import os
import threading
from typing import Any, Callable, Hashable

from ..client import Client
from ..errors import TransportError

__all__ = ["ConnectionPool", "pool_for", "close_pool", "forget_all", "MAX_IDLE"]

#: idle connections kept per server login; busier moments open more, closed on return
MAX_IDLE = 8


class ConnectionPool:
    """Idle connections to one server login, made by ``connect()`` when none is idle."""

    def __init__(self, connect: Callable[[], Client], max_idle: int = MAX_IDLE) -> None:
        self._connect = connect
        self._max_idle = max_idle
        self._idle: list[Client] = []
        self._lock = threading.Lock()
        self.pid = os.getpid()

    def acquire(self, *, fresh: bool = False) -> tuple[Client, bool]:
        """A connection for the caller alone, and whether it was reused from the pool."""
        if not fresh:
            with self._lock:
                while self._idle:
                    client = self._idle.pop()
                    if client.connected:
                        return client, True
        return self._connect(), False

    def release(self, client: Client) -> None:
        """Give a connection back; a broken one, or one too many, is closed instead."""
        if client.connected and os.getpid() == self.pid:
            with self._lock:
                if len(self._idle) < self._max_idle:
                    self._idle.append(client)
                    return
        self.discard(client)

    def discard(self, client: Client) -> None:
        if os.getpid() == self.pid:
            client.close()
        # in a child the socket is the parent's: saying quit on it would end the
        # parent's session, so the object is only dropped

    def run(self, fn: Callable[[Client], Any], *, retry: bool = True) -> Any:
        """``fn(client)`` on a borrowed connection. A pooled connection that turns out
        dead (the server restarted, an idle timeout) is replaced once by a new one,
        unless ``retry`` is false (``fn`` cannot safely run twice)."""
        client, reused = self.acquire()
        try:
            result = fn(client)
        except TransportError:
            self.discard(client)
            if not (reused and retry):
                raise
            client, _ = self.acquire(fresh=True)
            try:
                result = fn(client)
            except BaseException:
                self.release(client)
                raise
        except BaseException:
            self.release(client)
            raise
        self.release(client)
        return result

    def close(self) -> None:
        """Close the idle connections (those in use are closed when given back)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for client in idle:
            self.discard(client)

    def abandon(self) -> None:
        """Forget every connection without a word on the wire (after a fork)."""
        self._idle = []


_pools: dict[Hashable, ConnectionPool] = {}
_pools_pid = os.getpid()
_pools_lock = threading.Lock()


def pool_for(key: Hashable, connect: Callable[[], Client]) -> ConnectionPool:
    """The pool of this process for ``key`` (a server login), made on first use."""
    if os.getpid() != _pools_pid:
        forget_all()
    with _pools_lock:
        pool = _pools.get(key)
        if pool is None:
            pool = _pools[key] = ConnectionPool(connect)
        return pool


def forget_all() -> None:
    """Drop every pool of the parent process without closing its sockets (in a child)."""
    global _pools, _pools_pid, _pools_lock
    for pool in list(_pools.values()):
        pool.abandon()
    _pools, _pools_pid, _pools_lock = {}, os.getpid(), threading.Lock()


def close_pool(key: Hashable) -> None:
    """Close and forget the pool for ``key``, if this process has one."""
    with _pools_lock:
        pool = _pools.pop(key, None)
    if pool is not None:
        pool.close()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=forget_all)
