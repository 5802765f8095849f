"""Evidence-chain verification of a device's messages."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel

from collector.api.deps import StoreDep
from collector.ledger.chain import verify_chain

router = APIRouter(prefix="/api/v1", tags=["evidence"])


class GapOut(BaseModel):
    first: int
    last: int
    count: int
    explained: bool


class ChainOut(BaseModel):
    device: str
    intact: bool
    summary: str
    messages: int
    first_seq: int | None
    last_seq: int | None
    gaps: list[GapOut]
    broken_links: list[int]
    time_reversals: list[int]
    replays: list[int]


@router.get("/devices/{device_id}/chain", response_model=ChainOut)
def chain(device_id: str, store: StoreDep, request: Request) -> ChainOut:
    """Gaps (with the data-loss events that explain them), broken links, time running
    backwards and replayed messages, each with the affected sequence numbers."""
    links, late = store.chain(device_id)
    if not links and request.app.state.registry.device(device_id) is None:
        raise HTTPException(404, f"device {device_id!r} has no messages and is not registered")
    losses: list[tuple[int, int]] = []
    for e in store.events(device=device_id):
        first, last = getattr(e, "first_seq", None), getattr(e, "last_seq", None)
        if first is not None and last is not None:
            losses.append((first, last))
    r = verify_chain(device_id, links, losses=losses, replays=late)
    return ChainOut(
        device=device_id,
        intact=r.intact,
        summary=r.summary(),
        messages=r.messages,
        first_seq=r.first_seq,
        last_seq=r.last_seq,
        gaps=[
            GapOut(first=g.first, last=g.last, count=g.count, explained=g.explained) for g in r.gaps
        ],
        broken_links=r.broken_links,
        time_reversals=r.time_reversals,
        replays=r.replays,
    )
