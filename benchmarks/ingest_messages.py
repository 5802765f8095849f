"""The ingest benchmark's traffic: one gateway's signed reading messages, made before timing.

Messages are built and signed by the edge agent's own code (`edge_agent.messages.
MessageSigner`, readings shaped by `edge_agent.poller.reading`), each device's chain starting
at GENESIS, in poll order: message k of every device, then k+1. Values are float32 register
contents of the Eastron SDM630 profile's first points, as a meter would return them.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from device_profiles import Point
from edge_agent.messages import MessageSigner
from edge_agent.poller import reading
from metertrace.keys import create_key, read_key
from metertrace.signing import HmacSigner, Signer, create_gateway_key, public_key_path
from metertrace.wire import GENESIS, Quality

from .plant import modbus_profile

GATEWAY = "gw-bench"
PROFILE = "eastron-sdm630"
READINGS_PER_MESSAGE = 10
WARMUP_DEVICE = "warmup"  # its messages go first and are not timed
START = datetime(2026, 1, 5, tzinfo=UTC)
POLL = timedelta(seconds=1)

Message = tuple[str, bytes]  # (topic, payload) as published


@dataclass(frozen=True)
class GatewayKey:
    """The gateway's signer and what the collector's config names to trust it."""

    signer: Signer
    entry: dict[str, str]  # gateways[] key: public_key_file (Ed25519) or key_file (HMAC)


def gateway_key(alg: str, directory: Path) -> GatewayKey:
    """A new gateway key, as `metertrace gateway keygen` (Ed25519) or `metertrace keygen` make."""
    if alg == "ed25519":
        private = directory / f"{GATEWAY}.pem"
        signer = create_gateway_key(GATEWAY, private)
        return GatewayKey(signer, {"public_key_file": str(public_key_path(private))})
    if alg == "hmac-sha256":
        path = directory / f"{GATEWAY}.key"
        create_key(path)
        return GatewayKey(HmacSigner(read_key(path), kid=GATEWAY), {"key_file": str(path)})
    raise ValueError(f"signing {alg!r}: use ed25519 or hmac-sha256")


def device_ids(devices: int) -> list[str]:
    return [f"m{i:03d}" for i in range(devices)]


@functools.cache
def _points() -> tuple[Point, ...]:
    return tuple(modbus_profile(PROFILE).points()[:READINGS_PER_MESSAGE])


def _readings(seq: int, device_no: int) -> list[dict[str, Any]]:
    out = []
    for i, p in enumerate(_points()):
        register = struct.unpack(">f", struct.pack(">f", 100.0 + i + device_no + seq / 64))[0]
        raw = struct.pack(">f", register).hex()
        out.append(reading(p.quantity, p.unit, register * p.scale + p.offset, raw, Quality.GOOD))
    return out


def sign_messages(signer: Signer, devices: Sequence[str], per_device: int) -> list[Message]:
    """per_device messages of each device, signed and chained as the agent does."""
    ms = MessageSigner(GATEWAY, signer)
    prev = dict.fromkeys(devices, GENESIS)
    out: list[Message] = []
    for seq in range(1, per_device + 1):
        for n, device in enumerate(devices):
            topic, payload, prev[device] = ms.reading(
                device, START + seq * POLL, _readings(seq, n), seq, prev[device]
            )
            out.append((topic, payload))
    return out


def write_messages(path: Path, messages: Iterable[Message]) -> None:
    """One message a line: topic, a space, the JSON payload (which holds no newline)."""
    with path.open("wb") as f:
        for topic, payload in messages:
            f.write(topic.encode() + b" " + payload + b"\n")


def read_messages(path: Path) -> list[Message]:
    out: list[Message] = []
    for line in path.read_bytes().splitlines():
        topic, payload = line.split(b" ", 1)
        out.append((topic.decode(), payload))
    return out


def expected_rows(devices: Sequence[str], per_device: int) -> set[tuple[str, int, str]]:
    """(device, seq, quantity) of every reading the messages carry."""
    quantities = [p.quantity for p in _points()]
    return {(d, seq, q) for d in devices for seq in range(1, per_device + 1) for q in quantities}
