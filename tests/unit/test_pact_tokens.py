"""Client credentials and access tokens of the PACT host."""

import base64
from datetime import UTC, datetime, timedelta

import pytest

from collector.footprints.settings import PactClient
from collector.footprints.tokens import (
    TokenError,
    TokenIssuer,
    authenticate,
    new_client_secret,
    parse_basic,
    secret_hash,
)

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def basic(text: str) -> str:
    return "Basic " + base64.b64encode(text.encode()).decode()


def test_a_token_names_its_client_until_it_expires():
    clock = Clock()
    issuer = TokenIssuer(b"k" * 32, 600, clock)
    token = issuer.issue("acme")
    assert issuer.verify(token) == "acme"
    clock.now = T0 + timedelta(seconds=599)
    assert issuer.verify(token) == "acme"
    clock.now = T0 + timedelta(seconds=600)
    with pytest.raises(TokenError) as err:
        issuer.verify(token)
    assert err.value.code == "TokenExpired"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # signature changed
        lambda t: t.replace("pact1.", "pact2."),
        lambda t: "very-invalid-access-token",
        lambda t: "",
        lambda t: TokenIssuer(b"other" * 8, 600, Clock()).issue("acme"),  # another host's key
    ],
)
def test_a_forged_or_foreign_token_is_a_bad_request(mangle):
    issuer = TokenIssuer(b"k" * 32, 600, Clock())
    with pytest.raises(TokenError) as err:
        issuer.verify(mangle(issuer.issue("acme")))
    assert err.value.code == "BadRequest"


def test_a_token_whose_claims_were_rewritten_is_refused():
    issuer = TokenIssuer(b"k" * 32, 600, Clock())
    prefix, _body, sig = issuer.issue("acme").split(".")
    other = base64.urlsafe_b64encode(b'{"sub":"root","exp":99999999999}').rstrip(b"=").decode()
    with pytest.raises(TokenError, match="invalid"):
        issuer.verify(f"{prefix}.{other}.{sig}")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (basic("acme:s3cret"), ("acme", "s3cret")),
        (basic("acme:s3:cr:et"), ("acme", "s3:cr:et")),  # the secret may hold ':'
        (basic("ac%3Ame:s%2B3"), ("ac:me", "s+3")),  # RFC 6749 2.3.1 form-encoding
        ("basic " + base64.b64encode(b"a:b").decode(), ("a", "b")),
        (basic("no-colon"), None),
        ("Basic !!!notbase64", None),
        ("Bearer abc", None),
        (None, None),
    ],
)
def test_basic_credentials(header, expected):
    assert parse_basic(header) == expected


def test_authenticate_checks_id_and_secret():
    secret, digest = new_client_secret()
    assert digest == secret_hash(secret) and len(secret) >= 40
    clients = [
        PactClient(client_id="other", secret_sha256=secret_hash("x")),
        PactClient(client_id="acme", secret_sha256=digest),
    ]
    found = authenticate(clients, "acme", secret)
    assert found is not None and found.client_id == "acme"
    assert authenticate(clients, "acme", secret + "x") is None
    assert authenticate(clients, "other", secret) is None
    assert authenticate(clients, "ünknown", secret) is None
