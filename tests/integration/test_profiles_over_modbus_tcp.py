"""Every profile in the catalogue, served by its simulator and read back over real Modbus TCP.

Adding a meter is a YAML file: this test picks it up with no new code.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from device_profiles import Kind, load_catalogue
from edge_agent.poller import DevicePoller
from edge_agent.transports.modbus_tcp import ModbusTcpReader, TcpConnection
from simulators.modbus_tcp import ModbusTcpSimulator
from simulators.scenario import Counter, Rate, Scenario, SimMeter, SimServer, build_models
from tests.truth import tolerance

pytestmark = pytest.mark.integration

CATALOGUE = load_catalogue()
RATE = Rate(base=3600.0, amplitude=1800.0, period_s=60)  # 1 unit/s on average, never negative


def meter_for(profile_id: str, unit_id: int) -> SimMeter:
    profile = CATALOGUE[profile_id]
    counters, gauges = {}, {}
    for i, p in enumerate(profile.points()):
        if p.kind is Kind.COUNTER:
            counters[p.quantity] = Counter(initial=10_000.0 + 1000 * i, rate=RATE)
        else:
            gauges[p.quantity] = 1.1 + i  # distinct per quantity: a swapped register shows
    return SimMeter(
        id=f"m-{profile_id}", profile=profile_id, unit_id=unit_id, counters=counters, gauges=gauges
    )


async def poll_against_simulator(profile_id: str) -> list[tuple[str, float, float, float]]:
    scenario = Scenario(
        name="t", servers=[SimServer(name="s", port=0, meters=[meter_for(profile_id, 7)])]
    )
    models = build_models(scenario)
    sim = ModbusTcpSimulator(scenario.servers[0], models)
    await sim.start()
    conn = TcpConnection("127.0.0.1", sim.port, timeout_s=2.0)
    try:
        poller = DevicePoller(
            f"m-{profile_id}", CATALOGUE[profile_id], ModbusTcpReader("m", conn, unit_id=7)
        )
        ts, readings = await poller.poll()
        served = list(sim.meters[f"m-{profile_id}"].served)
    finally:
        await conn.close()
        await sim.stop()
    assert len(served) == len(poller.plan), "one request per planned block, no more"
    model = models[f"m-{profile_id}"]
    points = {p.quantity: p for p in CATALOGUE[profile_id].points()}
    out = []
    for r in readings:
        assert r["quality"] == "good", r
        p = points[r["quantity"]]
        t = ts.timestamp()
        out.append((p.quantity, r["value"], model.value(p.quantity, t), tolerance(p, model, t)))
    return out


@pytest.mark.parametrize("profile_id", sorted(CATALOGUE))
def test_profile_reads_back_its_ground_truth(profile_id):
    t0 = time.time()
    results = asyncio.run(poll_against_simulator(profile_id))
    assert {q for q, *_ in results} == {p.quantity for p in CATALOGUE[profile_id].points()}
    for quantity, value, truth, tol in results:
        assert abs(value - truth) <= tol, f"{quantity}: read {value}, truth {truth}, tol {tol}"
    assert time.time() - t0 < 30


def test_dead_unit_gives_comm_errors_without_numbers():
    async def run():
        scenario = Scenario(
            name="t", servers=[SimServer(name="s", port=0, meters=[meter_for("eastron-sdm630", 1)])]
        )
        sim = ModbusTcpSimulator(scenario.servers[0], build_models(scenario))
        await sim.start()
        sim.meters["m-eastron-sdm630"].dead = True
        conn = TcpConnection("127.0.0.1", sim.port, timeout_s=1.0)
        poller = DevicePoller("m", CATALOGUE["eastron-sdm630"], ModbusTcpReader("m", conn, 1))
        try:
            return poller, (await poller.poll())[1]
        finally:
            await conn.close()
            await sim.stop()

    poller, readings = asyncio.run(run())
    assert readings and all(r["quality"] == "comm_error" and r["value"] is None for r in readings)
    assert "Modbus exception 4 (server device failure)" in (poller.health.last_error or "")


def test_unreachable_port_is_a_comm_error():
    async def run():
        conn = TcpConnection("127.0.0.1", 1, timeout_s=0.5)
        poller = DevicePoller(
            "m", CATALOGUE["synthetic-steam-vortex"], ModbusTcpReader("m", conn, 1)
        )
        try:
            return poller, (await poller.poll())[1]
        finally:
            await conn.close()

    poller, readings = asyncio.run(run())
    assert {r["quality"] for r in readings} == {"comm_error"}
    assert "connection refused" in (poller.health.last_error or "")
