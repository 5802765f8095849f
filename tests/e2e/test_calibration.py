"""Metrology end to end: a meter with a known error, a certificate that reveals it registered
through the API, and calibrated readings that match the ground truth while raw values keep the
meter's error. Real processes: simulator, Mosquitto, collector, agent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from metertrace.signing import create_gateway_key, load_or_create_ed25519, public_key_path
from metertrace.timeutil import parse_utc, to_wire, utcnow
from simulators.scenario import build_models, load_scenario
from tests.helpers import (
    call_api,
    free_port,
    metertrace,
    running_plant,
    tail,
    try_get_json,
    wait_for,
)

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "metertrace" / "examples"
CYCLES = 10
ENERGY_GAIN = 1.008  # the simulated meter registers 0.8 % too much energy
POWER_GAIN, POWER_OFFSET = 1.01, 0.5  # and shows power 1 % high plus 0.5 kW
TOKENS = {"wang": ("metrology", "t-wang-metrology"), "li": ("plant_engineer", "t-li-plant")}


def _api_keys() -> list[dict[str, str]]:
    from collector.api.auth import token_hash

    return [{"name": n, "role": r, "token_sha256": token_hash(t)} for n, (r, t) in TOKENS.items()]


def _write(path: Path, data: dict) -> None:
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))


def configure(tmp: Path, broker_port: int, uid: str) -> tuple[str, int]:
    create_gateway_key("gw-demo", tmp / "keys" / "gw-demo.pem")
    collector_key = tmp / "collector-ed25519.pem"
    signer, _ = load_or_create_ed25519("collector", collector_key)
    public_key_path(collector_key).write_text(signer.public_pem())
    sim_port, api_port = free_port(), free_port()

    scenario = yaml.safe_load((EXAMPLES / "scenario.yaml").read_text())
    scenario["epoch"] = to_wire(utcnow())
    scenario["servers"][0]["port"] = sim_port
    elec = scenario["servers"][0]["meters"][0]
    assert elec["id"] == "elec-main"
    elec["errors"] = {
        "energy.active.import": {"gain": ENERGY_GAIN},
        "power.active.total": {"gain": POWER_GAIN, "offset": POWER_OFFSET},
    }
    gateway = yaml.safe_load((EXAMPLES / "gateway.yaml").read_text())
    gateway["mqtt"] = {"host": "127.0.0.1", "port": broker_port, "client_id": f"agent-{uid}"}
    gateway["calibration"] = {"collector_public_key_file": "collector-ed25519.pub.pem"}
    for d in gateway["devices"]:
        d["transport"]["port"] = sim_port
        d["interval_s"] = 0.5
    collector = yaml.safe_load((EXAMPLES / "collector.yaml").read_text())
    collector["mqtt"] = {"host": "127.0.0.1", "port": broker_port, "client_id": f"col-{uid}"}
    collector["api"] = {"host": "127.0.0.1", "port": api_port, "keys": _api_keys()}
    collector["signing"] = {"key_file": "collector-ed25519.pem"}
    for name, data in (("scenario", scenario), ("gateway", gateway), ("collector", collector)):
        _write(tmp / f"{name}.yaml", data)
    return f"http://127.0.0.1:{api_port}/api/v1", sim_port


def certificate() -> dict:
    """A certificate whose points reveal the simulated meter's error exactly."""
    today = utcnow().date()
    cert = json.loads((ROOT / "docs" / "examples" / "certificate.json").read_text())
    energy = [
        {
            "quantity": "energy.active.import",
            "unit": "kWh",
            "reference": ref,
            "indicated": round(ENERGY_GAIN * ref, 9),
            "uncertainty": {"value": 0.1, "k": 2.0, "unit": "%", "coverage_probability": 0.95},
        }
        for ref in (1.0, 2.0, 5.0, 10.0)
    ]
    power = [
        {
            "quantity": "power.active.total",
            "unit": "kW",
            "reference": ref,
            "indicated": round(POWER_GAIN * ref + POWER_OFFSET, 9),
            "uncertainty": {"value": 0.5, "k": 2.0, "unit": "kW", "coverage_probability": 0.95},
        }
        for ref in (100.0, 300.0, 500.0, 700.0)
    ]
    cert.update(
        certificate_id="E2E-CAL-0001",
        device_id="elec-main",
        serial_number="SDM-E2E-1",
        calibration_date=str(today - timedelta(days=10)),
        issue_date=str(today - timedelta(days=9)),
        valid_until=str(today + timedelta(days=355)),
        timezone="UTC",
        points=energy + power,
        uncertainty=None,
    )
    for ref in cert["reference_standards"]:
        ref["due_date"] = str(today + timedelta(days=100))
    return cert


