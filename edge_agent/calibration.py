"""The calibration set the agent applies: received from the collector, verified, kept on disk.

The set is signed with the collector's Ed25519 key; a set that does not verify, names another
gateway, or is older than the one held is refused and logged, and the agent keeps the one it
has. It is saved so that a restarted agent keeps calibrating while the broker is away.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from metertrace.calibration_set import CalibrationSet, DeviceEntry, stamp
from metertrace.signing import ED25519, EnrolledKey, fingerprint, load_public_pem, verify
from metertrace.wire import signing_bytes

log = logging.getLogger(__name__)


class CalibrationBook:
    def __init__(self, gateway: str, collector_public_pem: str, path: Path) -> None:
        raw = load_public_pem(collector_public_pem)
        self.gateway, self.path = gateway, path
        self._key = EnrolledKey(
            "collector",
            f"collector:{fingerprint(raw)}",
            ED25519,
            raw,
            datetime(1970, 1, 1, tzinfo=UTC),
        )
        self.current: CalibrationSet | None = None  # swapped whole: readers need no lock
        self.refused = 0
        if path.exists():
            try:
                self.accept(path.read_bytes(), save=False)
            except ValueError as exc:
                log.error("ignoring the saved calibration set %s: %s", path, exc)

    def accept(self, payload: bytes, *, save: bool = True) -> CalibrationSet:
        """Verify and adopt a set; raises ValueError saying why a set is refused."""
        try:
            msg: dict[str, Any] = json.loads(payload)
            sig = msg["sig"]
            cal = CalibrationSet.model_validate({k: v for k, v in msg.items() if k != "sig"})
        except (ValueError, KeyError, TypeError, ValidationError) as exc:
            raise ValueError(f"not a calibration set: {exc}") from None
        if sig.get("kid") != self._key.kid or not verify(
            self._key, signing_bytes(msg), str(sig.get("value")), cal.issued
        ):
            raise ValueError("its signature does not verify with the collector's public key")
        if cal.gateway != self.gateway:
            raise ValueError(f"it is for gateway {cal.gateway}, not {self.gateway}")
        if self.current is not None and cal.serial < self.current.serial:
            raise ValueError(f"serial {cal.serial} is older than the held {self.current.serial}")
        self.current = cal
        if save:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_bytes(payload)
            os.replace(tmp, self.path)  # never a half-written set after a power cut
        return cal

    def on_message(self, payload: bytes) -> None:
        try:
            cal = self.accept(payload)
        except ValueError as exc:
            self.refused += 1
            log.error("refused a calibration set: %s", exc)
            return
        log.info("calibration set %d applies to %d devices", cal.serial, len(cal.devices))

    def entry(self, device: str) -> DeviceEntry | None:
        cal = self.current
        return cal.devices.get(device) if cal else None

    def stamp(
        self, device: str, ts: datetime, readings: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        return stamp(readings, self.entry(device), ts)
