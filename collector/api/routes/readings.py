from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request

from collector.api.deps import StoreDep
from collector.api.schemas import Reading, Recalibrated
from collector.metrology.certificates import in_force
from collector.metrology.registry_store import RegistryStore
from metertrace.corrections import apply
from metertrace.timeutil import parse_utc

router = APIRouter(prefix="/api/v1", tags=["readings"])


def _time(value: str | None, field: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_utc(value, field=field)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None


def _known_device(store: StoreDep, device: str, request: Request) -> None:
    registry: RegistryStore = request.app.state.registry
    if device not in {d.id for d in store.devices()} and registry.device(device) is None:
        raise HTTPException(404, f"device {device!r} is not registered; see /api/v1/devices")


def _recalibrated(rows: list[Reading], registry: RegistryStore, device: str) -> list[Reading]:
    """Each value recomputed under the certificate in force now for its time (read-only)."""
    certs = registry.certificates(device)
    out = []
    for r in rows:
        base = r.uncorrected if r.uncorrected is not None else r.value
        cal = in_force(certs, device, r.ts)
        corr = next((c for c in cal.corrections if c.quantity == r.quantity), None)
        if base is None or corr is None or cal.certificate is None:
            out.append(r)
            continue
        value, _ = apply(corr, base)
        out.append(
            r.model_copy(
                update={
                    "recalibrated": Recalibrated(
                        value=value,
                        certificate=cal.certificate.certificate_id,
                        version=cal.certificate.version,
                    )
                }
            )
        )
    return out


@router.get("/readings", response_model=list[Reading])
def list_readings(
    store: StoreDep,
    device: Annotated[str, Query(description="device id")],
    quantity: Annotated[str | None, Query(description="e.g. energy.active.import")] = None,
    start: Annotated[str | None, Query(description="ISO 8601 with timezone, inclusive")] = None,
    end: Annotated[str | None, Query(description="ISO 8601 with timezone, exclusive")] = None,
    limit: Annotated[int, Query(ge=1, le=100000)] = 10000,
    recalibrate: Annotated[
        bool, Query(description="add each value recomputed under the certificate in force now")
    ] = False,
    *,
    request: Request,
) -> list[Reading]:
    """Stored readings of one device, oldest first, with unit, raw registers, quality and the
    calibration each value carries."""
    _known_device(store, device, request)
    t0, t1 = _time(start, "start"), _time(end, "end")
    if t0 and t1 and t1 <= t0:
        raise HTTPException(422, "end must be after start")
    rows = store.readings(device=device, quantity=quantity, start=t0, end=t1, limit=limit)
    out = [Reading(**asdict(r)) for r in rows]
    return _recalibrated(out, request.app.state.registry, device) if recalibrate else out


@router.get("/readings/latest", response_model=list[Reading])
def latest_readings(store: StoreDep, device: str, request: Request) -> list[Reading]:
    """The newest message's readings of one device."""
    _known_device(store, device, request)
    return [Reading(**asdict(r)) for r in store.latest(device)]
