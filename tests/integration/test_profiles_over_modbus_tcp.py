"""Every Modbus profile in the catalogue, served by its simulator and read back over real
Modbus TCP: BCD, low-word-first, CT/VT ratios (from the meter's registers or the device config),
N/A sentinels, valid ranges and single-register-only devices all round-trip.

Adding a meter is a YAML file: these tests pick it up with no new code.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

import pytest

from device_profiles import Kind, Point, Profile, Ratios, is_bcd, is_float, load_catalogue
from edge_agent.poller import DevicePoller
from edge_agent.transports.modbus_tcp import ModbusTcpReader, TcpConnection
from simulators.modbus_tcp import ModbusTcpSimulator, transform_factor
from simulators.scenario import (
    Counter,
    MeterModel,
    Rate,
    Scenario,
    SimMeter,
    SimRatios,
    SimServer,
    build_models,
)
from tests.truth import tolerance

pytestmark = pytest.mark.integration

CATALOGUE = {k: p for k, p in load_catalogue().items() if isinstance(p, Profile)}
RATE = Rate(base=3600.0, amplitude=1800.0, period_s=60)  # 1 unit/s on average, never negative
SIM_RATIOS = SimRatios(ct=40, vt=10)  # what every simulated meter with CT/VT is programmed with


def has_transforms(profile: Profile) -> bool:
    return any(p.transform for p in profile.points())


def gauge_value(p: Point, i: int, n: int) -> float:
    """Distinct per quantity (a swapped register shows) and inside the register's valid range."""
    if p.valid_range is None:
        return 1.1 + i
    lo, hi = p.valid_range
    return lo + (hi - lo) * (i + 1) / (n + 2)


def meter_for(profile_id: str, unit_id: int, **kw: Any) -> SimMeter:
    profile = CATALOGUE[profile_id]
    counters, gauges = {}, {}
    points = profile.points()
    for i, p in enumerate(points):
        if p.kind is Kind.COUNTER:
            counters[p.quantity] = Counter(initial=10_000.0 + 1000 * i, rate=RATE)
        else:
            gauges[p.quantity] = gauge_value(p, i, len(points))
    spec: dict[str, Any] = {"counters": counters, "gauges": gauges}
    if has_transforms(profile):
        spec["ratios"] = SIM_RATIOS
    spec.update(kw)
    for name in spec.get("not_available", []):
        spec["counters"].pop(name, None)
        spec["gauges"].pop(name, None)
    return SimMeter(id=f"m-{profile_id}", profile=profile_id, unit_id=unit_id, **spec)


def config_ratios(profile: Profile) -> Ratios:
    """What the device config states for ratios the profile does not read from the meter."""
    needed = {r.value for r in profile.ratios_from_config()}
    return Ratios(**{r: getattr(SIM_RATIOS, r) for r in needed})


async def poll_once(meter: SimMeter) -> tuple[float, list[dict[str, Any]], list[Any], Any, Any]:
    scenario = Scenario(name="t", servers=[SimServer(name="s", port=0, meters=[meter])])
    models = build_models(scenario)
    sim = ModbusTcpSimulator(scenario.servers[0], models)
    await sim.start()
    conn = TcpConnection("127.0.0.1", sim.port, timeout_s=2.0)
    profile = CATALOGUE[meter.profile]
    try:
        poller = DevicePoller(
            meter.id,
            profile,
            ModbusTcpReader(meter.id, conn, unit_id=meter.unit_id),
            ratios=config_ratios(profile),
        )
        ts, readings = await poller.poll()
        served = list(sim.meters[meter.id].served)
    finally:
        await conn.close()
        await sim.stop()
    return ts.timestamp(), readings, served, poller, models[meter.id]


def honest_tolerance(p: Point, model: MeterModel, t: float) -> float:
    """The register's resolution is scaled by the CT/VT ratio the value is multiplied with."""
    f = transform_factor(p, model.spec.ratios)
    return tolerance(dataclasses.replace(p, scale=p.scale * f, offset=p.offset * f), model, t)


@pytest.mark.parametrize("profile_id", sorted(CATALOGUE))
def test_profile_reads_back_its_ground_truth(profile_id):
    t0 = time.time()
    profile = CATALOGUE[profile_id]
    t, readings, served, poller, model = asyncio.run(poll_once(meter_for(profile_id, 7)))
    assert len(served) == sum(b.requests for b in poller.plan), "as planned, no more"
    if profile.modbus.single_register_only:
        assert {s.count for s in served} == {1}
    points = {p.quantity: p for p in profile.points()}
    assert [r["quantity"] for r in readings] != [] and {r["quantity"] for r in readings} == set(
        points
    )
    for r in readings:
        assert r["quality"] == "good", r
        p = points[r["quantity"]]
        truth, tol = model.value(p.quantity, t), honest_tolerance(p, model, t)
        assert abs(r["value"] - truth) <= tol, f"{p.quantity}: read {r['value']}, truth {truth}"
    assert time.time() - t0 < 30


def can_be_not_available(p: Point) -> bool:
    return bool(p.na) or is_float(p.type) or is_bcd(p.type)


WITH_QUALITY_FEATURES = sorted(
    k
    for k, prof in CATALOGUE.items()
    if any(can_be_not_available(p) or p.valid_range for p in prof.points())
)


@pytest.mark.parametrize("profile_id", WITH_QUALITY_FEATURES)
def test_sentinels_and_ranges_become_qualities_never_numbers(profile_id):
    """Every quantity the meter can mark N/A is served N/A; every ranged gauge out of range."""
    points = CATALOGUE[profile_id].points()
    na = [p.quantity for p in points if can_be_not_available(p)]
    ranged = {
        p.quantity: p.valid_range[1] + 10 for p in points if p.valid_range and p.quantity not in na
    }
    meter = meter_for(profile_id, 3, not_available=na)
    meter = meter.model_copy(update={"gauges": {**meter.gauges, **ranged}})
    _, readings, *_ = asyncio.run(poll_once(meter))
    by_q = {r["quantity"]: r for r in readings}
    for q in na:
        assert by_q[q]["quality"] == "not_available" and by_q[q]["value"] is None, by_q[q]
        assert by_q[q]["raw"], "the sentinel is kept as evidence"
    for q, v in ranged.items():
        assert by_q[q]["quality"] == "out_of_range", by_q[q]
        assert by_q[q]["value"] == pytest.approx(v, rel=1e-3), "an out-of-range value is kept"
    others = set(by_q) - set(na) - set(ranged)
    assert all(by_q[q]["quality"] == "good" for q in others)


def test_dead_unit_gives_comm_errors_without_numbers():
    async def run():
        meter = meter_for("eastron-sdm630", 1)
        scenario = Scenario(name="t", servers=[SimServer(name="s", port=0, meters=[meter])])
        sim = ModbusTcpSimulator(scenario.servers[0], build_models(scenario))
        await sim.start()
        sim.meters[meter.id].dead = True
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
