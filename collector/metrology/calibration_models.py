"""A calibration certificate as ISO/IEC 17025 lays it out, strictly validated.

Certificates are evidence, so they are never edited: a correction is a new version naming the
(certificate_id, version) it supersedes. Every value carries its unit; an uncertainty is either
relative (unit "%", of the reference value) or absolute (the point's unit). Dates are calendar
days read in the certificate's `timezone` (an IANA name, UTC unless given), so a validity check
on a UTC timestamp is exact for a site in UTC+8 as well.
"""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from device_profiles.vocabulary import VOCABULARY, quantity
from metertrace.wire import check_id

RELATIVE = "%"  # the unit of a relative uncertainty: percent of the reference value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


_Text = Field(min_length=1, max_length=200)


class CertificateRef(_Strict):
    certificate_id: str = Field(min_length=1, max_length=128)
    version: int = Field(ge=1)


class Laboratory(_Strict):
    name: str = _Text
    accreditation: str | None = Field(
        description="accreditation number (e.g. D-K-12345-01-00); null states explicitly that "
        "the laboratory is not accredited for this calibration"
    )


class ReferenceStandard(_Strict):
    """The standard the meter was compared with: one link up the traceability chain."""

    id: str = _Text
    certificate_id: str = Field(min_length=1, max_length=128, description="its own certificate")
    due_date: date = Field(description="when its own calibration falls due")
    description: str | None = None


class Interval(_Strict):
    min: float
    max: float

    @model_validator(mode="after")
    def _ordered(self) -> Interval:
        if self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}; swap them")
        return self


class Environment(_Strict):
    """Ambient conditions during the calibration; a single reading is min == max."""

    temperature_c: Interval
    humidity_pct: Interval

    @field_validator("humidity_pct")
    @classmethod
    def _percent(cls, v: Interval) -> Interval:
        if v.min < 0 or v.max > 100:
            raise ValueError("relative humidity is in percent, 0 to 100 (0.45 is 45)")
        return v


class ExpandedUncertainty(_Strict):
    value: float = Field(gt=0, description="U = k·u")
    k: float = Field(2.0, gt=0, description="coverage factor (2 ≈ 95 %)")
    unit: str = Field(description="'%' relative to the reference value, or the point's unit")
    coverage_probability: float | None = Field(None, gt=0, le=1)

    @property
    def relative(self) -> bool:
        return self.unit == RELATIVE


class CalibrationPoint(_Strict):
    quantity: str = Field(description="a vocabulary name, e.g. energy.active.import")
    unit: str = Field(description="the vocabulary's unit for the quantity")
    reference: float = Field(description="the value of the reference standard (true value)")
    indicated: float = Field(description="what the meter under calibration showed")
    uncertainty: ExpandedUncertainty | None = None

    @field_validator("quantity")
    @classmethod
    def _known(cls, v: str) -> str:
        try:
            quantity(v)
        except KeyError as exc:
            raise ValueError(exc.args[0]) from None
        return v

    @model_validator(mode="after")
    def _units(self) -> CalibrationPoint:
        expected = VOCABULARY[self.quantity].unit
        if self.unit != expected:
            raise ValueError(
                f"unit {self.unit!r} does not fit {self.quantity}, which is in {expected}; "
                f"convert reference and indicated to {expected}"
            )
        if self.uncertainty is not None:
            _check_uncertainty_unit(self.uncertainty, self)
        return self


def _check_uncertainty_unit(u: ExpandedUncertainty, point: CalibrationPoint) -> None:
    if u.relative:
        if point.reference == 0:
            raise ValueError("a relative (%) uncertainty needs a non-zero reference value")
    elif u.unit != point.unit:
        raise ValueError(
            f"uncertainty unit {u.unit!r} must be '%' (relative) or {point.unit!r} (the point's)"
        )


