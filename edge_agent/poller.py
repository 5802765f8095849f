"""One device: plan once, read each block (Modbus) or data identifier (DL/T 645) in one
request, decode, and report quality.

Counter totals are then judged against the device's earlier readings (counter_quality.py): a
wrap, reset or backward step overrides quality good and raises an event for `take_events()`.

A request that fails yields comm_error readings without a value: a failed read is never a number.
A device that does not answer at all ends its poll at once (the line is not held for one timeout
per request) and is backed off; it is read again as soon as it answers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from device_profiles import NO_RATIOS, Kind, Profile, Ratios
from device_profiles.dlt645 import AnyProfile, Dlt645Point, Dlt645Profile
from metertrace.timeutil import utcnow
from metertrace.wire import Quality

from .backoff import Backoff
from .counter_quality import CounterNotice, CounterWatch
from .counters import CounterPolicy
from .errors import CommError
from .planning import ReadBlock, decode_poll, plan_profile, read_block
from .transports import DataIdReader, NoAnswer, RegisterReader

log = logging.getLogger(__name__)


@dataclass
class DeviceHealth:
    polls: int = 0
    failed_requests: int = 0
    last_error: str | None = None
    last_ok: datetime | None = None
    consecutive_failures: int = 0  # polls in a row in which the device did not answer
    skipped_polls: int = 0  # polls the backoff skipped since the device last answered


def reading(
    quantity: str, unit: str, value: float | None, raw: str | None, quality: Quality
) -> dict[str, Any]:
    return {
        "quantity": quantity,
        "value": value,
        "unit": unit,
        "raw": raw,
        "quality": quality.value,
    }


@dataclass
class DevicePoller:
    device: str
    profile: AnyProfile
    reader: RegisterReader | DataIdReader
    plan: list[ReadBlock] = field(init=False)  # Modbus: the blocks read each cycle
    dis: list[Dlt645Point] = field(init=False)  # DL/T 645: one request per data identifier
    health: DeviceHealth = field(default_factory=DeviceHealth)
    ratios: Ratios = NO_RATIOS  # CT/VT from the device config
    backoff: Backoff = field(default_factory=Backoff)
    # the poll's timestamp; a test compressing a week into seconds gives a clock it moves itself
    clock: Callable[[], datetime] = utcnow
    counters: CounterWatch = field(init=False)
    _dlt645_counters: dict[str, CounterPolicy] = field(init=False)

    def __post_init__(self) -> None:
        dlt645 = isinstance(self.profile, Dlt645Profile)
        if dlt645 != isinstance(self.reader, DataIdReader):
            raise TypeError(
                f"{self.device}: profile {self.profile.id} needs a "
                f"{'DL/T 645' if dlt645 else 'Modbus'} transport"
            )
        self.plan, self.dis = [], []
        self.counters = CounterWatch(self.device)
        self._dlt645_counters = {}
        if isinstance(self.profile, Dlt645Profile):
            self.dis = self.profile.points()
            self._dlt645_counters = {
                p.quantity: CounterPolicy.for_dlt645(p) for p in self.dis if p.kind is Kind.COUNTER
            }
        else:
            self.plan = plan_profile(self.profile, self.ratios)

    @property
    def requests_per_cycle(self) -> int:
        return len(self.dis) + sum(b.requests for b in self.plan)

    def take_events(self) -> list[CounterNotice]:
        """Counter events raised by the polls since the last call, oldest first."""
        return self.counters.take()

    async def poll(self) -> tuple[datetime, list[dict[str, Any]]]:
        """Read every block once; returns the poll's timestamp and wire readings.

        The timestamp is taken when the device has the line, just before its first request.
        """
        self.health.polls += 1
        if not self.backoff.should_poll():
            self.health.skipped_polls = self.backoff.skipped
            return self.clock(), self._unread()
        async with self.reader.turn():
            ts = self.clock()
            if isinstance(self.profile, Profile) and isinstance(self.reader, RegisterReader):
                readings, errors, silent, policies = await self._poll_modbus(self.reader)
            else:
                assert isinstance(self.reader, DataIdReader)
                readings, errors, silent = await self._poll_dlt645(self.reader)
                policies = self._dlt645_counters
        self.counters.judge(ts, readings, policies)
        if silent:
            self.backoff.failed()
        else:
            self.backoff.succeeded()
        self.health.consecutive_failures = self.backoff.failures
        self.health.skipped_polls = self.backoff.skipped
        if not errors:
            self.health.last_ok = ts
        return ts, readings

    def _failed(self, exc: CommError) -> None:
        self.health.failed_requests += 1
        self.health.last_error = str(exc)
        log.warning("%s", exc)

    def _unread(self) -> list[dict[str, Any]]:
        """A poll the backoff skipped: every quantity comm_error, nothing asked."""
        if self.dis:
            return [reading(p.quantity, p.unit, None, None, Quality.COMM_ERROR) for p in self.dis]
        return [d.reading() for d in decode_poll(self.plan, [None] * len(self.plan), self.ratios)]

    async def _poll_modbus(
        self, reader: RegisterReader
    ) -> tuple[list[dict[str, Any]], int, bool, dict[str, CounterPolicy]]:
        answers: list[list[int] | None] = []
        errors, silent = 0, False
        for block in self.plan:
            if silent:
                answers.append(None)  # it did not answer the last request; free the line
                continue
            try:
                answers.append(await read_block(reader, block, device=self.device))
            except CommError as exc:
                errors += 1
                silent = isinstance(exc, NoAnswer)
                self._failed(exc)
                answers.append(None)  # its readings become comm_error, without a value
        decoded = decode_poll(self.plan, answers, self.ratios)
        # the CT/VT factor may come from the meter's own registers, so per poll
        policies = {
            d.point.quantity: CounterPolicy.for_point(d.point, d.factor)
            for d in decoded
            if d.point.kind is Kind.COUNTER and d.quality is Quality.GOOD
        }
        return [d.reading() for d in decoded], errors, silent, policies

    async def _poll_dlt645(self, reader: DataIdReader) -> tuple[list[dict[str, Any]], int, bool]:
        readings: list[dict[str, Any]] = []
        errors, silent = 0, False
        for p in self.dis:
            if silent:
                readings.append(reading(p.quantity, p.unit, None, None, Quality.COMM_ERROR))
                continue
            try:
                data = await reader.read_di(p.di, p.format.size)
            except CommError as exc:
                errors += 1
                silent = isinstance(exc, NoAnswer)
                self._failed(exc)
                readings.append(reading(p.quantity, p.unit, None, None, Quality.COMM_ERROR))
                continue
            value = p.decode(data)
            quality = Quality.GOOD if value is not None else Quality.NOT_AVAILABLE
            # raw: the value bytes as the meter sent them (lowest first), the +0x33 removed
            readings.append(reading(p.quantity, p.unit, value, data.hex(), quality))
        return readings, errors, silent
