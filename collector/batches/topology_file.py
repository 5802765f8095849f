"""The plant topology as a YAML file (`metertrace topology set plant-topology.yaml`).

Strictly validated (unknown keys refused, every error names its YAML path and the fix) into the
domain's `Topology`, plus per meter the counter it is read from and, optionally, its register
step. The domain rules (collector/allocation/topology.py) are the ones applied; this file only adds
what the collector needs to find each meter's readings.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from collector.allocation.topology import IdlePolicy, MeterAssignment, Topology
from device_profiles.loader import format_validation_error
from device_profiles.vocabulary import VOCABULARY, Kind

# The counter of a medium when the topology does not name one: the one that carries the
# medium's consumption in the vocabulary's own unit.
COUNTER_OF_MEDIUM = {
    "electricity": "energy.active.import",
    "gas": "volume.gas.standard",
    "steam": "mass.steam",
}


class TopologyError(ValueError):
    """A topology file that cannot be used; the message names the source, YAML path and fix."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MeterSettings(_Strict):
    quantity: str | None = Field(
        None,
        description="the counter to allocate, e.g. energy.active.import; default by the "
        f"device's medium: {COUNTER_OF_MEDIUM}",
    )
    resolution: float | None = Field(
        None,
        gt=0,
        allow_inf_nan=False,
        description="register step in the quantity's unit; default from the device profile",
    )

    @field_validator("quantity")
    @classmethod
    def _counter(cls, v: str | None) -> str | None:
        if v is None:
            return v
        q = VOCABULARY.get(v)
        counters = sorted(n for n, x in VOCABULARY.items() if x.kind is Kind.COUNTER)
        if q is None or q.kind is not Kind.COUNTER:
            raise ValueError(f"{v!r} is not a counter quantity; use one of {', '.join(counters)}")
        return v


class TopologyDocument(_Strict):
    idle_policy: IdlePolicy = Field(
        description="where energy goes while no batch runs: "
        + ", ".join(p.value for p in IdlePolicy)
    )
    meters: dict[str, MeterSettings] = Field(default_factory=dict)
    assignments: tuple[MeterAssignment, ...] = Field(min_length=1)

    @field_validator("assignments")
    @classmethod
    def _one_topology(
        cls, v: tuple[MeterAssignment, ...], info: ValidationInfo
    ) -> tuple[MeterAssignment, ...]:
        policy = info.data.get("idle_policy")
        if policy is not None:
            try:  # the domain's rules across assignments (one per meter at a time)
                Topology(idle_policy=policy, assignments=v)
            except ValidationError as exc:
                raise ValueError(
                    format_validation_error(exc).removeprefix("(top level): ")
                ) from None
        return v

    @field_validator("meters")
    @classmethod
    def _known_meters(
        cls, v: dict[str, MeterSettings], info: ValidationInfo
    ) -> dict[str, MeterSettings]:
        # meters is validated before assignments (field order), so check against the raw input
        raw = (info.context or {}).get("raw_assignments")
        if raw is None:
            return v
        used = {m for a in raw if isinstance(a, dict) for m in _meters_of(a)}
        unknown = sorted(set(v) - used)
        if unknown:
            raise ValueError(
                f"{', '.join(unknown)} appear in no assignment (as meter_id or sub_meters); "
                "remove them or check the spelling"
            )
        return v

    @property
    def topology(self) -> Topology:
        return Topology(idle_policy=self.idle_policy, assignments=self.assignments)

    def settings(self, meter: str) -> MeterSettings:
        return self.meters.get(meter, MeterSettings())

    def digest(self) -> str:
        """SHA-256 of the canonical JSON: the same topology gives the same digest."""
        body = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(body.encode()).hexdigest()


def _meters_of(raw: dict[str, Any]) -> list[str]:
    subs = raw.get("sub_meters") or []
    return [str(raw.get("meter_id")), *(str(s) for s in subs if isinstance(subs, list))]


def parse_topology(text: str, *, source: str) -> TopologyDocument:
    """Validate a topology YAML (or JSON) text; errors start with `source` and the YAML path."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TopologyError(f"{source}: not valid YAML: {exc}") from exc
    return topology_from_data(data, source=source)


def topology_from_data(data: object, *, source: str) -> TopologyDocument:
    if not isinstance(data, dict):
        raise TopologyError(
            f"{source}: a topology is a YAML mapping with idle_policy, meters and assignments"
        )
    raw = data.get("assignments")
    context = {"raw_assignments": raw if isinstance(raw, list) else None}
    try:
        return TopologyDocument.model_validate(data, context=context)
    except ValidationError as exc:
        raise TopologyError(f"{source}: {format_validation_error(exc)}") from exc
