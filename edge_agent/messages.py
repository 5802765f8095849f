"""Building the gateway's signed wire messages (docs/wire-format.md): readings and events."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from metertrace.signing import Signer
from metertrace.timeutil import to_wire, utcnow
from metertrace.wire import (
    SCHEMA_VERSION,
    EventMessage,
    events_topic,
    readings_topic,
    sign,
    sign_and_hash,
)

from .counter_quality import CounterNotice
from .retention import Loss


def _encode(msg: dict[str, Any]) -> bytes:
    return json.dumps(msg, separators=(",", ":"), allow_nan=False).encode()


class MessageSigner:
    def __init__(self, gateway: str, signer: Signer) -> None:
        self.gateway, self._signer = gateway, signer

    def reading(
        self, device: str, ts: datetime, readings: list[dict[str, Any]], seq: int, prev: str
    ) -> tuple[str, bytes, str]:
        """(topic, payload, chain hash) of one poll's message."""
        body = {
            "v": SCHEMA_VERSION,
            "gateway": self.gateway,
            "device": device,
            "seq": seq,
            "ts": to_wire(ts),
            "readings": readings,
            "prev": prev,
        }
        msg, digest = sign_and_hash(body, self._signer)
        return readings_topic(self.gateway, device), _encode(msg), digest

    def data_loss(self, event_id: int, loss: Loss) -> tuple[str, bytes]:
        """(topic, payload) of the event reporting a loss; validated, so it is never refused."""
        body = {
            "v": SCHEMA_VERSION,
            "gateway": self.gateway,
            "device": loss.device,
            "id": event_id,
            "ts": to_wire(utcnow()),
            "event": "data_loss",
            "data_loss": {
                "reason": loss.reason.value,
                "first_seq": loss.first_seq,
                "last_seq": loss.last_seq,
                "count": loss.count,
                "first_ts": to_wire(loss.first_ts),
                "last_ts": to_wire(loss.last_ts),
            },
        }
        msg = sign(body, self._signer)
        EventMessage.model_validate(msg)
        return events_topic(self.gateway, loss.device), _encode(msg)

    def counter(self, event_id: int, notice: CounterNotice) -> tuple[str, bytes]:
        """(topic, payload) of the event reporting a counter discontinuity with its evidence."""
        e = notice.event
        body = {
            "v": SCHEMA_VERSION,
            "gateway": self.gateway,
            "device": e.device,
            "id": event_id,
            "ts": to_wire(utcnow()),
            "event": "counter",
            "counter": {
                "quantity": e.quantity,
                "kind": e.kind.value,
                "unit": notice.unit,
                "before": e.before,
                "after": e.after,
                "ts_before": to_wire(e.ts_before),
                "ts_after": to_wire(e.ts_after),
                "reading_ts": to_wire(e.ts),
                "consumption": notice.consumption,
                "wrap": e.wrap,
                "detail": e.detail[:200],
            },
        }
        msg = sign(body, self._signer)
        EventMessage.model_validate(msg)
        return events_topic(self.gateway, e.device), _encode(msg)
