"""How a sync job runs: the one retry policy (:class:`RetryPolicy`) and the options every
job carries (:class:`TransferOptions`: resume, pipelining window, callbacks, clock).

Import rule: .report only (for types); pure data, no I/O.
"""
from __future__ import annotations

import time
from collections.abc import Callable

from ..records import dataclass, field
from .report import JobProgress

#: two modification times this close (in seconds) count as equal. pyftp keeps mtimes to
#: the microsecond on both sides (the wire carries 6 decimals), so the only differences
#: left after a transfer are float rounding (< 2 µs); one millisecond also absorbs file
#: systems that store milliseconds. Pass ``mtime_tolerance=2`` for FAT-like disks.
MTIME_TOLERANCE = 0.001
#: folders nested deeper than this are not entered (a server-side symlink loop that the
#: listing cannot reveal would otherwise go on until paths hit the length limit)
MAX_DEPTH = 64

ProgressCallback = Callable[[int, int], object]
EventCallback = Callable[[str, str, str], object]
JobCallback = Callable[[JobProgress], object]


@dataclass(frozen=True)
class RetryPolicy:
    """How long a job rides out a dropped connection (or a ``busy`` server).

    Before retry ``k`` (1-based) the job waits ``min(max_backoff, backoff * factor**k)``
    seconds, then reconnects and continues (partial files are resumed). The defaults
    wait 5, 25 and 30 s: a minute in all, as lftp is patient, so a server that restarts
    is back before the job gives up, while a blip costs only the first wait. The count
    starts again whenever an attempt made progress, so a long job survives several
    drops; ``retries=0`` gives up at the first drop.
    """

    retries: int = 3
    backoff: float = 1.0
    max_backoff: float = 30.0
    factor: float = 5.0

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError("retries must be 0 or more")
        if self.backoff < 0 or self.max_backoff < 0 or self.factor < 1:
            raise ValueError("backoff and max_backoff must be 0 or more, factor 1 or more")

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry ``attempt`` (1 for the first)."""
        return min(self.max_backoff, self.backoff * self.factor ** attempt)

    def delays(self) -> list[float]:
        """Every wait, in order, when the connection never comes back."""
        return [self.delay(k) for k in range(1, self.retries + 1)]

    def retry_line(self, reason: str, attempt: int) -> str:
        """What a person reads while waiting, e.g. ``connection lost (timed out);
        retry 2 of 3 in 25 s``."""
        return f"{reason}; retry {attempt} of {self.retries} in {seconds(self.delay(attempt))}"

    def gave_up_line(self, reason: str) -> str:
        tries = f"{self.retries} retr{'ies' if self.retries != 1 else 'y'}"
        return f"gave up after {tries} ({reason})"


def seconds(s: float) -> str:
    """A wait as people say it: ``8 s``, ``2.5 s``, ``0.001 s``."""
    return f"{round(s)} s" if s >= 10 else f"{s:.3g} s"


@dataclass
class TransferOptions:
    """What every step of one job shares: resume, retries, window and the callbacks."""

    resume: bool = True
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    window: int = 64
    on_progress: ProgressCallback | None = None
    on_job: JobCallback | None = None
    on_event: EventCallback | None = None
    sleep: Callable[[float], object] = time.sleep

    def event(self, kind: str, path: str, detail: str = "") -> None:
        if self.on_event:
            self.on_event(kind, path, detail)


def make_options(*, resume: bool = True, retry: RetryPolicy | None = None,
                 retries: int | None = None, backoff: float | None = None,
                 window: int = 64, on_progress: ProgressCallback | None = None,
                 on_job: JobCallback | None = None, on_event: EventCallback | None = None,
                 sleep: Callable[[float], object] = time.sleep) -> TransferOptions:
    """The options of a public job: ``retries`` and ``backoff`` (the keywords the
    functions always took) override the fields of ``retry``."""
    policy = retry or RetryPolicy()
    if retries is not None or backoff is not None:
        policy = RetryPolicy(policy.retries if retries is None else retries,
                             policy.backoff if backoff is None else backoff,
                             policy.max_backoff, policy.factor)
    return TransferOptions(resume, policy, window, on_progress, on_job, on_event, sleep)
