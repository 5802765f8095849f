"""The `pact:` block of collector.yaml: who may call the PACT API and where answers go."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from metertrace.config import ConfigPath, StrictModel

LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def normalize_source(source: str) -> str:
    """An event `source` as a base URL: no trailing '/', '//host/path' read as https."""
    source = source.strip().rstrip("/")
    return "https:" + source if source.startswith("//") else source


class CallbackTarget(StrictModel):
    """A data recipient's Action Events endpoint, for answers to its footprint requests."""

    source: str = Field(
        description="the `source` the recipient's events carry; answers go to SOURCE/2/events"
    )
    token_url: str | None = Field(
        None, description="the recipient's token endpoint; default SOURCE/auth/token"
    )
    client_id: str | None = Field(None, description="our client id at the recipient")
    client_secret_file: ConfigPath | None = Field(
        None, description="file holding our client secret at the recipient"
    )
    verify_tls: bool = Field(True, description="false only for a self-signed test counterpart")

    @field_validator("source")
    @classmethod
    def _source(cls, v: str) -> str:
        v = normalize_source(v)
        parts = urlsplit(v)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError(f"{v!r} is not an absolute https URL; write e.g. https://pact.example")
        if parts.scheme == "http" and parts.hostname not in LOOPBACK:
            raise ValueError(f"{v!r}: PACT events travel over https; http only on loopback")
        return v

    @model_validator(mode="after")
    def _credentials(self) -> CallbackTarget:
        if (self.client_id is None) != (self.client_secret_file is None):
            raise ValueError("set both client_id and client_secret_file, or neither")
        return self

    @property
    def events_url(self) -> str:
        return f"{self.source}/2/events"

    @property
    def auth_url(self) -> str:
        return self.token_url or f"{self.source}/auth/token"


class PactClient(StrictModel):
    """A data recipient allowed to call this host (OAuth2 client credentials)."""

    client_id: str = Field(pattern=r"^[^:\s]{1,128}$", description="no ':' (HTTP Basic)")
    secret_sha256: str = Field(
        pattern=r"^[0-9a-f]{64}$", description="SHA-256 hex of the client secret"
    )
    product_ids: list[str] | None = Field(
        None, description="footprints this client may see, by productIds URN; none: all"
    )
    callback: CallbackTarget | None = Field(
        None, description="where answers to this client's footprint requests are sent"
    )


class PactTls(StrictModel):
    certfile: ConfigPath
    keyfile: ConfigPath


class PactSettings(StrictModel):
    host: str = "127.0.0.1"
    port: int = Field(8443, ge=0, le=65535)
    tls: PactTls | None = Field(None, description="serve HTTPS with this certificate and key")
    require_https: bool = Field(
        True,
        description="refuse actions that did not arrive over https (PACT: https only); false "
        "only for local development",
    )
    token_ttl_s: int = Field(3600, ge=60, le=86400, description="access token lifetime")
    token_key_file: ConfigPath | None = Field(
        None, description="HMAC key for access tokens; none: a random key per process"
    )
    page_size: int = Field(100, ge=1, le=1000, description="most footprints per page")
    event_source: str | None = Field(
        None, description="`source` of the events we send; default: this host's base URL"
    )
    callback_first_retry_s: float = Field(1.0, gt=0)
    callback_give_up_s: float = Field(3 * 86400, gt=0, description="spec: not over 3 days")
    clients: list[PactClient] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_clients(self) -> PactSettings:
        seen: set[str] = set()
        for i, c in enumerate(self.clients):
            if c.client_id in seen:
                raise ValueError(f"clients[{i}].client_id: {c.client_id!r} is listed twice")
            seen.add(c.client_id)
        return self
