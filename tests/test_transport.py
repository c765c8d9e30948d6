"""The rate limiter, driven by a fake clock (the limiter's own injectable clock and
sleep: it is the code under test that sleeps, so its sleeps are recorded, not made)."""
from __future__ import annotations

import pytest

from pyftp.transport import RateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_steady_traffic_is_held_to_the_rate():
    fc = FakeClock()
    lim = RateLimiter(1000, clock=fc.clock, sleep=fc.sleep)
    for _ in range(20):
        lim.consume(100)
    # 2000 bytes at 1000 B/s take 2 s
    assert fc.now - 1000.0 == pytest.approx(2.0, abs=1e-9)


def test_a_long_pause_does_not_become_a_burst():
    fc = FakeClock()
    lim = RateLimiter(1000, clock=fc.clock, sleep=fc.sleep)
    fc.now += 60.0  # connected, then idle for a minute
    start = fc.now
    for _ in range(10):
        lim.consume(100)
    assert fc.now - start == pytest.approx(1.0 - RateLimiter.BURST, abs=1e-9)


def test_rate_must_be_positive():
    with pytest.raises(ValueError):
        RateLimiter(0)
