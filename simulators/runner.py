"""Run every server of a scenario until stopped (`metertrace sim run -c scenario.yaml`)."""

from __future__ import annotations

import asyncio
import logging

from .modbus_tcp import ModbusTcpSimulator, SimulatedMeter
from .scenario import Scenario, build_models

log = logging.getLogger(__name__)


class SimulatorSet:
    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.models = build_models(scenario)
        self.servers = [ModbusTcpSimulator(s, self.models) for s in scenario.servers]

    async def start(self) -> None:
        for s in self.servers:
            await s.start()
            log.info(
                "simulator %s: %d meters on %s:%d", s.spec.name, len(s.meters), s.spec.host, s.port
            )

    async def stop(self) -> None:
        for s in self.servers:
            await s.stop()

    def meter(self, meter_id: str) -> SimulatedMeter:
        for s in self.servers:
            if meter_id in s.meters:
                return s.meters[meter_id]
        raise KeyError(meter_id)


async def run(scenario: Scenario, stop: asyncio.Event, ready_file: str | None = None) -> None:
    sims = SimulatorSet(scenario)
    await sims.start()
    if ready_file:
        # lets a parent process wait on the file instead of guessing a delay
        with open(ready_file, "w") as f:
            f.write("\n".join(f"{s.spec.name} {s.port}" for s in sims.servers) + "\n")
    await stop.wait()
    await sims.stop()
