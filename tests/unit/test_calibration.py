"""Certificates, correction models and validity: the calibration domain, without I/O."""

from __future__ import annotations

import copy
import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from pydantic import ValidationError

from collector.metrology.calibration import (
    CalibrationError,
    Correction,
    Flag,
    ModelKind,
    Validity,
    apply,
    derive,
    due_within,
    status,
    uncertainty,
)
from collector.metrology.calibration_models import Certificate
from device_profiles.loader import format_validation_error

pytestmark = pytest.mark.unit

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "certificate.json"
ENERGY, POWER = "energy.active.import", "power.active.total"
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def body() -> dict[str, Any]:
    """The shipped example certificate as a JSON body, to be varied per test."""
    return json.loads(EXAMPLE.read_text(encoding="utf-8"))


def cert(body: dict[str, Any], **over: Any) -> Certificate:
    return Certificate.model_validate({**body, **over})


def error_of(body: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as info:
        Certificate.model_validate(body)
    return format_validation_error(info.value)


def points(pairs: list[tuple[float, float]], quantity: str, unit: str) -> list[dict[str, Any]]:
    return [{"quantity": quantity, "unit": unit, "reference": r, "indicated": x} for r, x in pairs]


# --- the certificate model -----------------------------------------------------------------


def test_example_certificate_is_valid_and_frozen(body):
    c = cert(body)
    assert (c.certificate_id, c.version, c.laboratory.accreditation) == (
        "SAMPLE-EKL-2026-0142",
        1,
        "D-K-00000-01-00 (fictitious)",
    )
    assert len(c.points) == 9 and c.reference_standards[0].certificate_id == "SAMPLE-NMI-2025-0931"
    with pytest.raises(ValidationError):
        c.version = 2  # type: ignore[misc]
    assert Certificate.model_validate_json(c.model_dump_json()) == c


def test_unknown_key_names_the_field(body):
    body["laboratory"]["phone"] = "123"
    assert error_of(body) == "laboratory.phone: unknown key; remove it or check its spelling"


def test_accreditation_must_be_stated_even_if_null(body):
    del body["laboratory"]["accreditation"]
    assert "laboratory.accreditation: Field required" in error_of(body)
    body["laboratory"]["accreditation"] = None
    assert cert(body).laboratory.accreditation is None


def test_point_unit_must_be_the_vocabulary_unit(body):
    body["points"][0]["unit"] = "Wh"
    msg = error_of(body)
    assert msg.startswith("points[0]: unit 'Wh' does not fit energy.active.import")
    assert "convert reference and indicated to kWh" in msg


def test_unknown_quantity_suggests_close_names(body):
    body["points"][0]["quantity"] = "energy.active.imprt"
    assert "did you mean energy.active.import" in error_of(body)


def test_non_finite_values_are_refused(body):
    body["points"][1]["indicated"] = math.nan
    assert error_of(body).startswith("points[1].indicated:")


def test_a_later_version_names_what_it_supersedes(body):
    assert error_of({**body, "version": 2}) == (
        "supersedes: version 2 must name the version it supersedes"
    )
    same_or_newer = {"certificate_id": body["certificate_id"], "version": 2}
    assert "must be older" in error_of({**body, "version": 2, "supersedes": same_or_newer})
    v2 = cert(body, version=2, supersedes={"certificate_id": body["certificate_id"], "version": 1})
    assert v2.supersedes is not None and v2.supersedes.version == 1


def test_dates_must_be_in_order(body):
    assert error_of({**body, "issue_date": "2026-03-01"}) == (
        "issue_date: 2026-03-01 is before calibration_date 2026-03-03; it must follow it"
    )
    assert error_of({**body, "valid_until": "2026-03-03"}) == (
        "valid_until: 2026-03-03 must be after calibration_date 2026-03-03"
    )


def test_overdue_reference_standard_breaks_traceability(body):
    body["reference_standards"][0]["due_date"] = "2026-03-02"
    assert error_of(body) == (
        "reference_standards: [0] RS-3PH-0417 was due on 2026-03-02, before the calibration on "
        "2026-03-03: the traceability chain is broken"
    )


def test_every_point_needs_an_uncertainty_from_one_place(body):
    overall = {"value": 0.1, "k": 2, "unit": "%"}
    assert "either per point or overall" in error_of({**body, "uncertainty": overall})
    body["points"][2]["uncertainty"] = None
    assert error_of(body).startswith("uncertainty: points[2] has none")


def test_absolute_uncertainty_must_be_in_the_point_unit(body):
    body["points"][5]["uncertainty"]["unit"] = "W"
    assert "must be '%' (relative) or 'kW'" in error_of(body)


def test_relative_and_absolute_uncertainty_are_not_mixed_per_quantity(body):
    body["points"][0]["uncertainty"] = {"value": 0.001, "k": 2, "unit": "kWh"}
    assert "energy.active.import mix relative (%) and absolute" in error_of(body)


def test_humidity_is_percent_and_timezone_is_iana(body):
    body["environment"]["humidity_pct"] = {"min": 38, "max": 145}
    assert "0 to 100" in error_of(body)
    body["environment"]["humidity_pct"] = {"min": 38, "max": 45}
    assert "IANA name" in error_of({**body, "timezone": "Mars/Olympus"})


# --- correction models ---------------------------------------------------------------------


def test_gain_offset_matches_an_independent_least_squares_fit(body):
    c = cert(body)
    m = derive(c, ENERGY, "gain_offset")
    xs = np.array([p.indicated for p in c.points if p.quantity == ENERGY])
    ys = np.array([p.reference for p in c.points if p.quantity == ENERGY])
    gain, offset = np.polyfit(xs, ys, 1)
    assert m.gain == pytest.approx(gain, rel=1e-12) and m.offset == pytest.approx(offset, abs=1e-12)
    # the meter's known error: +0.8 % and 0.004 kWh per test
    assert m.gain == pytest.approx(1 / 1.008, rel=1e-3)
    assert m.offset == pytest.approx(-0.004 / 1.008, abs=5e-4)
    residuals = ys - (gain * xs + offset)
    assert m.residuals == pytest.approx(list(residuals), abs=1e-12)
    s_rel = math.sqrt(float(np.sum((residuals / ys) ** 2)) / (len(xs) - 2))
    assert m.u_residual == pytest.approx(s_rel, rel=1e-9)
    assert m.relative and m.u_certificate == pytest.approx(0.20 / 2 / 100)  # worst point, k = 2
    assert m.calibrated_range == (0.508, 10.084)


def test_counter_takes_only_the_gain_so_consumption_is_corrected(body):
    m = derive(cert(body), ENERGY, "gain_offset")
    assert m.counter and m.offset != 0
    assert apply(m, 0.0) == (0.0, ())  # a fresh register stays at zero: no offset on a total
    total, flags = apply(m, 152345.671875)
    assert total == m.gain * 152345.671875 and flags == ()  # far outside 0.5-10 kWh: no flag
    a, b = apply(m, 1000.0)[0], apply(m, 1010.08)[0]
    assert b - a == pytest.approx(10.0, rel=1e-3)  # 10.08 kWh indicated is 10 kWh consumed


def test_piecewise_is_refused_for_counters(body):
    with pytest.raises(CalibrationError, match="counter: piecewise corrections act on power"):
        derive(cert(body), ENERGY, "piecewise_linear")
    with pytest.raises(ValidationError, match="counter: piecewise"):
        Correction.model_validate(
            {**derive(cert(body), POWER, "piecewise_linear").model_dump(), "counter": True}
        )


def test_piecewise_goes_through_the_points_and_flags_extrapolation(body):
    m = derive(cert(body), POWER, "piecewise_linear")
    assert m.knots == ((1.018, 1.0), (5.05, 5.0), (10.11, 10.0), (20.17, 20.0))
    assert m.residuals == (0.0, 0.0, 0.0, 0.0) and m.u_residual is None
    for x, y in m.knots:
        assert apply(m, x) == (pytest.approx(y, abs=1e-12), ())
    assert apply(m, (5.05 + 10.11) / 2)[0] == pytest.approx(7.5)
    # beyond the ends the end segments continue, flagged
    slope = (20.0 - 10.0) / (20.17 - 10.11)
    value, flags = apply(m, 25.0)
    assert value == pytest.approx(20.0 + slope * (25.0 - 20.17)) and flags == (
        Flag.OUTSIDE_CALIBRATED_RANGE,
    )
    assert apply(m, 0.5)[1] == (Flag.OUTSIDE_CALIBRATED_RANGE,)


def test_gauge_gain_offset_flags_values_outside_the_points(body):
    m = derive(cert(body), POWER, "gain_offset")
    assert apply(m, 10.0) == (m.gain * 10.0 + m.offset, ())
    assert apply(m, 30.0)[1] == (Flag.OUTSIDE_CALIBRATED_RANGE,)


def test_piecewise_sorts_points_and_refuses_duplicates_and_non_monotonic(body):
    pairs = [(10.0, 10.1), (1.0, 1.02), (5.0, 5.05)]
    m = derive(cert(body, points=power_points(pairs)), POWER, "piecewise_linear")
    assert [k[0] for k in m.knots] == [1.02, 5.05, 10.1]
    dup = [(1.0, 1.02), (1.1, 1.02), (5.0, 5.05)]
    with pytest.raises(CalibrationError, match="distinct and ascending"):
        derive(cert(body, points=power_points(dup)), POWER, "piecewise_linear")
    bent = [(1.0, 1.02), (0.9, 5.05), (5.0, 6.0)]
    with pytest.raises(CalibrationError, match="must rise"):
        derive(cert(body, points=power_points(bent)), POWER, "piecewise_linear")


def power_points(pairs: list[tuple[float, float]]) -> list[dict[str, Any]]:
    return [
        {**p, "uncertainty": {"value": 0.01, "k": 2, "unit": "kW"}}
        for p in points(pairs, POWER, "kW")
    ]


def test_model_choice_needs_enough_points(body):
    one = cert(body, points=power_points([(5.0, 5.05)]))
    with pytest.raises(CalibrationError, match="2 or more distinct indicated values"):
        derive(one, POWER, "gain_offset")
    with pytest.raises(CalibrationError, match="at least 2 points"):
        derive(one, POWER, "piecewise_linear")
    same_x = cert(body, points=power_points([(5.0, 5.05), (5.01, 5.05)]))
    with pytest.raises(CalibrationError, match="2 or more distinct"):
        derive(same_x, POWER, "gain_offset")
    assert derive(one, POWER, "none").kind is ModelKind.NONE
    with pytest.raises(CalibrationError, match=r"no calibration points for voltage\.l1n"):
        derive(one, "voltage.l1n", "none")
    with pytest.raises(CalibrationError, match="choose one of none, gain_offset, piecewise_linear"):
        derive(one, POWER, "spline")


def test_apply_refuses_non_finite_input(body):
    m = derive(cert(body), POWER, "gain_offset")
    with pytest.raises(ValueError, match="non-finite"):
        apply(m, math.nan)


def test_model_travels_as_json_and_applies_identically(body):
    m = derive(cert(body), POWER, "piecewise_linear")
    back = Correction.model_validate_json(m.model_dump_json())
    assert back == m and apply(back, 12.345) == apply(m, 12.345)


# --- uncertainty of a corrected value -------------------------------------------------------


def test_uncertainty_is_the_certificate_u_where_the_fit_is_good(body):
    m = derive(cert(body), ENERGY, "gain_offset")
    assert m.u_residual is not None and m.u_residual < m.u_certificate
    u = uncertainty(m, 250.0)  # a consumption of 250 kWh
    assert (u.standard, u.expanded, u.k, u.unit) == (
        pytest.approx(0.25),
        pytest.approx(0.5),
        2.0,
        "kWh",
    )


def test_uncertainty_takes_the_residual_error_where_it_is_larger(body):
    m = derive(cert(body), POWER, "gain_offset")  # the power errors are not linear
    assert m.u_residual is not None and m.u_residual > m.u_certificate == pytest.approx(0.005)
    u = uncertainty(m, 10.0)
    assert (
        u.standard == m.u_residual and u.expanded == 2 * m.u_residual and u.unit == "kW"
    )  # absolute


def test_uncorrected_errors_stay_in_the_uncertainty_of_none(body):
    c = cert(body)
    m = derive(c, ENERGY, "none")
    errs = [(p.reference - p.indicated) / p.reference for p in c.points if p.quantity == ENERGY]
    assert m.u_residual == pytest.approx(math.sqrt(sum(e * e for e in errs) / len(errs)))
    assert uncertainty(m, 100.0).standard == pytest.approx(100.0 * m.u_residual)


def test_counter_with_absolute_u_is_made_relative_per_point(body):
    pts = points([(1.0, 1.01), (10.0, 10.08)], ENERGY, "kWh")
    pts[0]["uncertainty"] = {"value": 0.002, "k": 2, "unit": "kWh"}  # 0.1 % of 1 kWh
    pts[1]["uncertainty"] = {"value": 0.004, "k": 2, "unit": "kWh"}  # 0.02 % of 10 kWh
    m = derive(cert(body, points=pts), ENERGY, "gain_offset")
    assert m.relative and m.u_certificate == pytest.approx(0.001)


def test_k_other_than_two_is_honoured(body):
    pts = power_points([(1.0, 1.01), (5.0, 5.05)])
    pts[1]["uncertainty"] = {"value": 0.03, "k": 3, "unit": "kW"}
    m = derive(cert(body, points=pts), POWER, "piecewise_linear")
    assert m.u_certificate == pytest.approx(0.01) and uncertainty(m, 3.0).expanded == pytest.approx(
        0.02
    )


# --- validity --------------------------------------------------------------------------------


def test_status_follows_the_local_calendar_days(body):
    c = cert(body)  # calibrated 2026-03-03, valid until 2027-03-03, Asia/Shanghai (UTC+8)
    first = datetime(2026, 3, 3, tzinfo=SHANGHAI)
    assert status(c, first - timedelta(microseconds=1)) is Validity.NOT_YET_VALID
    assert status(c, first.astimezone(UTC)) is Validity.VALID  # 2026-03-02T16:00Z
    end = datetime(2027, 3, 4, tzinfo=SHANGHAI)
    assert status(c, end - timedelta(microseconds=1)) is Validity.VALID
    assert status(c, datetime(2027, 3, 3, 16, tzinfo=UTC)) is Validity.EXPIRED
    with pytest.raises(ValueError, match="needs a time zone"):
        status(c, datetime(2026, 6, 1))


def test_due_within_lists_soonest_first_with_overdue_and_without_superseded(body):
    def version(cid: str, until: str, **over: Any) -> Certificate:
        return cert(copy.deepcopy(body), certificate_id=cid, valid_until=until, **over)

    now = datetime(2026, 11, 1, tzinfo=UTC)
    soon, later, overdue = (
        version("A", "2026-11-20"),
        version("B", "2027-02-01"),
        version("C", "2026-10-15"),
    )
    old = version("D", "2026-11-05")
    new = version("D", "2027-03-01", version=2, supersedes={"certificate_id": "D", "version": 1})
    due = due_within([later, soon, old, new, overdue], 30, now)
    assert [c.certificate_id for c in due] == ["C", "A"]
    assert due_within([later], 100, now) == [later]
    with pytest.raises(ValueError, match="time zone"):
        due_within([soon], 30, datetime(2026, 11, 1))
