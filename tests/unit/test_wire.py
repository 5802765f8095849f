import copy
import json

import pytest
from pydantic import ValidationError

from metertrace.wire import GENESIS, Message, message_hash, sign_hmac, verify_hmac

pytestmark = pytest.mark.unit

KEY = bytes(range(32))


def body(seq: int = 1, prev: str = GENESIS, value: float | None = 1224.5) -> dict:
    return {
        "v": 1,
        "gateway": "gw-1",
        "device": "m1",
        "seq": seq,
        "ts": "2026-11-23T10:00:00.000000Z",
        "prev": prev,
        "readings": [
            {
                "quantity": "energy.active.import",
                "value": value,
                "unit": "kWh",
                "raw": "44991000",
                "quality": "good",
            }
        ],
    }


def test_signed_message_verifies_and_validates():
    msg = sign_hmac(body(), KEY, "gw-1")
    assert verify_hmac(msg, KEY)
    assert Message.model_validate(msg).seq == 1


def test_verification_survives_json_round_trip_and_key_order():
    msg = sign_hmac(body(), KEY, "gw-1")
    shuffled = json.loads(json.dumps(dict(reversed(list(msg.items())))))
    assert verify_hmac(shuffled, KEY)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda m: m["readings"][0].__setitem__("value", 1224.6),
        lambda m: m.__setitem__("seq", 2),
        lambda m: m.__setitem__("ts", "2026-11-23T10:00:01.000000Z"),
        lambda m: m.__setitem__("prev", "1" * 64),
        lambda m: m["readings"][0].__setitem__("unit", "Wh"),
    ],
)
def test_any_change_breaks_the_signature(tamper):
    msg = sign_hmac(body(), KEY, "gw-1")
    forged = copy.deepcopy(msg)
    tamper(forged)
    assert not verify_hmac(forged, KEY)


def test_wrong_key_fails():
    assert not verify_hmac(sign_hmac(body(), KEY, "gw-1"), b"x" * 32)


def test_hash_chain_links_messages():
    first = sign_hmac(body(1), KEY, "gw-1")
    second = sign_hmac(body(2, prev=message_hash(first)), KEY, "gw-1")
    assert second["prev"] == message_hash(first)
    # the signature is not part of the chain hash, so a re-signed message keeps its place
    assert message_hash(first) == message_hash(sign_hmac(body(1), b"k" * 32, "gw-1"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ts": "2026-11-23T10:00:00"}, "ts"),
        ({"ts": "2026-11-23T10:00:00+08:00"}, "must be UTC"),
        ({"device": "m1/#"}, "becomes an MQTT topic level"),
        ({"seq": 0}, "seq"),
    ],
)
def test_schema_refuses(change, message):
    with pytest.raises(ValidationError, match=message):
        Message.model_validate(sign_hmac({**body(), **change}, KEY, "gw-1"))


def test_failed_read_carries_no_number():
    b = body(value=5.0)
    b["readings"][0]["quality"] = "comm_error"
    with pytest.raises(ValidationError, match="carries no value"):
        Message.model_validate(sign_hmac(b, KEY, "gw-1"))
    b["readings"][0]["value"] = None
    assert Message.model_validate(sign_hmac(b, KEY, "gw-1")).readings[0].value is None


def test_published_json_schema_is_current():
    import json
    from pathlib import Path

    from metertrace.wire import json_schema

    path = Path(__file__).resolve().parents[2] / "docs" / "wire-format.schema.json"
    assert json.loads(path.read_text()) == json_schema(), (
        "docs/wire-format.schema.json is stale: metertrace wire-schema > "
        "docs/wire-format.schema.json"
    )


def test_documented_example_is_valid_and_verifies():
    import json
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "wire-format.md").read_text()
    example = json.loads(re.search(r"```json\n(.*?)\n```", doc, re.S).group(1))
    key = bytes.fromhex(re.search(r"key `([0-9a-f]{64})`", doc).group(1))
    assert Message.model_validate(example)
    assert verify_hmac(example, key)
    assert re.search(r"chain hash\s+`([0-9a-f]{64})`", doc).group(1) == message_hash(example)


def test_sign_and_hash_agrees_with_the_separate_functions():
    from metertrace.signing import HmacSigner
    from metertrace.wire import sign_and_hash

    msg, digest = sign_and_hash(body(), HmacSigner(KEY, kid="gw-1"))
    assert digest == message_hash(msg) and verify_hmac(msg, KEY)
