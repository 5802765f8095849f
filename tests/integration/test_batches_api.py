"""Batches and topology over HTTP with real SQLite: records, versions, roles, filters, errors."""

from __future__ import annotations

import sqlite3

import pytest

from tests.batch_helpers import Plant, batch, hdr, iso, plant

pytestmark = pytest.mark.integration


@pytest.fixture
def p(tmp_path) -> Plant:
    return plant(tmp_path)


def post(p: Plant, body: object, who: str = "li", **params: str):
    return p.client.post("/api/v1/batches", json=body, params=params, headers=hdr(who))


def test_record_read_and_list(p):
    r = post(p, batch("B1", "L1", 1, 3, 100, mass_kg=105.5))
    assert r.status_code == 201 and r.json() == {
        "created": ["B1"],
        "unchanged": [],
        "superseded": [],
    }
    post(p, [batch("B2", "L2", 2, 4, 300, product_id="P-X"), batch("B3", "L1", 5, 6, 50)])
    got = p.client.get("/api/v1/batches/B1", headers=hdr("engine")).json()
    assert got["batch"]["mass_kg"] == 105.5 and got["version"] == 1 and got["supersedes"] is None
    assert got["recorded_by"] == "li" and got["source"] == "api"
    assert got["batch"]["start"] == iso(1)

    def ids(**params: str) -> list[str]:
        r = p.client.get("/api/v1/batches", params=params, headers=hdr("engine"))
        assert r.status_code == 200, r.text
        return [x["batch"]["id"] for x in r.json()]

    assert ids() == ["B1", "B2", "B3"]  # by start time
    assert ids(product="P-X") == ["B2"]
    assert ids(line="L1") == ["B1", "B3"]
    # from/to select the batches overlapping [from, to)
    assert ids(**{"from": iso(3), "to": iso(5)}) == ["B2"]
    assert ids(**{"from": iso(2.5)}) == ["B1", "B2", "B3"]
    assert ids(to=iso(2)) == ["B1"]
    r = p.client.get("/api/v1/batches", params={"from": "2026-03-10T00:00:00"}, headers=hdr("li"))
    assert r.status_code == 422 and "no timezone" in r.json()["detail"]
    assert p.client.get("/api/v1/batches/B9", headers=hdr("li")).status_code == 404


def test_same_content_again_is_a_no_op(p):
    assert post(p, batch("B1", "L1", 1, 3, 100)).status_code == 201
    r = post(p, batch("B1", "L1", 1, 3, 100))
    assert r.status_code == 200 and r.json()["unchanged"] == ["B1"]
    history = p.client.get("/api/v1/batches/B1/history", headers=hdr("li")).json()
    assert [h["version"] for h in history] == [1]


def test_changed_content_needs_supersede_and_keeps_the_old_version(p):
    post(p, batch("B1", "L1", 1, 3, 100))
    r = post(p, batch("B1", "L1", 1, 3, 120))
    assert r.status_code == 409
    (conflict,) = r.json()["detail"]["conflicts"]
    assert conflict["batch_id"] == "B1" and "supersede" in conflict["detail"]
    r = post(p, batch("B1", "L1", 1, 3, 120), supersede="true", reason="weighing corrected")
    assert r.status_code == 201 and r.json()["superseded"] == ["B1"]
    now = p.client.get("/api/v1/batches/B1", headers=hdr("li")).json()
    assert (now["version"], now["supersedes"], now["reason"]) == (2, 1, "weighing corrected")
    assert now["batch"]["produced_quantity"] == 120
    old = p.client.get("/api/v1/batches/B1", params={"version": 1}, headers=hdr("li")).json()
    assert old["batch"]["produced_quantity"] == 100  # the old record stays, traceable
    with sqlite3.connect(p.db) as db, pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("UPDATE batch_records SET body = '{}'")


