"""The agent's composition root: config -> pollers, outbox, publisher, scheduler, status."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobExecutionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from device_profiles import Ratios, find_profile
from device_profiles.dlt645 import AnyProfile
from metertrace.signing import gateway_signer
from metertrace.timeutil import to_wire, utcnow

from .backoff import Backoff
from .calibration import CalibrationBook
from .config import AgentConfig, DeviceSettings
from .messages import MessageSigner
from .outbox import Outbox
from .poller import DevicePoller
from .publisher import Publisher
from .retention import Limits, UnstoredPolls
from .status import (
    DEGRADED,
    FAILING,
    OK,
    WAITING,
    DeviceReport,
    StatusSchedule,
    change_key,
    poll_state,
    status_message,
)
from .status import encode as encode_status
from .transports.factory import TransportFactory

log = logging.getLogger(__name__)
STATUS_CHECK_S = 1.0  # how often the status is checked for a change worth publishing


def build_pollers(
    config: AgentConfig, factory: TransportFactory, clock: Callable[[], datetime] = utcnow
) -> list[DevicePoller]:
    profiles: dict[str, AnyProfile] = {}
    pollers = []
    for d in config.devices:
        if d.profile not in profiles:
            profiles[d.profile] = find_profile(d.profile, config.profile_dirs)
        profile = profiles[d.profile]
        pollers.append(
            DevicePoller(
                d.id,
                profile,
                factory.reader(d, profile),
                backoff=Backoff.for_interval(d.interval_s),
                ratios=Ratios(ct=d.ct_ratio, vt=d.vt_ratio),
                clock=clock,
            )
        )
    return pollers


def schedule_for(device: DeviceSettings, now: datetime) -> tuple[IntervalTrigger, datetime]:
    """The device's trigger and first poll: at once, or at the next boundary when aligned.

    Aligned polls fall on multiples of the interval since midnight UTC (interval_s divides a
    day, checked in the config), e.g. 900 s -> :00, :15, :30, :45 every hour.
    """
    if not device.align:
        return IntervalTrigger(seconds=device.interval_s), now
    midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    trigger = IntervalTrigger(seconds=device.interval_s, start_date=midnight, timezone=UTC)
    first = trigger.get_next_fire_time(None, now)
    assert first is not None  # an interval trigger without an end always fires again
    return trigger, first


class Agent:
    def __init__(self, config: AgentConfig, *, cycles: int | None = None) -> None:
        self.config = config
        self.cycles = cycles
        self.gateway = config.gateway.id
        signer, hint = gateway_signer(self.gateway, config.signing.alg, config.signing.key_file)
        if hint:
            log.warning("%s", hint)
        self.signer = MessageSigner(self.gateway, signer)
        # pymodbus clients bind to the running loop, so pollers are built inside run()
        self.pollers: list[DevicePoller] = []
        self._transports: TransportFactory | None = None
        self.limits = Limits(config.outbox.max_bytes, timedelta(days=config.outbox.max_age_days))
        self.outbox = Outbox(config.state_dir / "agent.db", self.limits)
        self.calibration: CalibrationBook | None = None
        if config.calibration is not None:
            self.calibration = CalibrationBook(
                self.gateway,
                config.calibration.collector_public_key_file.read_text(),
                config.state_dir / "calibration.json",
            )
        self.publisher = Publisher(
            config.mqtt,
            self.gateway,
            self.outbox,
            event_builder=self.signer.data_loss,
            on_calibration=self.calibration.on_message if self.calibration else None,
        )
        self.overruns: dict[str, int] = {d.id: 0 for d in config.devices}
        self.states: dict[str, str] = {d.id: WAITING for d in config.devices}
        self.unstored_polls: dict[str, int] = {d.id: 0 for d in config.devices}
        self._unreported: dict[str, UnstoredPolls] = {}
        self._started = utcnow()
        self._done: dict[str, int] = {d.id: 0 for d in config.devices}
        self._all_done = asyncio.Event()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox")

    async def poll_once(self, poller: DevicePoller) -> list[dict[str, Any]]:
        """One poll of one device, stored durably; returns its readings."""
        ts, readings = await poller.poll()
        # The durable append waits for an fsync: off the event loop, so the other devices'
        # answers are read meanwhile. One writer thread: the outbox serialises appends anyway,
        # and each extra thread costs a malloc arena on a small gateway.
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._writer, self.record, poller, ts, readings)
        return readings

    async def _cycle(self, poller: DevicePoller, scheduler: AsyncIOScheduler) -> None:
        await self.poll_once(poller)
        self._done[poller.device] += 1
        if self.cycles is not None and self._done[poller.device] >= self.cycles:
            scheduler.remove_job(poller.device)
            if all(n >= self.cycles for n in self._done.values()):
                self._all_done.set()

    def record(self, poller: DevicePoller, ts: datetime, readings: list[dict[str, Any]]) -> None:
        """Store one poll's message in the outbox; a poll that cannot be stored is reported.

        The counter events the poll raised and the counters' trusted values go into the same
        transaction, so they are stored (and later sent) exactly when the readings are.
        """
        device = poller.device
        self._track_state(poller, poll_state(readings))
        if self.calibration is not None:
            readings = self.calibration.stamp(device, ts, readings)
        notices = poller.counters.take()
        try:
            seq = self.outbox.append(
                device,
                lambda s, p: self.signer.reading(device, ts, readings, s, p),
                at=ts,
                trusted=poller.counters.trusted(),
                events=(notices, self.signer.counter),
            )
        except sqlite3.Error as exc:
            poller.counters.put_back(notices)  # they go out with the next stored poll
            self.unstored_polls[device] += 1
            self._unreported.setdefault(device, UnstoredPolls(0, ts, ts)).add(ts)
            log.error(
                "%s: cannot store the poll of %s in the outbox at %s (%s): this poll is lost; "
                "a data-loss event reports it once the outbox can be written again",
                device,
                to_wire(ts),
                self.config.state_dir,
                exc,
            )
            return
        log.debug("%s seq %d: %d readings", device, seq, len(readings))
        lost = self._unreported.pop(device, None)
        if lost is not None:
            try:
                self.outbox.add_events([lost.loss(device)], self.signer.data_loss)
            except sqlite3.Error:
                self._unreported[device] = lost  # the next stored poll tries again
        self.publisher.notify()

    def _track_state(self, poller: DevicePoller, state: str) -> None:
        before = self.states[poller.device]
        self.states[poller.device] = state
        if state == before:
            return
        if state == OK and before != WAITING:
            log.info("%s: every request answered again", poller.device)
        elif state in (DEGRADED, FAILING):
            log.warning(
                "%s: %s (%s)", poller.device, state, poller.health.last_error or "no detail"
            )

    def status(self, state: str = "online") -> dict[str, Any]:
        reports = self._device_reports()
        return status_message(
            gateway=self.gateway,
            now=utcnow(),
            started=self._started,
            devices=reports,
            outbox=self.outbox.stats(),
            limits=self.limits,
            state=state,
        )

    def _device_reports(self) -> dict[str, DeviceReport]:
        health = {p.device: p.health for p in self.pollers}
        return {
            d: DeviceReport(
                state=self.states[d],
                health=health.get(d),
                overruns=self.overruns.get(d, 0),
                unstored_polls=self.unstored_polls[d],
            )
            for d in self.states
        }

    async def _report_status(self, schedule: StatusSchedule, ending: asyncio.Event) -> None:
        """Publish the retained status on every change, and at least every interval."""
        while not ending.is_set():
            try:
                # a reconnect counts as a change: the snapshot sent at connect may be stale
                key = (
                    change_key(self._device_reports(), self.outbox.stats()),
                    self.publisher.connected,
                )
                now = time.monotonic()
                if schedule.due(now, key):
                    self.publisher.publish_status(encode_status(self.status()))
                    schedule.published(now, key)
            except Exception:  # status is operational help; it must never stop the polling
                log.exception("could not publish the status")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ending.wait(), STATUS_CHECK_S)

    def _on_overrun(self, event: JobExecutionEvent) -> None:
        self.overruns[event.job_id] = self.overruns.get(event.job_id, 0) + 1
        log.warning(
            "%s: poll still running at the next interval; skipped (overrun %d)",
            event.job_id,
            self.overruns[event.job_id],
        )

    async def run(self, stop: asyncio.Event) -> None:
        self._transports = TransportFactory()
        self.pollers = build_pollers(self.config, self._transports)
        for p in self.pollers:  # a reset while the agent was down is still a reset
            p.counters.restore(self.outbox.trusted(p.device))
        self.publisher.start()
        scheduler = AsyncIOScheduler(timezone="UTC")
        scheduler.add_listener(self._on_overrun, EVENT_JOB_MAX_INSTANCES)
        by_id = {d.id: d for d in self.config.devices}
        for p in self.pollers:
            trigger, first = schedule_for(by_id[p.device], utcnow())
            scheduler.add_job(
                self._cycle,
                trigger,
                args=[p, scheduler],
                id=p.device,
                max_instances=1,
                coalesce=True,
                next_run_time=first,
                misfire_grace_time=None,
            )
        scheduler.start()
        log.info("agent %s polling %d devices", self.gateway, len(self.pollers))
        ending = asyncio.Event()
        reporter = asyncio.create_task(
            self._report_status(StatusSchedule(self.config.status.interval_s), ending)
        )
        stopper = asyncio.create_task(stop.wait())
        finisher = asyncio.create_task(self._all_done.wait())
        await asyncio.wait({stopper, finisher}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        finisher.cancel()
        scheduler.shutdown(wait=False)
        ending.set()
        await reporter
        # a poll being stored finishes before the outbox is drained and closed
        await asyncio.to_thread(self._writer.shutdown, True)
        drained = await asyncio.to_thread(self.publisher.drain, 30.0 if self.cycles else 5.0)
        if not drained:
            log.warning(
                "%d messages stay in the outbox; they are sent on the next start",
                self.outbox.depth(),
            )
        self.publisher.stop(encode_status(self.status(state="offline")))
        await self._transports.close()
        self.outbox.close()
