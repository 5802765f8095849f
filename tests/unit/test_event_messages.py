"""The data-loss event message: built and signed by the agent, judged by the collector."""

import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from collector.ingest.rules import AcceptedEvent, GatewayKey, Reason, Rejected, Trust, judge
from edge_agent.messages import MessageSigner
from edge_agent.retention import Loss
from metertrace.signing import HmacSigner
from metertrace.wire import EventMessage, LossReason, events_topic, message_hash, verify_hmac

pytestmark = pytest.mark.unit

KEY = b"k" * 32
REGISTRY = Trust.of({"gw-1": GatewayKey(KEY, frozenset({"m1"}))})
T0 = datetime(2026, 11, 1, 0, 0, tzinfo=UTC)
T1 = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)


def loss(**over) -> Loss:
    fields = {
        "device": "m1",
        "reason": LossReason.MAX_BYTES,
        "first_seq": 11,
        "last_seq": 20,
        "count": 10,
        "first_ts": T0,
        "last_ts": T1,
    }
    return Loss(**{**fields, **over})


def test_the_agent_signs_an_event_the_collector_accepts():
    topic, payload = MessageSigner("gw-1", HmacSigner(KEY, kid="gw-1")).data_loss(3, loss())
    assert topic == events_topic("gw-1", "m1") == "metertrace/v1/gw-1/events/m1"
    raw = json.loads(payload)
    assert verify_hmac(raw, KEY)
    assert raw["data_loss"] == {
        "reason": "outbox_max_bytes",
        "first_seq": 11,
        "last_seq": 20,
        "count": 10,
        "first_ts": "2026-11-01T00:00:00.000000Z",
        "last_ts": "2026-11-02T00:00:00.000000Z",
    }
    judged = judge(topic, payload, REGISTRY)
    assert isinstance(judged, AcceptedEvent)
    assert judged.event.id == 3 and judged.hash == message_hash(raw)


def test_polls_that_were_never_stored_have_no_sequence_numbers():
    lost = loss(reason=LossReason.WRITE_FAILED, first_seq=None, last_seq=None, count=4)
    _, payload = MessageSigner("gw-1", HmacSigner(KEY, kid="gw-1")).data_loss(1, lost)
    assert EventMessage.model_validate_json(payload).data_loss.count == 4


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"last_seq": 10}, "last_seq must be >= first_seq"),
        ({"count": 11}, "count exceeds"),
        ({"first_seq": None}, "needs first_seq and last_seq"),
        ({"reason": LossReason.WRITE_FAILED}, "never had a seq"),
        ({"first_ts": T1, "last_ts": T0}, "last_ts"),
    ],
)
def test_inconsistent_reports_are_never_built(change, message):
    with pytest.raises(ValidationError, match=message):
        MessageSigner("gw-1", HmacSigner(KEY, kid="gw-1")).data_loss(1, loss(**change))


@pytest.mark.parametrize(
    ("topic", "key", "reason"),
    [
        ("metertrace/v1/gw-1/events/m2", KEY, Reason.TOPIC_MISMATCH),
        ("metertrace/v1/gw-1/readings/m1", KEY, Reason.SCHEMA),  # an event is no reading
        ("metertrace/v1/gw-1/events/m1", b"x" * 32, Reason.BAD_SIGNATURE),
    ],
)
def test_the_collector_refuses_events_like_readings(topic, key, reason):
    _, payload = MessageSigner("gw-1", HmacSigner(key, kid="gw-1")).data_loss(1, loss())
    with pytest.raises(Rejected) as err:
        judge(topic, payload, REGISTRY)
    assert err.value.reason is reason


def test_documented_event_example_is_valid_and_verifies():
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "wire-format.md").read_text()
    key = bytes.fromhex(re.search(r"key `([0-9a-f]{64})`", doc).group(1))
    blocks = [json.loads(b) for b in re.findall(r"```json\n(.*?)\n```", doc, re.S)]
    (example,) = [b for b in blocks if b.get("event") == "data_loss"]
    assert EventMessage.model_validate(example).data_loss.count == 9800
    assert verify_hmac(example, key)
