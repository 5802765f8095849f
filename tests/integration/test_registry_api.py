"""Registry routes over HTTP with roles (SQLite, then PostgreSQL): who may change devices, and
the audit trail."""

import pytest
from fastapi.testclient import TestClient

from collector.config import ApiSettings
from collector.db import open_database
from tests.api import api_app

pytestmark = pytest.mark.integration

TOKENS = {
    "li": ("plant_engineer", "t-li"),
    "wang": ("metrology", "t-wang"),
    "pcf": ("footprint_engine", "t-pcf"),
}
DEVICE = {
    "id": "elec-main",
    "gateway": "gw-1",
    "profile": "eastron-sdm630",
    "serial_number": "SDM-0001",
    "medium": "electricity",
    "location": {"site": "plant-a"},
    "installed_at": "2026-11-01T00:00:00Z",
}


def hdr(who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[who][1]}"}


@pytest.fixture
def client(db_url):
    app = api_app(open_database(db_url), TOKENS)
    return TestClient(app)


def test_plant_engineer_registers_and_changes_a_device(client):
    r = client.post("/api/v1/registry/devices", json=DEVICE, headers=hdr("li"))
    assert r.status_code == 201 and r.json()["version"] == 1
    changed = {**DEVICE, "ct_ratio": 40}
    r = client.put(
        "/api/v1/registry/devices/elec-main",
        json=changed,
        headers={**hdr("li"), "If-Match": "1"},
        params={"reason": "CT fitted"},
    )
    assert r.status_code == 200 and r.json()["version"] == 2
    stale = client.put(
        "/api/v1/registry/devices/elec-main", json=DEVICE, headers={**hdr("li"), "If-Match": "1"}
    )
    assert stale.status_code == 409 and "reload it" in stale.json()["detail"]
    history = client.get("/api/v1/registry/devices/elec-main", headers=hdr("pcf")).json()
    assert [h["spec"]["ct_ratio"] for h in history] == [1.0, 40.0]
    audit = client.get("/api/v1/audit", params={"entity_id": "elec-main"}, headers=hdr("pcf"))
    assert [(a["actor"], a["role"], a["action"]) for a in audit.json()] == [
        ("li", "plant_engineer", "device.create"),
        ("li", "plant_engineer", "device.update"),
    ]


def test_roles_are_enforced(client):
    r = client.post("/api/v1/registry/devices", json=DEVICE, headers=hdr("pcf"))
    assert r.status_code == 403 and "footprint_engine may not manage devices" in r.json()["detail"]
    r = client.post("/api/v1/registry/devices", json=DEVICE, headers=hdr("wang"))
    assert r.status_code == 403  # metrology owns calibration, not devices
    r = client.post("/api/v1/registry/devices", json=DEVICE)
    assert r.status_code == 401 and "Bearer" in r.json()["detail"]
    r = client.get("/api/v1/registry/devices", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401


def test_replacement_over_http(client):
    client.post("/api/v1/registry/devices", json=DEVICE, headers=hdr("li"))
    event = {
        "device": "elec-main",
        "at": "2026-11-20T08:00:00Z",
        "old_serial": "SDM-0001",
        "new_serial": "SDM-0002",
        "quantity": "energy.active.import",
        "old_final": 152340.25,
        "new_first": 0.0,
        "unit": "kWh",
    }
    r = client.post(
        "/api/v1/registry/devices/elec-main/replacements", json=event, headers=hdr("li")
    )
    assert r.status_code == 201 and r.json()["spec"]["serial_number"] == "SDM-0002"


def test_open_api_only_on_loopback():
    with pytest.raises(ValueError, match=r"add api\.keys"):
        ApiSettings(host="0.0.0.0")
    assert ApiSettings(host="127.0.0.1").keys == []
