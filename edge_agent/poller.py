"""One device: plan once, read each block in one request, decode, and report quality.

A block that fails yields comm_error readings without a value: a failed read is never a number.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from device_profiles import Profile
from metertrace.timeutil import utcnow
from metertrace.wire import Quality

from .errors import CommError
from .planning import ReadBlock, decode_block, plan_reads
from .transports import RegisterReader

log = logging.getLogger(__name__)


@dataclass
class DeviceHealth:
    polls: int = 0
    failed_requests: int = 0
    last_error: str | None = None
    last_ok: datetime | None = None


@dataclass
class DevicePoller:
    device: str
    profile: Profile
    reader: RegisterReader
    plan: list[ReadBlock] = field(init=False)
    health: DeviceHealth = field(default_factory=DeviceHealth)

    def __post_init__(self) -> None:
        self.plan = plan_reads(
            self.profile.points(),
            max_block=self.profile.modbus.max_block,
            max_gap=self.profile.modbus.max_gap,
        )

    async def poll(self) -> tuple[datetime, list[dict[str, Any]]]:
        """Read every block once; returns the poll's timestamp and wire readings."""
        ts = utcnow()
        readings: list[dict[str, Any]] = []
        self.health.polls += 1
        errors = 0
        for block in self.plan:
            try:
                words = await self.reader.read(block.function, block.address, block.count)
            except CommError as exc:
                errors += 1
                self.health.failed_requests += 1
                self.health.last_error = str(exc)
                log.warning("%s", exc)
                readings += [
                    {
                        "quantity": p.quantity,
                        "value": None,
                        "unit": p.unit,
                        "raw": None,
                        "quality": Quality.COMM_ERROR.value,
                    }
                    for p in block.points
                ]
                continue
            for d in decode_block(block, words):
                quality = Quality.GOOD if d.value is not None else Quality.NOT_AVAILABLE
                readings.append(
                    {
                        "quantity": d.point.quantity,
                        "value": d.value,
                        "unit": d.point.unit,
                        "raw": d.raw,
                        "quality": quality.value,
                    }
                )
        if not errors:
            self.health.last_ok = ts
        return ts, readings
