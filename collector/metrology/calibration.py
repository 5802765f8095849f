"""Calibration: from a certificate to a correction model, and whether a certificate is in force.

The model arithmetic (apply, uncertainty) and the decisions on counters, extrapolation and
uncertainty are documented in `collector.domain.corrections`, which the agent can run alone;
the certificate itself is `collector.metrology.calibration_models.Certificate`. Pure: no I/O.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from datetime import datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from collector.metrology.calibration_models import Certificate, CertificateRef
from device_profiles.vocabulary import VOCABULARY, Kind
from metertrace.corrections import Correction, Flag, ModelKind, Uncertainty, apply, uncertainty

__all__ = [
    "CalibrationError",
    "Correction",
    "Flag",
    "ModelKind",
    "Uncertainty",
    "Validity",
    "apply",
    "derive",
    "due_within",
    "status",
    "uncertainty",
    "validity_window",
]


class CalibrationError(ValueError):
    """A model that cannot be derived from a certificate, with the certificate and the fix."""

    def __init__(self, certificate: CertificateRef, message: str) -> None:
        self.certificate = certificate
        self.message = message
        super().__init__(
            f"certificate {certificate.certificate_id} v{certificate.version}: {message}"
        )


class Validity(StrEnum):
    VALID = "valid"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"


def derive(cert: Certificate, quantity: str, kind: ModelKind | str) -> Correction:
    """The correction model of `kind` for one quantity of a certificate, with the choice checked."""
    if kind not in set(ModelKind):
        raise CalibrationError(
            cert.ref, f"unknown model {kind!r}; choose one of {', '.join(ModelKind)}"
        )
    kind = ModelKind(kind)
    idx = [i for i, p in enumerate(cert.points) if p.quantity == quantity]
    if not idx:
        covered = sorted({p.quantity for p in cert.points})
        raise CalibrationError(
            cert.ref, f"no calibration points for {quantity}; it covers {', '.join(covered)}"
        )
    q = VOCABULARY[quantity]
    counter = q.kind is Kind.COUNTER
    xs = [cert.points[i].indicated for i in idx]
    ys = [cert.points[i].reference for i in idx]
    gain, offset = 1.0, 0.0
    knots: tuple[tuple[float, float], ...] = ()
    if kind is ModelKind.GAIN_OFFSET:
        if len(set(xs)) < 2:
            raise CalibrationError(
                cert.ref,
                f"gain_offset needs points at 2 or more distinct indicated values of "
                f"{quantity}; this certificate has {sorted(set(xs))}: use none",
            )
        gain, offset = statistics.linear_regression(xs, ys)
        if gain <= 0:
            raise CalibrationError(cert.ref, f"the fitted gain of {quantity} is {gain:g} (<= 0)")
    elif kind is ModelKind.PIECEWISE_LINEAR:
        if counter:
            raise CalibrationError(
                cert.ref,
                f"{quantity} is a counter: piecewise corrections act on power or flow, "
                "not on totals; use gain_offset (its gain applies to consumption) or none",
            )
        knots = tuple(sorted(zip(xs, ys, strict=True)))
    # piecewise passes through its points; none leaves the errors as they are
    fitted = ys if kind is ModelKind.PIECEWISE_LINEAR else [gain * x + offset for x in xs]
    residuals = tuple(y - f for y, f in zip(ys, fitted, strict=True))
    relative, u_cert = _certificate_u(cert, idx, counter)
    try:
        return Correction(
            kind=kind,
            quantity=quantity,
            unit=q.unit,
            counter=counter,
            certificate_id=cert.certificate_id,
            certificate_version=cert.version,
            gain=gain,
            offset=offset,
            knots=knots,
            calibrated_range=(min(xs), max(xs)),
            residuals=residuals,
            relative=relative,
            u_certificate=u_cert,
            u_residual=_residual_se(kind, residuals, ys, relative),
        )
    except ValidationError as exc:  # the model's own rules, e.g. piecewise points not monotonic
        detail = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
        raise CalibrationError(cert.ref, f"{kind} for {quantity}: {detail}") from None


def _certificate_u(cert: Certificate, idx: list[int], counter: bool) -> tuple[bool, float]:
    """(relative?, largest standard uncertainty) over the points; relative ones as fractions."""
    us = [cert.point_uncertainty(i) for i in idx]
    relative = us[0].relative or counter
    worst = 0.0
    for i, u in zip(idx, us, strict=True):
        std = u.value / u.k
        if u.relative:
            std /= 100.0
        elif relative:  # a counter with absolute U: relative to the amount at that point
            ref = cert.points[i].reference
            if ref == 0:
                raise CalibrationError(
                    cert.ref,
                    f"points[{i}] of counter {cert.points[i].quantity} has reference 0 "
                    "and an absolute U: a counter's U must relate to a non-zero test amount",
                )
            std /= abs(ref)
        worst = max(worst, std)
    return relative, worst


def _residual_se(
    kind: ModelKind, residuals: tuple[float, ...], refs: list[float], relative: bool
) -> float | None:
    if kind is ModelKind.PIECEWISE_LINEAR:
        return None
    p = 2 if kind is ModelKind.GAIN_OFFSET else 0
    dof = len(residuals) - p
    if dof <= 0:
        return None
    rs = [r / abs(y) if relative else r for r, y in zip(residuals, refs, strict=True)]
    return math.sqrt(math.fsum(r * r for r in rs) / dof)


def validity_window(cert: Certificate) -> tuple[datetime, datetime]:
    """[start, end): from the start of the calibration day to the end of valid_until."""
    tz = ZoneInfo(cert.timezone)
    start = datetime.combine(cert.calibration_date, time(), tz)
    end = datetime.combine(cert.valid_until + timedelta(days=1), time(), tz)
    return start, end


def status(cert: Certificate, at: datetime) -> Validity:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"`at` ({at.isoformat()}) needs a time zone; readings are in UTC")
    start, end = validity_window(cert)
    if at < start:
        return Validity.NOT_YET_VALID
    return Validity.VALID if at < end else Validity.EXPIRED


def due_within(certs: Iterable[Certificate], days: float, now: datetime) -> list[Certificate]:
    """Certificates whose validity ends within `days` of `now`, soonest first.

    Already expired ones are included (they are overdue). A certificate superseded by another in
    `certs` is left out: its successor is the one that falls due.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"`now` ({now.isoformat()}) needs a time zone")
    if days < 0:
        raise ValueError(f"days must be >= 0, not {days}")
    certs = list(certs)
    replaced = {c.supersedes for c in certs if c.supersedes is not None}
    horizon = now + timedelta(days=days)
    due = [c for c in certs if c.ref not in replaced and validity_window(c)[1] <= horizon]
    return sorted(due, key=lambda c: validity_window(c)[1])
