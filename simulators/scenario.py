"""A plant scenario: what each simulated meter measures over time, with exact ground truth.

Counter rates are in the counter's unit per hour (kWh/h = kW, Nm³/h, t/h). A rate is
base + amplitude·sin(2π·(t − epoch)/period), so the true counter at any time is the closed-form
integral: no numeric drift between what the simulator serves and what the tests expect.
"""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from device_profiles import Kind, find_profile, quantity
from device_profiles.dlt645 import AnyProfile
from metertrace.config import ConfigPath, StrictModel
from metertrace.timeutil import utcnow


class Rate(StrictModel):
    base: float = Field(ge=0)
    amplitude: float = Field(0.0, ge=0)
    period_s: float = Field(3600.0, gt=0)

    @model_validator(mode="after")
    def _never_negative(self) -> Rate:
        if self.amplitude > self.base:
            raise ValueError("amplitude > base would make the rate negative; a counter only rises")
        return self

    def at(self, dt: float) -> float:
        return self.base + self.amplitude * math.sin(2 * math.pi * dt / self.period_s)

    def integral(self, dt: float) -> float:
        """∫₀^dt rate, in unit·s/h → divide by 3600 for the counter's unit."""
        w = 2 * math.pi / self.period_s
        return (self.base * dt + self.amplitude * (1 - math.cos(w * dt)) / w) / 3600.0


class Counter(StrictModel):
    initial: float = Field(0.0, ge=0)
    rate: Rate


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
    counters: dict[str, Counter] = {}
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
    servers: list[SimServer] = Field(min_length=1)

    def resolved_epoch(self) -> datetime:
        return utcnow() if self.epoch == "now" else self.epoch


class MeterModel:
    """Ground truth of one meter: every profile quantity's true value at any time."""

    def __init__(self, spec: SimMeter, profile: AnyProfile, epoch: float) -> None:
        self.spec, self.profile, self.epoch = spec, profile, epoch
        mapped = {p.quantity for p in profile.points()}
        for name in [*spec.counters, *spec.gauges, *spec.not_available]:
            if name not in mapped:
                raise ValueError(f"meter {spec.id}: profile {profile.id} does not map {name}")
            if name in spec.not_available and (name in spec.counters or name in spec.gauges):
                raise ValueError(f"meter {spec.id}: {name} is not_available and has a value")
        for name in spec.counters:
            if quantity(name).kind is not Kind.COUNTER:
                raise ValueError(f"meter {spec.id}: {name} is a gauge; list it under gauges")
        for name, g in spec.gauges.items():
            if isinstance(g, RateOf) and g.rate_of not in spec.counters:
                raise ValueError(f"meter {spec.id}: gauges.{name}.rate_of names no counter")

    def value(self, name: str, t: float) -> float:
        """The true value at unix time t; quantities the scenario leaves out read 0."""
        if name in self.spec.not_available:
            raise ValueError(f"meter {self.spec.id}: {name} is not available; it has no value")
        dt = t - self.epoch
        if (c := self.spec.counters.get(name)) is not None:
            return c.initial + c.rate.integral(dt)
        g = self.spec.gauges.get(name)
        if isinstance(g, RateOf):
            return self.spec.counters[g.rate_of].rate.at(dt) * g.factor
        return float(g) if g is not None else 0.0

    def indicated(self, name: str, t: float) -> float:
        """What the meter shows: the truth with the meter's own error, if the scenario gives one."""
        err = self.spec.errors.get(name)
        truth = self.value(name, t)
        return truth if err is None else err.gain * truth + err.offset


def build_models(scenario: Scenario) -> dict[str, MeterModel]:
    epoch = scenario.resolved_epoch().timestamp()
    models: dict[str, MeterModel] = {}
    for server in scenario.servers:
        for m in server.meters:
            if m.id in models:
                raise ValueError(f"meter id {m.id} is used twice")
            models[m.id] = MeterModel(m, find_profile(m.profile, scenario.profile_dirs), epoch)
    return models


def load_scenario(path: Path | str) -> Scenario:
    from metertrace.config import load_config

    return load_config(path, Scenario)
