"""The wire format between gateways and collectors (see docs/wire-format.md).

One message per device per poll. Each message is signed by its gateway and names the hash of
the device's previous message, so every device's readings form a tamper-evident chain.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.json_schema import models_json_schema

from .signing import Signer

SCHEMA_VERSION = 1
TOPIC_ROOT = "metertrace/v1"
GENESIS = "0" * 64  # the "previous hash" of a device's first message
HMAC_ALG = "HMAC-SHA256"
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_ID_RE = re.compile(ID_PATTERN)


class Quality(StrEnum):
    GOOD = "good"
    COMM_ERROR = "comm_error"  # timeout, CRC, Modbus exception: no value was read
    NOT_AVAILABLE = "not_available"  # the meter answered with its N/A sentinel
    OUT_OF_RANGE = "out_of_range"
    COUNTER_RESET = "counter_reset"


VALUELESS = frozenset({Quality.COMM_ERROR, Quality.NOT_AVAILABLE})


def check_id(kind: str, value: str) -> str:
    if not _ID_RE.match(value):
        raise ValueError(
            f"{kind} id {value!r} must be 1-64 letters, digits, '_', '.' or '-' "
            "(it becomes an MQTT topic level)"
        )
    return value


def readings_topic(gateway: str, device: str) -> str:
    return f"{TOPIC_ROOT}/{gateway}/readings/{device}"


def events_topic(gateway: str, device: str) -> str:
    return f"{TOPIC_ROOT}/{gateway}/events/{device}"


def status_topic(gateway: str) -> str:
    return f"{TOPIC_ROOT}/{gateway}/status"


def gateway_prefix(gateway: str) -> str:
    """Everything a gateway publishes is below this; a broker ACL confines it here."""
    return f"{TOPIC_ROOT}/{gateway}/#"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CalStamp(_Strict):
    """Which certificate corrected a value, or why none did (metertrace/calibration_set.py)."""

    status: Literal["calibrated", "uncalibrated", "calibration_expired"]
    certificate: str | None = None
    version: int | None = Field(None, ge=1)
    uncorrected: float | None = Field(None, description="the value before the correction")
    flags: list[str] = []

    @model_validator(mode="after")
    def _consistent(self) -> CalStamp:
        named = self.certificate is not None and self.version is not None
        if self.status == "calibrated" and (not named or self.uncorrected is None):
            raise ValueError("a calibrated value names certificate, version and uncorrected")
        if self.status != "calibrated" and self.uncorrected is not None:
            raise ValueError(f"{self.status}: the value is uncorrected; send no 'uncorrected'")
        return self


class Reading(_Strict):
    quantity: str = Field(min_length=1, max_length=64)
    value: float | None = Field(description="null when quality is comm_error or not_available")
    unit: str = Field(min_length=1, max_length=16)
    raw: str | None = Field(
        None, pattern=r"^[0-9a-f]*$", description="the registers as read, hex, for evidence"
    )
    quality: Quality
    cal: CalStamp | None = Field(None, description="absent on gateways without calibration")

    @model_validator(mode="after")
    def _value_matches_quality(self) -> Reading:
        if self.quality in VALUELESS and self.value is not None:
            raise ValueError(f"quality {self.quality} carries no value; send value: null")
        if self.quality not in VALUELESS and self.value is None:
            raise ValueError(f"quality {self.quality} needs a value")
        return self


class Signature(_Strict):
    alg: Literal["HMAC-SHA256", "Ed25519"]
    kid: str = Field(min_length=1, max_length=100, description="Ed25519: gateway:fingerprint")
    value: str = Field(
        pattern=r"^[0-9A-Za-z_-]{43,128}$",
        description="HMAC: 64 hex digits; Ed25519: 64 bytes, base64url without padding",
    )


class _FromGateway(_Strict):
    """What every gateway message has: who sent it, about which device, when (UTC)."""

    gateway: str
    device: str
    ts: AwareDatetime

    @field_validator("gateway", "device")
    @classmethod
    def _ids(cls, v: str) -> str:
        return check_id("gateway/device", v)

    @field_validator("ts")
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        if v.utcoffset() != UTC.utcoffset(None):
            raise ValueError("ts must be UTC (suffix Z)")
        return v


class Message(_FromGateway):
    v: Literal[1]
    seq: int = Field(ge=1, description="per device, strictly increasing, survives restarts")
    readings: list[Reading] = Field(min_length=1, max_length=512)
    prev: str = Field(pattern=r"^[0-9a-f]{64}$", description="hash of the previous message")
    sig: Signature


class LossReason(StrEnum):
    MAX_BYTES = "outbox_max_bytes"  # the outbox reached outbox.max_bytes
    MAX_AGE = "outbox_max_age"  # the messages were older than outbox.max_age_days
    WRITE_FAILED = "outbox_write_failed"  # polls never stored (disk full): no seq was used


class DataLoss(_Strict):
    """Messages the gateway dropped unsent, or polls it could not store."""

    reason: LossReason
    first_seq: int | None = Field(
        ge=1, description="first dropped sequence number; null for outbox_write_failed"
    )
    last_seq: int | None = Field(ge=1, description="last dropped sequence number, inclusive")
    count: int = Field(ge=1, description="messages (or, for outbox_write_failed, polls) lost")
    first_ts: AwareDatetime = Field(description="poll time of the oldest lost message")
    last_ts: AwareDatetime = Field(description="poll time of the newest lost message")

    @model_validator(mode="after")
    def _consistent(self) -> DataLoss:
        if self.reason is LossReason.WRITE_FAILED:
            if self.first_seq is not None or self.last_seq is not None:
                raise ValueError("outbox_write_failed loses polls that never had a seq: send null")
        elif self.first_seq is None or self.last_seq is None:
            raise ValueError(f"{self.reason} needs first_seq and last_seq")
        elif self.last_seq < self.first_seq:
            raise ValueError("last_seq must be >= first_seq")
        elif self.count > self.last_seq - self.first_seq + 1:
            raise ValueError("count exceeds the size of the seq range")
        if self.last_ts < self.first_ts:
            raise ValueError("last_ts must not be before first_ts")
        return self


CounterKind = Literal["wrap", "reset", "replacement", "backward_step", "jump"]
_SUSPECT = ("backward_step", "jump")  # the reading is out_of_range: no consumption is claimed


class CounterEventBody(_Strict):
    """A discontinuity of a counter (energy, volume, mass total) with its evidence."""

    quantity: str = Field(min_length=1, max_length=64)
    kind: CounterKind = Field(
        description="wrap (rolled over; consumption known), reset (confirmed restart at another "
        "level), replacement (announced meter swap), backward_step or jump (suspect reading)"
    )
    unit: str = Field(min_length=1, max_length=16)
    before: float = Field(
        description="the last trusted reading (replacement: the old meter's final reading)"
    )
    after: float = Field(
        description="the reading that broke continuity (reset: the first at the new level; "
        "replacement: the new meter's first)"
    )
    ts_before: AwareDatetime
    ts_after: AwareDatetime
    reading_ts: AwareDatetime = Field(
        description="poll time of the reading whose quality this event explains"
    )
    consumption: float | None = Field(
        ge=0,
        description="wrap: from before across the wrap to after; reset: from after to the "
        "reading at reading_ts; replacement: from the trusted reading to before; null: unknown",
    )
    wrap: float | None = Field(None, gt=0, description="wrap: the value shown as 0 again")
    detail: str = Field("", max_length=200)

    @model_validator(mode="after")
    def _consistent(self) -> CounterEventBody:
        if not self.ts_before <= self.ts_after <= self.reading_ts:
            raise ValueError("times must satisfy ts_before <= ts_after <= reading_ts")
        if self.kind == "wrap" and (self.wrap is None or self.consumption is None):
            raise ValueError("a wrap names the wrap value and its consumption")
        if self.kind in _SUSPECT and self.consumption is not None:
            raise ValueError(f"{self.kind}: the reading is suspect; send consumption: null")
        if self.kind == "backward_step" and not self.after < self.before:
            raise ValueError("backward_step: after must be below before")
        if self.kind == "jump" and not self.after > self.before:
            raise ValueError("jump: after must be above before")
        return self


class EventMessage(_FromGateway):
    """Something the gateway reports about a device besides readings (docs/wire-format.md)."""

    v: Literal[1]
    id: int = Field(ge=1, description="per gateway, +1 per event, survives restarts")
    ts: AwareDatetime = Field(description="when the gateway raised the event")
    event: Literal["data_loss", "counter"] = Field(description="names the one body it carries")
    data_loss: DataLoss | None = None
    counter: CounterEventBody | None = None
    sig: Signature

    @model_validator(mode="after")
    def _one_body(self) -> EventMessage:
        given = [k for k in ("data_loss", "counter") if getattr(self, k) is not None]
        if given != [self.event]:
            raise ValueError(
                f"event {self.event!r} carries exactly one body, {self.event!r}; "
                f"got {', '.join(given) or 'none'}"
            )
        return self


def canonical(body: dict[str, Any]) -> bytes:
    """The exact bytes that are hashed and signed: sorted keys, no spaces, no NaN."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def _unsigned(message: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in message.items() if k != "sig"}


