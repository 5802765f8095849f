"""Seed a collector for `scripts/pact-conformance --source batches`: a plant whose March 2026
batches `metertrace collector serve` publishes as real PACT footprints (collector/footprints/).

    python scripts/pact_seed.py --pact pact.yaml --out collector.yaml --mqtt-port N --api-port N

Takes the `pact:` block the conformance script wrote (TLS, the tool's client and its callback),
adds the plant's `footprints:` settings, a database, a gateway with its HMAC key and meters, and
writes collector.yaml. Then it fills the database as the plant would: meters, a calibration
certificate, the topology and the batches through the collector's own API (the app `collector
serve` runs, in-process), and counter readings as signed gateway messages judged by
collector.ingest.rules and stored by LedgerStore, as the MQTT consumer does.

The plant (Asia/Shanghai; hours from 2026-03-10 00:00 UTC; counters read every 10 min, rising
at constant rates; declared unit: kWh of cell capacity):

    line L1: B1 LFP-105 1-3 h, B3 LFP-105 5-6 h, B4 LFP-50 6.5-7.5 h    line L2: B2 LFP-280 2-4 h
    e-a   electricity, dedicated L1, 10 kWh/h, accuracy class only
    e-s   electricity, shared L1+L2 by produced quantity, 12 kWh/h, calibration certificate
    st-2  steam, dedicated L2, 0.5 t/h, accuracy class only

Three products in March: three footprints, so that a page of two needs a Link header.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from fastapi.testclient import TestClient

from collector.bootstrap import bootstrap
from collector.config import CollectorConfig
from collector.db import open_database
from collector.ingest.rules import Accepted, Rejected, judge
from collector.ingest.trust import KeyRing
from collector.ledger.port import Outcome
from collector.metrology.registry_store import RegistryStore
from edge_agent.messages import MessageSigner
from metertrace.config import load_config
from metertrace.keys import create_key, read_key
from metertrace.signing import HmacSigner
from metertrace.wire import GENESIS

T0 = datetime(2026, 3, 10, tzinfo=UTC)
HOURS = 8.0  # of readings, covering every batch
STEP_H = 1 / 6
GATEWAY = "gw-1"
CERTIFICATE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "certificate.json"

# id -> (medium, profile, quantity, unit, rate per hour, counter at T0, registry overrides)
METERS: dict[str, tuple[str, str, str, str, float, float, dict[str, Any]]] = {
    "e-a": ("electricity", "eastron-sdm630", "energy.active.import", "kWh", 10.0, 1000.0, {}),
    "e-s": ("electricity", "eastron-sdm630", "energy.active.import", "kWh", 12.0, 5000.0, {}),
    "st-2": ("steam", "synthetic-steam-vortex", "mass.steam", "t", 0.5, 20.0,
             {"accuracy_class": "2.5"}),
}  # fmt: skip
TOPOLOGY = """\
idle_policy: overhead
meters:
  e-a: {resolution: 0.01}
  e-s: {resolution: 0.01}
  st-2: {resolution: 0.001}
assignments:
  - {meter_id: e-a, rule: dedicated, lines: [L1], valid_from: 2026-01-01T00:00:00Z}
  - {meter_id: e-s, rule: shared, lines: [L1, L2], key: produced_quantity,
     valid_from: 2026-01-01T00:00:00Z}
  - {meter_id: st-2, rule: dedicated, lines: [L2], idle_policy: spread_by_production,
     valid_from: 2026-01-01T00:00:00Z}
