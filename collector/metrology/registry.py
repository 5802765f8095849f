"""The device registry as append-only records.

A device here is a measurement point (the meter position on a line). Its record is never edited:
a change is a new version that names the version it supersedes, and a meter replacement is an
event carrying the old meter's final reading and the new meter's first, so consumption across
the swap stays computable and auditable.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from device_profiles.vocabulary import check_medium
from metertrace.wire import check_id


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Location(_Strict):
    site: str = Field(min_length=1)
    line: str | None = None
    process: str | None = None


class DeviceSpec(_Strict):
    """What a plant engineer registers (POST body); the registry adds version and audit."""

    id: str
    gateway: str
    profile: str
    serial_number: str = Field(min_length=1)
    medium: str
    location: Location
    accuracy_class: str | None = Field(None, description="e.g. IEC 62053-22 0.5S, or 1.0")
    ct_ratio: float = Field(1.0, gt=0)
    vt_ratio: float = Field(1.0, gt=0)
    installed_at: AwareDatetime
    removed_at: AwareDatetime | None = None

    @field_validator("id", "gateway")
    @classmethod
    def _ids(cls, v: str) -> str:
        return check_id("device/gateway", v)

    @field_validator("medium")
    @classmethod
    def _medium(cls, v: str) -> str:
        return check_medium(v)

    @model_validator(mode="after")
    def _dates(self) -> DeviceSpec:
        if self.removed_at and self.removed_at <= self.installed_at:
            raise ValueError("removed_at must be after installed_at")
        return self


class DeviceRecord(_Strict):
    spec: DeviceSpec
    version: int = Field(ge=1)
    recorded_at: AwareDatetime
    recorded_by: str
    reason: str = ""


class Replacement(_Strict):
    """A meter swapped at a measurement point: the evidence that bridges the two counters."""

    device: str
    at: AwareDatetime
    old_serial: str = Field(min_length=1)
    new_serial: str = Field(min_length=1)
    quantity: str = Field(description="the counter the readings belong to")
    old_final: float = Field(ge=0, description="last reading of the old meter, in unit")
    new_first: float = Field(ge=0, description="first reading of the new meter, in unit")
    unit: str
    note: str = ""

    @model_validator(mode="after")
    def _different_meter(self) -> Replacement:
        if self.old_serial == self.new_serial:
            raise ValueError("new_serial equals old_serial: a replacement installs another meter")
        return self


class AuditEntry(_Strict):
    id: int
    at: AwareDatetime
    actor: str
    role: str
    action: str  # e.g. device.create, device.update, device.replace, certificate.add
    entity: str
    entity_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


def next_version(current: DeviceRecord | None, spec: DeviceSpec) -> int:
    """Versions count up from 1; a device never changes gateway without a new id."""
    if current is None:
        return 1
    if current.spec.gateway != spec.gateway:
        raise ValueError(
            f"device {spec.id} belongs to gateway {current.spec.gateway}; a device moved to "
            "another gateway is registered under a new id"
        )
    return current.version + 1


def changed_fields(before: DeviceSpec, after: DeviceSpec) -> dict[str, tuple[Any, Any]]:
    b, a = before.model_dump(mode="json"), after.model_dump(mode="json")
    return {k: (b[k], a[k]) for k in a if a[k] != b.get(k)}


def as_of(records: list[DeviceRecord], at: datetime) -> DeviceRecord | None:
    """The version in force at a time: the newest recorded at or before it."""
    valid = [r for r in records if r.recorded_at <= at]
    return max(valid, key=lambda r: r.version) if valid else None
