"""Deciding what an incoming MQTT message is: accepted, or quarantined with a reason.

Pure: the registry of gateways and their keys is passed in; nothing here touches the network
or the database, so every rejection reason is unit-tested.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from device_profiles.loader import format_validation_error
from metertrace.wire import (
    EventMessage,
    Message,
    events_topic,
    message_hash,
    readings_topic,
    verify_hmac,
)


class Reason(StrEnum):
    MALFORMED_JSON = "malformed_json"
    SCHEMA = "schema_invalid"
    TOPIC_MISMATCH = "topic_mismatch"
    UNKNOWN_GATEWAY = "unknown_gateway"
    UNKNOWN_DEVICE = "unknown_device"
    BAD_SIGNATURE = "bad_signature"
    CONFLICT = "conflict"  # same (device, seq) or (gateway, event id) as stored, other content


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


@dataclass(frozen=True, slots=True)
class AcceptedEvent:
    event: EventMessage
    hash: str
    payload: bytes


def judge(topic: str, payload: bytes, registry: dict[str, GatewayKey]) -> Accepted | AcceptedEvent:
    """The topic's kind level says which message a payload must be."""
    levels = topic.split("/")
    if len(levels) == 5 and levels[3] == "events":
        return accept_event(topic, payload, registry)
    return accept(topic, payload, registry)


def accept(topic: str, payload: bytes, registry: dict[str, GatewayKey]) -> Accepted:
    """Validate, authenticate and place one reading message, or raise Rejected."""
    raw = _json_object(payload)
    try:
        msg = Message.model_validate(raw)
    except ValidationError as exc:
        raise Rejected(Reason.SCHEMA, format_validation_error(exc)) from None
    _authenticate(topic, readings_topic(msg.gateway, msg.device), raw, registry)
    return Accepted(msg, message_hash(raw), payload)


def accept_event(topic: str, payload: bytes, registry: dict[str, GatewayKey]) -> AcceptedEvent:
    """The same checks for an event message (e.g. a data-loss report)."""
    raw = _json_object(payload)
    try:
        event = EventMessage.model_validate(raw)
    except ValidationError as exc:
        raise Rejected(Reason.SCHEMA, format_validation_error(exc)) from None
    _authenticate(topic, events_topic(event.gateway, event.device), raw, registry)
    return AcceptedEvent(event, message_hash(raw), payload)


def _json_object(payload: bytes) -> dict[str, Any]:
    try:
        raw = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Rejected(Reason.MALFORMED_JSON, str(exc)) from None
    if not isinstance(raw, dict):
        raise Rejected(Reason.MALFORMED_JSON, "the body is not a JSON object")
    return raw


def _authenticate(
    topic: str, expected_topic: str, raw: dict[str, Any], registry: dict[str, GatewayKey]
) -> None:
    gateway, device = str(raw["gateway"]), str(raw["device"])
    what = f"seq {raw['seq']}" if "seq" in raw else f"event {raw.get('id')}"
    if topic != expected_topic:
        raise Rejected(Reason.TOPIC_MISMATCH, f"message of {gateway}/{device} on {topic}")
    gw = registry.get(gateway)
    if gw is None:
        raise Rejected(Reason.UNKNOWN_GATEWAY, f"gateway {gateway!r} is not registered")
    if not verify_hmac(raw, gw.key):
        raise Rejected(
            Reason.BAD_SIGNATURE, f"signature of {gateway}/{device} {what} does not verify"
        )
    if device not in gw.devices:
        raise Rejected(
            Reason.UNKNOWN_DEVICE, f"device {device!r} is not registered to gateway {gateway!r}"
        )
