"""Device registry routes: plant engineers register and change devices; everyone may read."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Request
from pydantic import BaseModel, Field

from collector.api.auth import CanManageDevices, CanRead
from collector.metrology.registry import AuditEntry, DeviceRecord, DeviceSpec, Replacement
from collector.metrology.registry_store import RegistryConflict, RegistryStore
from metertrace.signing import EnrolledKey, SigningKeyError, load_public_pem
from metertrace.timeutil import utcnow
from metertrace.wire import check_id

router = APIRouter(prefix="/api/v1", tags=["registry"])


def _registry(request: Request) -> RegistryStore:
    registry: RegistryStore = request.app.state.registry
    return registry


@router.post("/registry/devices", response_model=DeviceRecord, status_code=201)
def register_device(spec: DeviceSpec, request: Request, caller: CanManageDevices) -> DeviceRecord:
    """Register a new device (measurement point). 409 if the id exists: change it with PUT."""
    reg = _registry(request)
    if reg.device(spec.id) is not None:
        raise HTTPException(409, f"device {spec.id} exists; PUT /api/v1/registry/devices/{spec.id}")
    return reg.record_device(
        spec, actor=caller.name, role=caller.role_name, at=utcnow(), expected_version=0
    )


@router.put("/registry/devices/{device_id}", response_model=DeviceRecord)
def change_device(
    device_id: str,
    spec: DeviceSpec,
    request: Request,
    caller: CanManageDevices,
    if_match: Annotated[str, Header(description="the version you are changing")],
    reason: str = "",
) -> DeviceRecord:
    """Record a new version. If-Match must name the current version, so no change is lost."""
    if spec.id != device_id:
        raise HTTPException(422, f"body id {spec.id!r} differs from the path {device_id!r}")
    try:
        expected = int(if_match.strip('"'))
    except ValueError:
        raise HTTPException(422, "If-Match must be the version number you read") from None
    try:
        return _registry(request).record_device(
            spec,
            actor=caller.name,
            role=caller.role_name,
            at=utcnow(),
            reason=reason,
            expected_version=expected,
        )
    except RegistryConflict as exc:
        raise HTTPException(409, str(exc)) from None
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None


@router.get("/registry/devices", response_model=list[DeviceRecord])
def list_registered(request: Request, _: CanRead) -> list[DeviceRecord]:
    return _registry(request).devices()


@router.get("/registry/devices/{device_id}", response_model=list[DeviceRecord])
def device_history(device_id: str, request: Request, _: CanRead) -> list[DeviceRecord]:
    """Every version of a device, oldest first."""
    history = _registry(request).device_history(device_id)
    if not history:
        raise HTTPException(404, f"device {device_id} is not registered")
    return history


@router.post(
    "/registry/devices/{device_id}/replacements", response_model=DeviceRecord, status_code=201
)
def replace_meter(
    device_id: str, event: Replacement, request: Request, caller: CanManageDevices
) -> DeviceRecord:
    """Record a meter swap with the old meter's final and the new meter's first reading."""
    if event.device != device_id:
        raise HTTPException(422, f"body device {event.device!r} differs from the path")
    try:
        return _registry(request).record_replacement(
            event, actor=caller.name, role=caller.role_name, at=utcnow()
        )
    except RegistryConflict as exc:
        raise HTTPException(409, str(exc)) from None


class KeyEnrolment(BaseModel):
    public_key_pem: str = Field(description="the gateway's Ed25519 public key (its .pub.pem)")


class EnrolledKeyOut(BaseModel):
    gateway: str
    kid: str
    alg: str
    enrolled_at: datetime | None
    retired_at: datetime | None = None  # messages stamped after this are refused


def _key_out(k: EnrolledKey, enrolled: dict[str, datetime]) -> EnrolledKeyOut:
    return EnrolledKeyOut(
        gateway=k.gateway,
        kid=k.kid,
        alg=k.alg,
        enrolled_at=enrolled.get(k.kid),
        retired_at=k.retired_at,
    )


@router.post("/registry/gateways/{gateway}/keys", response_model=EnrolledKeyOut, status_code=201)
def enrol_key(
    gateway: str, body: KeyEnrolment, request: Request, caller: CanManageDevices
) -> EnrolledKeyOut:
    """Enrol a gateway's public key; the previous key is retired now and keeps verifying the
    messages stamped before this moment."""
    try:
        raw = load_public_pem(body.public_key_pem)
        key = _registry(request).enrol_key(
            check_id("gateway", gateway),
            raw,
            actor=caller.name,
            role=caller.role_name,
            at=utcnow(),
        )
    except (SigningKeyError, ValueError) as exc:
        status = 409 if isinstance(exc, RegistryConflict) else 422
        raise HTTPException(status, str(exc)) from None
    return _key_out(key, _registry(request).enrolled_at())


@router.get("/registry/gateways/keys", response_model=list[EnrolledKeyOut])
def list_keys(request: Request, _: CanRead) -> list[EnrolledKeyOut]:
    reg = _registry(request)
    enrolled = reg.enrolled_at()
    return [_key_out(k, enrolled) for k in reg.gateway_keys()]


@router.get("/audit", response_model=list[AuditEntry])
def audit_log(
    request: Request, _: CanRead, entity_id: str | None = None, limit: int = 1000
) -> list[AuditEntry]:
    """Who changed what, when, with the state before and after."""
    return _registry(request).audit(entity_id=entity_id, limit=limit)
