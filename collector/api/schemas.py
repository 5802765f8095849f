"""Response models of the HTTP API (the OpenAPI document is generated from them)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from metertrace.wire import CounterEventBody


class Device(BaseModel):
    id: str
    gateway: str
    profile: str
    registered_at: datetime
    last_seq: int | None
    last_ts: datetime | None
    messages: int


class Recalibrated(BaseModel):
    """The value recomputed under the certificate in force now (the stored one is unchanged)."""

    value: float
    certificate: str
    version: int


class Reading(BaseModel):
    device: str
    seq: int
    ts: datetime
    quantity: str
    value: float | None
    unit: str
    raw: str | None
    quality: str
    uncorrected: float | None = None
    cal_status: str | None = None
    certificate: str | None = None
    certificate_version: int | None = None
    cal_check: str | None = None
    recalibrated: Recalibrated | None = None


class Health(BaseModel):
    status: str
    version: str
    mqtt_connected: bool
    messages: int
    readings: int
    duplicates: int
    quarantined: dict[str, int]
    events: int = Field(description="events received from gateways (e.g. data-loss reports)")
    reported_lost: int = Field(description="messages or polls the gateways report as dropped")


class Quarantined(BaseModel):
    id: int
    received_at: datetime
    topic: str
    reason: str
    detail: str
    payload_preview: str


class Event(BaseModel):
    """A gateway's event. data_loss: messages it dropped unsent (outbox bound) or polls it
    could not store (first_seq/last_seq null); reason .. last_ts are null for other events.
    counter: a wrap, reset, replacement, backward step or jump of a total, with its evidence."""

    gateway: str
    id: int
    device: str
    ts: datetime
    received_at: datetime
    event: str = Field(description="data_loss or counter")
    reason: str | None
    first_seq: int | None
    last_seq: int | None
    count: int | None
    first_ts: datetime | None
    last_ts: datetime | None
    counter: CounterEventBody | None = Field(
        None, description="counter events: the body as the gateway signed it"
    )


class Gap(BaseModel):
    first_seq: int
    last_seq: int
    count: int
    explained_by: list[int] = Field(
        description="ids of the data-loss events that report these numbers as dropped; "
        "empty: an unexplained gap"
    )
