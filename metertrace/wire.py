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


def status_topic(gateway: str) -> str:
    return f"{TOPIC_ROOT}/{gateway}/status"


def gateway_prefix(gateway: str) -> str:
    """Everything a gateway publishes is below this; a broker ACL confines it here."""
    return f"{TOPIC_ROOT}/{gateway}/#"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Reading(_Strict):
    quantity: str = Field(min_length=1, max_length=64)
    value: float | None = Field(description="null when quality is comm_error or not_available")
    unit: str = Field(min_length=1, max_length=16)
    raw: str | None = Field(
        None, pattern=r"^[0-9a-f]*$", description="the registers as read, hex, for evidence"
    )
    quality: Quality

    @model_validator(mode="after")
    def _value_matches_quality(self) -> Reading:
        if self.quality in VALUELESS and self.value is not None:
            raise ValueError(f"quality {self.quality} carries no value; send value: null")
        if self.quality not in VALUELESS and self.value is None:
            raise ValueError(f"quality {self.quality} needs a value")
        return self


class Signature(_Strict):
    alg: Literal["HMAC-SHA256"]
    kid: str = Field(min_length=1, max_length=64)
    value: str = Field(pattern=r"^[0-9a-f]{64}$")


class Message(_Strict):
    v: Literal[1]
    gateway: str
    device: str
    seq: int = Field(ge=1, description="per device, strictly increasing, survives restarts")
    ts: AwareDatetime
    readings: list[Reading] = Field(min_length=1, max_length=512)
    prev: str = Field(pattern=r"^[0-9a-f]{64}$", description="hash of the previous message")
    sig: Signature

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


def canonical(body: dict[str, Any]) -> bytes:
    """The exact bytes that are hashed and signed: sorted keys, no spaces, no NaN."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def _unsigned(message: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in message.items() if k != "sig"}


def message_hash(message: dict[str, Any]) -> str:
    """The chain hash of a message: SHA-256 of its canonical body without the signature."""
    return hashlib.sha256(canonical(_unsigned(message))).hexdigest()


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
    schema = Message.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://metertrace.example/schemas/wire-message-v1.json"
    return schema
