"""The evidence bundle's manifest signature: the collector's Ed25519 key over manifest.json.

manifest.json lists the SHA-256 of every other file; manifest.sig (JSON) holds an Ed25519
signature over manifest.json's exact bytes, the signing key's id and the SHA-256 of its raw 32
bytes; collector-ed25519.pub.pem (listed in the manifest) is that public key. Given the
collector's public key from a source the reader trusts, the check proves the collector made
the manifest; without one it only proves the bundle agrees with the key it carries, which
whoever rewrote the bundle could have replaced, so the result says so.

Pure: bytes in, a SignatureCheck out (load_trusted reads the one file the user names).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from metertrace.signing import (
    ED25519,
    Ed25519Signer,
    SigningKeyError,
    enrolled_ed25519,
    load_public_pem,
    verify,
)

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
PUBLIC_KEY = "collector-ed25519.pub.pem"
FORMAT = "metertrace-manifest-signature/1"
# A manifest signature has no validity window: the key is checked at a fixed instant.
_ANY_TIME = datetime(1970, 1, 1, tzinfo=UTC)
_HOW_TO_TRUST = (
    "get the collector's public key from its operator (`metertrace collector pubkey -c "
    "collector.yaml` prints it) and pass it: metertrace verify bundle.zip --collector-key "
    "collector-ed25519.pub.pem"
)


def key_sha256(public_raw: bytes) -> str:
    """The key's fingerprint as the bundle names it: SHA-256 of the raw 32-byte public key."""
    return hashlib.sha256(public_raw).hexdigest()


def sign_manifest(manifest: bytes, signer: Ed25519Signer) -> bytes:
    """manifest.sig's bytes: the signature over exactly `manifest`, with the key it needs."""
    doc = {
        "format": FORMAT,
        "signed_file": MANIFEST,
        "alg": signer.alg,
        "kid": signer.kid,
        "public_key_sha256": key_sha256(signer.public_raw),
        "public_key_file": PUBLIC_KEY,
        "signature": signer.sign(manifest),  # base64url, no padding
    }
    return json.dumps(doc, indent=2, sort_keys=True).encode() + b"\n"


@dataclass(frozen=True)
class TrustedKey:
    """The collector public key the user vouches for, and where it came from (for messages)."""

    source: str
    public_raw: bytes

    @property
    def sha256(self) -> str:
        return key_sha256(self.public_raw)


def load_trusted(path: Path) -> TrustedKey:
    """The --collector-key file; SigningKeyError names the file and what it holds instead."""
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        raise SigningKeyError(f"{path}: cannot be read ({exc.strerror})") from None
    try:
        return TrustedKey(str(path), load_public_pem(text))
    except SigningKeyError as exc:
        raise SigningKeyError(
            f"{path}: {exc}; give the collector's Ed25519 public key (collector-ed25519.pub.pem, "
            "as `metertrace collector pubkey` prints it)"
        ) from None


@dataclass(frozen=True)
class Problem:
    file: str
    detail: str


@dataclass
class SignatureCheck:
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def fail(self, file: str, detail: str) -> SignatureCheck:
        self.problems.append(Problem(file, detail))
        return self


@dataclass(frozen=True)
class _Signature:
    kid: str
    public_key_sha256: str
    signature: str  # the JSON keys, so that errors name them


def _parse(data: bytes) -> _Signature:
    doc = json.loads(data)
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    if doc.get("alg") != ED25519:
        raise ValueError(f"alg is {doc.get('alg')!r}, expected {ED25519!r}")
    if doc.get("signed_file", MANIFEST) != MANIFEST:
        raise ValueError(f"signed_file is {doc.get('signed_file')!r}, expected {MANIFEST!r}")
    fields = ("kid", "public_key_sha256", "signature")
    for name in fields:
        if not isinstance(doc.get(name), str) or not doc[name]:
            raise ValueError(f"{name} is missing or not a string")
    return _Signature(*(str(doc[name]) for name in fields))


def check_manifest_signature(
    files: Mapping[str, bytes], *, trusted: TrustedKey | None = None, allow_unsigned: bool = False
) -> SignatureCheck:
    """Whether manifest.json carries the collector's signature, by the trusted key if given."""
    out = SignatureCheck()
    manifest = files.get(MANIFEST)
    if manifest is None:
        return out.fail(MANIFEST, "missing, so there is no signed manifest to check")
    if SIGNATURE not in files:
        if allow_unsigned:
            out.warnings.append(
                f"manifest not signed (no {SIGNATURE}: a bundle from before signed manifests); "
                "accepted because of --allow-unsigned, so a file changed together with its "
                "manifest hash cannot be detected"
            )
            return out
        return out.fail(
            MANIFEST,
            f"manifest not signed (no {SIGNATURE}: a bundle from before signed manifests); "
            "fetch the bundle again from the collector, or pass --allow-unsigned to check the "
            "rest without it",
        )
    try:
        sig = _parse(files[SIGNATURE])
    except ValueError as exc:
        return out.fail(SIGNATURE, f"unreadable: {exc}")
    bundled: bytes | None = None
    if PUBLIC_KEY in files:
        try:
            bundled = load_public_pem(files[PUBLIC_KEY].decode(errors="replace"))
        except SigningKeyError as exc:
            out.fail(PUBLIC_KEY, f"unusable: {exc}")
    elif trusted is None:
        out.fail(PUBLIC_KEY, "missing: without a key the manifest signature cannot be checked; "
                 + _HOW_TO_TRUST)  # fmt: skip
    if bundled is not None and key_sha256(bundled) != sig.public_key_sha256:
        out.fail(SIGNATURE, f"names the key SHA-256 {sig.public_key_sha256}, but {PUBLIC_KEY} "
                 f"is the key SHA-256 {key_sha256(bundled)}")  # fmt: skip
    if trusted is not None:
        if trusted.sha256 != sig.public_key_sha256:
            return out.fail(
                MANIFEST,
                f"signed by the key SHA-256 {sig.public_key_sha256} ({sig.kid}), not by the "
                f"trusted collector key {trusted.source} (SHA-256 {trusted.sha256}): another "
                "key made this bundle, or re-signed it",
            )
        key = trusted.public_raw
    elif bundled is not None:
        key = bundled
    else:
        return out
    if not verify(
        enrolled_ed25519("collector", key, _ANY_TIME), manifest, sig.signature, _ANY_TIME
    ):
        return out.fail(
            MANIFEST,
            f"the Ed25519 signature in {SIGNATURE} (key {sig.kid}) does not verify over "
            "manifest.json's bytes: the manifest was changed after the collector signed it",
        )
    if not out.ok:
        return out
    if trusted is not None:
        out.notes.append(
            f"manifest signed by the trusted collector key {trusted.source} "
            f"({sig.kid}, SHA-256 {trusted.sha256})"
        )
    else:
        out.warnings.append(
            f"the manifest signature verifies with the collector key inside the bundle "
            f"({sig.kid}, SHA-256 {sig.public_key_sha256}), but that key was NOT checked "
            f"against a trusted one: whoever altered the bundle could have re-signed it; "
            + _HOW_TO_TRUST
        )
    return out
