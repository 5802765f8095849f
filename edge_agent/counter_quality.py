"""Counter plausibility applied to each poll of one device (the rules are in counters.py).

Pure. Every good reading of a counter goes through the device's CounterTracker in poll order;
the tracker's quality (good, out_of_range, counter_reset) replaces the decoded one, and each
event it raises becomes a `CounterNotice` that the agent signs and sends upstream. So a wrap,
reset or backward step reaches the collector as an event with its evidence, and never as a
negative or huge consumption computed from a reading marked good.

Readings that failed (comm_error, not_available) or that the profile's valid range already
marked out_of_range are not fed: the tracker only judges values the meter vouched for.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from metertrace.timeutil import to_wire
from metertrace.wire import Quality

from .counters import CounterEvent, CounterPolicy, CounterTracker

log = logging.getLogger(__name__)

# quantity -> (last trusted value, its poll time): what survives a restart
TrustedState = dict[str, tuple[float, datetime]]


@dataclass(frozen=True, slots=True)
class CounterNotice:
    """A tracker event ready to be reported: its evidence plus the unit and the consumption."""

    event: CounterEvent
    unit: str
    consumption: float | None  # what the tracker attributes to the reading; None: unknown

    @property
    def device(self) -> str:
        return self.event.device


class CounterWatch:
    """The counters of one device across polls: judges each poll, keeps the events raised."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.tracker = CounterTracker(device)
        self._notices: list[CounterNotice] = []

    def judge(
        self, ts: datetime, readings: list[dict[str, Any]], policies: Mapping[str, CounterPolicy]
    ) -> None:
        """Override the quality of the poll's counter readings in place; keep their events.

        `policies` names the poll's counter quantities (others are gauges and left alone).
        """
        for r in readings:
            policy = policies.get(r["quantity"])
            if policy is None or r["quality"] != Quality.GOOD.value or r["value"] is None:
                continue
            quantity = r["quantity"]
            last = self.tracker.last_ts(quantity)
            if last is not None and ts <= last:
                # the clock stepped back (or a restored state is from the future): the rate
                # and order checks cannot judge this value, so it is not vouched for either
                log.warning(
                    "%s %s: poll time %s is not after the last counter reading at %s "
                    "(clock stepped back?); marked out_of_range",
                    self.device,
                    quantity,
                    to_wire(ts),
                    to_wire(last),
                )
                r["quality"] = Quality.OUT_OF_RANGE.value
                continue
            result = self.tracker.observe(quantity, float(r["value"]), ts, policy)
            r["quality"] = result.quality.value
            if result.event is not None:
                self._notices.append(CounterNotice(result.event, r["unit"], result.consumption))
                log.warning(
                    "%s %s: counter %s (%s %g at %s -> %g at %s)%s",
                    self.device,
                    quantity,
                    result.event.kind.value,
                    r["unit"],
                    result.event.before,
                    to_wire(result.event.ts_before),
                    result.event.after,
                    to_wire(result.event.ts_after),
                    f": {result.event.detail}" if result.event.detail else "",
                )

    def take(self) -> list[CounterNotice]:
        """The events raised since the last take, oldest first."""
        notices, self._notices = self._notices, []
        return notices

    def put_back(self, notices: list[CounterNotice]) -> None:
        """Events that could not be stored: they go out with the next stored poll."""
        self._notices[:0] = notices

    def trusted(self) -> TrustedState:
        out: TrustedState = {}
        for quantity in self.tracker.quantities():
            t = self.tracker.trusted(quantity)
            if t is not None:
                out[quantity] = t
        return out

    def restore(self, state: Mapping[str, tuple[float, datetime]]) -> None:
        for quantity, (value, ts) in state.items():
            self.tracker.restore(quantity, value, ts)
