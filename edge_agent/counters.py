"""Counter plausibility on the gateway: wraps, resets, replacements and glitches of a total.

Pure. One `CounterTracker` per device follows each counter quantity (energy, volume, mass
totals) and classifies every new good reading against the last *trusted* one:

- **increase** (or no change): quality good, consumption = new − trusted.
- **backward step within `jitter`** (one resolution step): the meter's own rounding; good,
  consumption 0, the trusted value stays (so nothing is counted twice when it comes back).
- **wrap**: new < trusted and a rollover explains it plausibly (the rule below): good,
  consumption = wrap − trusted + new, a `wrap` event.
- **backward step** otherwise, or **jump** (an increase faster than `max_rate_per_h`): the
  reading is *suspect*: quality out_of_range (value kept as evidence, not usable for
  consumption), consumption unknown, a `backward_step` / `jump` event with the evidence. The
  trusted value does not move, so a transient zero or a torn read that comes back costs nothing
  and never turns into a huge spike.
- **reset**: when `confirm_readings` successive suspect readings agree on a new level (each
  one continuing plausibly from the one before), the meter really restarted (or was swapped
  unannounced): the last of them gets quality counter_reset and a `reset` event with
  before/after evidence; consumption counts from the first reading at the new level, and what
  happened between the old level and the reset is unknown (never a negative or huge number).
- **replacement**: announced by `replace_meter` with the old meter's final reading and the new
  meter's first one: consumption up to the old final reading, then the new meter continues.

Plausible-wrap rule: new < trusted is a wrap when the consumption it implies,
wrap − trusted + new, is at most `wrap_fraction` of the wrap value (default 1 %: between two
polls a counter moves a tiny part of its range, so it was near the top and is now near 0) and,
if `max_rate_per_h` is set, no more than that rate allows for the elapsed time. A counter that
drops from the middle of its range, or from near the top to far above 0, was reset instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from device_profiles import DataType, Point
from device_profiles.dlt645 import Dlt645Point
from metertrace.wire import Quality

_F32_REL = 2.0**-23  # one float32 step relative to the value
_F64_REL = 2.0**-52


class EventKind(StrEnum):
    WRAP = "wrap"  # the counter passed its maximum and restarted from 0 (consumption known)
    RESET = "reset"  # confirmed restart at another level (consumption across it unknown)
    REPLACEMENT = "replacement"  # announced swap of the meter (consumption known)
    BACKWARD_STEP = "backward_step"  # suspect: lower than the trusted value, not (yet) a reset
    JUMP = "jump"  # suspect: rose faster than max_rate_per_h


@dataclass(frozen=True, slots=True)
class CounterEvent:
    """A discontinuity with its evidence: the trusted value `before` (at ts_before) and the
    reading `after` (at ts_after). `ts` is the reading the event is attached to."""

    kind: EventKind
    device: str
    quantity: str
    ts: datetime
    before: float
    after: float
    ts_before: datetime
    ts_after: datetime
    wrap: float | None = None
    detail: str = ""

    def evidence(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "before": self.before,
            "after": self.after,
            "ts_before": self.ts_before.isoformat(),
            "ts_after": self.ts_after.isoformat(),
        }
        if self.wrap is not None:
            out["wrap"] = self.wrap
        return out


@dataclass(frozen=True, slots=True)
class CounterResult:
    quality: Quality  # good, out_of_range or counter_reset: overrides a good decode quality
    consumption: float | None  # since the previous trusted reading; None when unknown
    event: CounterEvent | None = None


@dataclass(frozen=True, slots=True)
class CounterPolicy:
    """How one counter may move. Values in the published unit (after scale and CT/VT)."""

    wrap: float | None = None  # the value the counter shows as 0 again; None: never wraps
    max_rate_per_h: float | None = None  # faster increases are suspect
    jitter: float = 0.0  # absolute: backward steps this small are rounding, not resets
    jitter_rel: float = 0.0  # the same, relative to the value (float registers)
    wrap_fraction: float = 0.01
    confirm_readings: int = 3

    def __post_init__(self) -> None:
        if self.wrap is not None and not self.wrap > 0:
            raise ValueError("wrap must be > 0")
        if self.max_rate_per_h is not None and not self.max_rate_per_h > 0:
            raise ValueError("max_rate_per_h must be > 0")
        if not 0 < self.wrap_fraction < 1 or self.confirm_readings < 1:
            raise ValueError("wrap_fraction must be in (0, 1) and confirm_readings >= 1")

    @classmethod
    def for_point(
        cls, point: Point, factor: float = 1.0, *, max_rate_per_h: float | None = None
    ) -> CounterPolicy:
        """The policy a profile register implies; factor is the CT/VT ratio applied to it.

        max_rate_per_h given here (e.g. from the device config) overrides the profile's.
        """
        rate = max_rate_per_h or (point.max_rate_per_h and point.max_rate_per_h * factor)
        if point.type is DataType.F32:
            return cls(point.wrap and point.wrap * factor, rate or None, jitter_rel=2 * _F32_REL)
        if point.type is DataType.F64:
            return cls(point.wrap and point.wrap * factor, rate or None, jitter_rel=2 * _F64_REL)
        step = abs(point.scale) * factor
        return cls(point.wrap and point.wrap * factor, rate or None, jitter=step * (1 + 1e-9))

    @classmethod
    def for_dlt645(
        cls, point: Dlt645Point, *, max_rate_per_h: float | None = None
    ) -> CounterPolicy:
        """A DL/T 645 total: its BCD display of n integer digits shows 10^n as 0 again."""
        fmt = point.format
        wrap = float(10 ** (fmt.digits - fmt.decimals)) * abs(point.scale)
        step = fmt.step * abs(point.scale)
        return cls(wrap, max_rate_per_h, jitter=step * (1 + 1e-9))

    def tolerance(self, value: float) -> float:
        return max(self.jitter, abs(value) * self.jitter_rel)


@dataclass
class _Track:
    value: float  # the last trusted reading
    ts: datetime
    pending: list[tuple[float, datetime]] = field(default_factory=list)  # suspects, in order
    pending_kind: EventKind | None = None


class CounterTracker:
    """Every counter of one device. Feed it good readings only, in time order:

    result = tracker.observe("energy.active.import", 1234.5, ts, policy)

    Readings that failed (comm_error, not_available) are simply not fed: the next good one
    covers the gap (its rate check uses the whole elapsed time).
    """

    def __init__(self, device: str) -> None:
        self.device = device
        self._tracks: dict[str, _Track] = {}

    def trusted(self, quantity: str) -> tuple[float, datetime] | None:
        """The last trusted reading (to persist across restarts), or None."""
        t = self._tracks.get(quantity)
        return None if t is None else (t.value, t.ts)

    def restore(self, quantity: str, value: float, ts: datetime) -> None:
        """Resume from a reading trusted before a restart (e.g. the last one published)."""
        self._tracks[quantity] = _Track(value, ts)

    def quantities(self) -> list[str]:
        return list(self._tracks)

    def last_ts(self, quantity: str) -> datetime | None:
        """The time of the last reading fed (trusted or suspect): the next must be later."""
        t = self._tracks.get(quantity)
        if t is None:
            return None
        return t.pending[-1][1] if t.pending else t.ts

    def observe(
        self, quantity: str, value: float, ts: datetime, policy: CounterPolicy
    ) -> CounterResult:
        t = self._tracks.get(quantity)
        if t is None:
            self._tracks[quantity] = _Track(value, ts)
            return CounterResult(Quality.GOOD, None)
        last_ts = t.pending[-1][1] if t.pending else t.ts
        if ts <= last_ts:
            raise ValueError(
                f"{self.device} {quantity}: reading at {ts.isoformat()} is not after "
                f"{last_ts.isoformat()}; feed readings in time order"
            )
        step = _classify(t.value, t.ts, value, ts, policy)
        if step is not None:  # continues from the trusted value: any suspects were transient
            consumption, wrapped = step
            event = None
            if wrapped:
                event = self._event(EventKind.WRAP, quantity, t, value, ts, wrap=policy.wrap)
            if value >= t.value or wrapped:
                t.value = value
            t.ts, t.pending, t.pending_kind = ts, [], None
            return CounterResult(Quality.GOOD, consumption, event)
        kind = EventKind.BACKWARD_STEP if value < t.value else EventKind.JUMP
        if t.pending and t.pending_kind is kind:
            pv, pts = t.pending[-1]
            if _classify(pv, pts, value, ts, policy, wraps=False) is not None:
                t.pending.append((value, ts))
            else:
                t.pending = [(value, ts)]
        else:
            t.pending, t.pending_kind = [(value, ts)], kind
        if len(t.pending) >= policy.confirm_readings:
            first, first_ts = t.pending[0]
            event = self._event(
                EventKind.RESET,
                quantity,
                t,
                first,
                first_ts,
                at=ts,
                detail=f"{len(t.pending)} readings agree on the new level",
            )
            self._tracks[quantity] = _Track(value, ts)
            return CounterResult(Quality.COUNTER_RESET, max(0.0, value - first), event)
        event = None
        if len(t.pending) == 1:
            detail = (
                "below the trusted value"
                if kind is EventKind.BACKWARD_STEP
                else (f"faster than {policy.max_rate_per_h:g}/h")
            )
            event = self._event(kind, quantity, t, value, ts, detail=detail)
        return CounterResult(Quality.OUT_OF_RANGE, None, event)

    def replace_meter(
        self,
        quantity: str,
        *,
        old_final: float,
        old_ts: datetime,
        new_first: float,
        new_ts: datetime,
    ) -> CounterResult:
        """The meter was swapped: count up to the old meter's final reading, then continue from
        the new meter's first. The result belongs to the new meter's first reading."""
        if new_ts < old_ts:
            raise ValueError(f"{self.device} {quantity}: the new meter's first reading is older")
        t = self._tracks.get(quantity)
        consumption = None
        detail = "no trusted reading of the old meter: its last consumption is unknown"
        if t is not None:
            if old_final >= t.value:
                consumption, detail = old_final - t.value, ""
            else:
                detail = f"old meter's final {old_final:g} is below its trusted {t.value:g}"
        event = CounterEvent(
            EventKind.REPLACEMENT,
            self.device,
            quantity,
            new_ts,
            old_final,
            new_first,
            old_ts,
            new_ts,
            detail=detail,
        )
        self._tracks[quantity] = _Track(new_first, new_ts)
        return CounterResult(Quality.GOOD, consumption, event)

    def _event(
        self,
        kind: EventKind,
        quantity: str,
        t: _Track,
        after: float,
        ts_after: datetime,
        *,
        at: datetime | None = None,
        wrap: float | None = None,
        detail: str = "",
    ) -> CounterEvent:
        return CounterEvent(
            kind,
            self.device,
            quantity,
            at or ts_after,
            t.value,
            after,
            t.ts,
            ts_after,
            wrap,
            detail,
        )


def _classify(
    prev: float,
    prev_ts: datetime,
    value: float,
    ts: datetime,
    policy: CounterPolicy,
    *,
    wraps: bool = True,
) -> tuple[float, bool] | None:
    """(consumption, wrapped) when value continues plausibly from prev; None when suspect."""
    hours = (ts - prev_ts).total_seconds() / 3600
    tol = policy.tolerance(prev)
    allowed = None if policy.max_rate_per_h is None else policy.max_rate_per_h * hours + tol
    if value >= prev - tol:
        delta = max(0.0, value - prev)
        return None if allowed is not None and delta > allowed else (delta, False)
    if wraps and policy.wrap is not None and 0 <= value < policy.wrap and prev < policy.wrap:
        implied = policy.wrap - prev + value
        if implied <= policy.wrap * policy.wrap_fraction and (
            allowed is None or implied <= allowed
        ):
            return implied, True
    return None
