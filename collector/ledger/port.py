"""The storage port: what the collector needs from a database, whatever the engine."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from collector.ingest.rules import Accepted, AcceptedEvent
from collector.ledger.chain import Link
from metertrace.wire import CounterEventBody


class Outcome(StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"  # the same message again (at-least-once delivery): ignored
    CONFLICT = "conflict"  # a different message under a stored (device, seq): quarantined


@dataclass(frozen=True, slots=True)
class DeviceRow:
    id: str
    gateway: str
    profile: str
    registered_at: datetime
    last_seq: int | None
    last_ts: datetime | None
    messages: int


@dataclass(frozen=True, slots=True)
class ReadingRow:
    device: str
    seq: int
    ts: datetime
    quantity: str
    value: float | None
    unit: str
    raw: str | None
    quality: str
    uncorrected: float | None = None  # before the calibration correction
    cal_status: str | None = None  # calibrated / uncalibrated / calibration_expired
    certificate: str | None = None
    certificate_version: int | None = None
    cal_check: str | None = None  # the collector's recomputation: ok / mismatch / ...


@dataclass(frozen=True, slots=True)
class QuarantineRow:
    id: int
    received_at: datetime
    topic: str
    reason: str
    detail: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class EventRow:
    """A gateway's event. data_loss: the messages it says it dropped unsent (reason ..
    last_ts, null for other events); counter: a counter discontinuity with its evidence."""

    gateway: str
    id: int
    device: str
    ts: datetime
    received_at: datetime
    event: str
    reason: str | None
    first_seq: int | None
    last_seq: int | None
    count: int | None
    first_ts: datetime | None
    last_ts: datetime | None
    counter: CounterEventBody | None = None


@dataclass
class Stats:
    messages: int = 0
    readings: int = 0
    duplicates: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)
    events: int = 0
    reported_lost: int = 0  # messages and polls the gateways say they dropped


class Store(Protocol):
    def register_gateway(self, gateway: str, key_id: str) -> None: ...

    def register_device(self, device: str, gateway: str, profile: str) -> None: ...

    def ingest(self, batch: Sequence[Accepted]) -> list[Outcome]:
        """Store a batch atomically; idempotent on (device, seq)."""
        ...

    def ingest_events(self, batch: Sequence[AcceptedEvent]) -> list[Outcome]:
        """Store events atomically; idempotent on (gateway, event id)."""
        ...

    def quarantine(self, topic: str, payload: bytes, reason: str, detail: str) -> None: ...

    def devices(self) -> list[DeviceRow]: ...

    def readings(
        self,
        *,
        device: str,
        quantity: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 10000,
    ) -> list[ReadingRow]: ...

    def latest(self, device: str) -> list[ReadingRow]: ...

    def quarantined(self, limit: int = 100) -> list[QuarantineRow]: ...

    def chain(self, device: str) -> tuple[list[Link], list[int]]:
        """The device's chain links, and the seqs that arrived again after newer ones."""
        ...

    def events(self, *, device: str | None = None, limit: int = 1000) -> list[EventRow]:
        """Events, oldest first."""
        ...

    def seq_runs(self, device: str) -> list[tuple[int, int]]:
        """The stored sequence numbers of a device as (first, last) runs without a gap."""
        ...

    def stats(self) -> Stats: ...
