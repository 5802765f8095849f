"""Deciding what an incoming MQTT message is: accepted, or quarantined with a reason.

Pure: the registry of gateways and their keys is passed in; nothing here touches the network
or the database, so every rejection reason is unit-tested.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from device_profiles.loader import format_validation_error
from metertrace.signing import HMAC_SHA256, EnrolledKey, verify
from metertrace.timeutil import parse_utc, to_wire
from metertrace.wire import (
    EventMessage,
    Message,
    events_topic,
    message_hash,
    readings_topic,
    signing_bytes,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # config HMAC keys are valid for all time


class Reason(StrEnum):
    MALFORMED_JSON = "malformed_json"
    SCHEMA = "schema_invalid"
    TOPIC_MISMATCH = "topic_mismatch"
    UNKNOWN_GATEWAY = "unknown_gateway"
    UNKNOWN_KEY = "unknown_key"  # signed with a key id the collector has not enrolled
    UNKNOWN_DEVICE = "unknown_device"
    BAD_SIGNATURE = "bad_signature"
    CONFLICT = "conflict"  # same (device, seq) or (gateway, event id) as stored, other content


class Rejected(Exception):
    def __init__(self, reason: Reason, detail: str) -> None:
        self.reason, self.detail = reason, detail
        super().__init__(f"{reason}: {detail}")


@dataclass(frozen=True, slots=True)
class GatewayKey:
    """A gateway from the collector's config: its HMAC key (if any) and its devices."""

    key: bytes | None
    devices: frozenset[str]


@dataclass(frozen=True)
class Trust:
    """Whom the collector believes: keys by id (with their validity) and devices by gateway."""

    keys: dict[str, EnrolledKey]
    devices: dict[str, frozenset[str]]

    @classmethod
    def of(cls, gateways: dict[str, GatewayKey], enrolled: Iterable[EnrolledKey] = ()) -> Trust:
        keys = {k.kid: k for k in enrolled}
        for gw, entry in gateways.items():
            if entry.key is not None:
                keys[gw] = EnrolledKey(gw, gw, HMAC_SHA256, entry.key, _EPOCH)
        return cls(keys, {gw: e.devices for gw, e in gateways.items()})


@dataclass(frozen=True, slots=True)
class Accepted:
    message: Message
    hash: str
    payload: bytes
    cal_checks: tuple[str | None, ...] = ()  # per reading: ok / mismatch / ..., or None


@dataclass(frozen=True, slots=True)
class AcceptedEvent:
    event: EventMessage
    hash: str
    payload: bytes


def judge(topic: str, payload: bytes, trust: Trust) -> Accepted | AcceptedEvent:
    """The topic's kind level says which message a payload must be."""
    levels = topic.split("/")
    if len(levels) == 5 and levels[3] == "events":
        return accept_event(topic, payload, trust)
    return accept(topic, payload, trust)


def accept(topic: str, payload: bytes, trust: Trust) -> Accepted:
    """Validate, authenticate and place one reading message, or raise Rejected."""
    raw = _json_object(payload)
    try:
        msg = Message.model_validate(raw)
    except ValidationError as exc:
        raise Rejected(Reason.SCHEMA, format_validation_error(exc)) from None
    _authenticate(topic, readings_topic(msg.gateway, msg.device), raw, trust)
    return Accepted(msg, message_hash(raw), payload)


def accept_event(topic: str, payload: bytes, trust: Trust) -> AcceptedEvent:
    """The same checks for an event message (e.g. a data-loss report)."""
    raw = _json_object(payload)
    try:
        event = EventMessage.model_validate(raw)
    except ValidationError as exc:
        raise Rejected(Reason.SCHEMA, format_validation_error(exc)) from None
    _authenticate(topic, events_topic(event.gateway, event.device), raw, trust)
    return AcceptedEvent(event, message_hash(raw), payload)


def _json_object(payload: bytes) -> dict[str, Any]:
    try:
        raw = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Rejected(Reason.MALFORMED_JSON, str(exc)) from None
    if not isinstance(raw, dict):
        raise Rejected(Reason.MALFORMED_JSON, "the body is not a JSON object")
    return raw


def _authenticate(topic: str, expected_topic: str, raw: dict[str, Any], trust: Trust) -> None:
    gateway, device = str(raw["gateway"]), str(raw["device"])
    what = f"seq {raw['seq']}" if "seq" in raw else f"event {raw.get('id')}"
    if topic != expected_topic:
        raise Rejected(Reason.TOPIC_MISMATCH, f"message of {gateway}/{device} on {topic}")
    devices = trust.devices.get(gateway)
    if devices is None:
        raise Rejected(Reason.UNKNOWN_GATEWAY, f"gateway {gateway!r} is not registered")
    sig = raw["sig"]  # the schema guaranteed its shape
    key = trust.keys.get(sig["kid"])
    if key is None:
        raise Rejected(
            Reason.UNKNOWN_KEY,
            f"{gateway}/{device} {what} is signed with key {sig['kid']!r}, which is not "
            f"enrolled: metertrace gateway enrol --gateway {gateway} --public-key FILE",
        )
    ts = parse_utc(str(raw["ts"]))
    if (
        key.gateway != gateway
        or key.alg != sig["alg"]
        or not verify(key, signing_bytes(raw), sig["value"], ts)
    ):
        raise Rejected(
            Reason.BAD_SIGNATURE,
            f"signature of {gateway}/{device} {what} does not verify with key {key.kid}"
            + (f" (retired {to_wire(key.retired_at)})" if key.retired_at else ""),
        )
    if device not in devices:
        raise Rejected(
            Reason.UNKNOWN_DEVICE, f"device {device!r} is not registered to gateway {gateway!r}"
        )
