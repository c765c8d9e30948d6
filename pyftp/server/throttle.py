"""Failed-login throttling shared by every connection: per address and per user name.

A per-connection delay alone lets an attacker open many connections and guess in
parallel (32 connections made 25 guesses/s). Here every failure is remembered per
address (an IPv6 address by its /64, which one host usually owns whole) and per user
name, across connections. Each record gives a penalty that doubles with each failure,
up to ``cap`` seconds; attempts under a penalty are spaced that far apart, whatever
connection they come on, and an attempt that would have to wait longer than ``cap`` is
refused at once, without a password check (so it costs no scrypt run either).

The user-name penalty applies only to addresses that have failed themselves: an
attacker hammering one name cannot lock its owner out, and a login from a clean
address is never slowed. Records are forgotten ``forget`` seconds after their last
failure, and at most ``track`` of each kind are held (least recently used go first),
so a flood of addresses costs bounded memory.

Import rule: the standard library only.
"""
from __future__ import annotations

import ipaddress
import threading
import time
from collections import OrderedDict
from typing import Callable

__all__ = ["LoginThrottle"]


class _Record:
    __slots__ = ("failures", "last", "next")

    def __init__(self) -> None:
        self.failures = 0
        self.last = 0.0
        self.next = 0.0  # no checked attempt before this time


class LoginThrottle:
    """Decides how long a login attempt waits before its password is checked."""

    def __init__(self, base: float = 1.0, cap: float = 60.0, track: int = 10_000,
                 forget: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.base = max(0.0, base)
        self.cap = max(self.base, cap)
        self.track = max(1, track)
        self.forget = forget if forget is not None else max(600.0, 10 * self.cap)
        self._clock = clock
        self._lock = threading.Lock()
        self._addresses: OrderedDict[str, _Record] = OrderedDict()
        self._users: OrderedDict[str, _Record] = OrderedDict()

    # ------------------------------------------------------------------ the policy
    def penalty(self, failures: int) -> float:
        """Seconds between two checked attempts after ``failures`` failures."""
        if failures <= 0 or self.base <= 0:
            return 0.0
        return min(self.cap, self.base * 2.0 ** min(failures - 1, 60))

    def reserve(self, address: str, user: str) -> float | None:
        """Book a slot for an attempt: seconds to wait before checking, or None when
        the attempt is refused (it would wait longer than ``cap``).

        Every attempt counts as a failure from the moment it is booked (a success
        gives it back), so attempts made at once on many connections are spaced
        too, not only those that come after a reply.
        """
        now = self._clock()
        with self._lock:
            addr = self._get(self._addresses, _address_key(address), now)
            name = self._get(self._users, user, now)
            # the name's penalty binds only addresses that failed themselves
            gated = [addr, name] if addr.failures else [addr]
            start = max([now] + [r.next for r in gated])
            for r in (addr, name):
                r.failures += 1
                r.last = now
            if start - now > self.cap:
                return None
            for r in (addr, name):
                r.next = max(r.next, start) + self.penalty(r.failures)
            return start - now

    def failed(self, address: str, user: str) -> None:
        """The booked attempt failed: its failure stays counted."""
        now = self._clock()
        with self._lock:
            for table, key in ((self._addresses, _address_key(address)), (self._users, user)):
                r = table.get(key)
                if r is not None:
                    r.last = now

    def succeeded(self, address: str, user: str) -> None:
        """A good login clears its address and gives the name back its booked failure
        (the rest stay: an attack on the name may still be going on elsewhere)."""
        with self._lock:
            self._addresses.pop(_address_key(address), None)
            r = self._users.get(user)
            if r is not None:
                r.failures = max(0, r.failures - 1)

    def tracked(self) -> tuple[int, int]:
        """(addresses, user names) currently remembered."""
        with self._lock:
            return len(self._addresses), len(self._users)

    # ------------------------------------------------------------------ the tables
    def _get(self, table: OrderedDict[str, _Record], key: str, now: float) -> _Record:
        r = table.get(key)
        if r is None or (now - r.last > self.forget and r.next <= now):
            r = table[key] = _Record()  # new, or forgotten: a clean slate
            while len(table) > self.track:
                table.popitem(last=False)
        table.move_to_end(key)
        return r


def _address_key(address: str) -> str:
    """The throttled unit: an IPv4 address, or the /64 holding an IPv6 address."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if ip.version == 4:
        return str(ip)
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ipaddress.ip_network(f"{ip}/64", strict=False))
