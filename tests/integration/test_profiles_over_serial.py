"""Every profile over a real serial line (a socat pty pair): DL/T 645 profiles against the
DL/T 645 simulator, Modbus profiles over Modbus RTU. Adding a meter is a YAML file: these tests
pick it up with no new code.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from device_profiles import Kind, Profile, load_catalogue
from device_profiles.dlt645 import Dlt645Point, Dlt645Profile
from edge_agent.poller import DevicePoller
from edge_agent.transports.dlt645 import Dlt645Reader
from edge_agent.transports.modbus_rtu import ModbusRtuReader
from edge_agent.transports.serial_bus import LineSettings, SerialBus, modbus_rtu_gap_s
from simulators.dlt645 import Dlt645Simulator
from simulators.modbus_rtu import ModbusRtuSimulator
from simulators.scenario import Counter, MeterModel, Scenario, SimMeter, SimServer, build_models
from tests.integration.test_profiles_over_modbus_tcp import (
    RATE,
    config_ratios,
    honest_tolerance,
    meter_for,
)
from tests.serial_pty import pty_pair
from tests.truth import MAX_READ_LATENCY_S

pytestmark = pytest.mark.integration

CATALOGUE = load_catalogue()
DLT645 = sorted(k for k, p in CATALOGUE.items() if isinstance(p, Dlt645Profile))
MODBUS = sorted(k for k, p in CATALOGUE.items() if isinstance(p, Profile))
ADDRESS = "000000123456"


def fitting(p: Dlt645Point, v: float) -> float:
    """v shrunk until it fits the point's BCD format (a negative value where it is signed)."""
    integer_digits = p.format.digits - p.format.decimals
    limit = (8 if p.signed else 10) * 10 ** (integer_digits - 1)
    while abs(v) >= limit:
        v /= 10
    return round(-v if p.signed else v, p.format.decimals)


def dlt645_meter(profile_id: str) -> SimMeter:
    profile = CATALOGUE[profile_id]
    assert isinstance(profile, Dlt645Profile)
    counters, gauges = {}, {}
    for i, p in enumerate(profile.points()):
        if p.kind is Kind.COUNTER:
            counters[p.quantity] = Counter(initial=10_000.0 + 1000 * i, rate=RATE)
        else:
            gauges[p.quantity] = fitting(p, 1.1 + i)  # distinct: a swapped DI shows
    return SimMeter(
        id=f"m-{profile_id}",
        profile=profile_id,
        address=ADDRESS,
        counters=counters,
        gauges=gauges,
    )


def dlt645_tolerance(p: Dlt645Point, model: MeterModel, t: float, poll_s: float) -> float:
    """One step of the format plus how far the truth moves while the poll is under way."""
    truth = model.value(p.quantity, t)
    moving = max(abs(model.value(p.quantity, t + poll_s * i / 10) - truth) for i in range(11))
    return p.format.step * abs(p.scale) + moving


@pytest.mark.parametrize("profile_id", DLT645)
def test_dlt645_profile_reads_back_its_ground_truth(tmp_path: Path, profile_id: str) -> None:
    profile = CATALOGUE[profile_id]
    assert isinstance(profile, Dlt645Profile)
    meter = dlt645_meter(profile_id)

    async def run() -> tuple[float, float, list[dict[str, Any]], MeterModel, int]:
        with pty_pair(tmp_path) as (agent_end, sim_end):
            scenario = Scenario(
                name="t",
                servers=[
                    SimServer(name="s", protocol="dlt645", serial_port=sim_end, meters=[meter])
                ],
            )
            models = build_models(scenario)
            sim = Dlt645Simulator(scenario.servers[0], models)
            await sim.start()
            line = LineSettings(profile.dlt645.baudrate, profile.dlt645.parity)
            bus = SerialBus(agent_end, line, "dlt645", gap_s=0.005)
            try:
                poller = DevicePoller(meter.id, profile, Dlt645Reader(meter.id, bus, ADDRESS, 1.0))
                loop = asyncio.get_running_loop()
                t0 = loop.time()
                ts, readings = await poller.poll()
                poll_s = loop.time() - t0
            finally:
                await bus.close()
                await sim.stop()
            return ts.timestamp(), poll_s, readings, models[meter.id], len(sim.log)

    t, poll_s, readings, model, requests = asyncio.run(run())
    assert requests == len(profile.registers), "one request per data identifier"
    points = {p.quantity: p for p in profile.points()}
    assert [r["quantity"] for r in readings] == list(points)
    assert poll_s < MAX_READ_LATENCY_S * 4
    for r in readings:
        assert r["quality"] == "good", r
        p = points[r["quantity"]]
        truth, tol = model.value(p.quantity, t), dlt645_tolerance(p, model, t, poll_s)
        assert abs(r["value"] - truth) <= tol, f"{p.quantity}: read {r['value']}, truth {truth}"
        assert len(bytes.fromhex(r["raw"])) == p.format.size, "raw is the value bytes as read"


@pytest.mark.parametrize("profile_id", MODBUS)
def test_modbus_profile_reads_back_its_ground_truth_over_rtu(tmp_path, profile_id):
    profile = CATALOGUE[profile_id]
    assert isinstance(profile, Profile)
    meter = meter_for(profile_id, 7)

    async def run():
        with pty_pair(tmp_path) as (agent_end, sim_end):
            server = SimServer(name="s", protocol="modbus-rtu", serial_port=sim_end, meters=[meter])
            models = build_models(Scenario(name="t", servers=[server]))
            sim = ModbusRtuSimulator(server, models)
            await sim.start()
            line = LineSettings(9600, "N")
            bus = SerialBus(agent_end, line, "modbus-rtu", modbus_rtu_gap_s(line))
            try:
                poller = DevicePoller(
                    meter.id,
                    profile,
                    ModbusRtuReader(meter.id, bus, 7, timeout_s=1.0),
                    ratios=config_ratios(profile),
                )
                ts, readings = await poller.poll()
            finally:
                await bus.close()
                await sim.stop()
            return ts.timestamp(), readings, poller, models[meter.id], list(sim.log)

    t, readings, poller, model, log = asyncio.run(run())
    assert len(log) == poller.requests_per_cycle and all(r.answered for r in log)
    points = {p.quantity: p for p in profile.points()}
    assert {r["quantity"] for r in readings} == set(points)
    for r in readings:
        assert r["quality"] == "good", r
        p = points[r["quantity"]]
        truth, tol = model.value(p.quantity, t), honest_tolerance(p, model, t)
        assert abs(r["value"] - truth) <= tol, f"{p.quantity}: read {r['value']}, truth {truth}"
