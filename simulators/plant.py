"""Production lines with a batch schedule: the true load of each line, per medium, at any time.

A meter in a scenario may measure the sum of some lines' loads (a `FedCounter`) instead of a
free-running rate, so the ground truth of how a main meter's energy splits among lines, and of
what each batch drew, is known exactly. Loads are rates in the medium's counter unit per hour
(kWh/h = kW, Nm³/h, t/h); every integral is closed-form, like the meters' own rates.

The batch schedule is generated from a seed (reproducible), with idle time between batches, and
exported as the batch CSV the collector imports (`metertrace sim batches`), as an MES would
report it.
"""

from __future__ import annotations

import bisect
import csv
import io
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from pydantic import Field, model_validator

from metertrace.config import StrictModel
from metertrace.timeutil import to_wire

from .rates import Rate

Medium = Literal["electricity", "gas", "steam"]
CSV_COLUMNS = (
    "id",
    "product_id",
    "product_name",
    "line",
    "start",
    "end",
    "produced_quantity",
    "declared_unit",
)


NO_RATE = Rate(base=0.0)


class Load(StrictModel):
    """One line's draw of one medium: a rate while a batch runs, or an amount per produced unit
    spread evenly over the batch; and a rate while the line idles."""

    running: Rate | None = None
    per_unit: float | None = Field(
        None, ge=0, description="the medium's unit per produced unit, drawn evenly over the batch"
    )
    idle: Rate = NO_RATE

    @model_validator(mode="after")
    def _one_running_draw(self) -> Load:
        if (self.running is None) == (self.per_unit is None):
            raise ValueError("give exactly one of running (a rate) and per_unit")
        return self


