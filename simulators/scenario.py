"""A plant scenario: what each simulated meter measures over time, with exact ground truth.

Counter rates are in the counter's unit per hour (kWh/h = kW, Nm³/h, t/h). A counter either rises
at its own rate (rates.py) or measures the sum of production lines' loads (plant.py: a main
meter, a line's sub-meter, a header shared by two lines); either way the true counter at any
time is a closed-form integral.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from device_profiles import Kind, find_profile, quantity
from device_profiles.dlt645 import AnyProfile
from metertrace.config import ConfigPath, StrictModel
from metertrace.timeutil import utcnow

from .plant import LineModel, Medium, PlantModel, PlantSpec
from .rates import Rate


class Counter(StrictModel):
    initial: float = Field(0.0, ge=0)
    rate: Rate


class FedCounter(StrictModel):
    """A counter that measures what some production lines draw of one medium, plus a standing
    draw of its own (a header's heat loss, a building's base load)."""

    initial: float = Field(0.0, ge=0)
    medium: Medium
    lines: list[str] = Field(min_length=1, description="plant lines whose load this meter sees")
    standing: Rate = Rate(base=0.0)


class RateOf(StrictModel):
    rate_of: str
    factor: float = 1.0


class SimRatios(StrictModel):
    """The CT/VT ratios the meter is programmed with: it serves secondary-side values."""

    ct: float = Field(1.0, gt=0)
    vt: float = Field(1.0, gt=0)


class MeterError(StrictModel):
    gain: float = Field(1.0, gt=0)
    offset: float = 0.0


class SimMeter(StrictModel):
    id: str
    profile: str
    unit_id: int = Field(1, ge=1, le=247)
    address: str | None = Field(
        None, pattern=r"^[0-9]{12}$", description="DL/T 645 meters: 12 digits, e.g. 000000123456"
    )
    counters: dict[str, Counter | FedCounter] = {}
    gauges: dict[str, float | RateOf] = {}
    ratios: SimRatios = SimRatios()
    not_available: list[str] = Field([], description="quantities served as the meter's N/A")
    errors: dict[str, MeterError] = Field(
        {},
        description="a known measurement error per quantity: the meter shows "
        "gain·truth + offset (what a calibration reveals)",
    )

    @field_validator("counters", "gauges", "not_available", "errors")
    @classmethod
    def _known(cls, v: dict[str, object] | list[str]) -> dict[str, object] | list[str]:
        for name in v:
            try:
                quantity(name)
            except KeyError as exc:
                raise ValueError(exc.args[0]) from None
        return v


class SimLine(StrictModel):
    """A serial server's line. A pty ignores it, except that with wire_timing each reply waits
    as long as the request and the reply would take on a real line at this speed."""

    baudrate: int = Field(9600, ge=300, le=115200)
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    wire_timing: bool = False


class SimServer(StrictModel):
    name: str
    protocol: Literal["modbus-tcp", "modbus-rtu", "dlt645"] = "modbus-tcp"
    host: str = "127.0.0.1"
    port: int = Field(0, ge=0, le=65535, description="modbus-tcp: the TCP port (0: any free)")
    serial_port: str | None = Field(
        None, description="modbus-rtu, dlt645: the serial device, e.g. /dev/ttyUSB1 or a pty"
    )
    line: SimLine = SimLine()
    meters: list[SimMeter] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_units(self) -> SimServer:
        tcp = self.protocol == "modbus-tcp"
        if tcp != ("port" in self.model_fields_set) or tcp == (self.serial_port is not None):
            raise ValueError(
                f"server {self.name}: a modbus-tcp server has a port, a modbus-rtu or dlt645 "
                "server a serial_port (and not the other)"
            )
        if self.protocol == "dlt645":
            addresses = [m.address for m in self.meters]
            if None in addresses or len(addresses) != len(set(addresses)):
                raise ValueError(f"server {self.name}: every dlt645 meter needs its own address")
            return self
        units = [m.unit_id for m in self.meters]
        if len(units) != len(set(units)):
            raise ValueError(f"server {self.name}: two meters share a unit_id")
        return self


class Scenario(StrictModel):
    name: str
    epoch: datetime | Literal["now"] = Field(
        "now", description="t = 0 of every rate; a fixed time makes ground truth reproducible"
    )
    profile_dirs: list[ConfigPath] = []
    plant: PlantSpec | None = Field(
        None, description="production lines and their batches, for meters that measure lines"
    )
    servers: list[SimServer] = Field(min_length=1)

    @model_validator(mode="after")
    def _fed_lines_exist(self) -> Scenario:
        if self.plant is not None and self.epoch == "now":
            raise ValueError(
                "a plant's batch schedule starts at the epoch: set epoch to a fixed time, e.g. "
                "2026-11-09T00:00:00Z, so the simulator and the batch list agree"
            )
        lines = set(self.plant.lines) if self.plant else set()
        for server in self.servers:
            for m in server.meters:
                for name, c in m.counters.items():
                    missing = sorted(set(c.lines) - lines) if isinstance(c, FedCounter) else []
                    if missing:
                        raise ValueError(
                            f"meter {m.id}: counters.{name}.lines names {missing}, which "
                            f"plant.lines does not define (it has {sorted(lines) or 'none'})"
                        )
        return self

    def resolved_epoch(self) -> datetime:
        return utcnow() if self.epoch == "now" else self.epoch


class MeterModel:
    """Ground truth of one meter: every profile quantity's true value at any time."""

    def __init__(
        self,
        spec: SimMeter,
        profile: AnyProfile,
        epoch: float,
        lines: dict[str, LineModel] | None = None,
    ) -> None:
        self.spec, self.profile, self.epoch = spec, profile, epoch
        self.lines = lines or {}
        mapped = {p.quantity for p in profile.points()}
        for name in [*spec.counters, *spec.gauges, *spec.not_available]:
            if name not in mapped:
                raise ValueError(f"meter {spec.id}: profile {profile.id} does not map {name}")
            if name in spec.not_available and (name in spec.counters or name in spec.gauges):
                raise ValueError(f"meter {spec.id}: {name} is not_available and has a value")
        for name, c in spec.counters.items():
            q = quantity(name)
            if q.kind is not Kind.COUNTER:
                raise ValueError(f"meter {spec.id}: {name} is a gauge; list it under gauges")
            if isinstance(c, FedCounter) and c.medium != q.medium:
                raise ValueError(
                    f"meter {spec.id}: counters.{name} measures {q.medium}, not {c.medium}; "
                    f"set medium: {q.medium}"
                )
        for name, g in spec.gauges.items():
            if isinstance(g, RateOf) and g.rate_of not in spec.counters:
                raise ValueError(f"meter {spec.id}: gauges.{name}.rate_of names no counter")

    def value(self, name: str, t: float) -> float:
        """The true value at unix time t; quantities the scenario leaves out read 0."""
        if name in self.spec.not_available:
            raise ValueError(f"meter {self.spec.id}: {name} is not available; it has no value")
        dt = t - self.epoch
        if (c := self.spec.counters.get(name)) is not None:
            if isinstance(c, Counter):
                return c.initial + c.rate.integral(dt)
            fed = sum(self.lines[x].cumulative(c.medium, t) for x in c.lines)
            return c.initial + c.standing.integral(dt) + fed
        g = self.spec.gauges.get(name)
        if isinstance(g, RateOf):
            return self._rate(self.spec.counters[g.rate_of], t) * g.factor
        return float(g) if g is not None else 0.0

    def _rate(self, c: Counter | FedCounter, t: float) -> float:
        dt = t - self.epoch
        if isinstance(c, Counter):
            return c.rate.at(dt)
        return c.standing.at(dt) + sum(self.lines[x].rate(c.medium, t) for x in c.lines)

    def indicated(self, name: str, t: float) -> float:
        """What the meter shows: the truth with the meter's own error, if the scenario gives one."""
        err = self.spec.errors.get(name)
        truth = self.value(name, t)
        return truth if err is None else err.gain * truth + err.offset


def build_plant(scenario: Scenario, epoch: datetime) -> PlantModel | None:
    return None if scenario.plant is None else PlantModel(scenario.plant, epoch)


def build_models(scenario: Scenario, epoch: datetime | None = None) -> dict[str, MeterModel]:
    """Every meter's ground truth; `epoch` overrides the scenario's (which may be "now")."""
    when = epoch or scenario.resolved_epoch()
    plant = build_plant(scenario, when)
    lines = plant.lines if plant else {}
    models: dict[str, MeterModel] = {}
    for server in scenario.servers:
        for m in server.meters:
            if m.id in models:
                raise ValueError(f"meter id {m.id} is used twice")
            profile = find_profile(m.profile, scenario.profile_dirs)
            models[m.id] = MeterModel(m, profile, when.timestamp(), lines)
    return models


def load_scenario(path: Path | str) -> Scenario:
    from metertrace.config import load_config

    return load_config(path, Scenario)
