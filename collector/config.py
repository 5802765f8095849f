"""The collector's configuration file (collector.yaml)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator

from collector.db.engine import normalise_url, sqlite_url
from collector.footprints.footprint_settings import CollectorPactSettings
from collector.roles import Role
from metertrace.config import ConfigPath, MqttSettings, StrictModel
from metertrace.wire import check_id


class DeviceEntry(StrictModel):
    id: str
    profile: str

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        return check_id("device", v)


class GatewayEntry(StrictModel):
    id: str
    public_key_file: ConfigPath | None = Field(
        None,
        description="the gateway's Ed25519 public key (PEM); or enrol it later with "
        "metertrace gateway enrol",
    )
    key_file: ConfigPath | None = Field(
        None, description="an HMAC key shared with the gateway (signing.alg hmac-sha256)"
    )
    devices: list[DeviceEntry] = []

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        return check_id("gateway", v)

    @model_validator(mode="after")
    def _one_key(self) -> GatewayEntry:
        if self.public_key_file and self.key_file:
            raise ValueError("give public_key_file (Ed25519) or key_file (HMAC), not both")
        return self


class DatabaseSettings(StrictModel):
    url: str | None = Field(
        None,
        description="a SQLAlchemy URL: sqlite:///data/collector.db or "
        "postgresql+psycopg://user@host:5432/db (a password is better given as PGPASSWORD or "
        "in ~/.pgpass than in this file); none: the SQLite file `path`",
    )
    path: ConfigPath = Field(
        Path("collector.db"),
        validate_default=True,
        description="shorthand for a SQLite file (WAL mode), relative to this config",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        return None if v is None else normalise_url(v)

    @property
    def resolved_url(self) -> str:
        """The database this config names: `url`, or else the SQLite file `path`."""
        return self.url if self.url is not None else sqlite_url(self.path)


class ApiKey(StrictModel):
    name: str = Field(min_length=1, description="who holds the key; written to the audit log")
    role: Role
    token_sha256: str = Field(
        pattern=r"^[0-9a-f]{64}$", description="from `metertrace apikey new --role ROLE`"
    )


class ApiSettings(StrictModel):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    keys: list[ApiKey] = Field(
        default_factory=list, description="none: open API, allowed on loopback only"
    )

    @model_validator(mode="after")
    def _no_open_api_on_the_network(self) -> ApiSettings:
        loopback = self.host in ("127.0.0.1", "::1", "localhost")
        if not self.keys and not loopback:
            raise ValueError(
                f"host {self.host} with no keys would let anyone on the network register devices "
                "and certificates; add api.keys (metertrace apikey new --role ROLE) or bind "
                "127.0.0.1"
            )
        return self


class CollectorMqtt(MqttSettings):
    shared_group: str | None = Field(
        None, description="MQTT 5 shared subscription group, for several collectors"
    )
    session_expiry_s: int = Field(86400, ge=0, description="broker keeps our queue this long")

    @model_validator(mode="after")
    def _shared_needs_v5(self) -> CollectorMqtt:
        if self.shared_group and self.protocol != "5":
            raise ValueError('shared_group needs MQTT 5; set protocol: "5" or drop shared_group')
        return self


class CollectorSigning(StrictModel):
    key_file: ConfigPath = Field(
        Path("collector-ed25519.pem"),
        validate_default=True,
        description="the collector's Ed25519 key, created on first start; it signs the "
        "calibration sets gateways apply and the manifests of evidence bundles "
        "(metertrace collector pubkey prints its public key)",
    )


class CollectorConfig(StrictModel):
    signing: CollectorSigning = Field(default={}, validate_default=True)
    database: DatabaseSettings = Field(default={}, validate_default=True)
    mqtt: CollectorMqtt = CollectorMqtt()
    api: ApiSettings = ApiSettings()
    gateways: list[GatewayEntry] = []
    pact: CollectorPactSettings | None = Field(
        None, description="serve PACT v2.3 footprints from the batches on a port of its own"
    )

    @model_validator(mode="after")
    def _unique(self) -> CollectorConfig:
        gws: set[str] = set()
        devs: dict[str, str] = {}
        for i, g in enumerate(self.gateways):
            if g.id in gws:
                raise ValueError(f"gateways[{i}].id: {g.id!r} is listed twice")
            gws.add(g.id)
            for j, d in enumerate(g.devices):
                if d.id in devs:
                    raise ValueError(
                        f"gateways[{i}].devices[{j}].id: {d.id!r} already belongs to gateway "
                        f"{devs[d.id]!r}; device ids are unique across gateways"
                    )
                devs[d.id] = g.id
        return self
