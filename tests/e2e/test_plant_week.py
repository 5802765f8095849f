"""A week of a three-line plant, end to end: allocated energy per batch equals the ground truth.

metertrace/examples/three-lines: a main electricity meter with sub-meters on L1 and L2 (L3 is
the residual), a gas meter shared by L1 and L2 by produced quantity, a steam header shared by
L2 and L3 by run time whose idle heat loss is spread over the week; every meter has a small
error of its own. The week is compressed: the simulator and the agent's pollers share a clock the
test moves one poll interval at a time, so a week of readings is read over Modbus TCP, signed,
stored in the outbox, published to Mosquitto and ingested by a real collector process in about a
minute. Batches go in through `metertrace batches import` (the CSV the scenario's MES exports),
the topology through `metertrace topology set`; figures come from GET /batches/{id}/energy.

The truth (tests/plant_truth.py) applies the declared rules to the simulator's true loads minute
by minute; the collector applies them to the metered counters read every poll. Every batch's
figure per medium must lie within its stated U (k = 2) of the truth, and every meter's shares
plus overhead must sum exactly to its metered total.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from device_profiles import quantity
from edge_agent.config import AgentConfig
from edge_agent.runner import Agent, build_pollers
from edge_agent.transports.factory import TransportFactory
from metertrace.config import load_config
from metertrace.signing import create_gateway_key
from metertrace.timeutil import to_wire, utcnow
from simulators.modbus_tcp import ModbusTcpSimulator
from simulators.plant import PlantModel
from simulators.scenario import Scenario, build_models, build_plant
from tests.helpers import (
    call_api,
    free_port,
    metertrace,
    stop,
    tail,
    try_get_json,
    wait_collector,
    wait_for,
)
from tests.plant_truth import Truth, expected

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "metertrace" / "examples" / "three-lines"
GATEWAY = "gw-plant"
POLL_S = 60  # a real plant's energy poll
# The agent starts when it starts: its polls are not in phase with the MES's whole minutes, so
# every batch boundary (and the week's edges) falls between two readings and is interpolated.
PHASE_S = 37
DAYS = 7
TOKENS = {
    "li": ("plant_engineer", "t-li-plant"),
    "wang": ("metrology", "t-wang-metrology"),
    "engine": ("footprint_engine", "t-engine"),
}
MEDIUM_UNIT = {"electricity": "kWh", "gas": "Nm³", "steam": "t"}
# Per meter: accuracy class, and certificate U (%, k = 2) for the calibrated ones. The simulated
# meters' errors (scenario.yaml) lie within these, as a calibrated meter's residual error does.
METROLOGY = {
    "e-main": ("0.5S", 0.4),
    "e-l1": ("1", 0.4),
    "e-l2": ("1", 0.4),
    "g-ovens": ("1.0", 1.0),
    "s-header": ("2.0", None),  # no certificate: its accuracy class states u
}


class VirtualClock:
    """Plant time for the simulator and the pollers, moved by the test."""

    def __init__(self, t: datetime) -> None:
        self.t = t

    def now(self) -> datetime:
        return self.t

    def unix(self) -> float:
        return self.t.timestamp()


@dataclass
class Week:
    plant: PlantModel
    truth: Truth
    epoch: datetime
    end: datetime
    polls: int
    health: dict[str, Any]
    chains: dict[str, dict[str, Any]]  # device -> GET /devices/{id}/chain
    energy: dict[str, dict[str, Any]]  # batch id -> GET /batches/{id}/energy
    period: dict[str, Any]  # GET /energy over the week: every batch from one allocation


def _call(method: str, url: str, who: str, body: Any = None) -> tuple[int, Any]:
    return call_api(method, url, TOKENS[who][1], body)


def _write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    return path


def _scenario(epoch: datetime) -> Scenario:
    doc = yaml.safe_load((EXAMPLE / "scenario.yaml").read_text())
    doc["epoch"] = to_wire(epoch)
    doc["plant"]["days"] = DAYS
    doc["servers"][0]["port"] = 0  # any free port
    return Scenario.model_validate(doc)


def _collector_config(tmp: Path, broker_port: int, api_port: int, uid: str, meters: list[str]
                      ) -> Path:  # fmt: skip
    from collector.api.auth import token_hash

    keys = [{"name": n, "role": r, "token_sha256": token_hash(t)} for n, (r, t) in TOKENS.items()]
    return _write(
        tmp / "collector.yaml",
        {
            "database": {"path": "data/collector.db"},
            "mqtt": {"host": "127.0.0.1", "port": broker_port, "client_id": f"col-{uid}"},
            "api": {"host": "127.0.0.1", "port": api_port, "keys": keys},
            "signing": {"key_file": "collector-ed25519.pem"},
            "gateways": [
                {
                    "id": GATEWAY,
                    "public_key_file": "keys/gw-plant.pub.pem",
                    "devices": [{"id": m, "profile": p} for m, p in meters],
                }
            ],
        },
    )


def _agent_config(tmp: Path, state: Path, broker_port: int, sim_port: int, uid: str,
                  scenario: Scenario) -> AgentConfig:  # fmt: skip
    devices = [
        {
            "id": m.id,
            "profile": m.profile,
            "transport": {
                "type": "modbus-tcp",
                "host": "127.0.0.1",
                "port": sim_port,
                "unit_id": m.unit_id,
            },
            "interval_s": POLL_S,
        }
        for m in scenario.servers[0].meters
    ]
    path = _write(
        tmp / "gateway.yaml",
        {
            "gateway": {"id": GATEWAY, "site": "three-lines"},
            "state_dir": str(state),
            "signing": {"alg": "ed25519", "key_file": "keys/gw-plant.pem"},
            "mqtt": {"host": "127.0.0.1", "port": broker_port, "client_id": f"agent-{uid}"},
            "devices": devices,
        },
    )
    return load_config(path, AgentConfig)


def outage_of(plant: PlantModel) -> tuple[datetime, datetime]:
    """When e-l1 stops answering: 2 h before an L1 batch ends until 30 min into the idle after
    it, so the gap cuts a batch, an idle stretch (the next batch's, by the idle policy), and the
    residual that gives L3 its electricity."""
    end = next(b.end for b in plant.batches if b.id == "L1-008")
    return end - timedelta(hours=2), end + timedelta(minutes=30)


async def _run_week(config: AgentConfig, sim: ModbusTcpSimulator, clock: VirtualClock,
                    polls: int, outage: tuple[datetime, datetime]) -> None:  # fmt: skip
    """Poll every meter once per interval of plant time, as the scheduler would, back to back."""
    agent = Agent(config)
    transports = TransportFactory()
    pollers = build_pollers(config, transports, clock=clock.now)
    agent.publisher.start()
    start = clock.t
    try:
        for i in range(polls):
            clock.t = start + timedelta(seconds=i * POLL_S)
            down = outage[0] <= clock.t < outage[1]
            sim.meters["e-l1"].dead = down
            # the devices share one TCP connection, as the scheduler's jobs do
            polled = await asyncio.gather(*(agent.poll_once(p) for p in pollers))
            for p, readings in zip(pollers, polled, strict=True):
                good = all(r["quality"] == "good" for r in readings)
                assert good != (down and p.device == "e-l1"), (p.device, clock.t, readings)
        assert await asyncio.to_thread(agent.publisher.drain, 300.0), "outbox not drained"
    finally:
        agent.publisher.stop(None)
        await transports.close()
        agent.outbox.close()


def _register(api: str, scenario: Scenario, epoch: datetime) -> None:
    cert = json.loads((ROOT / "docs" / "examples" / "certificate.json").read_text())
    for m in scenario.servers[0].meters:
        counter = next(iter(m.counters))
        medium, unit = quantity(counter).medium, quantity(counter).unit
        accuracy, u_cert = METROLOGY[m.id]
        status, body = _call(
            "POST",
            f"{api}/registry/devices",
            "li",
            {
                "id": m.id,
                "gateway": GATEWAY,
                "profile": m.profile,
                "serial_number": f"SN-{m.id}",
                "medium": medium,
                "location": {"site": "three-lines"},
                "accuracy_class": accuracy,
                "installed_at": to_wire(epoch - timedelta(days=60)),
            },
        )
        assert status == 201, body
        if u_cert is None:
            continue
        # no error found beyond U: the residual error of a calibrated meter lies within it
        points = [
            {"quantity": counter, "unit": unit, "reference": ref, "indicated": ref,
             "uncertainty": {"value": u_cert, "k": 2.0, "unit": "%",
                             "coverage_probability": 0.95}}
            for ref in (1.0, 10.0)
        ]  # fmt: skip
        day = epoch.date()
        doc = cert | {
            "certificate_id": f"CAL-{m.id}",
            "device_id": m.id,
            "serial_number": f"SN-{m.id}",
            "calibration_date": str(day - timedelta(days=30)),
            "issue_date": str(day - timedelta(days=29)),
            "valid_until": str(day + timedelta(days=300)),
            "timezone": "UTC",
            "points": points,
            # the electricity meters against one reference: their errors share its part
            "reference_standards": [
                {
                    "id": "RS-3PH-0417" if medium == "electricity" else f"RS-{m.id}",
                    "certificate_id": f"NMI-{medium}",
                    "due_date": str(day + timedelta(days=200)),
                    "description": "reference meter",
                }
            ],
        }
        status, body = _call(
            "POST",
            f"{api}/calibration/certificates",
            "wang",
            {"certificate": doc, "corrections": {counter: "none"}},
        )
        assert status == 201, body


def _cli(args: list[str], tmp: Path, name: str) -> None:
    proc = metertrace(args, tmp / f"{name}.log")
    assert proc.wait(60) == 0, tail(tmp / f"{name}.log")


@pytest.fixture(scope="module")
def week(broker, tmp_path_factory: pytest.TempPathFactory) -> Week:
    tmp = tmp_path_factory.mktemp("plant-week")
    uid = tmp.name[-8:]
    # The outbox's fsync per poll is not what this test is about; on tmpfs a week takes half
    # as long. (Durability has its own tests: test_crash_recovery.py.)
    shm = Path("/dev/shm")
    state = Path(tempfile.mkdtemp(prefix="plant-week-", dir=shm if shm.is_dir() else tmp))
    # a week that ended two days ago: old enough to be history, young enough for the outbox
    epoch = (utcnow() - timedelta(days=DAYS + 2)).replace(hour=0, minute=0, second=0,
                                                          microsecond=0)  # fmt: skip
    end = epoch + timedelta(days=DAYS)
    scenario = _scenario(epoch)
    plant = build_plant(scenario, epoch)
    assert plant is not None
    models = build_models(scenario, epoch)
    create_gateway_key(GATEWAY, tmp / "keys" / "gw-plant.pem")
    api_port = free_port()
    api = f"http://127.0.0.1:{api_port}/api/v1"
    meters = [(m.id, m.profile) for m in scenario.servers[0].meters]
    collector_yaml = _collector_config(tmp, broker.port, api_port, uid, meters)
    collector = metertrace(["collector", "serve", "-c", str(collector_yaml)], tmp / "col.log")
    try:
        wait_collector(api, collector, tmp / "col.log")
        _register(api, scenario, epoch)

        polls = DAYS * 86400 // POLL_S + 2  # from just before the week to just after it
        clock = VirtualClock(epoch - timedelta(seconds=PHASE_S))

        async def main() -> None:
            sim = ModbusTcpSimulator(scenario.servers[0], models, clock=clock.unix)
            await sim.start()
            try:
                config = _agent_config(tmp, state, broker.port, sim.port, uid, scenario)
                await _run_week(config, sim, clock, polls, outage_of(plant))
            finally:
                await sim.stop()

        asyncio.run(main())
        wait_for(
            lambda: (try_get_json(f"{api}/health") or {}).get("messages") == polls * len(meters),
            timeout=300,
            interval=0.5,
            what=f"{polls * len(meters)} messages at the collector",
        )

        health = try_get_json(f"{api}/health")
        chains = {m: _call("GET", f"{api}/devices/{m}/chain", "li")[1] for m, _ in meters}
        (tmp / "batches.csv").write_text(plant.batches_csv())
        token = ["--url", api.removesuffix("/api/v1"), "--token", TOKENS["li"][1]]
        _cli(["batches", "import", str(tmp / "batches.csv"), *token], tmp, "import")
        _cli(["topology", "set", str(EXAMPLE / "topology.yaml"), *token], tmp, "topology")

        period = f"period_start={to_wire(epoch)}&period_end={to_wire(end)}".replace("+", "%2B")
        energy = {}
        for b in plant.batches:
            status, body = _call("GET", f"{api}/batches/{b.id}/energy?{period}", "engine")
            assert status == 200, (b.id, body)
            energy[b.id] = body
        status, whole = _call("GET", f"{api}/energy?{period}", "engine")
        assert status == 200, whole
        topology = yaml.safe_load((EXAMPLE / "topology.yaml").read_text())
        truth = expected(plant, models, topology, epoch.timestamp(), end.timestamp())
        return Week(plant, truth, epoch, end, polls, health, chains, energy, whole)
    finally:
        stop(collector)
        shutil.rmtree(state, ignore_errors=True)


def test_the_week_has_batches_on_three_lines_with_idle_time(week: Week) -> None:
    lines = {b.line for b in week.plant.batches}
    assert lines == {"L1", "L2", "L3"}
    for line in lines:
        runs = sorted((b.start, b.end) for b in week.plant.batches if b.line == line)
        assert len(runs) >= 10
        assert all(e0 < s1 for (_, e0), (s1, _) in itertools.pairwise(runs))  # idle gaps
        assert runs[0][0] > week.epoch and runs[-1][1] < week.end


def test_every_message_arrived_with_an_intact_chain(week: Week) -> None:
    assert week.health["quarantined"] == {} and week.health["duplicates"] == 0, week.health
    for device, chain in week.chains.items():
        assert chain["intact"], (device, chain)
        assert (chain["first_seq"], chain["last_seq"]) == (1, week.polls), (device, chain)


def test_allocated_energy_per_batch_equals_ground_truth_within_u(week: Week) -> None:
    checked = 0
    worst = 0.0  # the largest |error| / U
    ratios: dict[str, list[float]] = {}
    for b in week.plant.batches:
        media = {m["medium"]: m for m in week.energy[b.id]["media"]}
        expected_media = {med for (bid, med) in week.truth.batch if bid == b.id}
        assert set(media) == expected_media, (b.id, set(media), expected_media)
        for medium, m in media.items():
            truth = week.truth.batch[(b.id, medium)]
            assert m["unit"] == MEDIUM_UNIT[medium]
            assert m["coverage_factor"] == 2.0 and m["expanded_uncertainty"] > 0
            err = abs(m["quantity"] - truth)
            # energy inside e-l1's outage is measured (the counter survived it) but its spread
            # in time is assumed: how it splits between batches is known only that well
            allowed = m["expanded_uncertainty"] + abs(m["estimated_quantity"])
            assert err <= allowed, (
                f"{b.id} {medium}: allocated {m['quantity']:.3f} {m['unit']}, truth "
                f"{truth:.3f}, |error| {err:.3f} > U {m['expanded_uncertainty']:.3f} + "
                f"estimated {m['estimated_quantity']:.3f}"
            )
            checked += 1
            if m["estimated_quantity"]:
                print(
                    f"{b.id} {medium}: |error| {err:.2f}, U {m['expanded_uncertainty']:.2f}, "
                    f"estimated in time {m['estimated_quantity']:.2f} {m['unit']}"
                )
                continue
            worst = max(worst, err / m["expanded_uncertainty"])
            ratios.setdefault(medium, []).append(err / m["expanded_uncertainty"])
    for medium, r in sorted(ratios.items()):  # shown with pytest -rP; quoted in docs/allocation.md
        print(
            f"{medium}: {len(r)} batch figures wholly measured, |error|/U "
            f"max {max(r):.2f} mean {sum(r) / len(r):.2f}"
        )
    # every batch has electricity; L1/L2 gas; L2/L3 steam
    assert checked == sum(len({m for (x, m) in week.truth.batch if x == b.id})
                          for b in week.plant.batches)  # fmt: skip
    assert worst > 0.01, "errors this small would mean the meters' own errors went unseen"


def test_shares_sum_to_the_metered_totals(week: Week) -> None:
    closures: dict[str, dict[str, Any]] = {}
    allocated: dict[str, list[float]] = {}
    for body in week.energy.values():
        for c in body["closures"]:
            closures.setdefault(c["meter_id"], c)
            assert c == closures[c["meter_id"]], "one period, one closure per meter"
        for m in body["media"]:
            for c in m["contributions"]:
                allocated.setdefault(c["meter_id"], []).append(c["quantity"])
    assert set(closures) == {"e-main", "e-l1", "e-l2", "g-ovens", "s-header"}
    for meter, c in closures.items():
        assert c["closed"] and c["residual"] == 0.0, c
        assert c["allocated"] + c["overhead"] == pytest.approx(c["total"], rel=1e-12)
        # the batches' contributions are what the closure says was allocated
        assert math.fsum(allocated[meter]) == pytest.approx(c["allocated"], rel=1e-12)
        # e-l1's outage leaves a gap in it and in the residual it is subtracted from
        assert (c["coverage"] < 1.0) == (meter in ("e-l1", "e-main")), c
        # and the metered total is the truth's, within the meter's error
        truth_total = week.truth.total[meter]
        assert c["total"] == pytest.approx(truth_total, rel=0.02), (meter, c["total"], truth_total)
    # the steam header's idle heat loss is spread over the batches, none is left as overhead
    assert closures["s-header"]["overhead"] == 0.0
    assert closures["e-l1"]["overhead"] > 0  # idle after the last batch: no next batch


def test_energy_reports_rules_calibration_and_method(week: Week) -> None:
    l3 = next(b for b in week.plant.batches if b.line == "L3")
    media = {m["medium"]: m for m in week.energy[l3.id]["media"]}
    (elec,) = media["electricity"]["contributions"]
    assert elec["meter_id"] == "e-main" and elec["rule"] == "residual"
    assert elec["sub_meters"] == ["e-l1", "e-l2"]
    assert {c["status"] for c in elec["calibration"]} == {"valid"}
    steam = media["steam"]
    assert steam["calibration_status"] == "uncalibrated"  # s-header relies on its class
    assert steam["contributions"][0]["key"] == "run_time"
    assert "14044" in media["electricity"]["method_text"]
    assert media["electricity"]["primary_data_share"] == 1.0
    per = media["electricity"]["per_declared_unit"]
    assert per["declared_unit"] == "piece"
    assert per["quantity"] == pytest.approx(media["electricity"]["quantity"] / l3.produced_quantity)


def test_one_allocation_of_the_week_gives_every_batch_the_same_figures(week: Week) -> None:
    by_id = {b["batch"]["id"]: b for b in week.period["batches"]}
    assert set(by_id) == set(week.energy)
    for batch_id, alone in week.energy.items():
        assert by_id[batch_id]["media"] == alone["media"], batch_id
    closures = {c["meter_id"]: c for c in week.period["closures"]}
    for alone in week.energy.values():
        for c in alone["closures"]:
            assert closures[c["meter_id"]] == c


def test_the_outage_is_reported_where_it_touched(week: Week) -> None:
    down, up = outage_of(week.plant)
    estimated: dict[str, dict[str, Any]] = {}
    for b in week.plant.batches:
        for m in week.energy[b.id]["media"]:
            if m["estimated_quantity"]:
                estimated[f"{b.id} {m['medium']}"] = m
                assert m["primary_data_share"] < 1.0
            else:
                assert m["primary_data_share"] == 1.0 and m["coverage"] == 1.0, (b.id, m)
    # only the electricity of the lines e-l1 reaches: L1, and L3 through the residual
    assert estimated and all(k.endswith("electricity") for k in estimated), sorted(estimated)
    assert all(k[:2] in ("L1", "L3") for k in estimated), sorted(estimated)
    cut = week.energy["L1-008"]["media"][0]
    assert cut["medium"] == "electricity" and cut["estimated_quantity"] > 0
    hours_down = min(up, next(b.end for b in week.plant.batches if b.id == "L1-008")) - down
    run = next(b for b in week.plant.batches if b.id == "L1-008")
    assert cut["coverage"] < 1.0 - 0.9 * hours_down / (run.end - run.start)
    print(f"{len(estimated)} figures with energy estimated in time: {', '.join(sorted(estimated))}")
