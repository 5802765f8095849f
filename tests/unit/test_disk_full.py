"""A poll that cannot be written to the outbox (disk full) is counted, logged and reported by a
data-loss event once the outbox can be written again: never a silent drop."""

import json
import logging
from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from edge_agent.config import AgentConfig
from edge_agent.counter_quality import CounterWatch
from edge_agent.poller import DeviceHealth
from edge_agent.runner import Agent
from metertrace.keys import create_key
from metertrace.timeutil import utcnow
from metertrace.wire import EventMessage

pytestmark = pytest.mark.unit

READINGS = [{"quantity": "energy.active.import", "value": 1.0, "unit": "kWh", "raw": "00",
             "quality": "good"}]  # fmt: skip


@dataclass
class Poller:  # what Agent.record reads of a poller
    device: str
    health: DeviceHealth = field(default_factory=DeviceHealth)
    counters: CounterWatch = field(default_factory=lambda: CounterWatch("m1"))


def test_unstored_polls_are_reported_once_the_outbox_works_again(tmp_path, caplog):
    create_key(tmp_path / "gw.key")
    config = AgentConfig.model_validate(
        {
            "gateway": {"id": "gw-1"},
            "state_dir": str(tmp_path / "state"),
            "signing": {"alg": "hmac-sha256", "key_file": str(tmp_path / "gw.key")},
            "devices": [
                {"id": "m1", "profile": "eastron-sdm630",
                 "transport": {"type": "modbus-tcp", "host": "127.0.0.1"}}
            ],
        }
    )  # fmt: skip
    agent = Agent(config)
    poller = Poller("m1")
    t0 = utcnow()
    agent.record(poller, t0, READINGS)
    db = agent.outbox._db  # the disk fills up: SQLite can grow the file no further
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages}")
    big = [{**READINGS[0], "raw": "00" * 8000}]
    with caplog.at_level(logging.ERROR, logger="edge_agent.runner"):
        for i in range(3):
            agent.record(poller, t0 + timedelta(seconds=1 + i), big)
    assert agent.unstored_polls["m1"] == 3
    assert "cannot store the poll" in caplog.text and "data-loss event" in caplog.text
    assert agent.status()["devices"]["m1"]["unstored_polls"] == 3
    assert agent.outbox.last_seq("m1") == 1, "a poll that was not stored used no seq"

    db.execute("PRAGMA max_page_count = 1073741823")  # space again
    agent.record(poller, t0 + timedelta(seconds=10), READINGS)
    assert agent.outbox.last_seq("m1") == 2
    events = [p for p in agent.outbox.pending() if "/events/" in p.topic]
    assert len(events) == 1
    loss = EventMessage.model_validate(json.loads(events[0].payload)).data_loss
    assert (loss.reason.value, loss.count, loss.first_seq, loss.last_seq) == (
        "outbox_write_failed",
        3,
        None,
        None,
    )
    assert loss.first_ts == t0 + timedelta(seconds=1) and loss.last_ts == t0 + timedelta(seconds=3)
    agent.outbox.close()