"""
# id, product, line, start h, end h, kWh of capacity, kg
BATCHES = [
    ("B1", "LFP-105", "L1", 1.0, 3.0, 672.0, 3960.0),
    ("B2", "LFP-280", "L2", 2.0, 4.0, 896.0, 5400.0),
    ("B3", "LFP-105", "L1", 5.0, 6.0, 336.0, 1980.0),
    ("B4", "LFP-50", "L1", 6.5, 7.5, 240.0, 1500.0),
]
PRODUCTS = {
    "LFP-105": "LFP prismatic cell 3.2 V 105 Ah, unpackaged",
    "LFP-280": "LFP prismatic cell 3.2 V 280 Ah, unpackaged",
    "LFP-50": "LFP prismatic cell 3.2 V 50 Ah, unpackaged",
}
FOOTPRINTS = {
    "company_name": "MeterTrace conformance plant (fictitious)",
    "company_ids": ["urn:pact:cells.example.com:company-id:1"],
    "product_id_template": "urn:pact:cells.example.com:product-id:{product_id}",
    "product_category_cpc": "46420",
    "geography_country": "CN",
    "time_zone": "Asia/Shanghai",
    "steam": {"pressure_mpa": 0.8, "temperature_c": 175.0},
    "products": {p: {"product_description": d} for p, d in PRODUCTS.items()},
}


class SeedError(Exception):
    pass


def iso(hours: float) -> str:
    return (T0 + timedelta(hours=hours)).isoformat().replace("+00:00", "Z")


def write_config(pact_file: Path, out: Path, *, mqtt_port: int, api_port: int) -> None:
    pact = yaml.safe_load(pact_file.read_text())["pact"]
    base = pact_file.parent.resolve()
    # paths in the pact block are relative to its file; collector.yaml may live elsewhere
    pact["tls"] = {k: str(base / v) for k, v in (pact.get("tls") or {}).items()} or None
    for c in pact["clients"]:
        cb = c.get("callback") or {}
        if "client_secret_file" in cb:
            cb["client_secret_file"] = str(base / cb["client_secret_file"])
    config = {
        "database": {"path": "collector.db"},
        # no broker: the readings are seeded, and the consumer's reconnects harm nothing
        "mqtt": {"host": "127.0.0.1", "port": mqtt_port},
        "api": {"host": "127.0.0.1", "port": api_port},
        "gateways": [
            {
                "id": GATEWAY,
                "key_file": "gw-1.key",
                "devices": [{"id": d, "profile": m[1]} for d, m in METERS.items()],
            }
        ],
        "pact": {**pact, "footprints": FOOTPRINTS},
    }
    out.write_text(yaml.safe_dump(config, sort_keys=False))


def call(client: TestClient, method: str, url: str, want: int, **kw: Any) -> None:
    r = client.request(method, url, **kw)
    if r.status_code != want:
        raise SeedError(f"{method} {url}: {r.status_code} {r.text}")


def seed(config_file: Path) -> None:
    config = load_config(config_file, CollectorConfig)
    gw = config.gateways[0]
    if gw.key_file is None:
        raise SeedError(f"{config_file}: gateways[0].key_file is needed to sign the readings")
    if not gw.key_file.exists():
        create_key(gw.key_file)
    collector = bootstrap(config)
    api = TestClient(collector.app)  # no `with`: the lifespan (MQTT) is not started
    for device, (medium, profile, *_, over) in METERS.items():
        spec = {"id": device, "gateway": GATEWAY, "profile": profile,
                "serial_number": f"SN-{device}", "medium": medium,
                "location": {"site": "plant-a"}, "accuracy_class": "1.0",
                "installed_at": "2026-01-01T00:00:00Z", **over}  # fmt: skip
        call(api, "POST", "/api/v1/registry/devices", 201, json=spec)
    cert = json.loads(CERTIFICATE.read_text()) | {"device_id": "e-s"}
    body = {"certificate": cert, "corrections": {"energy.active.import": "none"}}
    call(api, "POST", "/api/v1/calibration/certificates", 201, json=body)
    call(api, "PUT", "/api/v1/topology", 201, content=TOPOLOGY,
         headers={"Content-Type": "application/yaml"})  # fmt: skip
    batches = [
        {"id": b, "product_id": p, "product_name": p, "line": line, "start": iso(s),
         "end": iso(e), "produced_quantity": q, "declared_unit": "kilowatt hour", "mass_kg": kg}
        for b, p, line, s, e, q, kg in BATCHES
    ]  # fmt: skip
    call(api, "POST", "/api/v1/batches", 201, json=batches)

    signer = MessageSigner(GATEWAY, HmacSigner(read_key(gw.key_file), kid=GATEWAY))
    trust = KeyRing(config, RegistryStore(open_database(config.database.resolved_url))).current()
    for device, (_, _, quantity, unit, rate, start, _) in METERS.items():
        prev, accepted = GENESIS, []
        for seq in range(1, round(HOURS / STEP_H) + 2):
            h = (seq - 1) * STEP_H
            value = start + rate * h
            reading = {"quantity": quantity, "value": value, "unit": unit, "quality": "good"}
            at = T0 + timedelta(hours=h)
            topic, payload, prev = signer.reading(device, at, [reading], seq, prev)
            try:
                judged = judge(topic, payload, trust)
            except Rejected as exc:
                raise SeedError(f"{topic} seq {seq}: refused by the collector: {exc}") from exc
            if not isinstance(judged, Accepted):
                raise SeedError(f"{topic}: judged as an event, not a reading")
            accepted.append(judged)
        outcomes = collector.store.ingest(accepted)
        if set(outcomes) != {Outcome.STORED}:
            raise SeedError(f"{device}: readings not all stored: {sorted(set(outcomes))}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pact", type=Path, required=True, help="YAML file with a pact: block")
    parser.add_argument("--out", type=Path, required=True, help="collector.yaml to write")
    parser.add_argument("--mqtt-port", type=int, required=True, help="no broker needs to run")
    parser.add_argument("--api-port", type=int, required=True)
    args = parser.parse_args(argv)
    if args.out.exists():
        sys.exit(f"{args.out} exists; seed a fresh directory")
    write_config(args.pact, args.out, mqtt_port=args.mqtt_port, api_port=args.api_port)
    try:
        seed(args.out)
    except SeedError as exc:
        sys.exit(f"pact_seed: {exc}")
    print(f"seeded {len(BATCHES)} batches of {len(PRODUCTS)} products; wrote {args.out}")


if __name__ == "__main__":
    main()
