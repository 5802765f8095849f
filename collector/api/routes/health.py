from __future__ import annotations

from fastapi import APIRouter

from metertrace import __version__

from ..deps import ServicesDep, StoreDep
from ..schemas import Health, Quarantined

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
