"""Must-show: two collector processes write the same stream into one PostgreSQL database; every
(device, seq) ends up stored exactly once, with the gateway's own content, and nothing is lost.

Both collectors subscribe to every gateway topic (an ordinary subscription, not a shared one), so
each receives every message and both race to insert it; the publisher sends every message twice
as well, so each (device, seq) is offered four times, often at the same instant. Why READ
COMMITTED with INSERT ... ON CONFLICT DO NOTHING is enough: docs/architecture.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select

from collector.db.engine import Database
from collector.db.schema import messages, quarantine, readings
from metertrace.keys import create_key
from metertrace.wire import GENESIS, message_hash, readings_topic, sign_hmac
from tests.databases import drop_pg_database, new_pg_database
from tests.helpers import free_port, get_json, metertrace, stop, tail, wait_collector, wait_for

pytestmark = pytest.mark.e2e

DEVICES = 8
MESSAGES = 150  # per device
QUANTITIES = ("energy.active.import", "power.active.total")


@pytest.fixture
def pg_url() -> Iterator[str]:
    url = new_pg_database("twocol")
    yield url
    drop_pg_database(url)


def stream(gw: str, key: bytes) -> list[tuple[str, dict]]:
    """Every device's chained messages, interleaved across devices as a gateway sends them."""
    out: list[tuple[str, dict]] = []
    prev = {d: GENESIS for d in range(DEVICES)}
    for seq in range(1, MESSAGES + 1):
        for d in range(DEVICES):
            dev = f"m{d}"
            body = {
                "v": 1,
                "gateway": gw,
                "device": dev,
                "seq": seq,
                "ts": f"2026-11-23T{10 + seq // 3600:02d}:{seq // 60 % 60:02d}:{seq % 60:02d}"
                f".{d:06d}Z",
                "prev": prev[d],
                "readings": [
                    {"quantity": q, "value": seq * 1.5 + i, "unit": u, "quality": "good"}
                    for i, (q, u) in enumerate(zip(QUANTITIES, ("kWh", "kW"), strict=True))
                ],
            }
            signed = sign_hmac(body, key, gw)
            prev[d] = message_hash(signed)
            out.append((readings_topic(gw, dev), signed))
    return out


def write_config(tmp: Path, name: str, url: str, broker_port: int, gw: str) -> tuple[Path, str]:
    api_port = free_port()
    cfg = {
        "database": {"url": url},
        "signing": {"key_file": str(tmp / "collector.pem")},
        "mqtt": {"host": "127.0.0.1", "port": broker_port, "client_id": f"{name}-{gw}"},
        "api": {"host": "127.0.0.1", "port": api_port},
        "gateways": [
            {
                "id": gw,
                "key_file": str(tmp / "gw.key"),
                "devices": [{"id": f"m{d}", "profile": "eastron-sdm630"} for d in range(DEVICES)],
            }
        ],
    }
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path, f"http://127.0.0.1:{api_port}/api/v1"


def test_two_collectors_on_one_postgresql_store_every_message_exactly_once(
    tmp_path, broker, uid, pg_url
):
    gw = f"gw-{uid}"
    key = create_key(tmp_path / "gw.key")
    procs, apis = [], []
    try:
        # One after the other: the first creates the schema, the second finds it at head.
        for name in ("col-a", "col-b"):
            cfg, api = write_config(tmp_path, name, pg_url, broker.port, gw)
            log = tmp_path / f"{name}.log"
            proc = metertrace(["collector", "serve", "-c", str(cfg)], log)
            wait_collector(api, proc, log)
            procs.append((proc, log))
            apis.append(api)

        sent = stream(gw, key)
        pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{uid}")
        pub.connect(broker.host, broker.port)
        pub.loop_start()
        try:
            infos = []
            for topic, body in sent:
                data = json.dumps(body).encode()
                infos += [pub.publish(topic, data, qos=1), pub.publish(topic, data, qos=1)]
            for info in infos:
                info.wait_for_publish(30)
        finally:
            pub.loop_stop()
            pub.disconnect()

        total = DEVICES * MESSAGES
        # Each message reaches each collector twice: one of the four offers is stored, three
        # are duplicates; wait until both collectors have handled all of theirs.
        wait_for(
            lambda: sum(get_json(f"{a}/health")["duplicates"] for a in apis) >= 3 * total,
            timeout=120,
            what=f"{4 * total} offers handled by the two collectors",
        )
        for proc, log in procs:
            assert proc.poll() is None, tail(log)
        for a in apis:  # each collector sees the whole, unbroken chain of every device
            for d in range(DEVICES):
                chain = get_json(f"{a}/devices/m{d}/chain")
                assert chain["intact"] is True, chain
    finally:
        for proc, _ in procs:
            stop(proc)

    db = Database(pg_url)
    try:
        with db.read() as c:
            stored = c.execute(
                select(messages.c.device, messages.c.seq, messages.c.hash).order_by(
                    messages.c.device, messages.c.seq
                )
            ).all()
            n_readings = c.execute(select(func.count()).select_from(readings)).scalar_one()
            refused = c.execute(select(quarantine.c.reason, quarantine.c.detail)).all()
    finally:
        db.dispose()
    expected = sorted((body["device"], body["seq"], message_hash(body)) for _, body in sent)
    assert [tuple(r) for r in stored] == expected  # every (device, seq) once, the sent content
    assert n_readings == total * len(QUANTITIES)
    assert refused == []  # no offer was taken for a conflicting message
