"""Signatures, keys and the evidence chain through the real broker and collector: forged
signatures, unknown keys, key rotation, replays, gaps, and recomputation under a superseding
certificate; on each engine (SQLite, then PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion

from collector.api.auth import token_hash
from collector.bootstrap import bootstrap
from collector.config import CollectorConfig
from edge_agent.messages import MessageSigner
from metertrace.calibration_set import DeviceEntry, stamp
from metertrace.corrections import Correction
from metertrace.signing import Ed25519Signer, load_or_create_ed25519
from metertrace.timeutil import utcnow
from metertrace.wire import GENESIS
from tests.helpers import wait_for

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TOKENS = {"li": ("plant_engineer", "t-li"), "wang": ("metrology", "t-wang")}


def hdr(who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[who][1]}"}


class Gateway:
    """A gateway that signs like the agent does, publishing straight to the broker."""

    def __init__(self, tmp: Path, name: str, broker, uid: str) -> None:
        self.id, self.device = f"gw-{uid}", f"m-{uid}"
        self.key, _ = load_or_create_ed25519(self.id, tmp / f"{name}.pem")
        self.prev, self.seq = GENESIS, 0
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{name}-{uid}")
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def message(
        self, *, signer: Ed25519Signer | None = None, ts=None, readings=None, seq: int | None = None
    ) -> tuple[str, bytes]:
        self.seq = seq if seq is not None else self.seq + 1
        ts = ts or utcnow()
        readings = readings or [
            {
                "quantity": "energy.active.import",
                "value": 100.0 + self.seq,
                "unit": "kWh",
                "raw": "00",
                "quality": "good",
            }
        ]
        topic, payload, digest = MessageSigner(self.id, signer or self.key).reading(
            self.device, ts, readings, self.seq, self.prev
        )
        self.prev = digest
        return topic, payload

    def send(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def rig(tmp_path, db_url, broker, uid) -> Iterator[tuple[Gateway, TestClient]]:
    config = CollectorConfig.model_validate(
        {
            "database": {"url": db_url},
            "signing": {"key_file": str(tmp_path / "collector.pem")},
            "mqtt": {"host": broker.host, "port": broker.port, "client_id": f"col-{uid}"},
            "api": {
                "keys": [
                    {"name": n, "role": r, "token_sha256": token_hash(t)}
                    for n, (r, t) in TOKENS.items()
                ]
            },
        }
    )
    gw = Gateway(tmp_path, "gw", broker, uid)
    with TestClient(bootstrap(config).app) as client:
        wait_for(
            lambda: client.get("/api/v1/health").json()["mqtt_connected"],
            timeout=10,
            what="collector connected",
        )
        device = {
            "id": gw.device,
            "gateway": gw.id,
            "profile": "eastron-sdm630",
            "serial_number": "S-1",
            "medium": "electricity",
            "location": {"site": "a"},
            "installed_at": "2026-01-01T00:00:00Z",
        }
        assert (
            client.post("/api/v1/registry/devices", json=device, headers=hdr("li")).status_code
            == 201
        )
        r = client.post(
            f"/api/v1/registry/gateways/{gw.id}/keys",
            headers=hdr("li"),
            json={"public_key_pem": gw.key.public_pem()},
        )
        assert r.status_code == 201, r.text
        yield gw, client
    gw.close()


def health(client: TestClient) -> dict:
    return client.get("/api/v1/health").json()


def quarantined(client: TestClient, gw: Gateway) -> list[dict]:
    return [q for q in client.get("/api/v1/quarantine").json() if gw.id in q["topic"]]


def chain(client: TestClient, gw: Gateway) -> dict:
    return client.get(f"/api/v1/devices/{gw.device}/chain", headers=hdr("li")).json()


def test_forged_and_unknown_keys_are_quarantined(rig, tmp_path):
    gw, client = rig
    gw.send(*gw.message())
    impostor, _ = load_or_create_ed25519(gw.id, tmp_path / "impostor.pem")
    # the impostor claims the enrolled key's id: the signature cannot verify
    forged = Ed25519Signer(gw.id, impostor._private)
    forged.kid = gw.key.kid
    gw.send(*gw.message(signer=forged))
    gw.send(*gw.message(signer=impostor))  # an honest but unenrolled key
    wait_for(
        lambda: len(quarantined(client, gw)) == 2 and health(client)["messages"] >= 1,
        timeout=10,
        what="1 stored, 2 quarantined",
    )
    assert sorted(q["reason"] for q in quarantined(client, gw)) == ["bad_signature", "unknown_key"]
    report = chain(client, gw)  # the refused messages never entered the chain
    assert report["messages"] == 1 and report["last_seq"] == 1 and report["intact"]


def test_rotation_keeps_old_messages_verifiable(rig, tmp_path):
    gw, client = rig
    before = utcnow() - timedelta(seconds=30)
    gw.send(*gw.message(ts=before))
    # the collector has judged with the old key before the rotation: its key ring is loaded
    wait_for(lambda: health(client)["messages"] == 1, timeout=10, what="the first message")
    new_key, _ = load_or_create_ed25519(gw.id, tmp_path / "rotated.pem")
    r = client.post(
        f"/api/v1/registry/gateways/{gw.id}/keys",
        headers=hdr("li"),
        json={"public_key_pem": new_key.public_pem()},
    )
    assert r.status_code == 201
    # a message the gateway stamped before the rotation but delivers late: still verifies
    gw.send(*gw.message(ts=before + timedelta(seconds=1)))
    # the old key signing something new after the rotation: refused, naming the retirement
    gw.send(*gw.message(ts=utcnow() + timedelta(seconds=1)))
    wait_for(
        lambda: health(client)["messages"] == 2 and len(quarantined(client, gw)) == 1,
        timeout=10,
        what="2 stored, 1 refused",
    )
    (q,) = quarantined(client, gw)
    assert q["reason"] == "bad_signature" and "retired" in q["detail"]
    gw.send(*gw.message(signer=new_key, seq=3))
    wait_for(lambda: health(client)["messages"] == 3, timeout=10, what="the new key's message")
    keys = client.get("/api/v1/registry/gateways/keys", headers=hdr("li")).json()
    mine = [k for k in keys if k["gateway"] == gw.id]
    assert [k["retired_at"] is not None for k in mine] == [True, False]


def test_replay_and_gap_are_reported_with_sequence_numbers(rig):
    gw, client = rig
    sent = [gw.message() for _ in range(3)]
    for m in sent:
        gw.send(*m)
    gw.message()  # seq 4 is lost on the way
    gw.send(*gw.message())  # seq 5
    gw.send(*sent[1])  # seq 2 again, after newer ones: a replay
    wait_for(
        lambda: health(client)["messages"] == 4 and health(client)["duplicates"] == 1,
        timeout=10,
        what="4 stored, 1 duplicate",
    )
    report = chain(client, gw)
    assert not report["intact"]
    assert [(g["first"], g["last"], g["explained"]) for g in report["gaps"]] == [(4, 4, False)]
    assert report["replays"] == [2] and report["broken_links"] == []
    assert "gap seq 4..4" in report["summary"] and "replayed seq 2" in report["summary"]


def test_superseded_certificate_recomputes_and_both_stay_traceable(rig):
    gw, client = rig
    cert = json.loads((ROOT / "docs/examples/certificate.json").read_text())
    today = utcnow().date()
    cert.update(
        device_id=gw.device,
        serial_number="S-1",
        timezone="UTC",
        calibration_date=str(today - timedelta(days=5)),
        issue_date=str(today - timedelta(days=4)),
        valid_until=str(today + timedelta(days=300)),
    )
    for ref in cert["reference_standards"]:
        ref["due_date"] = str(today + timedelta(days=60))
    r = client.post(
        "/api/v1/calibration/certificates",
        headers=hdr("wang"),
        json={"certificate": cert, "corrections": {"energy.active.import": "gain_offset"}},
    )
    assert r.status_code == 201, r.text
    v1 = Correction.model_validate(r.json()["corrections"][0])
    entry = DeviceEntry(
        certificate_id=cert["certificate_id"],
        version=1,
        valid_from=utcnow() - timedelta(days=1),
        valid_until=utcnow() + timedelta(days=1),
        corrections=[v1],
    )
    ts = utcnow()
    readings = stamp(
        [
            {
                "quantity": "energy.active.import",
                "value": 1008.0,
                "unit": "kWh",
                "raw": "00",
                "quality": "good",
            }
        ],
        entry,
        ts,
    )
    gw.send(*gw.message(ts=ts, readings=readings))
    tampered = [{**readings[0], "value": readings[0]["value"] + 0.5}]  # signed, but wrong maths
    gw.send(*gw.message(ts=ts + timedelta(seconds=1), readings=tampered))
    wait_for(lambda: health(client)["messages"] == 2, timeout=10, what="2 stored")
    rows = client.get("/api/v1/readings", params={"device": gw.device}).json()
    assert [x["cal_check"] for x in rows] == ["ok", "mismatch"]

    v2cert = {
        **cert,
        "version": 2,
        "supersedes": {"certificate_id": cert["certificate_id"], "version": 1},
        "points": [
            {**p, "indicated": round(p["reference"] * 1.006, 9)}
            for p in cert["points"]
            if p["quantity"] == "energy.active.import"
        ],
    }
    r = client.post(
        "/api/v1/calibration/certificates",
        headers=hdr("wang"),
        json={"certificate": v2cert, "corrections": {"energy.active.import": "gain_offset"}},
    )
    assert r.status_code == 201, r.text
    rows = client.get("/api/v1/readings", params={"device": gw.device, "recalibrate": True}).json()
    first = rows[0]
    assert first["certificate_version"] == 1 and first["value"] == readings[0]["value"]
    assert first["recalibrated"]["version"] == 2
    assert first["recalibrated"]["value"] == pytest.approx(1008.0 / 1.006, rel=1e-6)
    assert first["recalibrated"]["value"] != pytest.approx(first["value"], rel=1e-4)