class Certificate(_Strict):
    certificate_id: str = Field(min_length=1, max_length=128)
    version: int = Field(1, ge=1)
    supersedes: CertificateRef | None = Field(
        None,
        validate_default=True,
        description="the version this one replaces; required from version 2 on",
    )
    laboratory: Laboratory
    customer: str = _Text
    serial_number: str = Field(min_length=1, max_length=64, description="of the meter")
    device_id: str = Field(description="MeterTrace's id of the measurement point")
    device_description: str | None = None
    method: str = Field(min_length=1, max_length=500)
    calibration_date: date = Field(description="the day the calibration was completed")
    issue_date: date
    valid_until: date = Field(description="last valid day, from the site's calibration programme")
    timezone: str = Field("UTC", description="IANA zone the dates are read in")
    reference_standards: list[ReferenceStandard] = Field(min_length=1)
    environment: Environment
    points: list[CalibrationPoint] = Field(min_length=1, max_length=1000)
    uncertainty: ExpandedUncertainty | None = Field(
        None,
        validate_default=True,
        description="one U for every point; otherwise each point carries its own",
    )
    authoriser: str = _Text

    @field_validator("device_id")
    @classmethod
    def _device(cls, v: str) -> str:
        return check_id("device", v)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {v!r}; use an IANA name like Asia/Shanghai"
            ) from None
        return v

    @property
    def ref(self) -> CertificateRef:
        return CertificateRef(certificate_id=self.certificate_id, version=self.version)

    def point_uncertainty(self, i: int) -> ExpandedUncertainty:
        u = self.points[i].uncertainty or self.uncertainty
        assert u is not None  # guaranteed by the validation of `uncertainty`
        return u

    # Cross-field rules are field validators on the later field (pydantic validates fields in
    # order, earlier ones are in info.data), so each error carries the field it is about.
    @field_validator("supersedes")
    @classmethod
    def _versions(cls, s: CertificateRef | None, info: ValidationInfo) -> CertificateRef | None:
        version, cid = info.data.get("version"), info.data.get("certificate_id")
        if version is None:
            return s
        if s is None and version > 1:
            raise ValueError(f"version {version} must name the version it supersedes")
        if s is not None and s.certificate_id == cid and s.version >= version:
            raise ValueError(
                f"names version {s.version} of the same certificate: it must be older than "
                f"this version {version}"
            )
        return s

    @field_validator("issue_date", "valid_until")
    @classmethod
    def _after_calibration(cls, v: date, info: ValidationInfo) -> date:
        calibrated = info.data.get("calibration_date")
        if calibrated is None:
            return v
        if info.field_name == "issue_date" and v < calibrated:
            raise ValueError(f"{v} is before calibration_date {calibrated}; it must follow it")
        if info.field_name == "valid_until" and v <= calibrated:
            raise ValueError(f"{v} must be after calibration_date {calibrated}")
        return v

    @field_validator("reference_standards")
    @classmethod
    def _traceable(
        cls, v: list[ReferenceStandard], info: ValidationInfo
    ) -> list[ReferenceStandard]:
        calibrated = info.data.get("calibration_date")
        for i, r in enumerate(v):
            if calibrated is not None and r.due_date < calibrated:
                raise ValueError(
                    f"[{i}] {r.id} was due on {r.due_date}, before the calibration on "
                    f"{calibrated}: the traceability chain is broken"
                )
        return v

    @field_validator("uncertainty")
    @classmethod
    def _uncertainties(
        cls, overall: ExpandedUncertainty | None, info: ValidationInfo
    ) -> ExpandedUncertainty | None:
        kinds: dict[str, set[bool]] = {}
        points: list[CalibrationPoint] = info.data.get("points", [])
        for i, p in enumerate(points):
            if p.uncertainty is not None and overall is not None:
                raise ValueError(
                    f"points[{i}] has its own uncertainty as well: give U either per point or "
                    "overall"
                )
            u = p.uncertainty or overall
            if u is None:
                raise ValueError(
                    f"points[{i}] has none: give each point an uncertainty, or set this one"
                )
            if u is overall:
                try:
                    _check_uncertainty_unit(u, p)
                except ValueError as exc:
                    raise ValueError(f"for points[{i}]: {exc}") from None
            kinds.setdefault(p.quantity, set()).add(u.relative)
        mixed = sorted(q for q, k in kinds.items() if len(k) > 1)
        if mixed:
            raise ValueError(
                f"points of {', '.join(mixed)} mix relative (%) and absolute uncertainties; "
                "state them one way per quantity"
            )
        return overall
