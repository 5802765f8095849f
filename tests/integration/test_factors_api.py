"""Emission factor records over HTTP with a real database (SQLite, then PostgreSQL): overrides
and new names as new versions, history, the version rule (409), cited records (422 naming the
field), roles, and the table itself refusing edits."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, update

from collector.db import Database, open_database
from collector.db.schema import factor_records
from collector.factors.model import FactorRegistry
from collector.factors.store import FactorStore
from tests.api import api_app
from tests.append_only import assert_refused
from tests.batch_helpers import TOKENS, hdr

pytestmark = pytest.mark.integration

GRID = "cn-grid-average-2023"
BUILT_IN = FactorRegistry().current(GRID)
OVERRIDE = {
    "name": GRID,
    "value": 0.5712,
    "source": "Provincial grid factor, Jiangsu 2023, DRC notice",
    "note": "the plant's province, not the national average",
}
PPA = {
    "name": "supplier-ppa-2025",
    "version": 1,
    "value": 0.12,
    "unit": "kgCO2e/kWh",
    "gases": "CO2e",
    "gwp_set": "IPCC AR5 GWP100",
    "source": "Supplier X, PPA emission certificate 2025-031",
    "published": "2025-06-01",
    "geography": "CN",
    "basis": "location-based grid average",
    "uncertainty_rel": 0.05,
}


@pytest.fixture
def db(db_url: str) -> Database:
    return open_database(db_url)


@pytest.fixture
def client(db: Database) -> TestClient:
    return TestClient(api_app(db, TOKENS))


def post(client: TestClient, body: Any, who: str = "li") -> Any:
    return client.post("/api/v1/factors", json=body, headers=hdr(who))


def history(client: TestClient, name: str) -> list[dict[str, Any]]:
    r = client.get(f"/api/v1/factors/{name}", headers=hdr("engine"))
    assert r.status_code == 200, r.text
    return list(r.json())


def test_an_override_is_the_next_version_and_the_built_in_stays(client, db):
    r = post(client, OVERRIDE)
    assert r.status_code == 201, r.text
    new = r.json()
    assert (new["id"], new["version"], new["supersedes"]) == (f"{GRID}@2", 2, f"{GRID}@1")
    assert (new["value"], new["source"], new["created_by"]) == (0.5712, OVERRIDE["source"], "li")
    assert new["unit"] == BUILT_IN.unit and new["basis"] == BUILT_IN.basis.value
    assert new["current"] and not new["builtin"] and new["recorded_at"]
    versions = history(client, GRID)
    assert [(v["version"], v["value"], v["current"], v["builtin"]) for v in versions] == [
        (1, BUILT_IN.value, False, True),
        (2, 0.5712, True, False),
    ]
    listed = client.get("/api/v1/factors", headers=hdr("engine")).json()
    assert {f["id"] for f in listed} >= {f"{GRID}@1", f"{GRID}@2", "cn-natural-gas@1"}
    current = {f["name"]: f["id"] for f in listed if f["current"]}
    assert current[GRID] == f"{GRID}@2" and current["cn-natural-gas"] == "cn-natural-gas@1"
    # stored: another store on the database sees it as the name's current record
    again = FactorStore(db).registry()
    assert again.current(GRID).value == 0.5712 and again.get(f"{GRID}@1").value == BUILT_IN.value


def test_a_new_name_starts_at_version_1_and_each_record_must_be_the_next_version(client):
    r = post(client, PPA)
    assert r.status_code == 201, r.text
    assert r.json()["id"] == "supplier-ppa-2025@1" and r.json()["supersedes"] is None
    r = post(client, PPA)  # version 1 again: taken
    assert r.status_code == 409
    assert "is at version 1, so a new record is version 2, not 1" in r.json()["detail"]
    r = post(client, PPA | {"version": 3, "supersedes": "supplier-ppa-2025@2"})
    assert r.status_code == 409 and "version 2, not 3" in r.json()["detail"]
    r = post(client, PPA | {"version": 2, "value": 0.1})  # names nothing it supersedes
    assert r.status_code == 422
    assert r.json()["detail"].startswith("supersedes:")
    assert "'supplier-ppa-2025@1'" in r.json()["detail"]
    r = post(client, PPA | {"version": 2, "value": 0.1, "supersedes": "supplier-ppa-2025@1"})
    assert r.status_code == 201, r.text
    r = post(client, OVERRIDE | {"name": "supplier-ppa-2025", "value": 0.09})
    assert r.status_code == 201 and r.json()["unit"] == "kgCO2e/kWh"
    assert [v["value"] for v in history(client, "supplier-ppa-2025")] == [0.12, 0.1, 0.09]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({k: v for k, v in OVERRIDE.items() if k != "source"}, "source", "citation"),
        (OVERRIDE | {"source": "  "}, "source", "citation"),
        ({k: v for k, v in PPA.items() if k != "source"}, "source", "citation"),
        ({k: v for k, v in OVERRIDE.items() if k != "note"}, "note", "why"),
        (PPA | {"basis": "market"}, "basis", "location-based grid average"),
    ],
)
def test_an_invalid_body_is_refused_naming_the_field(client, body, field, words):
    r = post(client, body)
    assert r.status_code == 422, r.text
    (error,) = r.json()["detail"]
    assert error["loc"] == ["body", field] and words in error["msg"]


@pytest.mark.parametrize(
    ("change", "starts", "words"),
    [
        ({"unit": "kgCO2"}, "unit 'kgCO2'", "mass/activity"),
        ({"unit": "lbCO2/kWh"}, "unit 'lbCO2/kWh'", "kgCO2/kWh"),
        ({"value": -0.1}, "value -0.1", "≥ 0"),
        ({"name": "my factor"}, "name 'my factor'", "letters, digits"),
        ({"uncertainty_rel": -0.05}, "uncertainty_rel -0.05", "0.05 for 5 %"),
    ],
)
def test_a_record_the_footprints_cannot_use_is_refused_naming_the_field(
    client, change, starts, words
):
    r = post(client, PPA | change)
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith(starts) and words in r.json()["detail"]
    assert client.get("/api/v1/factors/supplier-ppa-2025", headers=hdr("li")).status_code == 404


def test_an_override_of_an_unknown_name_and_the_history_of_one(client):
    r = post(client, OVERRIDE | {"name": "grid"})
    assert r.status_code == 422
    assert r.json()["detail"].startswith("name: no factor named 'grid'")
    assert "cn-grid-average-2023" in r.json()["detail"]
    r = client.get("/api/v1/factors/grid", headers=hdr("li"))
    assert r.status_code == 404 and "GET /api/v1/factors" in r.json()["detail"]


def test_roles(client):
    for who in ("engine", "wang"):  # footprint engines and metrology read, do not add
        assert post(client, OVERRIDE, who).status_code == 403
        assert client.get("/api/v1/factors", headers=hdr(who)).status_code == 200
    assert client.get("/api/v1/factors").status_code == 401
    assert [v["version"] for v in history(client, GRID)] == [1]


def test_the_table_refuses_updates_and_deletes(client, db):
    assert post(client, OVERRIDE).status_code == 201
    assert_refused(
        db,
        update(factor_records).values(body=func.replace(factor_records.c.body, "0.5712", "0.1")),
        update(factor_records).values(recorded_by="someone else"),
        delete(factor_records),
        match="append-only: add a new version",
    )
    (stored,) = [v for v in history(client, GRID) if not v["builtin"]]
    assert (stored["value"], stored["created_by"]) == (0.5712, "li")
