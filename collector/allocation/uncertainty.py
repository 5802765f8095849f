"""Measurement uncertainty of consumption (GUM, JCGM 100:2008), standard u and expanded U = k·u.

Consumption from a counter, E = R_end − R_start, has two kinds of terms:
- resolution: each reading is quantised to the register step r, a rectangular distribution of
  half-width r/2, so u = r/√12 per reading and √2·r/√12 for the two readings of a difference;
- calibration: proportional to E, from the certificate (U at coverage factor k: u_rel = U/k) or,
  without one, from the accuracy class limit a (rectangular: u_rel = a/√3).
Meters calibrated independently add in quadrature. Meters calibrated against the same reference
share that reference's error, so their errors can only move together (correlation r ≥ 0), but how
much of each certificate's U is the reference's is not stated. The budget takes the worst case
over 0 ≤ r ≤ 1: terms of the same sign add linearly, while terms of opposite sign (a sub-meter
subtracted from its main meter) are not allowed to cancel and add in quadrature. A meter is
always fully correlated with itself, so its own terms (across windows, or a sub-meter both
dedicated to a batch and subtracted from a residual for it) add linearly, with their signs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

K_DEFAULT = 2.0
SQRT3 = math.sqrt(3.0)
SQRT12 = math.sqrt(12.0)


def rectangular(half_width: float) -> float:
    """Standard uncertainty of a rectangular distribution of the given half-width."""
    return half_width / SQRT3


def reading_difference_u(resolution: float) -> float:
    """Resolution term of a difference of two readings of step `resolution`."""
    return math.sqrt(2.0) * resolution / SQRT12


def combine(independent: Iterable[float] = (), correlated: Iterable[Iterable[float]] = ()) -> float:
    """u_c of a sum: independent terms in quadrature, each correlated group added linearly."""
    sq = math.fsum(u * u for u in independent)
    sq += math.fsum(math.fsum(group) ** 2 for group in correlated)
    return math.sqrt(sq)


def relative_product(*relative_u: float) -> float:
    """Relative standard uncertainty of a product of independent factors (quadrature)."""
    return math.sqrt(math.fsum(r * r for r in relative_u))


@dataclass(frozen=True, slots=True)
class MeterUncertainty:
    """What the metrology records say about one meter's consumption."""

    meter_id: str
    resolution: float  # register step, in the meter's unit
    relative_u: float  # calibration term, standard (k = 1), relative to consumption
    basis: str  # how relative_u was obtained, for the evidence
    calibration_status: str  # "valid", "expired", "uncalibrated", ... from the registry
    certificate_id: str | None = None
    calibration_group: str | None = None  # meters calibrated against the same reference

    def __post_init__(self) -> None:
        if not (self.resolution >= 0 and self.relative_u >= 0):
            raise ValueError(f"meter {self.meter_id}: resolution and relative_u must be >= 0")

    @classmethod
    def from_certificate(
        cls,
        meter_id: str,
        *,
        resolution: float,
        expanded_rel: float,
        k: float,
        certificate_id: str,
        status: str = "valid",
        group: str | None = None,
    ) -> MeterUncertainty:
        if not k > 0:
            raise ValueError(f"meter {meter_id}: coverage factor k must be > 0, got {k}")
        basis = f"certificate {certificate_id}: U = {expanded_rel:.3%} (k = {k:g}), u = U/k"
        return cls(meter_id, resolution, expanded_rel / k, basis, status, certificate_id, group)

    @classmethod
    def from_accuracy_class(
        cls,
        meter_id: str,
        *,
        resolution: float,
        class_percent: float,
        status: str = "uncalibrated",
        group: str | None = None,
    ) -> MeterUncertainty:
        basis = f"accuracy class {class_percent:g} %: limit a, rectangular, u = a/√3"
        return cls(
            meter_id, resolution, rectangular(class_percent / 100.0), basis, status, None, group
        )


@dataclass(slots=True)
class Budget:
    """Uncertainty terms accumulated per batch (arrays over all batches), then combined."""

    n: int
    squares: NDArray[np.float64] = field(init=False)
    # calibration group -> meter -> the meter's signed calibration term per batch
    groups: dict[str, dict[str, NDArray[np.float64]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.squares = np.zeros(self.n)

    def independent(self, batches: NDArray[np.int64], u: NDArray[np.float64]) -> None:
        self.squares[batches] += u * u

    def correlated(
        self,
        group: str,
        meter: str,
        batches: NDArray[np.int64],
        signed_u: NDArray[np.float64],
    ) -> None:
        """A meter's calibration term: linear with the meter's other terms, and with the other
        meters of its group where the signs agree (see the module docstring)."""
        acc = self.groups.setdefault(group, {}).setdefault(meter, np.zeros(self.n))
        acc[batches] += signed_u

    def u_c(self) -> NDArray[np.float64]:
        total = self.squares.copy()
        for meters in self.groups.values():
            net = np.stack(list(meters.values()))
            rising = np.clip(net, 0.0, None).sum(axis=0)
            falling = np.clip(net, None, 0.0).sum(axis=0)
            total += rising * rising + falling * falling
        return np.sqrt(total)
