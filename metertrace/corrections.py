"""Correction models and their application: the arithmetic the agent and the collector share.

Standard library and pydantic only (no numpy, nothing from the collector), so a gateway can run
exactly this code and the collector can recompute every calibrated value bit for bit. A model is
derived from a certificate by `collector.metrology.calibration.derive`; here it is applied.

Models (`true = f(indicated)`):
- `none`: the value is used as indicated.
- `gain_offset`: `true = gain·indicated + offset`, fitted by ordinary least squares.
- `piecewise_linear`: straight lines through the certificate's points.

Counters (energy, volume, mass totals). A certificate's points for a counter are test amounts
(energy registered during each test), so the correction belongs to consumption, not to the
register's absolute value: the total 152 345 kWh lies far outside 0.5-10 kWh test amounts.
- Only the gain applies, and it applies to the total directly: `gain·total`, whose differences
  are `gain·Δtotal`, the corrected consumption. The fitted offset is reported but never added:
  it is an error per test (start/stop, resolution), and added to a total it would shift every
  absolute reading (a new meter at 0 kWh would read `offset`) while cancelling in differences.
- `piecewise_linear` is refused: the error depends on load (power, flow), not on the register's
  value. Correct the gauge (power, flow) piecewise, or the counter with `gain_offset`.
- The uncertainty is relative for counters (absolute U at a point is divided by its reference
  amount) and applies to a consumption: pass the difference of corrected totals.
- No range flag for counters: a total is not comparable with the test amounts.

Range. Outside the calibrated range (the smallest to largest indicated value at the points) a
gauge's correction is extrapolated with the model itself (for `piecewise_linear`: the end
segments) and flagged `outside_calibrated_range`. Clamping the correction was rejected: holding
the end point's absolute correction is wrong for a proportional error, and either choice is a
guess the data must disclose. The value itself is never clamped.

Uncertainty of a corrected value: the certificate's standard uncertainty `u_cert = max(U_i/k_i)`
over the quantity's points (the worst point covers the values between points), or the model's
residual standard error where that is larger: lack of fit means the points disagree with the
model by more than the certificate's U, and then the fit, not the laboratory, limits what is
known. `max`, not a root sum of squares, because the residuals already contain the scatter U
describes. Residual standard error: `sqrt(Σr²/(n-p))`, p = 2 for `gain_offset` (none with n = 2),
p = 0 for `none` (the uncorrected errors: the bias stays in the uncertainty), none for
`piecewise_linear` (it passes through the points). Both terms are relative (of the reference)
when the certificate's U is, else in the unit. Returned: u (standard) and U = 2u (k = 2).
"""

from __future__ import annotations

import bisect
import itertools
import math
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

REPORT_K = 2.0


class ModelKind(StrEnum):
    NONE = "none"
    GAIN_OFFSET = "gain_offset"
    PIECEWISE_LINEAR = "piecewise_linear"


class Flag(StrEnum):
    OUTSIDE_CALIBRATED_RANGE = "outside_calibrated_range"


class Correction(BaseModel):
    """A correction ready to apply: travels to the agent as JSON, recomputed by the collector."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    kind: ModelKind
    quantity: str
    unit: str
    counter: bool = Field(description="a total: only the gain applies (see module docs)")
    certificate_id: str = Field(min_length=1)
    certificate_version: int = Field(ge=1)
    gain: float = 1.0
    offset: float = Field(0.0, description="fitted; never added to a counter")
    knots: tuple[tuple[float, float], ...] = Field(
        (), description="(indicated, reference) pairs of piecewise_linear, ascending"
    )
    calibrated_range: tuple[float, float] = Field(description="indicated values of the points")
    residuals: tuple[float, ...] = Field(description="reference - model(indicated), in unit")
    relative: bool = Field(description="u_certificate and u_residual are fractions of the value")
    u_certificate: float = Field(ge=0)
    u_residual: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> Correction:
        lo, hi = self.calibrated_range
        if lo > hi:
            raise ValueError("calibrated_range must be (smallest, largest)")
        if self.kind is ModelKind.NONE and (self.gain, self.offset, self.knots) != (1.0, 0.0, ()):
            raise ValueError("a `none` model has gain 1, offset 0 and no knots")
        if self.kind is ModelKind.GAIN_OFFSET and not (self.gain > 0 and not self.knots):
            raise ValueError("a gain_offset model has a positive gain and no knots")
        if self.kind is ModelKind.PIECEWISE_LINEAR:
            if self.counter:
                raise ValueError(
                    f"{self.quantity} is a counter: piecewise corrections act on power or flow; "
                    "use gain_offset (its gain applies to consumption) or none"
                )
            _check_knots(self.knots)
        return self


def _check_knots(knots: tuple[tuple[float, float], ...]) -> None:
    if len(knots) < 2:
        raise ValueError("piecewise_linear needs at least 2 points")
    for (x0, y0), (x1, y1) in itertools.pairwise(knots):
        if not x1 > x0:
            raise ValueError(
                f"indicated values must be distinct and ascending; {x0} is followed by {x1}"
            )
        if not y1 > y0:
            raise ValueError(
                f"reference values must rise with the indicated ones ({x0} -> {y0}, {x1} -> {y1})"
                ": a correction that is not monotonic is not a calibration curve"
            )


def apply(model: Correction, indicated: float) -> tuple[float, tuple[Flag, ...]]:
    """The corrected value in the model's unit, and the flags that qualify it."""
    if not math.isfinite(indicated):
        raise ValueError(f"cannot correct a non-finite value ({indicated}) of {model.quantity}")
    if model.counter:
        return (model.gain * indicated if model.kind is ModelKind.GAIN_OFFSET else indicated), ()
    lo, hi = model.calibrated_range
    flags = () if lo <= indicated <= hi else (Flag.OUTSIDE_CALIBRATED_RANGE,)
    if model.kind is ModelKind.NONE:
        return indicated, flags
    if model.kind is ModelKind.GAIN_OFFSET:
        return model.gain * indicated + model.offset, flags
    return _interpolate(model.knots, indicated), flags


def _interpolate(knots: tuple[tuple[float, float], ...], x: float) -> float:
    xs = [k[0] for k in knots]
    # The segment holding x; beyond either end, the end segment continues (extrapolation).
    i = min(max(bisect.bisect_right(xs, x) - 1, 0), len(knots) - 2)
    (x0, y0), (x1, y1) = knots[i], knots[i + 1]
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0)


@dataclass(frozen=True, slots=True)
class Uncertainty:
    standard: float  # u, in unit
    expanded: float  # U = k·u, in unit
    k: float
    unit: str


def uncertainty(model: Correction, value: float) -> Uncertainty:
    """Uncertainty of a corrected value (for a counter: of a corrected consumption)."""
    if not math.isfinite(value):
        raise ValueError(f"no uncertainty for a non-finite value ({value})")
    s = max(model.u_certificate, model.u_residual or 0.0)
    u = s * abs(value) if model.relative else s
    return Uncertainty(standard=u, expanded=REPORT_K * u, k=REPORT_K, unit=model.unit)
