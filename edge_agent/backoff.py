"""Backing off a device that does not answer, so it cannot keep stealing time on a shared bus.

Pure. Counted in polls, not seconds, so a device's schedule (and wall-clock alignment) is kept:
after `threshold` consecutive failed polls the next 1, 2, 4, ... polls are skipped (at most
`max_skip`); one answered poll resets everything, so a device that comes back is read again
at its next attempt without anyone intervening.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class Backoff:
    threshold: int = 2
    max_skip: int = 32
    failures: int = 0  # consecutive failed polls
    to_skip: int = 0  # polls still to skip before the next attempt
    skipped: int = 0  # polls skipped since the device last answered

    def __post_init__(self) -> None:
        if self.threshold < 1 or self.max_skip < 0:
            raise ValueError("threshold must be >= 1 and max_skip >= 0")

    @classmethod
    def for_interval(cls, interval_s: float, *, max_s: float = 300.0) -> Backoff:
        """Skips never add up to more than max_s (or one poll, for slow schedules)."""
        return cls(max_skip=max(1, math.floor(max_s / interval_s)))

    def should_poll(self) -> bool:
        """Call once per scheduled poll; False means skip this one."""
        if self.to_skip:
            self.to_skip -= 1
            self.skipped += 1
            return False
        return True

    def failed(self) -> None:
        self.failures += 1
        if self.failures >= self.threshold:
            self.to_skip = min(2 ** min(self.failures - self.threshold, 30), self.max_skip)

    def succeeded(self) -> None:
        self.failures = self.to_skip = self.skipped = 0

    @property
    def backing_off(self) -> bool:
        return self.failures >= self.threshold
