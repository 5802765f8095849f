"""Calibration at run time: corrections for recomputation, and the signed calibration set each
gateway receives (retained, so a gateway that reconnects gets it at once)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from datetime import datetime

from collector.metrology.calibration import validity_window
from collector.metrology.certificates import in_force
from collector.metrology.registry_store import RegistryStore
from metertrace.calibration_set import CalibrationSet, DeviceEntry, calibration_topic
from metertrace.corrections import Correction
from metertrace.signing import Signer
from metertrace.timeutil import utcnow
from metertrace.wire import sign

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes], None]  # (topic, payload): retained, QoS 1


class CalibrationService:
    def __init__(self, registry: RegistryStore, signer: Signer) -> None:
        self.registry, self.signer = registry, signer
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, int, str], Correction] = {}
        self._generation = -1
        self.publish: Publish | None = None

    def lookup(self, certificate: str, version: int, quantity: str) -> Correction | None:
        key = (certificate, version, quantity)
        with self._lock:
            if key not in self._cache and self.registry.generation() != self._generation:
                self._reload()
            return self._cache.get(key)

    def _reload(self) -> None:
        self._generation = self.registry.generation()
        self._cache = {
            (c.certificate_id, c.certificate_version, c.quantity): c
            for s in self.registry.certificates()
            for c in s.corrections
        }

    def calibration_set(self, gateway: str, now: datetime) -> CalibrationSet:
        certs = self.registry.certificates()
        devices: dict[str, DeviceEntry] = {}
        for rec in self.registry.devices():
            if rec.spec.gateway != gateway:
                continue
            cal = in_force(certs, rec.spec.id, now)
            if cal.certificate is None:
                continue
            stored = next(
                s
                for s in certs
                if s.certificate.certificate_id == cal.certificate.certificate_id
                and s.certificate.version == cal.certificate.version
            )
            start, end = validity_window(stored.certificate)
            devices[rec.spec.id] = DeviceEntry(
                certificate_id=cal.certificate.certificate_id,
                version=cal.certificate.version,
                valid_from=start,
                valid_until=end,
                corrections=cal.corrections,
            )
        # microseconds since the epoch: increases across collector restarts too
        serial = int(now.timestamp() * 1_000_000)
        return CalibrationSet(gateway=gateway, issued=now, serial=serial, devices=devices)

    def signed(self, gateway: str, now: datetime) -> bytes:
        body = json.loads(self.calibration_set(gateway, now).model_dump_json())
        return json.dumps(sign(body, self.signer), separators=(",", ":")).encode()

    def publish_gateway(self, gateway: str) -> None:
        if self.publish is None:
            return
        with self._lock:
            self._reload()  # a new certificate: recomputation must know it too
        self.publish(calibration_topic(gateway), self.signed(gateway, utcnow()))
        log.info("published the calibration set of gateway %s", gateway)

    def publish_all(self) -> None:
        for gw in sorted({r.spec.gateway for r in self.registry.devices()}):
            self.publish_gateway(gw)

    def device_changed(self, device: str) -> None:
        rec = self.registry.device(device)
        if rec is not None:
            self.publish_gateway(rec.spec.gateway)
