"""Must-show: kill -9 the agent and stop the broker mid-stream, again and again; the collector
ends with every sequence number of every device exactly once (docs/store-and-forward.md).

Real processes: simulator, agent, collector (uvicorn) and a Mosquitto that persists its sessions,
so what it acknowledged to the agent survives its restart in the collector's session queue.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from tests.brokers import start_persistent_broker
from tests.conftest import Broker
from tests.e2e.test_chain import DEVICES, Plant, configure
from tests.helpers import get_json, metertrace, stop, tail, try_get_json, wait_for

pytestmark = pytest.mark.e2e

SEED = 20261123
ROUNDS = 6
COUNTER = {  # one quantity per device: one reading per stored message
    "elec-main": "energy.active.import",
    "gas-boiler": "volume.gas.standard",
    "steam-header": "mass.steam",
}


class Rig:
    def __init__(self, plant: Plant, broker: Broker) -> None:
        self.plant, self.broker = plant, broker
        self.state_db = plant.dir / "state" / "gw-demo" / "agent.db"
        self.agent: subprocess.Popen[bytes] | None = None
        self.starts = 0

    # --- observations -------------------------------------------------------------------------
    def stored(self) -> int:
        return int(get_json(f"{self.plant.api}/health")["messages"])

    def outbox_depth(self) -> int:
        if not self.state_db.exists():
            return 0
        with sqlite3.connect(self.state_db, timeout=10) as db:
            try:
                return int(db.execute("SELECT count(*) FROM outbox").fetchone()[0])
            except sqlite3.OperationalError:  # the agent has not created its tables yet
                return 0

    def log(self) -> Path:
        return self.plant.dir / f"agent-{self.starts}.log"

    def wait(self, condition: Callable[[], object], what: str, timeout: float = 30) -> None:
        wait_for(lambda: condition() or self._agent_died(), timeout=timeout, what=what)
        assert not self._agent_died(), tail(self.log())

    def _agent_died(self) -> bool:
        return self.agent is not None and self.agent.poll() is not None

    # --- actions ------------------------------------------------------------------------------
    def start_agent(self, *extra: str) -> None:
        self.starts += 1
        self.agent = metertrace(
            ["agent", "run", "-c", str(self.plant.dir / "gateway.yaml"), *extra], self.log()
        )

    def kill_agent(self) -> None:
        assert self.agent is not None
        os.kill(self.agent.pid, signal.SIGKILL)
        self.agent.wait(10)
        self.agent = None

    def progress(self, n: int = 6) -> None:
        """Let the collector store n more messages: we are mid-stream."""
        start = self.stored()
        self.wait(lambda: self.stored() >= start + n, f"{n} more messages stored")

    def queue_up(self, n: int = 6) -> None:
        """With the broker away, let the agent's outbox grow by n messages."""
        start = self.outbox_depth()
        self.wait(lambda: self.outbox_depth() >= start + n, f"outbox +{n} while the broker is away")


@pytest.fixture
def rig(tmp_path, uid, db_url) -> Iterator[Rig]:
    """On each engine: SQLite, then PostgreSQL."""
    broker = start_persistent_broker(tmp_path / "broker")
    plant, _ = configure(tmp_path, broker.port, uid, db_url)
    gateway = yaml.safe_load((tmp_path / "gateway.yaml").read_text())
    for d in gateway["devices"]:
        d["interval_s"] = 0.1  # ~30 messages/s in all: plenty in flight at every kill
    (tmp_path / "gateway.yaml").write_text(yaml.safe_dump(gateway, allow_unicode=True))
    sim = metertrace(
        ["sim", "run", "-c", str(tmp_path / "scenario.yaml"), "--ready-file", str(tmp_path / "r")],
        tmp_path / "sim.log",
    )
    col = metertrace(
        ["collector", "serve", "-c", str(tmp_path / "collector.yaml")], tmp_path / "collector.log"
    )
    r = Rig(plant, broker)
    try:
        wait_for(lambda: (tmp_path / "r").exists(), timeout=20, what="simulator listening")
        wait_for(
            lambda: (try_get_json(f"{plant.api}/health") or {}).get("mqtt_connected"),
            timeout=30,
            what="collector subscribed",
        )
        yield r
    finally:
        if r.agent is not None:
            stop(r.agent)
        stop(col)
        stop(sim)
        if broker.process.poll() is None:
            broker.stop()


def test_kill_9_and_broker_restarts_leave_every_sequence_number_exactly_once(rig):
    def kill_agent_mid_stream() -> None:
        rig.progress()
        rig.kill_agent()
        rig.start_agent()

    def restart_broker_mid_stream() -> None:
        rig.progress()
        rig.broker.stop()  # SIGTERM: Mosquitto saves sessions and queued messages
        rig.queue_up()
        rig.broker.start()

    def kill_agent_while_broker_is_down() -> None:
        rig.progress()
        rig.broker.stop()
        rig.queue_up(3)
        rig.kill_agent()
        rig.start_agent()  # starts with a full outbox and no broker
        rig.queue_up()
        rig.broker.start()

    actions = [kill_agent_mid_stream, restart_broker_mid_stream, kill_agent_while_broker_is_down]
    plan = [actions[i % len(actions)] for i in range(ROUNDS)]
    random.Random(SEED).shuffle(plan)

    rig.start_agent()
    for action in plan:
        action()
    rig.progress()

    # final drain: stop, then one more cycle per device that waits for every acknowledgement
    assert rig.agent is not None
    stop(rig.agent)
    rig.start_agent("--cycles", "1")
    assert rig.agent is not None
    assert rig.agent.wait(60) == 0, tail(rig.log())
    rig.agent = None
    assert rig.outbox_depth() == 0
    with sqlite3.connect(rig.state_db) as db:
        last = dict(db.execute("SELECT device, seq FROM chain").fetchall())
    assert set(last) == set(DEVICES)

    api = rig.plant.api
    total = sum(last.values())
    wait_for(lambda: rig.stored() == total, timeout=30, what=f"{total} messages at the collector")
    for device, n in last.items():
        quantity = COUNTER[device]
        rows = get_json(f"{api}/readings?device={device}&quantity={quantity}&limit=100000")
        seqs = sorted(r["seq"] for r in rows)
        assert seqs == list(range(1, n + 1)), f"{device}: gaps or duplicates in 1..{n}"
        assert get_json(f"{api}/gaps?device={device}") == []
    devices = {d["id"]: d for d in get_json(f"{api}/devices")}
    assert {d: devices[d]["messages"] for d in last} == last
    health = get_json(f"{api}/health")
    assert health["quarantined"] == {}, "no conflict, no refused message"
    assert health["events"] == 0, "nothing was dropped"
