import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from metertrace import ed25519_pem

pytestmark = pytest.mark.unit


def test_same_files_as_cryptography_writes_and_reads():
    key = Ed25519PrivateKey.generate()
    theirs_private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    theirs_public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    assert ed25519_pem.private_pem(key.private_bytes_raw()) == theirs_private
    assert ed25519_pem.public_pem(key.public_key().public_bytes_raw()) == theirs_public
    assert ed25519_pem.private_raw(theirs_private) == key.private_bytes_raw()
    assert ed25519_pem.public_raw(theirs_public) == key.public_key().public_bytes_raw()
    mine = ed25519_pem.private_pem(key.private_bytes_raw()).encode()
    loaded = serialization.load_pem_private_key(mine, password=None)
    assert loaded.private_bytes_raw() == key.private_bytes_raw()  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hello", "no '-----BEGIN PUBLIC KEY-----' block"),
        ("-----BEGIN PUBLIC KEY-----\n!!!\n-----END PUBLIC KEY-----", "not base64"),
        (ed25519_pem._pem("PUBLIC KEY", b"\x30" * 44), "not an Ed25519 public key"),
    ],
)
def test_bad_public_keys(text, message):
    with pytest.raises(ed25519_pem.PemError, match=message):
        ed25519_pem.public_raw(text)
