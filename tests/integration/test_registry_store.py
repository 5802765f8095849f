"""The registries on a real database (SQLite, then PostgreSQL): append-only versions,
replacements, audit log, and writers racing for one version."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import delete, event, update
from sqlalchemy.exc import IntegrityError

from collector.db import open_database
from collector.db.schema import audit_log, device_records
from collector.metrology.registry import DeviceRecord, DeviceSpec, Replacement, as_of
from collector.metrology.registry_store import RegistryConflict, RegistryStore
from tests.append_only import assert_refused

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def spec(**over) -> DeviceSpec:
    base = {
        "id": "elec-main",
        "gateway": "gw-1",
        "profile": "eastron-sdm630",
        "serial_number": "SDM-0001",
        "medium": "electricity",
        "location": {"site": "plant-a", "line": "line-1"},
        "accuracy_class": "0.5S",
        "ct_ratio": 40,
        "installed_at": T0,
    }
    return DeviceSpec.model_validate({**base, **over})


@pytest.fixture
def reg(db_url: str) -> RegistryStore:
    return RegistryStore(open_database(db_url))


def test_changes_are_new_versions_with_audit(reg):
    reg.record_device(spec(), actor="li", role="plant_engineer", at=T0)
    reg.record_device(
        spec(ct_ratio=60),
        actor="li",
        role="plant_engineer",
        at=T0 + timedelta(days=1),
        reason="CT changed",
        expected_version=1,
    )
    history = reg.device_history("elec-main")
    assert [(r.version, r.spec.ct_ratio) for r in history] == [(1, 40), (2, 60)]
    assert as_of(history, T0 + timedelta(hours=1)).spec.ct_ratio == 40
    audit = reg.audit(entity_id="elec-main")
    assert [a.action for a in audit] == ["device.create", "device.update"]
    assert audit[1].before["ct_ratio"] == 40 and audit[1].after["ct_ratio"] == 60
    assert audit[1].actor == "li" and audit[1].role == "plant_engineer"


def test_stale_edit_is_refused(reg):
    reg.record_device(spec(), actor="a", role="plant_engineer", at=T0)
    reg.record_device(spec(ct_ratio=60), actor="b", role="plant_engineer", at=T0)
    with pytest.raises(RegistryConflict, match="is at version 2, not 1; reload it"):
        reg.record_device(
            spec(ct_ratio=80), actor="a", role="plant_engineer", at=T0, expected_version=1
        )


def test_moving_gateway_needs_a_new_id(reg):
    reg.record_device(spec(), actor="a", role="plant_engineer", at=T0)
    with pytest.raises(ValueError, match="registered under a new id"):
        reg.record_device(spec(gateway="gw-2"), actor="a", role="plant_engineer", at=T0)


def test_replacement_bridges_two_meters(reg):
    reg.record_device(spec(), actor="a", role="plant_engineer", at=T0)
    event = Replacement(
        device="elec-main",
        at=T0 + timedelta(days=3),
        old_serial="SDM-0001",
        new_serial="SDM-0002",
        quantity="energy.active.import",
        old_final=152340.25,
        new_first=0.5,
        unit="kWh",
    )
    record = reg.record_replacement(
        event, actor="a", role="plant_engineer", at=T0 + timedelta(days=3)
    )
    assert record.version == 2 and record.spec.serial_number == "SDM-0002"
    assert reg.replacements("elec-main") == [event]
    assert reg.audit()[-1].action == "device.replace"
    with pytest.raises(RegistryConflict, match="has meter SDM-0002, not SDM-0001"):
        reg.record_replacement(event, actor="a", role="plant_engineer", at=T0)


def test_tables_refuse_edits_in_the_database_itself(reg):
    reg.record_device(spec(), actor="a", role="plant_engineer", at=T0)
    assert_refused(
        reg.db,
        update(device_records).values(reason="x"),
        update(audit_log).values(actor="x"),
        delete(audit_log),
    )


def test_two_writers_racing_for_the_next_version_record_it_once(databases):
    """Two stores on one database both add version 2 of a device at once. SQLite: the write
    transaction takes the lock before it reads, so the second writer reads version 2 and is
    refused as stale. PostgreSQL: both read version 1 (each insert waits until both have read)
    and the primary key refuses the second insert. Either way: one version 2, one conflict."""
    url = databases.new()
    db = open_database(url)
    RegistryStore(db).record_device(spec(), actor="a", role="plant_engineer", at=T0)
    stores = [RegistryStore(open_database(url)) for _ in range(2)]
    outcomes: list[DeviceRecord | RegistryConflict] = []

    def edit(store: RegistryStore, actor: str) -> None:
        try:
            outcomes.append(store.record_device(
                spec(ct_ratio=60), actor=actor, role="plant_engineer",
                at=T0 + timedelta(hours=1), expected_version=1,
            ))  # fmt: skip
        except RegistryConflict as exc:
            outcomes.append(exc)

    both_read = threading.Barrier(2)

    def insert_when_both_read(_conn, _cursor, statement, *_args) -> None:
        if statement.startswith("INSERT INTO device_records"):
            both_read.wait(10)

    if databases.engine == "postgresql":  # on SQLite the second writer waits to begin at all
        event.listen(db.engine, "before_cursor_execute", insert_when_both_read)
    threads = [threading.Thread(target=edit, args=(s, f"w{i}")) for i, s in enumerate(stores)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    finally:
        if event.contains(db.engine, "before_cursor_execute", insert_when_both_read):
            event.remove(db.engine, "before_cursor_execute", insert_when_both_read)
    (won,) = [o for o in outcomes if isinstance(o, DeviceRecord)]
    (lost,) = [o for o in outcomes if isinstance(o, RegistryConflict)]
    assert "elec-main is at version 2, not 1; reload it and apply your change again" in str(lost)
    if databases.engine == "postgresql":  # refused by the primary key, not by the version check
        assert isinstance(lost.__cause__, IntegrityError)
    history = RegistryStore(db).device_history("elec-main")
    assert [(r.version, r.recorded_by) for r in history] == [(1, "a"), (2, won.recorded_by)]
    assert [a.action for a in RegistryStore(db).audit()] == ["device.create", "device.update"]


def test_bad_specs_name_the_field():
    with pytest.raises(ValidationError, match="unknown medium 'water'"):
        spec(medium="water")
    with pytest.raises(ValidationError, match="removed_at must be after installed_at"):
        spec(removed_at=T0 - timedelta(days=1))
    with pytest.raises(ValidationError, match="installed_at"):
        spec(installed_at="2026-11-01T00:00:00")  # no timezone
