"""A meter's counter readings and the counter events the edge agent reports, as the collector
holds them for computation.

Arrays rather than objects: a year of 10-second readings is 3.15 M rows per meter. Qualities
are the wire's (metertrace.wire.Quality) as uint8 codes; event kinds are the agent's
(edge_agent.counters.EventKind), with the agent's evidence semantics:

- wrap: the counter passed `wrap` and restarted from 0; consumption known.
- reset: the agent confirmed a restart at another level; `after` is the first reading at the new
  level. Consumption counts from it; what happened between the last trusted reading (`before`)
  and the reset is unknown.
- replacement: the old meter's final reading `before`, the new meter's first reading `after`;
  consumption known on both sides.
- backward_step, jump: suspect readings the agent marked out_of_range; they are not used, so
  these events change nothing here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from numpy.typing import NDArray

from collector.allocation.timebase import epoch_s
from edge_agent.counters import EventKind
from metertrace.wire import VALUELESS, Quality

F64 = NDArray[np.float64]
QUALITIES: tuple[Quality, ...] = tuple(Quality)
# out_of_range readings are suspect values the agent keeps as evidence, not for consumption
UNUSABLE = VALUELESS | {Quality.OUT_OF_RANGE}
_USABLE_LUT = np.zeros(256, dtype=bool)
_USABLE_LUT[[i for i, q in enumerate(QUALITIES) if q not in UNUSABLE]] = True

__all__ = ["CounterEvent", "CounterReadings", "EventKind", "quality_code", "quality_codes"]


def quality_code(quality: Quality | str) -> int:
    try:
        return QUALITIES.index(Quality(quality))
    except ValueError:
        raise ValueError(
            f"unknown reading quality {quality!r}; known: {[q.value for q in QUALITIES]}"
        ) from None


def quality_codes(qualities: Sequence[Quality | str]) -> NDArray[np.uint8]:
    lookup = {q.value: i for i, q in enumerate(QUALITIES)}
    try:
        return np.array([lookup[str(q)] for q in qualities], dtype=np.uint8)
    except KeyError as exc:
        raise ValueError(
            f"unknown reading quality {exc.args[0]!r}; known: {list(lookup)}"
        ) from None


@dataclass(frozen=True, slots=True)
class CounterEvent:
    """A discontinuity of the counter, attached to the reading at `ts`, with its evidence."""

    ts: datetime
    kind: EventKind
    before: float | None = None
    after: float | None = None
    wrap: float | None = None

    def __post_init__(self) -> None:
        epoch_s(self.ts)  # refuses a naive time
        at = f"{self.kind} event at {self.ts.isoformat()}"
        if self.kind is EventKind.WRAP and not (self.wrap and self.wrap > 0):
            raise ValueError(f"{at}: needs wrap > 0 (the value the counter shows as 0 again)")
        if self.kind is EventKind.RESET and self.after is None:
            raise ValueError(f"{at}: needs after (the first reading at the new level)")
        if self.kind is EventKind.REPLACEMENT and (self.before is None or self.after is None):
            raise ValueError(
                f"{at}: needs before (old meter's final reading) and after (new meter's first)"
            )


@dataclass(frozen=True, slots=True)
class CounterReadings:
    """One meter's counter: t (epoch s, strictly increasing), value, quality code per reading.

    A backward step of at most max(jitter, jitter_rel·value) with no event is the meter's own
    rounding (the agent passes those as good); a larger one makes that step's consumption
    unknown.

    `continuous[i]`, when given, says the step from reading i−1 to i is known to hold no gap:
    the store left out the readings between because they change nothing (the ledger's rollups,
    collector/ledger/rollups.py), so that step is not judged as a gap by its length.
    """

    meter_id: str
    medium: str
    unit: str
    t: F64
    value: F64
    quality: NDArray[np.uint8]
    poll_interval_s: float
    events: tuple[CounterEvent, ...] = ()
    jitter: float = 0.0
    jitter_rel: float = 2.0**-22  # two float32 steps
    continuous: NDArray[np.bool_] | None = None

    def __post_init__(self) -> None:
        n = self.t.shape
        if self.t.ndim != 1 or self.value.shape != n or self.quality.shape != n:
            raise ValueError(
                f"meter {self.meter_id}: t, value and quality must be 1-D of one length, got "
                f"{self.t.shape}, {self.value.shape}, {self.quality.shape}"
            )
        if self.continuous is not None and self.continuous.shape != n:
            raise ValueError(
                f"meter {self.meter_id}: continuous must have one flag per reading, got "
                f"{self.continuous.shape} for {n}"
            )
        if not self.poll_interval_s > 0:
            raise ValueError(f"meter {self.meter_id}: poll_interval_s must be > 0")

    def usable(self) -> tuple[F64, F64]:
        """Times and values of the readings that carry a valid counter value (no copy if all)."""
        mask = self._usable_mask()
        if mask.all():
            return self.t, self.value
        return self.t[mask], self.value[mask]

    def _usable_mask(self) -> NDArray[np.bool_]:
        mask: NDArray[np.bool_] = _USABLE_LUT[self.quality]
        mask &= ~np.isnan(self.value)
        return mask

    def continuous_steps(self) -> NDArray[np.bool_]:
        """Per usable reading: the step to it from the previous usable one holds no gap for
        sure (all False where the store gave every reading)."""
        mask = self._usable_mask()
        kept = np.flatnonzero(mask)
        if self.continuous is None:
            return np.zeros(kept.size, dtype=bool)
        # a step over left-out readings is continuous only if every step it spans is
        broken = np.cumsum(~self.continuous)
        out = np.zeros(kept.size, dtype=bool)
        out[1:] = broken[kept[1:]] == broken[kept[:-1]]
        return out
