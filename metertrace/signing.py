"""Message signatures: per-gateway Ed25519 keys (with the HMAC of the first version kept).

A gateway creates its Ed25519 key pair on first start and never shows the private key to
anyone; a plant engineer enrols the public key at the collector. The key id (kid) names the
gateway and the key's fingerprint, so after a rotation old messages still name, and verify
against, the key that signed them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from . import ed25519_pem

ED25519 = "Ed25519"
HMAC_SHA256 = "HMAC-SHA256"


class SigningKeyError(ValueError):
    """A key file or enrolment that cannot be used; the message says what to do."""


class Signer(Protocol):
    @property
    def alg(self) -> str: ...

    @property
    def kid(self) -> str: ...

    def sign(self, data: bytes) -> str: ...


def fingerprint(public_raw: bytes) -> str:
    return hashlib.sha256(public_raw).hexdigest()[:16]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class HmacSigner:
    key: bytes
    kid: str
    alg: str = HMAC_SHA256

    def sign(self, data: bytes) -> str:
        return hmac.new(self.key, data, hashlib.sha256).hexdigest()


class Ed25519Signer:
    alg = ED25519

    def __init__(self, gateway: str, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public_raw = private.public_key().public_bytes_raw()
        self.kid = f"{gateway}:{fingerprint(self.public_raw)}"

    def sign(self, data: bytes) -> str:
        return _b64(self._private.sign(data))

    def public_pem(self) -> str:
        return ed25519_pem.public_pem(self.public_raw)


def load_or_create_ed25519(gateway: str, path: Path) -> tuple[Ed25519Signer, bool]:
    """The gateway's signing key, created (mode 600) on first start; returns (signer, created)."""
    if path.exists():
        try:
            raw = ed25519_pem.private_raw(path.read_text(errors="replace"))
        except ed25519_pem.PemError as exc:
            raise SigningKeyError(f"{path} is not a PEM private key: {exc}") from None
        return Ed25519Signer(gateway, Ed25519PrivateKey.from_private_bytes(raw)), False
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = ed25519_pem.private_pem(key.private_bytes_raw()).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return Ed25519Signer(gateway, key), True


def public_key_path(private: Path) -> Path:
    return private.with_name(private.name.removesuffix(".pem") + ".pub.pem")


def create_gateway_key(gateway: str, path: Path) -> Ed25519Signer:
    """A new key pair for a gateway (private PEM at path, public beside it as .pub.pem)."""
    if path.exists():
        raise SigningKeyError(f"{path} exists; refusing to overwrite a gateway key")
    signer, _ = load_or_create_ed25519(gateway, path)
    public_key_path(path).write_text(signer.public_pem())
    return signer


def gateway_signer(gateway: str, alg: str, key_file: Path) -> tuple[Signer, str | None]:
    """The agent's signer; for a new Ed25519 key, also the enrolment hint to log."""
    if alg == "hmac-sha256":
        from .keys import read_key

        return HmacSigner(read_key(key_file), kid=gateway), None
    signer, created = load_or_create_ed25519(gateway, key_file)
    pub = public_key_path(key_file)
    if created or not pub.exists():
        pub.write_text(signer.public_pem())
    hint = (
        f"created the signing key {key_file} ({signer.kid}); enrol its public key at the "
        f"collector: metertrace gateway enrol -c collector.yaml --gateway {gateway} "
        f"--public-key {pub}"
        if created
        else None
    )
    return signer, hint


def load_public_pem(text: str) -> bytes:
    """Raw 32-byte public key from a PEM; the error says what was given instead."""
    try:
        return ed25519_pem.public_raw(text)
    except ed25519_pem.PemError:
        pass
    # Not Ed25519: only now load the full parser, to say what the file is.
    from cryptography.hazmat.primitives import serialization

    try:
        key = serialization.load_pem_public_key(text.encode())
    except ValueError as exc:
        raise SigningKeyError(f"not a PEM public key: {exc}") from None
    raise SigningKeyError(f"a {type(key).__name__} was given; gateways sign with Ed25519")


@dataclass(frozen=True)
class EnrolledKey:
    """A key the collector accepts for one gateway, and when."""

    gateway: str
    kid: str
    alg: str
    material: bytes  # raw Ed25519 public key, or the HMAC secret
    valid_from: datetime
    retired_at: datetime | None = None  # messages stamped after this are refused


def enrolled_ed25519(gateway: str, public_raw: bytes, valid_from: datetime) -> EnrolledKey:
    return EnrolledKey(
        gateway, f"{gateway}:{fingerprint(public_raw)}", ED25519, public_raw, valid_from
    )


def verify(key: EnrolledKey, data: bytes, signature: str, ts: datetime) -> bool:
    """True if the signature is this key's over data and ts lies in the key's validity."""
    if ts < key.valid_from or (key.retired_at is not None and ts > key.retired_at):
        return False
    if key.alg == HMAC_SHA256:
        expected = hmac.new(key.material, data, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, signature)
    if key.alg == ED25519:
        try:
            Ed25519PublicKey.from_public_bytes(key.material).verify(_unb64(signature), data)
        except (InvalidSignature, ValueError):
            return False
        return True
    return False
