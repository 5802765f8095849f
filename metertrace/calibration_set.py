"""The calibration set: what the collector tells a gateway to apply, signed by the collector.

Published retained on `metertrace/v1/{gateway}/calibration`, so a gateway that (re)connects
gets the current set at once. The agent applies a device's corrections only inside the
certificate's validity window and stamps every reading with the certificate it used; the
collector recomputes each corrected value from the uncorrected one and the same Correction.
"""

from __future__ import annotations

import math
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from .corrections import Correction, apply
from .wire import TOPIC_ROOT


class CalStatus(StrEnum):
    CALIBRATED = "calibrated"  # a valid certificate's correction was applied
    UNCALIBRATED = "uncalibrated"  # no certificate covers this quantity
    EXPIRED = "calibration_expired"  # the certificate no longer (or not yet) covers the time


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DeviceEntry(_Strict):
    certificate_id: str
    version: int = Field(ge=1)
    valid_from: AwareDatetime
    valid_until: AwareDatetime  # exclusive
    corrections: list[Correction]


class CalibrationSet(_Strict):
    v: Literal[1] = 1
    type: Literal["calibration_set"] = "calibration_set"
    gateway: str
    issued: AwareDatetime
    serial: int = Field(ge=1, description="increases with every set the collector issues")
    devices: dict[str, DeviceEntry]


def calibration_topic(gateway: str) -> str:
    return f"{TOPIC_ROOT}/{gateway}/calibration"


def stamp(
    readings: list[dict[str, Any]], entry: DeviceEntry | None, ts: datetime
) -> list[dict[str, Any]]:
    """Apply a device's corrections to one poll's wire readings (pure).

    Each reading keeps its uncorrected value and names the certificate, or says why none
    applied; a reading without a value is left as it is.
    """
    by_q = {c.quantity: c for c in entry.corrections} if entry else {}
    valid = entry is not None and entry.valid_from <= ts < entry.valid_until
    out = []
    for r in readings:
        c = by_q.get(r["quantity"])
        if r["value"] is None:
            out.append(r)
            continue
        if c is None or entry is None:
            out.append({**r, "cal": {"status": CalStatus.UNCALIBRATED.value}})
            continue
        cert = {"certificate": entry.certificate_id, "version": entry.version}
        if not valid:
            out.append({**r, "cal": {"status": CalStatus.EXPIRED.value, **cert}})
            continue
        corrected, flags = apply(c, r["value"])
        if not math.isfinite(corrected):
            raise ValueError(f"{r['quantity']}: correction produced {corrected}")
        out.append(
            {
                **r,
                "value": corrected,
                "cal": {
                    "status": CalStatus.CALIBRATED.value,
                    **cert,
                    "uncorrected": r["value"],
                    "flags": [f.value for f in flags],
                },
            }
        )
    return out
