"""A simulated draw that varies smoothly: base + amplitude·sin(2π·(t − epoch)/period), per hour.

Its integral is closed-form, so a counter built on it has exact ground truth at any time: no
numeric drift between what a simulator serves and what the tests expect.
"""

from __future__ import annotations

import math

from pydantic import Field, model_validator

from metertrace.config import StrictModel


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
