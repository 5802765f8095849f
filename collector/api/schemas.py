"""Response models of the HTTP API (the OpenAPI document is generated from them)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class Device(BaseModel):
    id: str
    gateway: str
    profile: str
    registered_at: datetime
    last_seq: int | None
    last_ts: datetime | None
    messages: int


class Reading(BaseModel):
    device: str
    seq: int
    ts: datetime
    quantity: str
    value: float | None
    unit: str
    raw: str | None
    quality: str


class Health(BaseModel):
    status: str
    version: str
    mqtt_connected: bool
    messages: int
    readings: int
    duplicates: int
    quarantined: dict[str, int]


class Quarantined(BaseModel):
    id: int
    received_at: datetime
    topic: str
    reason: str
    detail: str
    payload_preview: str
