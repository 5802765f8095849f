"""Which certificate is in force for a device, and its calibration status: pure rules.

Certificates are never edited; a new version names the one it supersedes. The one in force for a
device at a time is the newest version that nobody supersedes and whose validity covers the time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from collector.metrology.calibration import Validity, status, validity_window
from collector.metrology.calibration_models import Certificate, CertificateRef
from metertrace.corrections import Correction, ModelKind


class Registration(BaseModel):
    """What metrology staff submit: the certificate and the model to apply per quantity."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    certificate: Certificate
    corrections: dict[str, ModelKind] = Field(
        min_length=1, description="quantity -> none | gain_offset | piecewise_linear"
    )


class StoredCertificate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    certificate: Certificate
    corrections: list[Correction]
    recorded_at: datetime
    recorded_by: str


class CalibrationState(StrEnum):
    VALID = "valid"
    EXPIRED = "calibration_expired"
    NOT_YET_VALID = "not_yet_valid"
    UNCALIBRATED = "uncalibrated"


@dataclass(frozen=True)
class DeviceCalibration:
    device: str
    state: CalibrationState
    certificate: CertificateRef | None
    valid_until: datetime | None
    corrections: list[Correction]


def superseded(certs: Iterable[StoredCertificate]) -> set[tuple[str, int]]:
    out = set()
    for c in certs:
        s = c.certificate.supersedes
        if s is not None:
            out.add((s.certificate_id, s.version))
    return out


def in_force(certs: list[StoredCertificate], device: str, at: datetime) -> DeviceCalibration:
    """The device's calibration at a time; expired certificates still name themselves."""
    gone = superseded(certs)
    mine = [
        c
        for c in certs
        if c.certificate.device_id == device
        and (c.certificate.certificate_id, c.certificate.version) not in gone
    ]
    if not mine:
        return DeviceCalibration(device, CalibrationState.UNCALIBRATED, None, None, [])
    covering = [c for c in mine if status(c.certificate, at) is Validity.VALID]
    pick = max(covering or mine, key=lambda c: validity_window(c.certificate)[1])
    state = {
        Validity.VALID: CalibrationState.VALID,
        Validity.EXPIRED: CalibrationState.EXPIRED,
        Validity.NOT_YET_VALID: CalibrationState.NOT_YET_VALID,
    }[status(pick.certificate, at)]
    return DeviceCalibration(
        device, state, pick.certificate.ref, validity_window(pick.certificate)[1], pick.corrections
    )
