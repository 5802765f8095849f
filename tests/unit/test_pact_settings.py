"""The `pact:` block of collector.yaml."""

import pytest
from pydantic import ValidationError

from collector.footprints.settings import CallbackTarget, PactSettings, normalize_source

pytestmark = pytest.mark.unit

HASH = "0" * 64


def test_defaults_and_a_minimal_block():
    s = PactSettings.model_validate({"clients": [{"client_id": "acme", "secret_sha256": HASH}]})
    assert s.require_https and s.token_ttl_s == 3600 and s.tls is None
    assert s.callback_give_up_s == 3 * 86400


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"clients": []}, "at least 1"),
        ({"clients": [{"client_id": "a", "secret_sha256": HASH}] * 2}, "listed twice"),
        ({"clients": [{"client_id": "a:b", "secret_sha256": HASH}]}, "client_id"),
        ({"clients": [{"client_id": "a", "secret_sha256": "abc"}]}, "secret_sha256"),
        ({"clients": [{"client_id": "a", "secret_sha256": HASH}], "token_ttl_s": 10}, "60"),
    ],
)
def test_bad_blocks_name_the_field(block, message):
    with pytest.raises(ValidationError, match=message):
        PactSettings.model_validate(block)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("https://buyer.example/pact/", "https://buyer.example/pact"),
        ("//buyer.example/pact", "https://buyer.example/pact"),
        ("http://127.0.0.1:8004", "http://127.0.0.1:8004"),
    ],
)
def test_callback_sources_are_normalised(source, expected):
    target = CallbackTarget(source=source)
    assert target.source == expected == normalize_source(source)
    assert target.events_url == expected + "/2/events"
    assert target.auth_url == expected + "/auth/token"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"source": "http://buyer.example"}, "http only on loopback"),
        ({"source": "buyer.example"}, "not an absolute https URL"),
        ({"source": "https://b.example", "client_id": "us"}, "both client_id"),
    ],
)
def test_bad_callbacks(fields, message):
    with pytest.raises(ValidationError, match=message):
        CallbackTarget.model_validate(fields)
