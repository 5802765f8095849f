"""Calibration over HTTP: metrology registers certificates (JSON and DCC), status and due lists."""

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from collector.db import open_database
from tests.api import api_app

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
TOKENS = {"li": ("plant_engineer", "t-li"), "wang": ("metrology", "t-wang")}
DEVICE = {
    "id": "elec-main",
    "gateway": "gw-1",
    "profile": "eastron-sdm630",
    "serial_number": "FICT-630-000123",
    "medium": "electricity",
    "location": {"site": "plant-a"},
    "installed_at": "2026-01-01T00:00:00Z",
}


def hdr(who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[who][1]}"}


@pytest.fixture
def client(db_url):
    app = api_app(open_database(db_url), TOKENS)
    c = TestClient(app)
    assert c.post("/api/v1/registry/devices", json=DEVICE, headers=hdr("li")).status_code == 201
    return c


def registration(**cert_over) -> dict:
    cert = {**json.loads((EXAMPLES / "certificate.json").read_text()), **cert_over}
    return {
        "certificate": cert,
        "corrections": {
            "energy.active.import": "gain_offset",
            "power.active.total": "piecewise_linear",
        },
    }


def test_metrology_registers_and_status_follows(client):
    r = client.post("/api/v1/calibration/certificates", json=registration(), headers=hdr("wang"))
    assert r.status_code == 201, r.text
    kinds = [c["kind"] for c in r.json()["corrections"]]
    assert kinds == ["gain_offset", "piecewise_linear"]
    gain = r.json()["corrections"][0]["gain"]
    assert gain == pytest.approx(1 / 1.008, rel=2e-4)  # the sample's +0.8 % error, corrected
    status = client.get("/api/v1/devices/elec-main/calibration-status", headers=hdr("li")).json()
    assert status["state"] in ("valid", "calibration_expired")
    assert status["certificate"] == {"certificate_id": "SAMPLE-EKL-2026-0142", "version": 1}


def test_only_metrology_may_register(client):
    r = client.post("/api/v1/calibration/certificates", json=registration(), headers=hdr("li"))
    assert r.status_code == 403 and "may not manage calibration" in r.json()["detail"]


def test_certificates_are_never_edited_only_superseded(client):
    client.post("/api/v1/calibration/certificates", json=registration(), headers=hdr("wang"))
    again = client.post(
        "/api/v1/calibration/certificates", json=registration(), headers=hdr("wang")
    )
    assert again.status_code == 409 and "add v2 with supersedes" in again.json()["detail"]
    v2 = registration(
        version=2,
        supersedes={"certificate_id": "SAMPLE-EKL-2026-0142", "version": 1},
        valid_until="2099-03-03",
    )
    assert (
        client.post("/api/v1/calibration/certificates", json=v2, headers=hdr("wang")).status_code
        == 201
    )
    status = client.get("/api/v1/devices/elec-main/calibration-status", headers=hdr("li")).json()
    assert status["certificate"]["version"] == 2 and status["state"] == "valid"
    certs = client.get(
        "/api/v1/calibration/certificates", params={"device": "elec-main"}, headers=hdr("li")
    ).json()
    assert [c["certificate"]["version"] for c in certs] == [1, 2]  # v1 stays, traceable
    audit = client.get("/api/v1/audit", headers=hdr("li")).json()
    assert [a["action"] for a in audit if a["entity"] == "certificate"] == ["certificate.add"] * 2


def test_due_list_and_unregistered_device(client):
    client.post(
        "/api/v1/calibration/certificates",
        json=registration(valid_until="2026-12-01"),
        headers=hdr("wang"),
    )
    due = client.get("/api/v1/calibration/due", params={"days": 3650}, headers=hdr("li")).json()
    assert [c["certificate_id"] for c in due] == ["SAMPLE-EKL-2026-0142"]
    cert = registration(device_id="ghost")
    r = client.post("/api/v1/calibration/certificates", json=cert, headers=hdr("wang"))
    assert r.status_code == 409 and "register it before its certificate" in r.json()["detail"]


def test_dcc_import_over_http(client):
    r = client.post(
        "/api/v1/calibration/certificates/dcc",
        content=(EXAMPLES / "dcc-sdm630-cert.xml").read_bytes(),
        headers={**hdr("wang"), "Content-Type": "application/xml"},
        params={
            "device_id": "elec-main",
            "valid_until": "2099-01-01",
            "issue_date": "2026-03-05",
            "timezone": "Asia/Shanghai",
            "result": [
                "energy_activeImport=energy.active.import",
                "power_activeTotal=power.active.total",
            ],
            "correction": ["energy.active.import=gain_offset"],
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["certificate"]["serial_number"] == "FICT-630-000123"
    bad = client.post(
        "/api/v1/calibration/certificates/dcc",
        content=b"<x><!DOCTYPE",
        headers={**hdr("wang"), "Content-Type": "application/xml"},
        params={
            "device_id": "elec-main",
            "valid_until": "2099-01-01",
            "result": ["a=energy.active.import"],
            "correction": ["energy.active.import=none"],
        },
    )
    assert bad.status_code == 422
