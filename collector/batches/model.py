"""Production batches: what ran on which line, when, and how much it produced.

The declared units are PACT v2.3's `declaredUnit` values, so a batch's energy per declared unit
maps onto a ProductFootprint without translation.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

Id = Annotated[str, Field(min_length=1, max_length=128)]
PositiveFinite = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class DeclaredUnit(StrEnum):
    LITER = "liter"
    KILOGRAM = "kilogram"
    CUBIC_METER = "cubic meter"
    KILOWATT_HOUR = "kilowatt hour"
    MEGAJOULE = "megajoule"
    TON_KILOMETER = "ton kilometer"
    SQUARE_METER = "square meter"
    PIECE = "piece"


class Batch(BaseModel):
    """One production run of one product on one line, [start, end) in UTC."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Id
    product_id: Id
    product_name: str = Field(min_length=1, max_length=256)
    line: Id
    start: AwareDatetime
    end: AwareDatetime
    produced_quantity: PositiveFinite
    declared_unit: DeclaredUnit
    mass_kg: PositiveFinite | None = None

    @field_validator("start", "end")
    @classmethod
    def _to_utc(cls, v: datetime) -> datetime:
        return v.astimezone(UTC)

    @model_validator(mode="after")
    def _end_after_start(self) -> Batch:
        if self.end <= self.start:
            raise ValueError(
                f"batch {self.id}: end {self.end.isoformat()} is not after start "
                f"{self.start.isoformat()}; a batch needs a positive duration"
            )
        return self

    @property
    def duration_s(self) -> float:
        return (self.end - self.start).total_seconds()
