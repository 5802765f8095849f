"""Checking a gateway's calibrated values: recompute each from its uncorrected value and the
certificate it names, with the same arithmetic the gateway ran (metertrace.corrections)."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

from metertrace.corrections import Correction, apply
from metertrace.wire import Reading

# (certificate id, version, quantity) -> the correction registered for it, or None
Lookup = Callable[[str, int, str], Correction | None]


class CalCheck(StrEnum):
    OK = "ok"  # recomputed bit for bit
    MISMATCH = "mismatch"  # the gateway's value differs from the recomputation
    UNKNOWN_CERTIFICATE = "unknown_certificate"  # names a certificate the collector lacks


def check(reading: Reading, lookup: Lookup) -> CalCheck | None:
    """None when there is nothing to check (no correction was applied)."""
    cal = reading.cal
    if cal is None or cal.status != "calibrated" or reading.value is None:
        return None
    assert cal.certificate is not None and cal.version is not None and cal.uncorrected is not None
    correction = lookup(cal.certificate, cal.version, reading.quantity)
    if correction is None:
        return CalCheck.UNKNOWN_CERTIFICATE
    expected, _ = apply(correction, cal.uncorrected)
    return CalCheck.OK if expected == reading.value else CalCheck.MISMATCH
