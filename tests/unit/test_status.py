"""The retained status message: shape, device states, and when it is published."""

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from edge_agent.outbox import OutboxStats
from edge_agent.retention import Limits
from edge_agent.status import (
    DeviceReport,
    StatusSchedule,
    change_key,
    encode,
    poll_state,
    status_message,
)

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@dataclass
class Health:  # what a poller exposes; the status shows whatever fields it has
    polls: int
    failed_requests: int
    last_error: str | None
    last_ok: datetime | None


def reading(quality: str) -> dict:
    return {"quantity": "q", "value": None, "unit": "kWh", "raw": None, "quality": quality}


def test_poll_state_from_the_qualities_of_one_poll():
    assert poll_state([reading("good"), reading("not_available")]) == "ok"
    assert poll_state([reading("good"), reading("comm_error")]) == "degraded"
    assert poll_state([reading("comm_error")] * 2) == "failing"


def test_status_message_carries_health_outbox_depth_and_age():
    err = "m2: FC03 0+2 unit 9 at 127.0.0.1:502: Modbus exception 2 (illegal data address)"
    devices = {
        "m1": DeviceReport("ok", Health(10, 0, None, NOW - timedelta(seconds=5)), overruns=1),
        "m2": DeviceReport("failing", Health(10, 10, err, None), overruns=0, unstored_polls=2),
    }
    stats = OutboxStats(depth=42, bytes=4200, oldest=NOW - timedelta(seconds=90), dropped={"m2": 3})
    msg = status_message(
        gateway="gw",
        now=NOW,
        started=NOW - timedelta(hours=1),
        devices=devices,
        outbox=stats,
        limits=Limits(1000, timedelta(days=30)),
    )
    assert json.loads(encode(msg)) == msg, "plain JSON"
    assert msg["state"] == "online" and msg["ts"] == "2026-11-23T12:00:00.000000Z"
    assert msg["outbox"] == {
        "depth": 42,
        "bytes": 4200,
        "oldest_age_s": 90.0,
        "dropped": {"m1": 0, "m2": 3},
        "max_bytes": 1000,
        "max_age_days": 30.0,
    }
    assert msg["devices"]["m1"] == {
        "state": "ok",
        "polls": 10,
        "failed_requests": 0,
        "last_error": None,
        "last_ok": "2026-11-23T11:59:55.000000Z",
        "overruns": 1,
        "unstored_polls": 0,
    }
    assert msg["devices"]["m2"]["last_error"] == err
    assert msg["devices"]["m2"]["state"] == "failing"


def test_published_on_change_and_at_least_every_interval():
    schedule = StatusSchedule(interval_s=60)
    stats = OutboxStats(0, 0, None, {})
    ok = change_key({"m1": DeviceReport("ok", None, 0)}, stats)
    assert schedule.due(0.0, ok)
    schedule.published(0.0, ok)
    assert not schedule.due(30.0, ok)
    failing = change_key({"m1": DeviceReport("failing", None, 0)}, stats)
    assert schedule.due(31.0, failing), "a device state change is published at once"
    schedule.published(31.0, failing)
    dropped = change_key(
        {"m1": DeviceReport("failing", None, 0)}, OutboxStats(0, 0, None, {"m1": 5})
    )
    assert schedule.due(32.0, dropped), "a drop is published at once"
    assert schedule.due(91.0, failing), "and anything at least every interval"
