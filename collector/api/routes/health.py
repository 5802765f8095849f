from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from collector.api.deps import ServicesDep, StoreDep
from collector.api.schemas import Event, Gap, Health, Quarantined
from collector.ledger.gaps import Reported, find_gaps
from metertrace import __version__

router = APIRouter(prefix="/api/v1", tags=["operations"])


@router.get("/health", response_model=Health)
def health(services: ServicesDep) -> Health:
    """Liveness plus the ingest counters: stored, duplicates, quarantined by reason."""
    s = services.store.stats()
    connected = bool(services.mqtt_connected())  # type: ignore[operator]
    return Health(
        status="ok" if connected else "degraded",
        version=__version__,
        mqtt_connected=connected,
        messages=s.messages,
        readings=s.readings,
        duplicates=s.duplicates,
        quarantined=s.quarantined,
        events=s.events,
        reported_lost=s.reported_lost,
    )


@router.get("/quarantine", response_model=list[Quarantined])
def quarantine(store: StoreDep, limit: int = 100) -> list[Quarantined]:
    """The newest quarantined messages with the reason each was refused."""
    return [
        Quarantined(
            id=q.id,
            received_at=q.received_at,
            topic=q.topic,
            reason=q.reason,
            detail=q.detail,
            payload_preview=q.payload[:200].decode("utf-8", "replace"),
        )
        for q in store.quarantined(limit)
    ]


@router.get("/events", response_model=list[Event])
def events(
    store: StoreDep,
    device: Annotated[str | None, Query(description="device id; all devices when absent")] = None,
    limit: Annotated[int, Query(ge=1, le=100000)] = 1000,
) -> list[Event]:
    """Events from the gateways, oldest first: data-loss reports name the dropped seq range;
    counter events carry the before/after evidence of a wrap, reset or suspect reading."""
    return [Event(**asdict(e)) for e in store.events(device=device, limit=limit)]


@router.get("/gaps", response_model=list[Gap])
def gaps(store: StoreDep, device: Annotated[str, Query(description="device id")]) -> list[Gap]:
    """Missing sequence numbers of a device; each says which data-loss events explain it."""
    if device not in {d.id for d in store.devices()}:
        raise HTTPException(404, f"device {device!r} is not registered; see /api/v1/devices")
    reported = [
        Reported(e.id, e.first_seq, e.last_seq)
        for e in store.events(device=device, limit=1_000_000)
        if e.first_seq is not None and e.last_seq is not None
    ]
    return [
        Gap(first_seq=g.first, last_seq=g.last, count=g.count, explained_by=list(g.explained_by))
        for g in find_gaps(store.seq_runs(device), reported)
    ]
