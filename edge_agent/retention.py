"""The outbox's bounds: which messages to drop when it holds too much or too old, and how to
report them. Pure: the outbox feeds rows in, deletes what this chooses and sends the losses.

Policy (docs/store-and-forward.md): only when a bound is exceeded, drop the OLDEST readings,
down to a low-water mark below the bound, so that one data-loss event covers a batch of drops
rather than one event per new poll. Events themselves are never dropped, and neither are
messages handed to the MQTT client (they may already be at the broker).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from metertrace.wire import LossReason

LOW_WATER = 0.9  # after a drop the outbox holds <= 90 % of max_bytes / nothing older than 90 %


@dataclass(frozen=True, slots=True)
class Limits:
    max_bytes: int
    max_age: timedelta

    def __post_init__(self) -> None:
        if self.max_bytes <= 0 or self.max_age <= timedelta(0):
            raise ValueError(f"outbox limits must be positive: {self}")


@dataclass(frozen=True, slots=True)
class Held:
    """One outbox row as the policy sees it."""

    id: int
    device: str
    seq: int
    size: int  # bytes of topic + payload
    at: datetime  # the message's poll time
    droppable: bool  # False for events: a loss report is never lost to the policy


@dataclass(frozen=True, slots=True)
class Loss:
    """A contiguous run of one device's sequence numbers that will never be sent."""

    device: str
    reason: LossReason
    first_seq: int | None
    last_seq: int | None
    count: int
    first_ts: datetime
    last_ts: datetime


def over_limits(total_bytes: int, oldest: datetime | None, now: datetime, limits: Limits) -> bool:
    """Cheap test run before every drop decision: is any bound exceeded?"""
    too_old = oldest is not None and oldest < now - limits.max_age
    return total_bytes > limits.max_bytes or too_old


def choose_drops(
    rows: Iterable[Held],
    *,
    total_bytes: int,
    now: datetime,
    limits: Limits,
    protect: Collection[int] = (),
) -> tuple[list[int], list[Loss]]:
    """Rows to delete (ids) and the losses to report, from rows given oldest first.

    Reads only as many rows as it needs: it stops at the first row that is young enough once
    the bytes are below the low-water mark.
    """
    bytes_target = limits.max_bytes * LOW_WATER if total_bytes > limits.max_bytes else None
    age_cut = now - limits.max_age
    age_low = now - limits.max_age * LOW_WATER
    remaining = total_bytes
    age_triggered = False
    dropped: list[tuple[Held, LossReason]] = []
    for row in rows:
        if not row.droppable or row.id in protect:
            continue
        if row.at < age_cut:
            age_triggered = True
        need_bytes = bytes_target is not None and remaining > bytes_target
        need_age = age_triggered and row.at < age_low
        if not (need_bytes or need_age):
            break  # rows come oldest first: the rest are younger and the bytes are fine
        dropped.append((row, LossReason.MAX_AGE if need_age else LossReason.MAX_BYTES))
        remaining -= row.size
    return [r.id for r, _ in dropped], _runs(dropped)


def _runs(dropped: list[tuple[Held, LossReason]]) -> list[Loss]:
    """Group drops per device and reason into runs of consecutive sequence numbers."""
    by_device: dict[str, list[tuple[Held, LossReason]]] = {}
    for row, reason in dropped:
        by_device.setdefault(row.device, []).append((row, reason))
    losses: list[Loss] = []
    for device, items in by_device.items():
        items.sort(key=lambda x: x[0].seq)
        run: list[Held] = []
        run_reason: LossReason | None = None
        for row, reason in items:
            if run and (reason is not run_reason or row.seq != run[-1].seq + 1):
                losses.append(_loss(device, run_reason, run))
                run = []
            run.append(row)
            run_reason = reason
        if run:
            losses.append(_loss(device, run_reason, run))
    return losses


def _loss(device: str, reason: LossReason | None, run: list[Held]) -> Loss:
    assert reason is not None  # a non-empty run always has its reason
    return Loss(
        device=device,
        reason=reason,
        first_seq=run[0].seq,
        last_seq=run[-1].seq,
        count=len(run),
        first_ts=min(r.at for r in run),
        last_ts=max(r.at for r in run),
    )


@dataclass
class UnstoredPolls:
    """Polls of one device that could not be written to the outbox (disk full): they never got a
    sequence number, so the collector sees no seq gap; this is what reports them."""

    count: int
    first_ts: datetime
    last_ts: datetime

    def add(self, ts: datetime) -> None:
        self.count += 1
        self.first_ts, self.last_ts = min(self.first_ts, ts), max(self.last_ts, ts)

    def loss(self, device: str) -> Loss:
        return Loss(
            device=device,
            reason=LossReason.WRITE_FAILED,
            first_seq=None,
            last_seq=None,
            count=self.count,
            first_ts=self.first_ts,
            last_ts=self.last_ts,
        )
