"""The collector's composition root: one place that wires config to adapters."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from fastapi import FastAPI

from collector.api.app import create_app
from collector.api.auth import Authenticator
from collector.api.deps import Services
from collector.batches.store import BatchStore
from collector.config import CollectorConfig
from collector.db import open_database
from collector.factors.store import FactorStore
from collector.ingest.consumer import MqttConsumer
from collector.ingest.trust import KeyRing
from collector.ledger.store import LedgerStore
from collector.metrology.calibration_sets import CalibrationService
from collector.metrology.registry_store import RegistryStore
from device_profiles import find_profile
from metertrace.config import ConfigError
from metertrace.signing import SigningKeyError, load_or_create_ed25519, public_key_path

log = logging.getLogger(__name__)


@dataclass
class Collector:
    config: CollectorConfig
    store: LedgerStore
    consumer: MqttConsumer
    app: FastAPI


def bootstrap(config: CollectorConfig) -> Collector:
    db = open_database(config.database.resolved_url)
    store = LedgerStore(db)
    registry = RegistryStore(db)
    for i, gw in enumerate(config.gateways):
        for j, d in enumerate(gw.devices):
            try:
                find_profile(d.profile)
            except ValueError as exc:
                raise ConfigError(f"gateways[{i}].devices[{j}].profile: {exc}") from None
        store.register_gateway(gw.id, key_id=gw.id)
        for d in gw.devices:
            store.register_device(d.id, gw.id, d.profile)
    try:
        ring = KeyRing(config, registry)
    except SigningKeyError as exc:
        raise ConfigError(f"gateways[].public_key_file: {exc}") from None
    consumer = MqttConsumer(config.mqtt, store, ring)
    signer, created = load_or_create_ed25519("collector", config.signing.key_file)
    if created:
        public_key_path(config.signing.key_file).write_text(signer.public_pem())
        log.warning(
            "created the collector's signing key %s; gateways verify calibration sets with %s",
            config.signing.key_file,
            public_key_path(config.signing.key_file),
        )
    calibration = CalibrationService(registry, signer)
    calibration.publish = consumer.publish_retained
    consumer.calibration = calibration
    app = create_app(
        Services(store=store, mqtt_connected=lambda: consumer.connected),
        registry=registry,
        auth=Authenticator(config.api.keys),
        on_calibration_change=calibration.device_changed,
        on_start=consumer.start,
        on_stop=consumer.stop,
    )
    app.state.batches = BatchStore(db)  # batches and topology
    app.state.factors = FactorStore(db)  # users' emission factor records
    app.state.signer = signer  # signs the evidence bundles' manifests too
    return Collector(config, store, consumer, app)
