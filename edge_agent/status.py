"""The gateway's retained status message (docs/wire-format.md, "Status"): online/offline,
per-device health and the outbox's depth and age.

Pure: the runner gathers the numbers; this shapes them and decides when to publish (on a
state change, and at least every interval so a reader can tell a stale status by its `ts`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from typing import Any

from metertrace.timeutil import to_wire
from metertrace.wire import Quality

from .outbox import OutboxStats
from .retention import Limits

WAITING, OK, DEGRADED, FAILING = "waiting", "ok", "degraded", "failing"


def poll_state(readings: list[dict[str, Any]]) -> str:
    """ok: every request answered; degraded: some failed; failing: none answered."""
    failed = sum(r.get("quality") == Quality.COMM_ERROR.value for r in readings)
    if not failed:
        return OK
    return FAILING if failed == len(readings) else DEGRADED


def jsonable(value: Any) -> Any:
    """Health objects as JSON: times in wire format, enums by value, dataclasses as objects."""
    if isinstance(value, datetime):
        return to_wire(value)
    if isinstance(value, Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


@dataclasses.dataclass(frozen=True, slots=True)
class DeviceReport:
    state: str  # waiting, ok, degraded, failing
    health: Any  # the poller's health record, shown field by field (last_ok, last_error, ...)
    overruns: int
    unstored_polls: int = 0


def status_message(
    *,
    gateway: str,
    now: datetime,
    started: datetime,
    devices: Mapping[str, DeviceReport],
    outbox: OutboxStats,
    limits: Limits | None,
    state: str = "online",
) -> dict[str, Any]:
    oldest_age = (now - outbox.oldest).total_seconds() if outbox.oldest else None
    box: dict[str, Any] = {
        "depth": outbox.depth,
        "bytes": outbox.bytes,
        "oldest_age_s": None if oldest_age is None else round(oldest_age, 3),
        "dropped": {d: outbox.dropped.get(d, 0) for d in devices},
    }
    if limits:
        box["max_bytes"] = limits.max_bytes
        box["max_age_days"] = limits.max_age.total_seconds() / 86400
    return {
        "state": state,
        "gateway": gateway,
        "ts": to_wire(now),
        "started": to_wire(started),
        "outbox": box,
        "devices": {
            device: {
                "state": r.state,
                **(jsonable(r.health) if r.health is not None else {}),
                "overruns": r.overruns,
                "unstored_polls": r.unstored_polls,
            }
            for device, r in devices.items()
        },
    }


def encode(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), allow_nan=False)


class StatusSchedule:
    """Publish when what matters changed (device states, drops), or when the interval passed."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._last_at: float | None = None
        self._last_key: object = None

    def due(self, now_s: float, key: object) -> bool:
        if self._last_at is None or key != self._last_key:
            return True
        return now_s - self._last_at >= self.interval_s

    def published(self, now_s: float, key: object) -> None:
        self._last_at, self._last_key = now_s, key


def change_key(devices: Mapping[str, DeviceReport], outbox: OutboxStats) -> object:
    """What counts as a state change: a device's state, a drop, a poll that was not stored."""
    return (
        tuple((d, r.state, r.unstored_polls) for d, r in devices.items()),
        tuple(sorted(outbox.dropped.items())),
    )
