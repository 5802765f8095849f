"""Run every server of a scenario until stopped (`metertrace sim run -c scenario.yaml`)."""

from __future__ import annotations

import asyncio
import logging

from .dlt645 import Dlt645Simulator
from .modbus_rtu import ModbusRtuSimulator
from .modbus_tcp import ModbusTcpSimulator, SimulatedMeter
from .scenario import Scenario, build_models

log = logging.getLogger(__name__)


class SimulatorSet:
    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.models = build_models(scenario)
        tcp = [s for s in scenario.servers if s.protocol == "modbus-tcp"]
        self.servers = [ModbusTcpSimulator(s, self.models) for s in tcp]
        self.serial_servers = [
            ModbusRtuSimulator(s, self.models)
            if s.protocol == "modbus-rtu"
            else Dlt645Simulator(s, self.models)
            for s in scenario.servers
            if s.protocol != "modbus-tcp"
        ]

    async def start(self) -> None:
        for s in self.servers:
            await s.start()
            log.info(
                "simulator %s: %d meters on %s:%d", s.spec.name, len(s.meters), s.spec.host, s.port
            )
        for r in self.serial_servers:
            await r.start()
            log.info("simulator %s: %d meters on %s", r.spec.name, len(r.meters), r.path)

    async def stop(self) -> None:
        for s in self.servers:
            await s.stop()
        for r in self.serial_servers:
            await r.stop()

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
            lines = [f"{s.spec.name} {s.port}" for s in sims.servers]
            lines += [f"{r.spec.name} {r.path}" for r in sims.serial_servers]
            f.write("\n".join(lines) + "\n")
    await stop.wait()
    await sims.stop()
