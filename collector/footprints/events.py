"""CloudEvents of PACT v2.3 Action Events: reading what arrives, writing what we answer.

Event types (structured content mode, `application/cloudevents+json`):
- ProductFootprint.Published: a data owner tells us footprints changed (`data.pfIds`, UUIDs);
- ProductFootprintRequest.Created: a data recipient asks us for footprints (`data.pf`, a
  ProductFootprint fragment; we match on its productIds);
- ProductFootprintRequest.Fulfilled / Rejected: answers to requests (we send these).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from collector.footprints.model import ProductFootprint
from metertrace.timeutil import parse_utc, to_wire

PREFIX = "org.wbcsd.pathfinder."
PUBLISHED = PREFIX + "ProductFootprint.Published.v1"
CREATED = PREFIX + "ProductFootprintRequest.Created.v1"
FULFILLED = PREFIX + "ProductFootprintRequest.Fulfilled.v1"
REJECTED = PREFIX + "ProductFootprintRequest.Rejected.v1"
TYPES = (PUBLISHED, CREATED, FULFILLED, REJECTED)
_UUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


class EventError(ValueError):
    """An event this host does not accept; the message names the field and the fix."""


@dataclass(frozen=True)
class Event:
    type: str
    id: str
    source: str
    time: datetime
    data: dict[str, Any]


@dataclass(frozen=True)
class FootprintRequest:
    event_id: str
    source: str
    product_ids: tuple[str, ...]
    comment: str | None


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise EventError(f"event {name}: required, a non-empty string")
    return value


def parse_event(body: object) -> Event:
    """The CloudEvent envelope, checked; raises EventError."""
    if not isinstance(body, dict):
        raise EventError("the body must be one CloudEvent, a JSON object")
    if body.get("specversion") != "1.0":
        raise EventError(f"event specversion: {body.get('specversion')!r}, expected '1.0'")
    kind = _text(body, "type")
    if kind not in TYPES:
        raise EventError(f"event type {kind!r} is not a PACT v2 event; one of {', '.join(TYPES)}")
    try:
        time = parse_utc(_text(body, "time"), field="event time")
    except ValueError as exc:
        raise EventError(str(exc)) from None
    data = body.get("data")
    if not isinstance(data, dict):
        raise EventError("event data: required, a JSON object")
    return Event(kind, _text(body, "id"), _text(body, "source"), time, data)


def published_ids(event: Event) -> list[uuid.UUID]:
    ids = event.data.get("pfIds")
    if not isinstance(ids, list) or not ids:
        raise EventError("data.pfIds: required, a non-empty list of footprint ids (UUIDs)")
    bad = [(i, v) for i, v in enumerate(ids) if not (isinstance(v, str) and _UUID.match(v))]
    if bad:
        i, v = bad[0]
        raise EventError(f"data.pfIds[{i}]: {v!r} is not a footprint id (a UUID)")
    return [uuid.UUID(v) for v in ids]


def footprint_request(event: Event) -> FootprintRequest:
    fragment = event.data.get("pf")
    if not isinstance(fragment, dict):
        raise EventError("data.pf: required, a ProductFootprint fragment (a JSON object)")
    ids = fragment.get("productIds", [])
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise EventError("data.pf.productIds: a list of product URNs")
    comment = event.data.get("comment")
    return FootprintRequest(
        event.id, event.source, tuple(ids), comment if isinstance(comment, str) else None
    )


def answer(
    request: FootprintRequest, visible: Sequence[ProductFootprint], *, source: str, now: datetime
) -> dict[str, Any]:
    """The Fulfilled event with the visible footprints of the requested products, or Rejected."""
    envelope: dict[str, Any] = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": source,
        "time": to_wire(now),
    }
    if not request.product_ids:
        return envelope | _rejected(
            request, "BadRequest", "the request names no productIds; this host matches on them"
        )
    wanted = set(request.product_ids)
    pfs = [pf.to_json() for pf in visible if wanted.intersection(pf.product_ids)]
    if not pfs:
        return envelope | _rejected(
            request, "NotFound", f"no footprint for productIds {sorted(wanted)}"
        )
    return envelope | {"type": FULFILLED, "data": {"requestEventId": request.event_id, "pfs": pfs}}


def _rejected(request: FootprintRequest, code: str, message: str) -> dict[str, Any]:
    return {
        "type": REJECTED,
        "data": {"requestEventId": request.event_id, "error": {"code": code, "message": message}},
    }
