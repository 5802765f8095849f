"""A meter's uncertainty inputs from the registry: class limit, register step, calibration."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import pytest

from collector.batches.metrology import (
    MetrologyError,
    accuracy_class_percent,
    meter_uncertainty,
    register_step,
)
from collector.metrology.calibration_models import Certificate
from collector.metrology.certificates import StoredCertificate
from collector.metrology.registry import DeviceRecord, DeviceSpec

pytestmark = pytest.mark.unit

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "certificate.json"


def record(profile: str, **over: object) -> DeviceRecord:
    spec = {
        "id": "m1", "gateway": "gw-1", "profile": profile, "serial_number": "S1",
        "medium": "electricity", "location": {"site": "a"}, "accuracy_class": "1",
        "installed_at": "2026-01-01T00:00:00Z", **over,
    }  # fmt: skip
    return DeviceRecord(
        spec=DeviceSpec.model_validate(spec), version=1, recorded_at=datetime.now(UTC),
        recorded_by="t",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("text", "percent"), [("1", 1.0), ("0.5S", 0.5), ("IEC 62053-22 0.2S", 0.2), ("2.5", 2.5)]
)
def test_accuracy_class(text, percent):
    assert accuracy_class_percent(text, "m1") == percent


@pytest.mark.parametrize("text", ["IEC 62053-22", "B", ""])
def test_an_accuracy_class_without_a_limit_is_refused_with_the_fix(text):
    with pytest.raises(MetrologyError, match=r"write e\.g\. '1\.0'"):
        accuracy_class_percent(text, "m1")


def test_register_step_follows_the_encoding():
    # f32: one float32 step at the value (1000 = 1.95 · 2^9, 23 mantissa bits: 2^-14)
    assert register_step(record("eastron-sdm630"), "energy.active.import", 1000.0) == 2.0**-14
    # integer registers: the scale, times the CT·VT ratio when the register is secondary-side
    assert register_step(record("acrel-adw300"), "energy.active.import", 1e5) == 0.01
    ct = record("acrel-dtsd1352", ct_ratio=40.0, vt_ratio=1.0)
    assert register_step(ct, "energy.active.import", 1e5) == pytest.approx(0.4)
    # DL/T 645 BCD: the last digit of the format
    assert register_step(record("generic-dlt645-three-phase"), "energy.active.import", 1.0) == 0.01
    with pytest.raises(MetrologyError, match=r"no register for mass\.steam"):
        register_step(record("eastron-sdm630"), "mass.steam", 1.0)


def stored(**over: object) -> StoredCertificate:
    cert = json.loads(EXAMPLE.read_text()) | {"device_id": "m1"} | over
    return StoredCertificate(
        certificate=Certificate.model_validate(cert), corrections=[],
        recorded_at=datetime.now(UTC), recorded_by="t",
    )  # fmt: skip


def test_a_valid_certificate_gives_its_worst_point_and_its_reference_group():
    mu = meter_uncertainty(
        record("eastron-sdm630"), [stored()], "energy.active.import",
        datetime(2026, 4, 1, tzinfo=UTC), datetime(2026, 4, 2, tzinfo=UTC), 0.01, "m1",
    )  # fmt: skip
    assert mu.calibration_status == "valid"
    assert mu.relative_u == pytest.approx(0.002 / 2)  # U = 0.2 % at 0.5 kWh, k = 2
    assert mu.certificate_id == "SAMPLE-EKL-2026-0142 v1"
    assert mu.calibration_group == "reference:RS-3PH-0417"


def test_a_certificate_expiring_during_the_batch_falls_back_to_the_class_and_says_so():
    # valid until 2027-03-03 (Asia/Shanghai): a batch running across that day is not covered
    mu = meter_uncertainty(
        record("eastron-sdm630"), [stored()], "energy.active.import",
        datetime(2027, 3, 3, 12, tzinfo=UTC), datetime(2027, 3, 3, 20, tzinfo=UTC), 0.01, "m1",
    )  # fmt: skip
    assert mu.calibration_status == "calibration_expired"
    assert mu.relative_u == pytest.approx(0.01 / math.sqrt(3))
    assert mu.basis.startswith("certificate SAMPLE-EKL-2026-0142 v1 is calibration_expired; ")


def test_no_certificate_and_no_class_is_an_error_naming_the_fix():
    with pytest.raises(MetrologyError, match="register the device with its accuracy_class"):
        meter_uncertainty(
            record("eastron-sdm630", accuracy_class=None), [], "energy.active.import",
            datetime(2026, 4, 1, tzinfo=UTC), datetime(2026, 4, 2, tzinfo=UTC), 0.01, "m1",
        )  # fmt: skip
