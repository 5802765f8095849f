import json

import pytest

from collector.ingest.rules import GatewayKey, Reason, Rejected, Trust, accept
from metertrace.wire import GENESIS, message_hash, readings_topic, sign_hmac

pytestmark = pytest.mark.unit

KEY = b"k" * 32
REGISTRY = Trust.of({"gw-1": GatewayKey(KEY, frozenset({"m1"}))})


def payload(gateway="gw-1", device="m1", key=KEY, **over) -> bytes:
    body = {
        "v": 1,
        "gateway": gateway,
        "device": device,
        "seq": 1,
        "ts": "2026-11-23T10:00:00.000000Z",
        "prev": GENESIS,
        "readings": [
            {
                "quantity": "energy.active.import",
                "value": 1.5,
                "unit": "kWh",
                "raw": "3fc00000",
                "quality": "good",
            }
        ],
        **over,
    }
    return json.dumps(sign_hmac(body, key, gateway)).encode()


def test_good_message_is_accepted_with_its_hash():
    p = payload()
    a = accept(readings_topic("gw-1", "m1"), p, REGISTRY)
    assert a.message.device == "m1" and a.hash == message_hash(json.loads(p))


@pytest.mark.parametrize(
    ("topic", "data", "reason"),
    [
        ("metertrace/v1/gw-1/readings/m1", b"{not json", Reason.MALFORMED_JSON),
        ("metertrace/v1/gw-1/readings/m1", b"\xff\xfe", Reason.MALFORMED_JSON),
        ("metertrace/v1/gw-1/readings/m1", b"[1, 2]", Reason.MALFORMED_JSON),
        ("metertrace/v1/gw-1/readings/m1", payload(seq=-1), Reason.SCHEMA),
        ("metertrace/v1/gw-1/readings/m2", payload(), Reason.TOPIC_MISMATCH),
        ("metertrace/v1/gw-9/readings/m1", payload(gateway="gw-9"), Reason.UNKNOWN_GATEWAY),
        ("metertrace/v1/gw-1/readings/m1", payload(key=b"x" * 32), Reason.BAD_SIGNATURE),
        ("metertrace/v1/gw-1/readings/m9", payload(device="m9"), Reason.UNKNOWN_DEVICE),
    ],
)
def test_rejections_carry_reason_and_detail(topic, data, reason):
    with pytest.raises(Rejected) as err:
        accept(topic, data, REGISTRY)
    assert err.value.reason is reason
    assert err.value.detail


def test_schema_error_names_the_field():
    with pytest.raises(Rejected, match="seq"):
        accept("metertrace/v1/gw-1/readings/m1", payload(seq=-1), REGISTRY)
