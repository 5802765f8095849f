"""The evidence manifest's signature (collector/evidence/signature.py), on bytes alone: who
signed, over which bytes, against which trusted key, and what an older unsigned bundle gets."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from collector.evidence.signature import (
    MANIFEST,
    PUBLIC_KEY,
    SIGNATURE,
    TrustedKey,
    check_manifest_signature,
    key_sha256,
    load_trusted,
    sign_manifest,
)
from metertrace.signing import Ed25519Signer, SigningKeyError

pytestmark = pytest.mark.unit

COLLECTOR = Ed25519Signer("collector", Ed25519PrivateKey.generate())
OTHER = Ed25519Signer("collector", Ed25519PrivateKey.generate())
MANIFEST_BYTES = b'{\n  "files": {\n    "batches.json": "ab12"\n  }\n}\n'


def signed(manifest: bytes = MANIFEST_BYTES, by: Ed25519Signer = COLLECTOR) -> dict[str, bytes]:
    return {
        MANIFEST: manifest,
        SIGNATURE: sign_manifest(manifest, by),
        PUBLIC_KEY: by.public_pem().encode(),
    }


def trusted(key: Ed25519Signer) -> TrustedKey:
    return TrustedKey("collector-ed25519.pub.pem", key.public_raw)


def with_sig(**fields: object) -> Callable[[dict[str, bytes]], None]:
    def change(files: dict[str, bytes]) -> None:
        doc = json.loads(files[SIGNATURE]) | fields
        files[SIGNATURE] = json.dumps({k: v for k, v in doc.items() if v is not None}).encode()

    return change


def test_the_signature_is_over_the_exact_manifest_bytes_and_names_the_key():
    doc = json.loads(sign_manifest(MANIFEST_BYTES, COLLECTOR))
    assert doc["kid"] == COLLECTOR.kid and doc["alg"] == "Ed25519"
    assert doc["public_key_sha256"] == key_sha256(COLLECTOR.public_raw)
    assert len(doc["public_key_sha256"]) == 64 and COLLECTOR.kid.endswith(
        doc["public_key_sha256"][:16]
    )
    assert doc["signed_file"] == MANIFEST and doc["public_key_file"] == PUBLIC_KEY


def test_with_the_trusted_key_it_holds_and_says_so():
    result = check_manifest_signature(signed(), trusted=trusted(COLLECTOR))
    assert result.ok and not result.warnings
    (note,) = result.notes
    assert key_sha256(COLLECTOR.public_raw) in note


def test_without_a_trusted_key_it_holds_with_a_warning_naming_key_and_flag():
    result = check_manifest_signature(signed())
    assert result.ok and not result.notes
    (warning,) = result.warnings
    assert "NOT checked against a trusted one" in warning
    assert key_sha256(COLLECTOR.public_raw) in warning and "--collector-key" in warning


def test_a_bundle_signed_by_another_key_fails_naming_both_fingerprints():
    result = check_manifest_signature(signed(by=OTHER), trusted=trusted(COLLECTOR))
    (problem,) = result.problems
    assert problem.file == MANIFEST
    assert key_sha256(OTHER.public_raw) in problem.detail
    assert key_sha256(COLLECTOR.public_raw) in problem.detail


@dataclass(frozen=True)
class Case:
    name: str
    change: Callable[[dict[str, bytes]], None]
    file: str  # the file the problem names
    says: str
    trust: bool = True


def _set(name: str, data: bytes) -> Callable[[dict[str, bytes]], None]:
    return lambda files: files.__setitem__(name, data)


def _drop(name: str) -> Callable[[dict[str, bytes]], None]:
    return lambda files: files.__delitem__(name)


CASES = [
    Case("one manifest byte changed", _set(MANIFEST, MANIFEST_BYTES.replace(b"ab12", b"ab13")),
         MANIFEST, "does not verify over manifest.json's bytes"),
    Case("one manifest byte changed, no trusted key",
         _set(MANIFEST, MANIFEST_BYTES.replace(b"ab12", b"ab13")), MANIFEST, "does not verify",
         trust=False),
    Case("the signature of another manifest", with_sig(signature=json.loads(
        sign_manifest(b"{}", COLLECTOR))["signature"]), MANIFEST, "does not verify"),
    Case("a signature that is not base64", with_sig(signature="not base64 !!"), MANIFEST,
         "does not verify"),
    Case("no signature: an older bundle", _drop(SIGNATURE), MANIFEST, "manifest not signed"),
    Case("no manifest", _drop(MANIFEST), MANIFEST, "missing"),
    Case("signature file not JSON", _set(SIGNATURE, b"\x00sig"), SIGNATURE, "unreadable"),
    Case("signature by HMAC", with_sig(alg="HMAC-SHA256"), SIGNATURE, "alg is 'HMAC-SHA256'"),
    Case("signature without its value", with_sig(signature=None), SIGNATURE,
         "signature is missing"),
    Case("signature over another file", with_sig(signed_file="keys.json"), SIGNATURE,
         "signed_file"),
    Case("bundled key is not the signing key", _set(PUBLIC_KEY, OTHER.public_pem().encode()),
         SIGNATURE, f"is the key SHA-256 {key_sha256(OTHER.public_raw)}"),
    Case("bundled key missing, no trusted key", _drop(PUBLIC_KEY), PUBLIC_KEY, "missing",
         trust=False),
    Case("bundled key is not a key", _set(PUBLIC_KEY, b"hello"), PUBLIC_KEY, "unusable"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_each_defect_is_named(case: Case):
    files = signed()
    case.change(files)
    result = check_manifest_signature(files, trusted=trusted(COLLECTOR) if case.trust else None)
    assert not result.ok
    assert [p.file for p in result.problems][:1] == [case.file], result.problems
    assert case.says in result.problems[0].detail
    assert not result.notes and not [w for w in result.warnings if "verifies" in w]


def test_an_unsigned_bundle_is_accepted_only_when_allowed_and_then_with_a_warning():
    files = signed()
    del files[SIGNATURE]
    result = check_manifest_signature(files, allow_unsigned=True)
    assert result.ok
    (warning,) = result.warnings
    assert warning.startswith("manifest not signed") and "--allow-unsigned" in warning
    assert "--allow-unsigned" in check_manifest_signature(files).problems[0].detail


def test_the_trusted_key_suffices_when_the_bundle_carries_none():
    files = signed()
    del files[PUBLIC_KEY]
    assert check_manifest_signature(files, trusted=trusted(COLLECTOR)).ok


def test_the_trusted_key_file_is_read_or_named(tmp_path):
    good = tmp_path / "collector-ed25519.pub.pem"
    good.write_text(COLLECTOR.public_pem())
    assert load_trusted(good).sha256 == key_sha256(COLLECTOR.public_raw)
    private = tmp_path / "collector-ed25519.pem"
    private.write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    for path in (private, tmp_path / "missing.pem"):
        with pytest.raises(SigningKeyError) as exc:
            load_trusted(path)
        assert str(exc.value).startswith(f"{path}: ")
