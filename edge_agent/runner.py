"""The agent's composition root: config -> pollers, outbox, publisher, scheduler."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime
from typing import Any

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobExecutionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from device_profiles import find_profile
from metertrace.keys import read_key
from metertrace.timeutil import to_wire, utcnow
from metertrace.wire import SCHEMA_VERSION, message_hash, readings_topic, sign_hmac

from .config import AgentConfig
from .outbox import Outbox
from .poller import DevicePoller
from .publisher import Publisher
from .transports.factory import TransportFactory

log = logging.getLogger(__name__)


def build_pollers(config: AgentConfig, factory: TransportFactory) -> list[DevicePoller]:
    return [
        DevicePoller(d.id, find_profile(d.profile, config.profile_dirs), factory.reader(d))
        for d in config.devices
    ]


class Agent:
    def __init__(self, config: AgentConfig, *, cycles: int | None = None) -> None:
        self.config = config
        self.cycles = cycles
        self.gateway = config.gateway.id
        self._key = read_key(config.signing.key_file)
        # pymodbus clients bind to the running loop, so pollers are built inside run()
        self.pollers: list[DevicePoller] = []
        self._transports: TransportFactory | None = None
        self.outbox = Outbox(config.state_dir / "agent.db")
        self.publisher = Publisher(config.mqtt, self.gateway, self.outbox)
        self.overruns: dict[str, int] = {d.id: 0 for d in config.devices}
        self._done: dict[str, int] = {d.id: 0 for d in config.devices}
        self._all_done = asyncio.Event()

    def _message(
        self, device: str, ts: datetime, readings: list[dict[str, Any]], seq: int, prev: str
    ) -> tuple[str, bytes, str]:
        body = {
            "v": SCHEMA_VERSION,
            "gateway": self.gateway,
            "device": device,
            "seq": seq,
            "ts": to_wire(ts),
            "readings": readings,
            "prev": prev,
        }
        msg = sign_hmac(body, self._key, kid=self.gateway)
        payload = json.dumps(msg, separators=(",", ":"), allow_nan=False).encode()
        return readings_topic(self.gateway, device), payload, message_hash(msg)

    async def _cycle(self, poller: DevicePoller, scheduler: AsyncIOScheduler) -> None:
        ts, readings = await poller.poll()
        seq = self.outbox.append(
            poller.device, lambda s, p: self._message(poller.device, ts, readings, s, p)
        )
        self.publisher.notify()
        log.debug("%s seq %d: %d readings", poller.device, seq, len(readings))
        self._done[poller.device] += 1
        if self.cycles is not None and self._done[poller.device] >= self.cycles:
            scheduler.remove_job(poller.device)
            if all(n >= self.cycles for n in self._done.values()):
                self._all_done.set()

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
        self.publisher.start()
        scheduler = AsyncIOScheduler(timezone="UTC")
        scheduler.add_listener(self._on_overrun, EVENT_JOB_MAX_INSTANCES)
        by_id = {d.id: d for d in self.config.devices}
        for p in self.pollers:
            scheduler.add_job(
                self._cycle,
                IntervalTrigger(seconds=by_id[p.device].interval_s),
                args=[p, scheduler],
                id=p.device,
                max_instances=1,
                coalesce=True,
                next_run_time=utcnow(),
                misfire_grace_time=None,
            )
        scheduler.start()
        log.info("agent %s polling %d devices", self.gateway, len(self.pollers))
        stopper = asyncio.create_task(stop.wait())
        finisher = asyncio.create_task(self._all_done.wait())
        await asyncio.wait({stopper, finisher}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        finisher.cancel()
        scheduler.shutdown(wait=False)
        drained = await asyncio.to_thread(self.publisher.drain, 30.0 if self.cycles else 5.0)
        if not drained:
            log.warning(
                "%d messages stay in the outbox; they are sent on the next start",
                self.outbox.depth(),
            )
        self.publisher.stop()
        await self._transports.close()
        self.outbox.close()
