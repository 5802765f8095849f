from datetime import UTC, datetime, timedelta

import pytest

from metertrace.signing import (
    EnrolledKey,
    SigningKeyError,
    enrolled_ed25519,
    load_or_create_ed25519,
    load_public_pem,
    verify,
)

pytestmark = pytest.mark.unit

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_key_is_created_once_with_owner_only_mode(tmp_path):
    path = tmp_path / "keys" / "gw.pem"
    signer, created = load_or_create_ed25519("gw-1", path)
    assert created and (path.stat().st_mode & 0o777) == 0o600
    again, created = load_or_create_ed25519("gw-1", path)
    assert not created and again.kid == signer.kid and again.kid.startswith("gw-1:")


def test_enrolled_public_key_verifies_and_forgery_fails(tmp_path):
    signer, _ = load_or_create_ed25519("gw-1", tmp_path / "k.pem")
    key = enrolled_ed25519("gw-1", load_public_pem(signer.public_pem()), T0)
    assert key.kid == signer.kid
    sig = signer.sign(b"message")
    assert verify(key, b"message", sig, T0 + timedelta(days=1))
    assert not verify(key, b"messagE", sig, T0 + timedelta(days=1))
    other, _ = load_or_create_ed25519("gw-1", tmp_path / "other.pem")
    assert not verify(key, b"message", other.sign(b"message"), T0 + timedelta(days=1))
    assert not verify(key, b"message", "not base64 !!", T0 + timedelta(days=1))


def test_rotation_keeps_old_messages_verifiable(tmp_path):
    old, _ = load_or_create_ed25519("gw-1", tmp_path / "old.pem")
    new, _ = load_or_create_ed25519("gw-1", tmp_path / "new.pem")
    rotated = T0 + timedelta(days=30)
    old_key = EnrolledKey("gw-1", old.kid, "Ed25519", old.public_raw, T0, retired_at=rotated)
    new_key = enrolled_ed25519("gw-1", new.public_raw, rotated)
    before, after = rotated - timedelta(hours=1), rotated + timedelta(hours=1)
    assert verify(old_key, b"m", old.sign(b"m"), before)  # signed before the rotation: still good
    assert not verify(old_key, b"m", old.sign(b"m"), after)  # a retired key signs nothing new
    assert verify(new_key, b"m", new.sign(b"m"), after)
    assert not verify(new_key, b"m", new.sign(b"m"), before)


def test_wrong_key_material_is_a_clear_error(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    with pytest.raises(SigningKeyError, match="gateways sign with Ed25519"):
        load_public_pem(pem)
    with pytest.raises(SigningKeyError, match="not a PEM public key"):
        load_public_pem("hello")
    (tmp_path / "bad.pem").write_text("garbage")
    with pytest.raises(SigningKeyError, match="not a PEM private key"):
        load_or_create_ed25519("gw-1", tmp_path / "bad.pem")
