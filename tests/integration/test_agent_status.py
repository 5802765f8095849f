"""The agent's retained status on a real broker: per-device health, outbox, online/offline."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.config import AgentConfig
from edge_agent.runner import Agent
from metertrace.config import load_config
from metertrace.keys import create_key
from metertrace.wire import status_topic
from simulators.modbus_tcp import ModbusTcpSimulator
from simulators.scenario import build_models, load_scenario
from tests.helpers import free_port, wait_for

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "metertrace" / "examples"


class StatusWatch:
    def __init__(self, host: str, port: int, topic: str, client_id: str) -> None:
        self.latest: dict[str, Any] | None = None
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_message = self._on_message
        self.client.connect(host, port)
        self.client.loop_start()

    def _on_message(self, _c, _u, msg: mqtt.MQTTMessage) -> None:
        self.latest = json.loads(msg.payload)

    def device(self, name: str) -> dict[str, Any]:
        return (self.latest or {}).get("devices", {}).get(name, {})

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class AgentThread:
    """The agent and the simulator on one event loop in a thread, as in `agent run`."""

    def __init__(self, config: AgentConfig, scenario_path: Path) -> None:
        self.agent = Agent(config)
        self.scenario = load_scenario(scenario_path)
        self.sim: ModbusTcpSimulator | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self._thread.start()
        assert self._ready.wait(10)

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        self.sim = ModbusTcpSimulator(self.scenario.servers[0], build_models(self.scenario))
        await self.sim.start()
        self._ready.set()
        try:
            await self.agent.run(self._stop)
        finally:
            await self.sim.stop()

    def stop(self) -> None:
        assert self._loop and self._stop
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        assert not self._thread.is_alive()


def test_status_reports_device_health_outbox_and_goes_offline(tmp_path, broker, uid):
    scenario = yaml.safe_load((EXAMPLES / "scenario.yaml").read_text())
    sim_port = free_port()
    scenario["servers"][0]["port"] = sim_port
    (tmp_path / "scenario.yaml").write_text(yaml.safe_dump(scenario, allow_unicode=True))
    create_key(tmp_path / "keys" / "gw.key")
    gateway = yaml.safe_load((EXAMPLES / "gateway.yaml").read_text())
    gateway["gateway"]["id"] = gw = f"gw-{uid}"
    gateway["signing"] = {"alg": "hmac-sha256", "key_file": "keys/gw.key"}
    gateway["mqtt"] = {"host": broker.host, "port": broker.port, "client_id": f"agent-{uid}"}
    gateway["status"] = {"interval_s": 1}
    for d in gateway["devices"]:
        d["transport"]["port"] = sim_port
        d["interval_s"] = 0.2
    (tmp_path / "gateway.yaml").write_text(yaml.safe_dump(gateway, allow_unicode=True))
    config = load_config(tmp_path / "gateway.yaml", AgentConfig)

    watch = StatusWatch(broker.host, broker.port, status_topic(gw), f"watch-{uid}")
    runner = AgentThread(config, tmp_path / "scenario.yaml")
    try:
        assert runner.sim is not None
        runner.sim.meters["gas-boiler"].dead = True
        wait_for(
            lambda: (
                watch.device("elec-main").get("state") == "ok"
                and watch.device("gas-boiler").get("state") == "failing"
            ),
            timeout=15,
            what="status with one device ok and one failing",
        )
        status = watch.latest
        assert status and status["state"] == "online" and status["gateway"] == gw
        elec, gas = watch.device("elec-main"), watch.device("gas-boiler")
        assert elec["last_ok"] and elec["last_error"] is None and elec["failed_requests"] == 0
        assert gas["last_ok"] is None and gas["failed_requests"] >= 1
        assert "Modbus exception 4 (server device failure)" in gas["last_error"]
        assert {"overruns", "polls", "unstored_polls"} <= set(gas)
        assert {"depth", "bytes", "oldest_age_s", "dropped", "max_bytes"} <= set(status["outbox"])
        assert status["outbox"]["max_bytes"] == 200_000_000

        runner.sim.meters["gas-boiler"].dead = False  # it comes back: published on the change
        wait_for(
            lambda: watch.device("gas-boiler").get("state") == "ok",
            timeout=15,
            what="gas-boiler back to ok in the status",
        )
        assert watch.device("gas-boiler")["last_ok"]
    finally:
        runner.stop()
    wait_for(
        lambda: (watch.latest or {}).get("state") == "offline",
        timeout=10,
        what="retained offline status",
    )
    assert watch.latest and watch.latest["outbox"]["depth"] == 0
    watch.close()
    late = StatusWatch(broker.host, broker.port, status_topic(gw), f"late-{uid}")
    wait_for(lambda: late.latest, timeout=10, what="the retained status for a late reader")
    assert late.latest and late.latest["state"] == "offline"
    late.close()
