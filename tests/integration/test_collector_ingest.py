"""The collector against a real Mosquitto and a real database (SQLite, then PostgreSQL), through
its HTTP API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion

from collector.bootstrap import bootstrap
from collector.config import CollectorConfig
from metertrace.keys import create_key
from metertrace.wire import GENESIS, message_hash, readings_topic, sign_hmac
from tests.helpers import wait_for

pytestmark = pytest.mark.integration


class Rig:
    def __init__(self, tmp_path: Path, db_url: str, broker, uid: str) -> None:
        self.gw, self.dev = f"gw-{uid}", f"m-{uid}"
        self.key = create_key(tmp_path / "gw.key")
        config = CollectorConfig.model_validate(
            {
                "database": {"url": db_url},
                "signing": {"key_file": str(tmp_path / "collector.pem")},
                "mqtt": {"host": broker.host, "port": broker.port, "client_id": f"col-{uid}"},
                "gateways": [
                    {
                        "id": self.gw,
                        "key_file": str(tmp_path / "gw.key"),
                        "devices": [{"id": self.dev, "profile": "eastron-sdm630"}],
                    }
                ],
            }
        )
        self.collector = bootstrap(config)
        self.pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{uid}")
        self.pub.connect(broker.host, broker.port)
        self.pub.loop_start()
        self.prev = GENESIS

    def message(self, seq: int, value: float = 1.0, key: bytes | None = None, **over) -> dict:
        body = {
            "v": 1,
            "gateway": self.gw,
            "device": self.dev,
            "seq": seq,
            "ts": f"2026-11-23T10:00:{seq:02d}.000000Z",
            "prev": self.prev,
            "readings": [
                {
                    "quantity": "energy.active.import",
                    "value": value,
                    "unit": "kWh",
                    "raw": "00000000",
                    "quality": "good",
                }
            ],
            **over,
        }
        return sign_hmac(body, key or self.key, self.gw)

    def send(self, payload: bytes | dict, topic: str | None = None) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.pub.publish(topic or readings_topic(self.gw, self.dev), data, qos=1).wait_for_publish(
            5
        )

    def close(self) -> None:
        self.pub.loop_stop()
        self.pub.disconnect()


@pytest.fixture
def rig(tmp_path, db_url, broker, uid) -> Iterator[tuple[Rig, TestClient]]:
    r = Rig(tmp_path, db_url, broker, uid)
    with TestClient(r.collector.app) as client:
        wait_for(
            lambda: client.get("/api/v1/health").json()["mqtt_connected"],
            timeout=10,
            what="collector connected to the broker",
        )
        yield r, client
    r.close()


def health(client: TestClient) -> dict:
    return client.get("/api/v1/health").json()


def test_messages_are_stored_once_and_served(rig):
    r, client = rig
    for seq in (1, 2, 3):
        m = r.message(seq, value=100.0 + seq)
        r.send(m)
        r.prev = message_hash(m)
    r.send(m)  # at-least-once delivery: the same message may arrive twice
    wait_for(
        lambda: health(client)["messages"] == 3 and health(client)["duplicates"] == 1,
        timeout=10,
        what="3 stored messages and 1 duplicate",
    )
    rows = client.get("/api/v1/readings", params={"device": r.dev}).json()
    assert [(x["seq"], x["value"], x["unit"]) for x in rows] == [
        (1, 101.0, "kWh"),
        (2, 102.0, "kWh"),
        (3, 103.0, "kWh"),
    ]
    window = client.get(
        "/api/v1/readings",
        params={"device": r.dev, "start": "2026-11-23T10:00:02Z", "end": "2026-11-23T10:00:03Z"},
    ).json()
    assert [x["seq"] for x in window] == [2]
    devices = {d["id"]: d for d in client.get("/api/v1/devices").json()}
    assert devices[r.dev]["last_seq"] == 3 and devices[r.dev]["messages"] == 3
    assert client.get("/api/v1/readings/latest", params={"device": r.dev}).json()[0]["seq"] == 3


def test_bad_messages_are_quarantined_with_reasons_and_ingest_goes_on(rig):
    r, client = rig
    r.send(b"{definitely not json")
    r.send(r.message(1, key=b"wrong key of 32 bytes..........."))
    unknown = r.message(1)
    unknown["device"] = "ghost"
    r.send(sign_hmac(unknown, r.key, r.gw), topic=readings_topic(r.gw, "ghost"))
    r.send(r.message(1, value=5.0))
    r.send(r.message(1, value=6.0))  # same seq, other content: a conflict, not a duplicate
    wait_for(
        lambda: (
            sum(health(client)["quarantined"].values()) == 4 and health(client)["messages"] == 1
        ),
        timeout=10,
        what="4 quarantined, 1 stored",
    )
    q = {x["reason"] for x in client.get("/api/v1/quarantine").json() if r.gw in x["topic"]}
    assert q == {"malformed_json", "bad_signature", "unknown_device", "conflict"}
    rows = client.get("/api/v1/readings", params={"device": r.dev}).json()
    assert [x["value"] for x in rows] == [5.0]  # the accepted message was never replaced


def test_api_errors_are_clear(rig):
    r, client = rig
    resp = client.get("/api/v1/readings", params={"device": "nope"})
    assert resp.status_code == 404 and "not registered" in resp.json()["detail"]
    resp = client.get("/api/v1/readings", params={"device": r.dev, "start": "2026-01-01T00:00"})
    assert resp.status_code == 422 and "has no timezone" in resp.json()["detail"]
    assert client.get("/openapi.json").json()["info"]["title"] == "MeterTrace collector"