def call(method: str, url: str, who: str, body: dict) -> tuple[int, dict]:
    status, doc = call_api(method, url, TOKENS[who][1], body)
    return status, doc


def get(url: str) -> list | dict:
    import urllib.request

    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKENS['li'][1]}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


@pytest.fixture
def plant(tmp_path, broker, uid) -> Iterator[tuple[Path, str]]:
    api, _ = configure(tmp_path, broker.port, uid)
    with running_plant(tmp_path, api):
        yield tmp_path, api


def test_calibrated_readings_match_truth_and_raw_keep_the_error(plant):
    tmp, api = plant
    device = {
        "id": "elec-main",
        "gateway": "gw-demo",
        "profile": "eastron-sdm630",
        "serial_number": "SDM-E2E-1",
        "medium": "electricity",
        "location": {"site": "demo-plant", "line": "line-1"},
        "accuracy_class": "0.5S",
        "installed_at": to_wire(utcnow() - timedelta(days=30)),
    }
    status, body = call("POST", f"{api}/registry/devices", "li", device)
    assert status == 201, body
    registration = {
        "certificate": certificate(),
        "corrections": {"energy.active.import": "gain_offset", "power.active.total": "gain_offset"},
    }
    status, body = call("POST", f"{api}/calibration/certificates", "wang", registration)
    assert status == 201, body

    agent = metertrace(
        ["agent", "run", "-c", str(tmp / "gateway.yaml"), "--cycles", str(CYCLES)],
        tmp / "agent.log",
    )
    assert agent.wait(90) == 0, tail(tmp / "agent.log")
    wait_for(
        lambda: (try_get_json(f"{api}/health") or {}).get("messages") == 3 * CYCLES,
        timeout=30,
        what="every message at the collector",
    )

    model = build_models(load_scenario(tmp / "scenario.yaml"))["elec-main"]
    u_power = 0.5  # kW, k = 2, from the certificate
    for quantity in ("energy.active.import", "power.active.total"):
        rows = get(f"{api}/readings?device=elec-main&quantity={quantity}")
        assert len(rows) == CYCLES
        calibrated = [r for r in rows if r["cal_status"] == "calibrated"]
        # the set is retained, so it reaches the agent with its first connection; a poll that
        # ran before it arrived is stamped uncalibrated, never silently corrected
        assert len(calibrated) >= CYCLES - 2, [r["cal_status"] for r in rows]
        assert all(r["cal_status"] in ("calibrated", "uncalibrated") for r in rows)
        for r in calibrated:
            truth = model.value(quantity, parse_utc(r["ts"]).timestamp())
            u = 0.001 * truth if quantity.startswith("energy") else u_power
            assert r["certificate"] == "E2E-CAL-0001" and r["certificate_version"] == 1
            assert r["cal_check"] == "ok", r  # the collector recomputed it bit for bit
            assert abs(r["value"] - truth) <= u, (quantity, r["value"], truth, u)
            assert abs(r["uncorrected"] - truth) > u, "the raw value keeps the meter's error"
            shown = model.indicated(quantity, parse_utc(r["ts"]).timestamp())
            assert abs(r["uncorrected"] - shown) <= max(0.05, 1e-6 * shown)
    # meters without a certificate flow, flagged
    gas = get(f"{api}/readings?device=gas-boiler&quantity=volume.gas.standard")
    assert gas and {r["cal_status"] for r in gas} == {"uncalibrated"}
    status_doc = get(f"{api}/devices/elec-main/calibration-status")
    assert status_doc["state"] == "valid"
    chain = get(f"{api}/devices/elec-main/chain")
    assert chain["intact"] and chain["messages"] == CYCLES, chain
