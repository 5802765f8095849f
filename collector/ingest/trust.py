"""The collector's key ring: keys and devices from the config and the registry, reloaded when
the registry has changed since (a key enrolled or retired, a device registered, by the CLI or
the API, in this process or another): checked before every batch of messages, and again when a
message names a key, gateway or device the ring does not know."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

from collector.config import CollectorConfig
from collector.ingest.rules import GatewayKey, Trust
from collector.metrology.registry_store import RegistryStore
from metertrace.keys import read_key
from metertrace.signing import enrolled_ed25519, load_public_pem

log = logging.getLogger(__name__)

_CONFIG_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class KeyRing:
    def __init__(self, config: CollectorConfig, registry: RegistryStore) -> None:
        self.config, self.registry = config, registry
        self._lock = threading.Lock()
        self._generation = -1
        self._trust = self._load()

    def _load(self) -> Trust:
        self._generation = self.registry.generation()
        gateways: dict[str, GatewayKey] = {}
        enrolled = []
        for gw in self.config.gateways:
            key = read_key(gw.key_file) if gw.key_file else None
            gateways[gw.id] = GatewayKey(key, frozenset(d.id for d in gw.devices))
            if gw.public_key_file:
                raw = load_public_pem(gw.public_key_file.read_text())
                enrolled.append(enrolled_ed25519(gw.id, raw, _CONFIG_EPOCH))
        for rec in self.registry.devices():
            known = gateways.get(rec.spec.gateway, GatewayKey(None, frozenset()))
            gateways[rec.spec.gateway] = GatewayKey(known.key, known.devices | {rec.spec.id})
        enrolled += self.registry.gateway_keys()
        for k in enrolled:
            gateways.setdefault(k.gateway, GatewayKey(None, frozenset()))
        return Trust.of(gateways, enrolled)

    def current(self) -> Trust:
        return self._trust

    def reload(self) -> bool:
        """Re-read the registry if it changed; a flood of forged key ids costs one query each."""
        with self._lock:
            if self.registry.generation() == self._generation:
                return False
            self._trust = self._load()
            log.info(
                "key ring reloaded: %d keys, %d gateways",
                len(self._trust.keys),
                len(self._trust.devices),
            )
            return True
