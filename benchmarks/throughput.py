"""Readings per second over Modbus TCP: a raw pymodbus loop against the agent's own poll path.

Both sides read the same blocks (the agent's plan) from the same simulators, one request at a
time per gateway connection and all gateways concurrently, as fast as the answers come: the
figure is capacity, not the configured interval. The agent side runs everything a poll does in
production (DevicePoller decode, Agent message building and HMAC signing, the outbox's durable
append, and optionally MQTT publishing to a real broker until every PUBACK) but the scheduler.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from device_profiles import Function
from edge_agent.config import AgentConfig, ModbusTcpTransport
from edge_agent.planning import ReadBlock, plan_reads
from edge_agent.poller import DevicePoller
from edge_agent.runner import Agent, build_pollers
from edge_agent.transports.factory import TransportFactory

from .machine import process_cpu_s
from .plant import modbus_profile


@dataclass
class Measurement:
    mode: str
    readings: int = 0  # one quantity value read and (for the agent) published
    requests: int = 0
    missing: int = 0  # values not read: failed requests, no value
    wall_s: float = 0.0
    cpu_s: float = 0.0  # this process, every thread
    others_cpu_s: dict[str, float] = field(default_factory=dict)  # e.g. simulator, broker

    @property
    def readings_per_s(self) -> float:
        return self.readings / self.wall_s

    def as_dict(self) -> dict[str, object]:
        return {
            "mode": self.mode,
            "readings": self.readings,
            "requests": self.requests,
            "missing": self.missing,
            "wall_s": round(self.wall_s, 4),
            "readings_per_s": round(self.readings_per_s, 1),
            "requests_per_s": round(self.requests / self.wall_s, 1),
            "cpu_s": round(self.cpu_s, 4),
            "cpu_us_per_reading": round(1e6 * self.cpu_s / max(self.readings, 1), 2),
            # 1.0 = one core busy the whole time: that process was the bottleneck
            "busy": {
                "bench": round(self.cpu_s / self.wall_s, 3),
                **{k: round(v / self.wall_s, 3) for k, v in self.others_cpu_s.items()},
            },
        }


@contextmanager
def stopwatch(m: Measurement, others: dict[str, int]) -> Iterator[None]:
    before = {name: process_cpu_s(pid) for name, pid in others.items()}
    cpu0, t0 = time.process_time(), time.perf_counter()
    yield
    m.wall_s = time.perf_counter() - t0
    m.cpu_s = time.process_time() - cpu0
    m.others_cpu_s = {name: process_cpu_s(pid) - before[name] for name, pid in others.items()}


def _plans(config: AgentConfig) -> dict[tuple[str, int], list[tuple[int, list[ReadBlock]]]]:
    """Gateway address -> (unit id, the agent's read plan) of each device behind it."""
    out: dict[tuple[str, int], list[tuple[int, list[ReadBlock]]]] = {}
    for d in config.devices:
        t = d.transport
        if not isinstance(t, ModbusTcpTransport):
            raise ValueError(f"device {d.id}: transport {t.type}; this benchmark is Modbus TCP")
        profile = modbus_profile(d.profile, config.profile_dirs)
        m = profile.modbus
        plan = plan_reads(profile.points(), max_block=m.max_block, max_gap=m.max_gap)
        out.setdefault((t.host, t.port), []).append((t.unit_id, plan))
    return out


async def baseline(config: AgentConfig, cycles: int, others: dict[str, int]) -> Measurement:
    """Raw pymodbus: the same requests, no decoding, signing, storing or publishing."""
    m = Measurement("baseline: raw pymodbus")
    plans = _plans(config)
    clients = {
        addr: AsyncModbusTcpClient(addr[0], port=addr[1], timeout=2.0, retries=0) for addr in plans
    }

    async def gateway(addr: tuple[str, int], n: int, count: bool) -> None:
        client = clients[addr]
        for _ in range(n):
            for unit, plan in plans[addr]:
                for b in plan:
                    read = (
                        client.read_holding_registers
                        if b.function is Function.HOLDING
                        else client.read_input_registers
                    )
                    try:
                        rr = await read(b.address, count=b.count, device_id=unit)
                        ok = not rr.isError() and len(rr.registers) == b.count
                    except ModbusException:
                        ok = False
                    if count:
                        m.requests += 1
                        m.readings += len(b.points) if ok else 0
                        m.missing += 0 if ok else len(b.points)

    try:
        for c in clients.values():
            if not await c.connect():
                raise RuntimeError(f"baseline cannot connect to {c.comm_params.host}")
        await asyncio.gather(*(gateway(a, 1, False) for a in plans))  # warm-up
        with stopwatch(m, others):
            await asyncio.gather(*(gateway(a, cycles, True) for a in plans))
    finally:
        for c in clients.values():
            c.close()
    return m


async def agent(
    config: AgentConfig, cycles: int, others: dict[str, int], *, publish: bool
) -> Measurement:
    """The agent's poll path, end to end in-process: Agent._cycle without the scheduler."""
    mode = "agent: poll+sign+outbox+MQTT" if publish else "agent: poll+sign+outbox"
    m = Measurement(mode)
    a = Agent(config)
    factory = TransportFactory()
    pollers = build_pollers(config, factory)
    if publish:
        a.publisher.start()

    async def device(p: DevicePoller, n: int, count: bool) -> None:
        for _ in range(n):
            readings = await a.poll_once(p)  # the agent's own cycle: poll, sign, append durably
            if count:
                read = sum(r["value"] is not None for r in readings)
                m.requests += len(p.plan)
                m.readings += read
                m.missing += len(readings) - read

    async def drained() -> None:
        if publish and not await asyncio.to_thread(a.publisher.drain, 120.0):
            raise RuntimeError(f"{a.outbox.depth()} messages not acknowledged after 120 s")

    try:
        await asyncio.gather(*(device(p, 1, False) for p in pollers))  # warm-up, connects MQTT
        await drained()
        with stopwatch(m, others):
            await asyncio.gather(*(device(p, cycles, True) for p in pollers))
            await drained()
    finally:
        if publish:
            a.publisher.stop()
        await factory.close()
        a.outbox.close()
    return m


Runner = Callable[[AgentConfig, int, dict[str, int]], Measurement]


def run_baseline(config: AgentConfig, cycles: int, others: dict[str, int]) -> Measurement:
    return asyncio.run(baseline(config, cycles, others))


def run_agent(config: AgentConfig, cycles: int, others: dict[str, int]) -> Measurement:
    return asyncio.run(agent(config, cycles, others, publish=False))


def run_agent_mqtt(config: AgentConfig, cycles: int, others: dict[str, int]) -> Measurement:
    return asyncio.run(agent(config, cycles, others, publish=True))
