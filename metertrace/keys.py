"""Gateway signing keys on disk (hex, one line), created with owner-only permissions."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


class KeyFileError(ValueError):
    pass


def read_key(path: Path) -> bytes:
    try:
        text = path.read_text().strip()
    except OSError as exc:
        raise KeyFileError(
            f"cannot read key file {path}: {exc.strerror}; create one with "
            f"'metertrace keygen {path}'"
        ) from exc
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise KeyFileError(f"key file {path} must hold one line of hex") from None
    if len(key) < 16:
        raise KeyFileError(f"key in {path} is {len(key)} bytes; use at least 16 (keygen gives 32)")
    return key


def create_key(path: Path) -> bytes:
    if path.exists():
        raise KeyFileError(f"{path} exists; refusing to overwrite a gateway key")
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key.hex() + "\n")
    return key
