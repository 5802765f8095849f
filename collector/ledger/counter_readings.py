"""A meter's counter readings and counter events in bulk, as arrays for the allocation.

Reads the collector's SQLite file on its own connection (WAL: readers never block the ingest).
Times are parsed by numpy (a month of 10-second readings: 0.03 s, against 0.5 s one datetime
at a time, more than the allocation itself).
"""

from __future__ import annotations

import statistics
import threading
from datetime import datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pydantic import ValidationError

from collector.allocation.counters import (
    UNUSABLE,
    CounterEvent,
    CounterReadings,
    EventKind,
    quality_codes,
)
from collector.db.engine import connect
from device_profiles.vocabulary import quantity as vocabulary_quantity
from metertrace.timeutil import to_wire
from metertrace.wire import CounterEventBody, Quality

# Only readings whose value measures the counter: good and counter_reset (the first reading at a
# confirmed new level). comm_error/not_available carry no value, out_of_range is suspect.
USABLE = tuple(q.value for q in Quality if q not in UNUSABLE)
_IN_USABLE = f"quality IN ({', '.join('?' * len(USABLE))}) AND value IS NOT NULL"
_DEFAULT_POLL_S = 1.0  # for a meter with fewer than two readings: no step, so no gap to judge


class CounterStore:
    def __init__(self, path: Path) -> None:
        self._db = connect(path)
        self._lock = threading.Lock()

    def _edge(self, meter: str, qty: str, at: datetime, before: bool) -> str | None:
        """The time of the nearest usable reading before `at` (or at/after it)."""
        op, order = ("<", "DESC") if before else (">=", "ASC")
        row = self._db.execute(
            f"SELECT ts FROM readings WHERE device = ? AND quantity = ? AND ts {op} ? AND "
            f"{_IN_USABLE} ORDER BY ts {order} LIMIT 1",
            (meter, qty, to_wire(at), *USABLE),
        ).fetchone()
        return None if row is None else str(row[0])

    def counter(self, meter: str, qty: str, start: datetime, end: datetime) -> CounterReadings:
        """Usable readings over [start, end], with the nearest one on each side (so the counter
        can be interpolated at the period's edges), and the counter events among them."""
        q = vocabulary_quantity(qty)
        with self._lock:
            lo = self._edge(meter, qty, start, before=True) or to_wire(start)
            hi = self._edge(meter, qty, end, before=False) or to_wire(end)
            rows = self._db.execute(
                "SELECT ts, value, quality FROM readings WHERE device = ? AND "
                f"quantity = ? AND ts >= ? AND ts <= ? AND {_IN_USABLE} ORDER BY ts, seq",
                (meter, qty, lo, hi, *USABLE),
            ).fetchall()
            events = self._events(meter, qty, lo, hi)
        t = epoch_seconds([r[0] for r in rows])
        v = np.array([r[1] for r in rows], dtype=np.float64)
        quality = quality_codes([r[2] for r in rows])
        steps = np.diff(t)
        poll = float(statistics.median(steps.tolist())) if steps.size else _DEFAULT_POLL_S
        return CounterReadings(
            meter, q.medium, q.unit, t, v, quality, poll if poll > 0 else _DEFAULT_POLL_S,
            tuple(events),
        )  # fmt: skip

    def _events(self, meter: str, qty: str, lo: str, hi: str) -> list[CounterEvent]:
        """The gateway's counter events (wrap, reset, replacement) for the readings in [lo, hi].

        Older stores have no `counter` column: they hold no counter events, so there are none to
        apply (the readings' own quality still says which values are usable)."""
        cols = {r[1] for r in self._db.execute("PRAGMA table_info(events)").fetchall()}
        if "counter" not in cols:
            return []
        out = []
        for (body,) in self._db.execute(
            "SELECT counter FROM events WHERE device = ? AND event = 'counter' AND counter IS NOT "
            "NULL ORDER BY ts, gateway, id",
            (meter,),
        ).fetchall():
            try:
                c = CounterEventBody.model_validate_json(body)
            except ValidationError as exc:
                raise ValueError(
                    f"meter {meter}: a stored counter event is unreadable: {exc}"
                ) from exc
            if c.quantity != qty or not lo <= to_wire(c.reading_ts) <= hi:
                continue
            out.append(CounterEvent(c.reading_ts, EventKind(c.kind), c.before, c.after, c.wrap))
        return out

    def close(self) -> None:
        with self._lock:
            self._db.close()


def epoch_seconds(stamps: list[str]) -> NDArray[np.float64]:
    """Epoch seconds of to_wire() stamps ('YYYY-MM-DDTHH:MM:SS.ffffffZ', UTC), exact to 1 µs."""
    if any(not x.endswith("Z") for x in stamps[:1] + stamps[-1:]):
        raise ValueError(f"reading times must be stored in UTC with Z, got {stamps[0]!r}")
    us = np.array([x[:-1] for x in stamps], dtype="datetime64[us]").astype(np.int64)
    return us / 1e6
