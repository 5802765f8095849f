"""The registries on a real SQLite file: append-only versions, replacements, audit log."""

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from collector.metrology.registry import DeviceSpec, Replacement, as_of
from collector.metrology.registry_store import RegistryConflict, SqliteRegistry

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
def reg(tmp_path):
    r = SqliteRegistry(tmp_path / "c.db")
    yield r
    r.close()


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


def test_tables_refuse_edits_in_the_database_itself(reg, tmp_path):
    reg.record_device(spec(), actor="a", role="plant_engineer", at=T0)
    db = sqlite3.connect(tmp_path / "c.db")
    for sql in (
        "UPDATE device_records SET reason = 'x'",
        "UPDATE audit_log SET actor = 'x'",
        "DELETE FROM audit_log",
    ):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute(sql)


def test_bad_specs_name_the_field():
    with pytest.raises(ValidationError, match="unknown medium 'water'"):
        spec(medium="water")
    with pytest.raises(ValidationError, match="removed_at must be after installed_at"):
        spec(removed_at=T0 - timedelta(days=1))
    with pytest.raises(ValidationError, match="installed_at"):
        spec(installed_at="2026-11-01T00:00:00")  # no timezone
