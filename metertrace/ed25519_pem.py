"""Ed25519 keys in PEM without cryptography's serialization module (RFC 8410).

An Ed25519 key in PKCS#8 or SubjectPublicKeyInfo DER is a fixed 16- or 12-byte prefix followed
by the 32 raw key bytes, so reading and writing them needs no ASN.1 parser. Keeping the module
out of the agent saves ~3 MiB of its resident memory on a 1 GB gateway; the PEM files are the
standard ones (`openssl pkey` reads them; tests/unit/test_ed25519_pem.py checks them against
cryptography's own serialisation).
"""

from __future__ import annotations

import base64
import textwrap

PKCS8_PREFIX = bytes.fromhex("302e020100300506032b657004220420")  # RFC 8410, section 7
SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")  # RFC 8410, section 4
_PRIVATE = "PRIVATE KEY"
_PUBLIC = "PUBLIC KEY"


class PemError(ValueError):
    pass


def _pem(label: str, der: bytes) -> str:
    body = "\n".join(textwrap.wrap(base64.b64encode(der).decode(), 64))
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n"


def _der(label: str, text: str) -> bytes:
    begin, end = f"-----BEGIN {label}-----", f"-----END {label}-----"
    start, stop = text.find(begin), text.find(end)
    if start < 0 or stop < start:
        raise PemError(f"no '{begin}' block")
    try:
        return base64.b64decode("".join(text[start + len(begin) : stop].split()), validate=True)
    except ValueError as exc:
        raise PemError(f"the {label} block is not base64: {exc}") from None


def private_pem(raw: bytes) -> str:
    return _pem(_PRIVATE, PKCS8_PREFIX + raw)


def public_pem(raw: bytes) -> str:
    return _pem(_PUBLIC, SPKI_PREFIX + raw)


def private_raw(text: str) -> bytes:
    der = _der(_PRIVATE, text)
    if len(der) != len(PKCS8_PREFIX) + 32 or not der.startswith(PKCS8_PREFIX):
        raise PemError("not an unencrypted Ed25519 private key (PKCS#8, RFC 8410)")
    return der[len(PKCS8_PREFIX) :]


def public_raw(text: str) -> bytes:
    der = _der(_PUBLIC, text)
    if len(der) != len(SPKI_PREFIX) + 32 or not der.startswith(SPKI_PREFIX):
        raise PemError("not an Ed25519 public key (SubjectPublicKeyInfo, RFC 8410)")
    return der[len(SPKI_PREFIX) :]
