"""Which meter serves which lines, from when to when, and by which rule its energy is split.

Rules follow ISO 14044 4.3.4.2: a *dedicated* meter avoids allocation (its consumption while a
batch runs on its line is that batch's); a *residual* meter (a main meter minus its sub-meters)
and a *shared* meter partition by a documented key among the batches running at the same time.
"""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from collector.batches.model import Id


class Rule(StrEnum):
    DEDICATED = "dedicated"
    SHARED = "shared"
    RESIDUAL = "residual"


class Key(StrEnum):
    PRODUCED_QUANTITY = "produced_quantity"
    MASS = "mass"
    RUN_TIME = "run_time"
    FIXED_SHARES = "fixed_shares"


class IdlePolicy(StrEnum):
    """Where a meter's energy goes while no batch runs on any of its lines."""

    NEXT_BATCH = "next_batch"
    PREVIOUS_BATCH = "previous_batch"
    SPREAD = "spread_by_production"
    OVERHEAD = "overhead"  # reported as unallocated overhead of the meter


class MeterAssignment(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    meter_id: Id
    rule: Rule
    lines: tuple[Id, ...] = Field(min_length=1)
    # Needed when a shared or residual meter serves several lines; otherwise it only weighs
    # concurrent starts/ends and the idle spread (default: produced quantity).
    key: Key | None = None
    fixed_shares: dict[str, Annotated[float, Field(gt=0, allow_inf_nan=False)]] | None = None
    key_basis: str | None = Field(default=None, max_length=500)  # why this key, for the method text
    key_uncertainty_rel: float = Field(default=0.0, ge=0, allow_inf_nan=False)  # standard, k = 1
    sub_meters: tuple[Id, ...] = ()
    idle_policy: IdlePolicy | None = None  # None: the topology's declared policy
    valid_from: AwareDatetime
    valid_to: AwareDatetime | None = None

    @field_validator("valid_from", "valid_to")
    @classmethod
    def _to_utc(cls, v: datetime | None) -> datetime | None:
        return None if v is None else v.astimezone(UTC)

    @model_validator(mode="after")
    def _consistent(self) -> MeterAssignment:
        where = f"meter {self.meter_id} ({self.rule})"
        if len(set(self.lines)) != len(self.lines):
            raise ValueError(f"{where}: lines {list(self.lines)} list a line twice")
        if self.valid_to is not None and self.valid_to <= self.valid_from:
            raise ValueError(f"{where}: valid_to must be after valid_from")
        if self.rule is Rule.DEDICATED and len(self.lines) != 1:
            raise ValueError(
                f"{where}: a dedicated meter serves exactly one line, got {list(self.lines)}; "
                "use rule 'shared' with a key for a meter that serves several lines"
            )
        if self.rule is Rule.RESIDUAL:
            if not self.sub_meters:
                raise ValueError(f"{where}: a residual meter needs its sub_meters")
            if self.meter_id in self.sub_meters or len(set(self.sub_meters)) != len(
                self.sub_meters
            ):
                raise ValueError(f"{where}: sub_meters must be distinct and exclude the meter")
        elif self.sub_meters:
            raise ValueError(f"{where}: sub_meters apply to rule 'residual' only")
        if self.rule is not Rule.DEDICATED and len(self.lines) > 1 and self.key is None:
            raise ValueError(
                f"{where}: serves {len(self.lines)} lines, so it needs a key: one of "
                f"{', '.join(k.value for k in Key)}"
            )
        self._check_fixed_shares(where)
        return self

    def _check_fixed_shares(self, where: str) -> None:
        if self.key is not Key.FIXED_SHARES:
            if self.fixed_shares is not None:
                raise ValueError(f"{where}: fixed_shares given but key is {self.key}")
            return
        shares = self.fixed_shares or {}
        if set(shares) != set(self.lines):
            raise ValueError(
                f"{where}: fixed_shares must name exactly the lines {sorted(self.lines)}, "
                f"got {sorted(shares)}"
            )
        total = math.fsum(shares.values())
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"{where}: fixed_shares sum to {total!r}, they must sum to 1")

    @property
    def effective_key(self) -> Key:
        return self.key or Key.PRODUCED_QUANTITY

    def window(self, start: datetime, end: datetime) -> tuple[datetime, datetime] | None:
        """The part of [start, end) where this assignment is valid, or None."""
        lo = max(start, self.valid_from)
        hi = end if self.valid_to is None else min(end, self.valid_to)
        return (lo, hi) if lo < hi else None


class Topology(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    idle_policy: IdlePolicy  # declared, never defaulted: it changes what a batch carries
    assignments: tuple[MeterAssignment, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_assignment_per_meter_at_a_time(self) -> Topology:
        by_meter: dict[str, list[MeterAssignment]] = {}
        for a in self.assignments:
            by_meter.setdefault(a.meter_id, []).append(a)
        for meter, items in by_meter.items():
            items.sort(key=lambda a: a.valid_from)
            for before, after in itertools.pairwise(items):
                if before.valid_to is None or before.valid_to > after.valid_from:
                    raise ValueError(
                        f"meter {meter}: assignments valid from {before.valid_from.isoformat()} "
                        f"and {after.valid_from.isoformat()} overlap; end the first (valid_to) "
                        "before the second starts"
                    )
        return self

    def policy_of(self, assignment: MeterAssignment) -> IdlePolicy:
        return assignment.idle_policy or self.idle_policy

    def active(
        self, start: datetime, end: datetime
    ) -> list[tuple[MeterAssignment, datetime, datetime]]:
        """Assignments valid somewhere in [start, end), each with its window inside it."""
        out = []
        for a in self.assignments:
            w = a.window(start, end)
            if w is not None:
                out.append((a, *w))
        return out
