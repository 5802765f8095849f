from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter

from collector.api.deps import StoreDep
from collector.api.schemas import Device

router = APIRouter(prefix="/api/v1", tags=["devices"])


@router.get("/devices", response_model=list[Device])
def list_devices(store: StoreDep) -> list[Device]:
    """Registered devices with their last sequence number and message count."""
    return [Device(**asdict(d)) for d in store.devices()]
