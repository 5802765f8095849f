from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from metertrace.timeutil import parse_utc

from ..deps import StoreDep
from ..schemas import Reading

router = APIRouter(prefix="/api/v1", tags=["readings"])


def _time(value: str | None, field: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_utc(value, field=field)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None


def _known_device(store: StoreDep, device: str) -> None:
    if device not in {d.id for d in store.devices()}:
        raise HTTPException(404, f"device {device!r} is not registered; see /api/v1/devices")


@router.get("/readings", response_model=list[Reading])
def list_readings(
    store: StoreDep,
    device: Annotated[str, Query(description="device id")],
    quantity: Annotated[str | None, Query(description="e.g. energy.active.import")] = None,
    start: Annotated[str | None, Query(description="ISO 8601 with timezone, inclusive")] = None,
    end: Annotated[str | None, Query(description="ISO 8601 with timezone, exclusive")] = None,
    limit: Annotated[int, Query(ge=1, le=100000)] = 10000,
) -> list[Reading]:
    """Stored readings of one device, oldest first, with unit, raw registers and quality."""
    _known_device(store, device)
    t0, t1 = _time(start, "start"), _time(end, "end")
    if t0 and t1 and t1 <= t0:
        raise HTTPException(422, "end must be after start")
    rows = store.readings(device=device, quantity=quantity, start=t0, end=t1, limit=limit)
    return [Reading(**asdict(r)) for r in rows]


@router.get("/readings/latest", response_model=list[Reading])
def latest_readings(store: StoreDep, device: str) -> list[Reading]:
    """The newest message's readings of one device."""
    _known_device(store, device)
    return [Reading(**asdict(r)) for r in store.latest(device)]