class ScheduleSpec(StrictModel):
    """How the line's batches are generated: run and idle lengths and output, drawn uniformly."""

    product_id: str = Field(min_length=1)
    product_name: str = Field(min_length=1)
    declared_unit: str = Field("kilogram", min_length=1)
    first_start_h: float = Field(1.0, ge=0, description="idle time before the first batch")
    run_h: tuple[float, float] = Field(description="[shortest, longest] batch, hours")
    idle_h: tuple[float, float] = Field(description="[shortest, longest] idle between batches")
    output_per_h: tuple[float, float] = Field(description="declared units produced per hour")

    @model_validator(mode="after")
    def _ranges(self) -> ScheduleSpec:
        for name in ("run_h", "idle_h", "output_per_h"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise ValueError(f"{name} must be [low, high] with 0 < low <= high, got {lo, hi}")
        return self


class LineSpec(StrictModel):
    loads: dict[Medium, Load] = {}
    schedule: ScheduleSpec


class PlantSpec(StrictModel):
    seed: int = Field(1, description="the schedule's random seed: same seed, same batches")
    days: float = Field(7.0, gt=0, le=366, description="batches end within this long after epoch")
    lines: dict[str, LineSpec] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class PlantBatch:
    id: str
    product_id: str
    product_name: str
    line: str
    start: datetime
    end: datetime
    produced_quantity: float
    declared_unit: str

    @property
    def hours(self) -> float:
        return (self.end - self.start).total_seconds() / 3600.0

    def row(self) -> dict[str, str]:
        return {
            "id": self.id,
            "product_id": self.product_id,
            "product_name": self.product_name,
            "line": self.line,
            "start": to_wire(self.start),
            "end": to_wire(self.end),
            "produced_quantity": f"{self.produced_quantity:g}",
            "declared_unit": self.declared_unit,
        }


def _minutes(hours: float) -> timedelta:
    # whole minutes: the plant's MES reports to the minute
    return timedelta(minutes=max(1, round(hours * 60)))


def generate_schedule(name: str, spec: ScheduleSpec, epoch: datetime, days: float, seed: int
                      ) -> list[PlantBatch]:  # fmt: skip
    rng = random.Random(f"{seed}:{name}")
    horizon = epoch + timedelta(days=days)
    t = epoch + _minutes(spec.first_start_h)
    out: list[PlantBatch] = []
    while True:
        end = t + _minutes(rng.uniform(*spec.run_h))
        if end > horizon:
            return out
        rate = rng.uniform(*spec.output_per_h)
        qty = round(rate * (end - t).total_seconds() / 3600.0, 1)
        out.append(
            PlantBatch(
                f"{name}-{len(out) + 1:03d}",
                spec.product_id,
                spec.product_name,
                name,
                t,
                end,
                qty,
                spec.declared_unit,
            )
        )
        t = end + _minutes(rng.uniform(*spec.idle_h))


class LineModel:
    """A line's true cumulative draw per medium since the epoch, in the medium's counter unit."""

    def __init__(self, name: str, spec: LineSpec, batches: list[PlantBatch], epoch: float) -> None:
        self.name, self.spec, self.epoch = name, spec, epoch
        self.batches = sorted(batches, key=lambda b: b.start)
        self._starts = [b.start.timestamp() for b in self.batches]
        self._ends = [b.end.timestamp() for b in self.batches]
        # per medium: the running-minus-idle extra of every whole batch before index i
        self._prefix: dict[Medium, list[float]] = {}
        for medium in spec.loads:
            acc, prefix = 0.0, [0.0]
            for i in range(len(self.batches)):
                acc += self._extra(medium, i, self._ends[i])
                prefix.append(acc)
            self._prefix[medium] = prefix

    def _running(self, load: Load, i: int, a: float, z: float) -> float:
        if load.per_unit is not None:
            b = self.batches[i]
            return load.per_unit * b.produced_quantity * (z - a) / (b.hours * 3600.0)
        assert load.running is not None
        return load.running.integral(z - self.epoch) - load.running.integral(a - self.epoch)

    def _extra(self, medium: Medium, i: int, until: float) -> float:
        """What batch i drew above the idle load from its start until `until` (≤ its end)."""
        load = self.spec.loads[medium]
        a = self._starts[i]
        idle = load.idle.integral(until - self.epoch) - load.idle.integral(a - self.epoch)
        return self._running(load, i, a, until) - idle

    def running_at(self, t: float) -> int | None:
        i = bisect.bisect_right(self._starts, t) - 1
        return i if i >= 0 and t < self._ends[i] else None

    def cumulative(self, medium: Medium, t: float) -> float:
        load = self.spec.loads.get(medium)
        if load is None:
            return 0.0
        total = load.idle.integral(t - self.epoch)
        done = bisect.bisect_right(self._ends, t)  # batches wholly before t
        total += self._prefix[medium][done]
        if (i := self.running_at(t)) is not None:
            total += self._extra(medium, i, t)
        return float(total)

    def rate(self, medium: Medium, t: float) -> float:
        """The draw at t, per hour."""
        load = self.spec.loads.get(medium)
        if load is None:
            return 0.0
        i = self.running_at(t)
        if i is None:
            return load.idle.at(t - self.epoch)
        if load.per_unit is not None:
            b = self.batches[i]
            return load.per_unit * b.produced_quantity / b.hours
        assert load.running is not None
        return load.running.at(t - self.epoch)


class PlantModel:
    def __init__(self, spec: PlantSpec, epoch: datetime) -> None:
        self.spec = spec
        self.batches = [
            b
            for name, line in spec.lines.items()
            for b in generate_schedule(name, line.schedule, epoch, spec.days, spec.seed)
        ]
        t0 = epoch.timestamp()
        self.lines = {
            name: LineModel(name, line, [b for b in self.batches if b.line == name], t0)
            for name, line in spec.lines.items()
        }

    def batches_csv(self) -> str:
        out = io.StringIO()
        w = csv.DictWriter(out, CSV_COLUMNS, lineterminator="\n")
        w.writeheader()
        for b in sorted(self.batches, key=lambda b: (b.start, b.line)):
            w.writerow(b.row())
        return out.getvalue()
