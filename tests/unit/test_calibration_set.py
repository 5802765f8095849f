import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from collector.metrology.calibration import derive, validity_window
from collector.metrology.calibration_models import Certificate
from metertrace.calibration_set import CalibrationSet, DeviceEntry, stamp
from metertrace.corrections import apply

pytestmark = pytest.mark.unit

CERT = Certificate.model_validate_json(
    (Path(__file__).resolve().parents[2] / "docs/examples/certificate.json").read_text()
)


def entry() -> DeviceEntry:
    start, end = validity_window(CERT)
    return DeviceEntry(
        certificate_id=CERT.certificate_id,
        version=CERT.version,
        valid_from=start,
        valid_until=end,
        corrections=[derive(CERT, "energy.active.import", "gain_offset")],
    )


def reading(q: str, value: float | None) -> dict:
    return {"quantity": q, "value": value, "unit": "kWh", "raw": "00", "quality": "good"}


def test_valid_certificate_corrects_and_keeps_the_uncorrected_value():
    e = entry()
    ts = e.valid_from + timedelta(days=10)
    (r,) = stamp([reading("energy.active.import", 100800.0)], e, ts)
    assert r["value"] == pytest.approx(100800.0 / 1.008, rel=2e-4)
    assert r["cal"]["status"] == "calibrated" and r["cal"]["uncorrected"] == 100800.0
    assert (r["cal"]["certificate"], r["cal"]["version"]) == (CERT.certificate_id, 1)
    # the collector recomputes with the same code and must get the same float
    assert apply(e.corrections[0], r["cal"]["uncorrected"])[0] == r["value"]


def test_outside_validity_is_flagged_and_uncorrected():
    e = entry()
    (r,) = stamp([reading("energy.active.import", 5.0)], e, e.valid_until + timedelta(seconds=1))
    assert r["value"] == 5.0 and r["cal"]["status"] == "calibration_expired"
    (r,) = stamp([reading("energy.active.import", 5.0)], e, e.valid_from - timedelta(seconds=1))
    assert r["cal"]["status"] == "calibration_expired"


def test_no_certificate_or_no_correction_for_the_quantity():
    ts = datetime(2026, 6, 1, tzinfo=UTC)
    assert stamp([reading("voltage.l1n", 230.0)], entry(), ts)[0]["cal"] == {
        "status": "uncalibrated"
    }
    assert stamp([reading("energy.active.import", 1.0)], None, ts)[0]["cal"]["status"] == (
        "uncalibrated"
    )
    assert "cal" not in stamp([reading("energy.active.import", None)], entry(), ts)[0]


def test_set_round_trips_as_json():
    s = CalibrationSet(
        gateway="gw-1",
        issued=datetime(2026, 6, 1, tzinfo=UTC),
        serial=3,
        devices={"elec-main": entry()},
    )
    assert CalibrationSet.model_validate(json.loads(s.model_dump_json())) == s
