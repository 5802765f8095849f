"""The whole chain as real processes: simulator -> agent -> Mosquitto -> collector -> HTTP API."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from device_profiles import find_profile
from metertrace.signing import create_gateway_key
from metertrace.timeutil import parse_utc, to_wire, utcnow
from simulators.scenario import Scenario, build_models, load_scenario
from tests.helpers import free_port, get_json, metertrace, running_plant, tail, wait_for
from tests.truth import tolerance

pytestmark = pytest.mark.e2e

CYCLES = 6
DEVICES = {
    "elec-main": "eastron-sdm630",
    "gas-boiler": "synthetic-gas-converter",
    "steam-header": "synthetic-steam-vortex",
}
EXAMPLES = Path(__file__).resolve().parents[2] / "metertrace" / "examples"


@dataclass
class Plant:
    dir: Path
    api: str
    scenario: Scenario


def configure(
    tmp: Path, broker_port: int, uid: str, db_url: str | None = None
) -> tuple[Plant, int]:
    """The example plant on free ports; its collector on `db_url` (default: a SQLite file)."""
    create_gateway_key("gw-demo", tmp / "keys" / "gw-demo.pem")
    sim_port, api_port = free_port(), free_port()
    scenario = yaml.safe_load((EXAMPLES / "scenario.yaml").read_text())
    scenario["epoch"] = to_wire(utcnow())  # a fixed epoch lets the test compute ground truth
    scenario["servers"][0]["port"] = sim_port
    gateway = yaml.safe_load((EXAMPLES / "gateway.yaml").read_text())
    gateway["mqtt"] = {"host": "127.0.0.1", "port": broker_port, "client_id": f"agent-{uid}"}
    for d in gateway["devices"]:
        d["transport"]["port"] = sim_port
        d["interval_s"] = 0.5
    collector = yaml.safe_load((EXAMPLES / "collector.yaml").read_text())
    collector["mqtt"] = {"host": "127.0.0.1", "port": broker_port, "client_id": f"col-{uid}"}
    collector["api"]["port"] = api_port
    if db_url is not None:
        collector["database"] = {"url": db_url}
    for name, data in (("scenario", scenario), ("gateway", gateway), ("collector", collector)):
        (tmp / f"{name}.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    plant = Plant(tmp, f"http://127.0.0.1:{api_port}/api/v1", load_scenario(tmp / "scenario.yaml"))
    return plant, sim_port


@pytest.fixture
def plant(tmp_path, broker, uid, db_url) -> Iterator[Plant]:
    """The chain on each engine: SQLite, then PostgreSQL."""
    p, _ = configure(tmp_path, broker.port, uid, db_url)
    with running_plant(tmp_path, p.api):
        yield p


def test_n_cycles_store_exactly_n_true_readings_per_quantity(plant):
    agent = metertrace(
        ["agent", "run", "-c", str(plant.dir / "gateway.yaml"), "--cycles", str(CYCLES)],
        plant.dir / "agent.log",
    )
    assert agent.wait(60) == 0, tail(plant.dir / "agent.log")
    expected = CYCLES * len(DEVICES)
    wait_for(
        lambda: get_json(f"{plant.api}/health")["messages"] == expected,
        timeout=30,
        what=f"{expected} messages at the collector",
    )

    models = build_models(plant.scenario)
    for device, profile_id in DEVICES.items():
        model = models[device]
        points = {p.quantity: p for p in find_profile(profile_id).points()}
        for quantity, point in points.items():
            rows = get_json(f"{plant.api}/readings?device={device}&quantity={quantity}")
            assert [r["seq"] for r in rows] == list(range(1, CYCLES + 1)), (device, quantity)
            for r in rows:
                assert r["quality"] == "good" and r["unit"] == point.unit
                t = parse_utc(r["ts"]).timestamp()
                truth, tol = model.value(quantity, t), tolerance(point, model, t)
                assert abs(r["value"] - truth) <= tol, (device, quantity, r, truth, tol)
    health = get_json(f"{plant.api}/health")
    assert health["duplicates"] == 0 and health["quarantined"] == {}
