"""One allocation per period, each batch rated over its own run (batches/energy_service.py).

A meter's uncertainty depends on the batch only through the certificate in force over its run,
so the service computes it once per stretch between certificate bounds: for every run, around,
on and between the bounds, that must be exactly what `meter_uncertainty` says for the run.
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from collector.allocation.counters import CounterReadings
from collector.allocation.uncertainty import MeterUncertainty
from collector.batches.energy_out import PeriodOut
from collector.batches.energy_service import EnergyUnavailable, NotFound, PeriodEnergy, _Meter
from collector.batches.metrology import MetrologyError, meter_uncertainty
from collector.batches.period import requested_period
from collector.metrology.calibration import validity_window
from collector.metrology.calibration_models import Certificate
from collector.metrology.certificates import StoredCertificate
from collector.metrology.registry import DeviceRecord, DeviceSpec

pytestmark = pytest.mark.unit

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "certificate.json"
QTY = "energy.active.import"


def record(**over: object) -> DeviceRecord:
    spec = {
        "id": "m1", "gateway": "gw-1", "profile": "eastron-sdm630", "serial_number": "S1",
        "medium": "electricity", "location": {"site": "a"}, "accuracy_class": "1",
        "installed_at": "2026-01-01T00:00:00Z", **over,
    }  # fmt: skip
    return DeviceRecord(
        spec=DeviceSpec.model_validate(spec), version=1, recorded_at=datetime.now(UTC),
        recorded_by="t",
    )  # fmt: skip


def stored(**over: object) -> StoredCertificate:
    cert = json.loads(EXAMPLE.read_text()) | {"device_id": "m1"} | over
    return StoredCertificate(
        certificate=Certificate.model_validate(cert), corrections=[],
        recorded_at=datetime.now(UTC), recorded_by="t",
    )  # fmt: skip


# A certificate of the counter for a week of March (in Shanghai's days), then one from 20 March
# (UTC days) that states nothing about the counter: without an accuracy class, runs it covers
# have no uncertainty at all.
CERTS = [
    stored(certificate_id="A", calibration_date="2026-03-03", issue_date="2026-03-03",
           valid_until="2026-03-09"),
    stored(certificate_id="B", calibration_date="2026-03-20", issue_date="2026-03-20",
           valid_until="2027-03-19", timezone="UTC",
           points=[p for p in json.loads(EXAMPLE.read_text())["points"] if p["quantity"] != QTY]),
]  # fmt: skip


def meter(device: DeviceRecord | None) -> _Meter:
    empty = np.zeros(0)
    readings = CounterReadings("m1", "electricity", "kWh", empty, empty, np.zeros(0, np.uint8), 1)
    bounds = sorted({t for c in CERTS for t in validity_window(c.certificate)})
    return _Meter("m1", device, CERTS, QTY, readings, 0.01, bounds)


def instants() -> list[datetime]:
    """Each bound, an hour either side of it, and well before and after them all."""
    bounds = sorted({t for c in CERTS for t in validity_window(c.certificate)})
    hour = timedelta(hours=1)
    near = {b + d for b in bounds for d in (-hour, timedelta(0), hour)}
    return sorted(near | {bounds[0] - 30 * 24 * hour, bounds[-1] + 400 * 24 * hour})


def directly(device: DeviceRecord | None, start: datetime, end: datetime) -> object:
    try:
        return meter_uncertainty(device, CERTS, QTY, start, end, 0.01, "m1")
    except MetrologyError as exc:
        return str(exc)


@pytest.mark.parametrize("device", [record(), record(accuracy_class=None)], ids=["class", "none"])
def test_a_run_is_rated_as_meter_uncertainty_rates_it(device):
    m = meter(device)
    runs = list(itertools.combinations(instants(), 2))
    for start, end in runs:
        assert m.ratings[m.rating(start, end)] == directly(device, start, end), (start, end)
    # fewer distinct ratings than runs: that is what lets batches share an allocation's budget
    assert 1 < len(m.ratings) < len(runs)
    kinds = {type(r) for r in m.ratings}
    assert kinds == ({MeterUncertainty} if device.spec.accuracy_class else {MeterUncertainty, str})


def test_a_period_answer_refuses_to_be_partial_and_names_the_batch():
    period: PeriodOut = requested_period(
        datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)
    )
    why = "meter m1 has no accuracy_class and no certificate in force states ..."
    pe = PeriodEnergy(period, 1, 3, {}, {"B2": why, "B3": why}, [])
    with pytest.raises(EnergyUnavailable, match=r"^batch B2 \(and 1 more batch\(es\) of the"):
        pe.out()
    with pytest.raises(EnergyUnavailable, match="no accuracy_class"):
        pe.batch("B3")
    with pytest.raises(NotFound, match="B9 is not among the batches of the period"):
        pe.batch("B9")


def test_a_period_needs_aware_bounds_in_order():
    t = datetime(2026, 3, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="period_end must be after period_start"):
        requested_period(t, t)
    with pytest.raises(ValueError, match=r"period_start .* has no time zone"):
        requested_period(t.replace(tzinfo=None), t + timedelta(days=1))