def message_hash(message: dict[str, Any]) -> str:
    """The chain hash of a message: SHA-256 of its canonical body without the signature."""
    return hashlib.sha256(canonical(_unsigned(message))).hexdigest()


def signing_bytes(message: dict[str, Any]) -> bytes:
    """What a signature covers: the canonical message without its signature."""
    return canonical(_unsigned(message))


def sign(body: dict[str, Any], signer: Signer) -> dict[str, Any]:
    return sign_and_hash(body, signer)[0]


def sign_and_hash(body: dict[str, Any], signer: Signer) -> tuple[dict[str, Any], str]:
    """The signed message and its chain hash, from one serialisation of the canonical body."""
    data = signing_bytes(body)
    sig = {"alg": signer.alg, "kid": signer.kid, "value": signer.sign(data)}
    return {**body, "sig": sig}, hashlib.sha256(data).hexdigest()


def sign_hmac(body: dict[str, Any], key: bytes, kid: str) -> dict[str, Any]:
    mac = hmac.new(key, canonical(_unsigned(body)), hashlib.sha256).hexdigest()
    return {**body, "sig": {"alg": HMAC_ALG, "kid": kid, "value": mac}}


def verify_hmac(message: dict[str, Any], key: bytes) -> bool:
    sig = message.get("sig")
    if not isinstance(sig, dict) or sig.get("alg") != HMAC_ALG:
        return False
    expected = hmac.new(key, canonical(_unsigned(message)), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, str(sig.get("value", "")))


def json_schema() -> dict[str, Any]:
    """Both message kinds; the topic says which one a payload must be (docs/wire-format.md)."""
    _, defs = models_json_schema(
        [(Message, "validation"), (EventMessage, "validation")],
        ref_template="#/$defs/{model}",
    )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://metertrace.example/schemas/wire-message-v1.json",
        "title": "MeterTrace gateway message (schema version 1)",
        "description": "a reading message on .../readings/{device}, "
        "an event message on .../events/{device}",
        "oneOf": [{"$ref": "#/$defs/Message"}, {"$ref": "#/$defs/EventMessage"}],
        **defs,
    }