def test_a_request_is_recorded_whole_or_not_at_all(p):
    post(p, batch("B1", "L1", 1, 3, 100))
    r = post(p, [batch("B2", "L2", 2, 4, 300), batch("B3", "L1", 2, 4, 10)])  # B3 overlaps B1
    assert r.status_code == 409
    (conflict,) = r.json()["detail"]["conflicts"]
    assert conflict["batch_id"] == "B3" and "overlaps batch B1" in conflict["detail"]
    assert p.client.get("/api/v1/batches/B2", headers=hdr("li")).status_code == 404
    r = post(p, [batch("B4", "L3", 0, 2, 1), batch("B4", "L3", 3, 4, 1)])
    assert r.status_code == 409 and "given twice" in r.text


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"end": iso(1)}, "is not after start"),
        ({"start": "2026-03-10T01:00:00"}, "timezone"),
        ({"declared_unit": "kg"}, "declared_unit"),
        ({"produced_quantity": 0}, "produced_quantity"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_invalid_batches_are_refused_naming_the_field(p, change, field):
    r = post(p, batch("B1", "L1", 1, 3, 100) | change)
    assert r.status_code == 422 and field in r.text


def test_roles(p):
    assert post(p, batch("B1", "L1", 1, 3, 100), who="engine").status_code == 403
    assert post(p, batch("B1", "L1", 1, 3, 100), who="wang").status_code == 403
    assert p.client.get("/api/v1/batches").status_code == 401
    assert p.client.get("/api/v1/batches", headers=hdr("engine")).status_code == 200
    r = p.client.put("/api/v1/topology", content="idle_policy: overhead", headers=hdr("engine"))
    assert r.status_code == 403


GOOD = """\
idle_policy: next_batch
meters:
  main: {quantity: energy.active.import}
assignments:
  - {meter_id: sub, rule: dedicated, lines: [L1], valid_from: 2026-01-01T00:00:00Z}
  - meter_id: main
    rule: residual
    sub_meters: [sub]
    lines: [L1, L2]
    key: run_time
    valid_from: 2026-01-01T00:00:00Z
"""


def test_topology_versions(p):
    put = lambda text: p.client.put(  # noqa: E731
        "/api/v1/topology", content=text, params={"source": "plant.yaml"}, headers=hdr("li")
    )
    assert p.client.get("/api/v1/topology", headers=hdr("engine")).status_code == 404
    r = put(GOOD)
    assert r.status_code == 201 and r.json()["stored"] and r.json()["record"]["version"] == 1
    assert put(GOOD + "# a comment changes nothing\n").status_code == 200
    assert put(GOOD.replace("next_batch", "overhead")).status_code == 201
    now = p.client.get("/api/v1/topology", headers=hdr("engine")).json()
    assert now["version"] == 2 and now["supersedes"] == 1 and now["source"] == "plant.yaml"
    assert now["topology"]["idle_policy"] == "overhead" and "overhead" in now["source_text"]
    v1 = p.client.get("/api/v1/topology", params={"version": 1}, headers=hdr("li")).json()
    assert v1["topology"]["idle_policy"] == "next_batch"
    assert p.client.get("/api/v1/topology/versions", headers=hdr("li")).json() == [1, 2]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("rule: residual", "rule: residue"), "plant.yaml: assignments[1].rule: Input should be"),
        (("key: run_time", "kee: run_time"), "assignments[1].kee: unknown key"),
        (("    key: run_time\n", ""), "assignments[1]: meter main (residual): serves 2 lines"),
        (("2026-01-01T00:00:00Z}", "2026-01-01}"), "assignments[0].valid_from"),
        (("main: {quantity: energy.active.import}", "main: {quantity: power.active.total}"),
         "meters.main.quantity: 'power.active.total' is not a counter"),
        (("  main: {", "  mian: {"), "meters: mian appear in no assignment"),
        (("idle_policy: next_batch", "idle_policy: later"), "idle_policy: Input should be"),
        (("lines: [L1, L2]", "lines: [L1, L2]\n    valid_to: 2025-01-01T00:00:00Z"),
         "assignments[1]: meter main (residual): valid_to must be after valid_from"),
    ],
)  # fmt: skip
def test_topology_errors_name_the_yaml_path(p, edit, message):
    text = GOOD.replace(*edit)
    assert text != GOOD
    r = p.client.put(
        "/api/v1/topology", content=text, params={"source": "plant.yaml"}, headers=hdr("li")
    )
    assert r.status_code == 422
    assert message in r.json()["detail"]


def test_overlapping_assignments_of_one_meter_are_refused(p):
    text = GOOD + (
        "  - {meter_id: sub, rule: dedicated, lines: [L2], valid_from: 2026-02-01T00:00:00Z}\n"
    )
    r = p.client.put("/api/v1/topology", content=text, headers=hdr("li"))
    assert r.status_code == 422
    assert "assignments: meter sub: assignments valid from" in r.json()["detail"]
