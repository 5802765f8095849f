"""Deciding what an incoming MQTT message is: accepted, or quarantined with a reason.

Pure: the registry of gateways and their keys is passed in; nothing here touches the network
or the database, so every rejection reason is unit-tested.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum

from pydantic import ValidationError

from device_profiles.loader import format_validation_error
from metertrace.wire import TOPIC_ROOT, Message, message_hash, verify_hmac


class Reason(StrEnum):
    MALFORMED_JSON = "malformed_json"
    SCHEMA = "schema_invalid"
    TOPIC_MISMATCH = "topic_mismatch"
    UNKNOWN_GATEWAY = "unknown_gateway"
    UNKNOWN_DEVICE = "unknown_device"
    BAD_SIGNATURE = "bad_signature"
    CONFLICT = "conflict"  # same (device, seq) as a stored message, different content


class Rejected(Exception):
    def __init__(self, reason: Reason, detail: str) -> None:
        self.reason, self.detail = reason, detail
        super().__init__(f"{reason}: {detail}")


@dataclass(frozen=True, slots=True)
class GatewayKey:
    key: bytes
    devices: frozenset[str]


@dataclass(frozen=True, slots=True)
class Accepted:
    message: Message
    hash: str
    payload: bytes


def accept(topic: str, payload: bytes, registry: dict[str, GatewayKey]) -> Accepted:
    """Validate, authenticate and place one message, or raise Rejected."""
    try:
        raw = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Rejected(Reason.MALFORMED_JSON, str(exc)) from None
    if not isinstance(raw, dict):
        raise Rejected(Reason.MALFORMED_JSON, "the body is not a JSON object")
    try:
        msg = Message.model_validate(raw)
    except ValidationError as exc:
        raise Rejected(Reason.SCHEMA, format_validation_error(exc)) from None
    expected_topic = f"{TOPIC_ROOT}/{msg.gateway}/readings/{msg.device}"
    if topic != expected_topic:
        raise Rejected(Reason.TOPIC_MISMATCH, f"message of {msg.gateway}/{msg.device} on {topic}")
    gw = registry.get(msg.gateway)
    if gw is None:
        raise Rejected(Reason.UNKNOWN_GATEWAY, f"gateway {msg.gateway!r} is not registered")
    if not verify_hmac(raw, gw.key):
        raise Rejected(
            Reason.BAD_SIGNATURE,
            f"signature of {msg.gateway}/{msg.device} seq {msg.seq} does not verify",
        )
    if msg.device not in gw.devices:
        raise Rejected(
            Reason.UNKNOWN_DEVICE,
            f"device {msg.device!r} is not registered to gateway {msg.gateway!r}",
        )
    return Accepted(msg, message_hash(raw), payload)
