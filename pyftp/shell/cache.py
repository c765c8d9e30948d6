"""The listings a session has seen, by remote folder (``ls`` fills it), for tab
completion. A folder's listing is dropped after any change the session makes there,
and after :data:`CACHE_SECONDS`. It lives apart from completion because every command
that changes a folder drops its listing, in one-shot runs too.

Import rule: client (for the entry type) only.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from ..hints import TYPE_CHECKING

if TYPE_CHECKING:
    from ..client import Entry

__all__ = ["CACHE_SECONDS", "ListingCache"]

#: how long a cached remote listing serves tab completion before it is fetched again
CACHE_SECONDS = 30.0


class ListingCache:
    """Remote listings by absolute folder, for tab completion.

    Entries expire after ``ttl`` seconds (changes made by other clients show up), and
    the shell drops a folder's entry whenever one of its own commands changes it.
    """

    def __init__(self, ttl: float = CACHE_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._data: dict[str, tuple[float, list[Entry]]] = {}
        #: how many listings were fetched from the server (tests watch this)
        self.fetches = 0

    def get(self, folder: str, fetch: Callable[[str], list[Entry]]) -> list[Entry]:
        hit = self._data.get(folder)
        now = self.clock()
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        entries = fetch(folder)
        self.fetches += 1
        self._data[folder] = (now, entries)
        return entries

    def put(self, folder: str, entries: Iterable[Entry]) -> None:
        self._data[folder] = (self.clock(), list(entries))

    def invalidate(self, *paths: str) -> None:
        """Forget the listings of these folders (and of folders inside them)."""
        for p in paths:
            for key in list(self._data):
                if key == p or key.startswith(p.rstrip("/") + "/"):
                    del self._data[key]

    def clear(self) -> None:
        self._data.clear()
