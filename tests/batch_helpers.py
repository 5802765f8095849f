"""A collector app over a real database, with readings fed through the real ingest path (signed
messages judged by collector.ingest.rules, stored by LedgerStore), for the batch tests."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from collector.batches.store import BatchStore
from collector.db import Database, open_database
from collector.ingest.rules import Accepted, AcceptedEvent, GatewayKey, Trust, judge
from collector.ledger.store import LedgerStore
from edge_agent.counter_quality import CounterNotice
from edge_agent.counters import CounterEvent, EventKind
from edge_agent.messages import MessageSigner
from metertrace.signing import HmacSigner
from metertrace.wire import GENESIS
from tests.api import api_app

T = datetime(2026, 3, 10, tzinfo=UTC)  # a day in March 2026: the default period is March
KEY = b"k" * 32
GATEWAY = "gw-1"
EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"
TOKENS = {
    "li": ("plant_engineer", "t-li"),
    "wang": ("metrology", "t-wang"),
    "engine": ("footprint_engine", "t-engine"),
}


def at(hours: float) -> datetime:
    return T + timedelta(hours=hours)


def iso(hours: float) -> str:
    return at(hours).isoformat().replace("+00:00", "Z")


def hdr(who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[who][1]}"}


@dataclass
class Plant:
    client: TestClient
    store: LedgerStore
    db: Database

    def ingest(
        self,
        device: str,
        points: Sequence[tuple[float, float]],
        *,
        quantity: str = "energy.active.import",
        unit: str = "kWh",
    ) -> None:
        """Signed messages (hours from T, counter value), judged and stored as the consumer
        would."""
        signer = MessageSigner(GATEWAY, HmacSigner(KEY, kid=GATEWAY))
        trust = Trust.of({GATEWAY: GatewayKey(KEY, frozenset({device}))})
        prev, accepted = GENESIS, []
        for seq, (h, value) in enumerate(points, start=1):
            reading = {"quantity": quantity, "value": value, "unit": unit, "quality": "good"}
            topic, payload, prev = signer.reading(device, at(h), [reading], seq, prev)
            judged = judge(topic, payload, trust)
            assert isinstance(judged, Accepted)
            accepted.append(judged)
        self.store.register_device(device, GATEWAY, "eastron-sdm630")
        self.store.ingest(accepted)

    def wrap_event(self, device: str, event_id: int, h_before: float, h: float, before: float,
                   after: float, wrap: float) -> None:  # fmt: skip
        """The gateway's report that the counter passed `wrap` between two readings."""
        signer = MessageSigner(GATEWAY, HmacSigner(KEY, kid=GATEWAY))
        trust = Trust.of({GATEWAY: GatewayKey(KEY, frozenset({device}))})
        event = CounterEvent(
            EventKind.WRAP, device, "energy.active.import", at(h), before, after, at(h_before),
            at(h), wrap=wrap,
        )  # fmt: skip
        topic, payload = signer.counter(
            event_id, CounterNotice(event, "kWh", wrap - before + after)
        )
        judged = judge(topic, payload, trust)
        assert isinstance(judged, AcceptedEvent)
        self.store.ingest_events([judged])


def plant(db_url: str) -> Plant:
    """The app over the (empty) database at db_url."""
    db = open_database(db_url)
    store = LedgerStore(db)
    store.register_gateway(GATEWAY, key_id=GATEWAY)
    app = api_app(db, TOKENS, store)
    app.state.batches = BatchStore(db)  # as bootstrap() does
    return Plant(TestClient(app), store, db)


def register_meters(p: Plant) -> None:
    """The three meters the batch tests use, and a certificate for e-s (the others rely on
    their accuracy class)."""
    c = p.client
    for d in (device("e-a"), device("e-s"), device("st-2", "steam", accuracy_class="2.5")):
        assert c.post("/api/v1/registry/devices", json=d, headers=hdr("li")).status_code == 201
    cert = json.loads((EXAMPLES / "certificate.json").read_text()) | {"device_id": "e-s"}
    r = c.post(
        "/api/v1/calibration/certificates",
        json={"certificate": cert, "corrections": {"energy.active.import": "none"}},
        headers=hdr("wang"),
    )
    assert r.status_code == 201, r.text


def device(id: str, medium: str = "electricity", **over: Any) -> dict[str, Any]:
    profile = {"electricity": "eastron-sdm630", "steam": "synthetic-steam-vortex"}[medium]
    return {
        "id": id,
        "gateway": GATEWAY,
        "profile": profile,
        "serial_number": f"SN-{id}",
        "medium": medium,
        "location": {"site": "plant-a"},
        "accuracy_class": "1.0",
        "installed_at": "2026-01-01T00:00:00Z",
        **over,
    }


def batch(
    id: str, line: str, start_h: float, end_h: float, qty: float, **over: Any
) -> dict[str, Any]:
    return {
        "id": id,
        "product_id": f"P-{line}",
        "product_name": f"product of {line}",
        "line": line,
        "start": iso(start_h),
        "end": iso(end_h),
        "produced_quantity": qty,
        "declared_unit": "kilogram",
        **over,
    }


def steady(per_hour: float, start: float = 1000.0, hours: float = 8.0, step_h: float = 1 / 6
           ) -> list[tuple[float, float]]:  # fmt: skip
    """A counter rising at a constant rate, read every 10 minutes: linear interpolation is exact,
    so the expected energies are exact too."""
    n = round(hours / step_h)
    return [(i * step_h, start + per_hour * i * step_h) for i in range(n + 1)]
