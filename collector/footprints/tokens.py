"""OAuth2 client credentials for the PACT API: client secrets, and signed expiring tokens.

A token is `pact1.<base64url JSON {"sub", "exp"}>.<base64url HMAC-SHA256>`: the host keeps no
token table, and can still tell an expired token (TokenExpired) from a forged one (BadRequest).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from urllib.parse import unquote_plus

from collector.footprints.settings import PactClient
from metertrace.timeutil import utcnow

PREFIX = "pact1"


class TokenError(Exception):
    def __init__(self, code: Literal["BadRequest", "TokenExpired"], message: str) -> None:
        super().__init__(message)
        self.code = code


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_client_secret() -> tuple[str, str]:
    """A fresh client secret and the secret_sha256 to put in collector.yaml."""
    secret = secrets.token_urlsafe(32)
    return secret, secret_hash(secret)


def parse_basic(header: str | None) -> tuple[str, str] | None:
    """(client_id, secret) from an HTTP Basic header, form-decoded as RFC 6749 2.3.1 says."""
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        return None
    return unquote_plus(client_id), unquote_plus(secret)


def authenticate(clients: Iterable[PactClient], client_id: str, secret: str) -> PactClient | None:
    digest = secret_hash(secret)
    found = None
    for c in clients:
        # compare every entry so the time taken does not tell which client ids exist
        if hmac.compare_digest(c.client_id.encode(), client_id.encode()) & hmac.compare_digest(
            c.secret_sha256, digest
        ):
            found = c
    return found


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class TokenIssuer:
    key: bytes
    ttl_s: int
    clock: Callable[[], datetime] = utcnow

    def issue(self, client_id: str) -> str:
        exp = int(self.clock().timestamp()) + self.ttl_s
        body = _b64(json.dumps({"sub": client_id, "exp": exp}, separators=(",", ":")).encode())
        return f"{PREFIX}.{body}.{self._sign(body)}"

    def verify(self, token: str) -> str:
        """The client id the token was issued to. Raises TokenError with the PACT code."""
        prefix, _, rest = token.partition(".")
        body, _, signature = rest.partition(".")
        if prefix != PREFIX or not hmac.compare_digest(self._sign(body), signature):
            raise TokenError("BadRequest", "invalid access token; get one from POST /auth/token")
        try:
            claims = json.loads(_unb64(body))
            client_id, exp = str(claims["sub"]), int(claims["exp"])
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise TokenError("BadRequest", "malformed access token") from None
        if self.clock().timestamp() >= exp:
            raise TokenError("TokenExpired", "the access token has expired; get a new one")
        return client_id

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self.key, body.encode(), hashlib.sha256).digest())
