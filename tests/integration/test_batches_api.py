"""Batches and topology over HTTP with a real database (SQLite, then PostgreSQL): records,
versions, roles, filters, errors."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import delete, event, update

from collector.batches.model import Batch
from collector.batches.store import BatchConflict, BatchStore
from collector.db.schema import batch_records, topology_versions
from tests.append_only import assert_refused
from tests.batch_helpers import Plant, at, batch, hdr, iso, plant

pytestmark = pytest.mark.integration


@pytest.fixture
def p(db_url: str) -> Plant:
    return plant(db_url)


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


def test_the_database_refuses_edits_of_records(p):
    post(p, batch("B1", "L1", 1, 3, 100))
    assert p.client.put("/api/v1/topology", content=GOOD, headers=hdr("li")).status_code == 201
    assert_refused(
        p.db,
        update(batch_records).values(body="{}"),
        delete(batch_records),
        update(topology_versions).values(source="x"),
        delete(topology_versions),
    )


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


def test_two_imports_at_once_cannot_both_record_overlapping_batches(p):
    """The first import pauses after its insert, uncommitted, while a second store records an
    overlapping batch on the same line: the second waits for the first to commit (SQLite's write
    lock, PostgreSQL's advisory lock), then sees its batch and is refused; one is recorded."""
    first_inserted, second_done = threading.Event(), threading.Event()

    def pause_first(_conn, _cursor, statement, _params, _context, _many) -> None:
        if statement.startswith("INSERT INTO batch_records") and not first_inserted.is_set():
            first_inserted.set()
            second_done.wait(1)  # the second import must not get past its lock meanwhile

    outcomes: list[object] = []

    def record(batch_id: str) -> None:
        one = Batch.model_validate(batch(batch_id, "L1", 1, 3, 100))
        try:
            outcomes.append(BatchStore(p.db).record([one], actor="li", at=at(9), source="t"))
        except BatchConflict as exc:
            outcomes.append(exc)

    event.listen(p.db.engine, "before_cursor_execute", pause_first)
    try:
        first = threading.Thread(target=record, args=("B1",))
        first.start()
        assert first_inserted.wait(10)
        second = threading.Thread(target=lambda: (record("B2"), second_done.set()))
        second.start()
        first.join(30)
        second.join(30)
    finally:
        event.remove(p.db.engine, "before_cursor_execute", pause_first)
    (conflict,) = [o for o in outcomes if isinstance(o, BatchConflict)]
    assert "overlaps batch B1" in str(conflict)
    assert [r.batch.id for r in BatchStore(p.db).batches()] == ["B1"]
