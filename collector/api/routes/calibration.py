"""Calibration routes: metrology staff register certificates; everyone may read their status."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, Query, Request
from pydantic import BaseModel

from collector.api.auth import CanManageCalibration, CanRead
from collector.metrology.calibration import CalibrationError, derive, due_within
from collector.metrology.calibration_models import Certificate, CertificateRef
from collector.metrology.certificates import Registration, StoredCertificate, in_force
from collector.metrology.dcc import DccError, import_dcc
from collector.metrology.registry_store import RegistryConflict, RegistryStore
from metertrace.corrections import Correction, ModelKind
from metertrace.timeutil import utcnow

router = APIRouter(prefix="/api/v1", tags=["calibration"])


def _registry(request: Request) -> RegistryStore:
    registry: RegistryStore = request.app.state.registry
    return registry


class CalibrationStatus(BaseModel):
    device: str
    state: str
    certificate: CertificateRef | None
    valid_until: str | None
    corrections: list[Correction]


def _store(
    request: Request, cert: Certificate, kinds: dict[str, ModelKind], caller: object, role: str
) -> StoredCertificate:
    try:
        corrections = [derive(cert, q, k) for q, k in kinds.items()]
    except CalibrationError as exc:
        raise HTTPException(422, str(exc)) from None
    stored = StoredCertificate(
        certificate=cert,
        corrections=corrections,
        recorded_at=utcnow(),
        recorded_by=getattr(caller, "name", "?"),
    )
    try:
        _registry(request).add_certificate(stored, role=role)
    except RegistryConflict as exc:
        raise HTTPException(409, str(exc)) from None
    hook = getattr(request.app.state, "on_calibration_change", None)
    if hook is not None:
        hook(cert.device_id)
    return stored


@router.post("/calibration/certificates", response_model=StoredCertificate, status_code=201)
def add_certificate(
    body: Registration, request: Request, caller: CanManageCalibration
) -> StoredCertificate:
    """Register a certificate (or a new version superseding one) and the corrections to apply."""
    return _store(request, body.certificate, body.corrections, caller, caller.role_name)


def _pairs(values: list[str], name: str) -> dict[str, str]:
    out = {}
    for v in values:
        key, sep, val = v.partition("=")
        if not sep or not key or not val:
            raise HTTPException(422, f"{name}={v!r}: write {name}=KEY=VALUE")
        out[key] = val
    return out


@router.post("/calibration/certificates/dcc", response_model=StoredCertificate, status_code=201)
def import_dcc_certificate(
    request: Request,
    caller: CanManageCalibration,
    xml: Annotated[bytes, Body(media_type="application/xml")],
    device_id: str,
    valid_until: date,
    result: Annotated[
        list[str], Query(description="DCC result id or refType = quantity, e.g. r1=frequency")
    ],
    correction: Annotated[
        list[str], Query(description="quantity = none | gain_offset | piecewise_linear")
    ],
    issue_date: date | None = None,
    timezone: str = "UTC",
) -> StoredCertificate:
    """Import a PTB Digital Calibration Certificate (the XML is the body)."""
    results = _pairs(result, "result")
    try:
        kinds = {q: ModelKind(k) for q, k in _pairs(correction, "correction").items()}
        cert = import_dcc(
            xml,
            device_id=device_id,
            quantity=dict(results),
            valid_until=valid_until,
            issue_date=issue_date,
            timezone=timezone,
        )
    except (DccError, ValueError) as exc:
        raise HTTPException(422, str(exc)) from None
    return _store(request, cert, kinds, caller, caller.role_name)


@router.get("/calibration/certificates", response_model=list[StoredCertificate])
def list_certificates(
    request: Request, _: CanRead, device: str | None = None
) -> list[StoredCertificate]:
    return _registry(request).certificates(device)


@router.get("/calibration/due", response_model=list[Certificate])
def certificates_due(
    request: Request, _: CanRead, days: Annotated[float, Query(ge=0, le=3650)] = 30
) -> list[Certificate]:
    """Certificates whose validity ends within `days` (overdue ones included), soonest first."""
    certs = [c.certificate for c in _registry(request).certificates()]
    return due_within(certs, days, utcnow())


@router.get("/devices/{device_id}/calibration-status", response_model=CalibrationStatus)
def calibration_status(device_id: str, request: Request, _: CanRead) -> CalibrationStatus:
    reg = _registry(request)
    if reg.device(device_id) is None:
        raise HTTPException(404, f"device {device_id} is not registered")
    cal = in_force(reg.certificates(device_id), device_id, utcnow())
    return CalibrationStatus(
        device=device_id,
        state=cal.state.value,
        certificate=cal.certificate,
        valid_until=cal.valid_until.isoformat() if cal.valid_until else None,
        corrections=cal.corrections,
    )
