"""What the registry says about a meter's consumption uncertainty, for the allocation.

Per meter and batch: the calibration status over the batch's run (collector/metrology/certificates
`in_force` at its start and end), the calibration term (the certificate in force: the largest
expanded uncertainty among its points of the counter quantity; without a valid certificate the
device's accuracy class), and the register step (the topology's `resolution`, else the device
profile's encoding of the counter).
"""

from __future__ import annotations

import math
import re
import struct
from datetime import datetime

from collector.allocation.uncertainty import MeterUncertainty
from collector.metrology.calibration_models import Certificate
from collector.metrology.certificates import (
    CalibrationState,
    DeviceCalibration,
    StoredCertificate,
    in_force,
)
from collector.metrology.registry import DeviceRecord
from device_profiles import DataType, ProfileError, find_profile
from device_profiles.dlt645 import Dlt645Point
from device_profiles.point import Point, Ratio

_CLASS = re.compile(r"^(\d+(?:\.\d+)?)S?$")


class MetrologyError(ValueError):
    """A meter whose uncertainty cannot be stated; the message names the meter and the fix."""


def calibration_over(
    certs: list[StoredCertificate], device: str, start: datetime, end: datetime
) -> DeviceCalibration:
    """The calibration over [start, end]: valid only if valid at both ends; otherwise the end
    that is not (a certificate expiring mid-batch makes the batch's data expired)."""
    first, last = in_force(certs, device, start), in_force(certs, device, end)
    return first if first.state is not CalibrationState.VALID else last


def accuracy_class_percent(text: str, meter: str) -> float:
    """The class limit in percent from e.g. '1', '0.5S' or 'IEC 62053-22 0.5S'."""
    m = _CLASS.match(text.split()[-1]) if text.split() else None
    if m is None:
        raise MetrologyError(
            f"meter {meter}: accuracy_class {text!r} has no class limit in percent as its last "
            "word; write e.g. '1.0' or 'IEC 62053-21 1' in its registry record"
        )
    return float(m.group(1))


def certificate_expanded_rel(cert: Certificate, qty: str) -> tuple[float, float] | None:
    """(largest relative U among the points of qty, its k), or None without such points."""
    worst: tuple[float, float] | None = None
    for i, p in enumerate(cert.points):
        if p.quantity != qty:
            continue
        u = cert.point_uncertainty(i)
        rel = u.value / 100.0 if u.relative else u.value / abs(p.reference)
        if worst is None or rel / u.k > worst[0] / worst[1]:
            worst = (rel, u.k)
    return worst


def _f32_ulp(x: float) -> float:
    f = struct.unpack(">f", struct.pack(">f", x))[0] or 1.0
    return math.ldexp(1.0, math.frexp(f)[1] - 24)


def register_step(record: DeviceRecord, qty: str, largest: float) -> float:
    """The smallest step the counter's register can show around `largest` (in the unit)."""
    spec = record.spec
    try:
        profile = find_profile(spec.profile)
    except ProfileError as exc:
        raise MetrologyError(
            f"meter {spec.id}: {exc}; set meters.{spec.id}.resolution in the topology"
        ) from None
    point = next((p for p in profile.points() if p.quantity == qty), None)
    if point is None:
        raise MetrologyError(
            f"meter {spec.id}: profile {spec.profile} has no register for {qty}; name the "
            f"counter in meters.{spec.id}.quantity of the topology"
        )
    if isinstance(point, Dlt645Point):
        return point.format.step * abs(point.scale)
    assert isinstance(point, Point)
    ratio = 1.0
    if point.transform is not None:
        for r in point.transform.ratios:
            ratio *= spec.ct_ratio if r is Ratio.CT else spec.vt_ratio
    raw = (largest / ratio - point.offset) / point.scale
    if point.type is DataType.F32:
        step = _f32_ulp(raw)
    elif point.type is DataType.F64:
        step = math.ulp(raw)
    else:
        step = 1.0
    return step * abs(point.scale) * ratio


def meter_uncertainty(
    record: DeviceRecord | None,
    certs: list[StoredCertificate],
    qty: str,
    start: datetime,
    end: datetime,
    resolution: float,
    meter: str,
) -> MeterUncertainty:
    cal = calibration_over(certs, meter, start, end)
    cert = None
    if cal.certificate is not None:
        ref = cal.certificate
        cert = next(
            c.certificate
            for c in certs
            if (c.certificate.certificate_id, c.certificate.version) == (ref.certificate_id,
                                                                          ref.version)
        )  # fmt: skip
    from_cert = None if cert is None else certificate_expanded_rel(cert, qty)
    accuracy = None if record is None else record.spec.accuracy_class
    state = cal.state.value
    if (
        cert is not None
        and from_cert is not None
        and (cal.state is CalibrationState.VALID or accuracy is None)
    ):
        rel, k = from_cert
        group = "reference:" + "+".join(sorted(r.id for r in cert.reference_standards))
        return MeterUncertainty.from_certificate(
            meter, resolution=resolution, expanded_rel=rel, k=k, status=state, group=group,
            certificate_id=f"{cert.certificate_id} v{cert.version}",
        )  # fmt: skip
    if accuracy is None:
        why = "is not registered" if record is None else "has no accuracy_class"
        raise MetrologyError(
            f"meter {meter} {why} and no certificate in force states the uncertainty of {qty}; "
            "register the device with its accuracy_class (POST /api/v1/registry/devices) or "
            "its calibration certificate"
        )
    mu = MeterUncertainty.from_accuracy_class(
        meter,
        resolution=resolution,
        class_percent=accuracy_class_percent(accuracy, meter),
        status=state,
    )
    if cert is not None:  # a certificate exists but is not valid over the batch: say so
        note = f"certificate {cert.certificate_id} v{cert.version} is {state}; "
        return MeterUncertainty(
            meter, mu.resolution, mu.relative_u, note + mu.basis, state, None, None
        )
    return mu
