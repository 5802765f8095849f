"""Three Modbus RTU meters on one simulated RS-485 line (a pty pair), one of them dead.

The real agent polls them every 0.5 s and publishes to a real broker. The two live meters must
keep their interval (the dead one may delay them by its own timeout, no more), and the
simulator, which logs every request from its side of the line, must never see a request while
a reply is due, nor two frames closer than the Modbus inter-frame gap.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.config import AgentConfig
from edge_agent.runner import Agent
from edge_agent.transports.serial_bus import LineSettings, modbus_rtu_gap_s
from metertrace.keys import create_key
from metertrace.timeutil import parse_utc
from simulators.modbus_rtu import ModbusRtuSimulator
from simulators.scenario import Scenario, SimLine, SimMeter, SimServer, build_models
from simulators.serial_line import LineRecord
from tests.helpers import wait_for
from tests.serial_pty import pty_pair

pytestmark = pytest.mark.integration

CYCLES, INTERVAL_S, TIMEOUT_S, BAUD = 8, 0.5, 0.2, 115200
GAP_S = modbus_rtu_gap_s(LineSettings(BAUD, "N"))  # 1.75 ms above 19200 baud
DEAD, LIVE = "m1", ("m2", "m3")  # the dead one is first in line every cycle
# how late a live meter's poll may start: the dead meter's timeout, the other live meter's poll
# (two requests, ~20 ms of wire time at 115200 baud) and scheduling noise
MAX_DELAY_S = TIMEOUT_S + 0.15


class Messages:
    """Every reading message the gateway publishes, as received from the broker."""

    def __init__(self, host: str, port: int, gateway: str) -> None:
        self.received: list[dict[str, Any]] = []
        self._lock, subscribed = threading.Lock(), threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2)
        topic = f"metertrace/v1/{gateway}/readings/+"
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(host, port)
        self.client.loop_start()
        assert subscribed.wait(10), f"subscribed to {topic}"

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.received.append(json.loads(msg.payload))

    def of(self, device: str) -> list[dict[str, Any]]:
        with self._lock:
            return sorted(
                (m for m in self.received if m["device"] == device), key=lambda m: m["seq"]
            )

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def agent_ts(message: dict[str, Any]) -> float:
    return parse_utc(message["ts"]).timestamp()


def agent_config(tmp_path: Path, port: str, broker: Any, gateway: str) -> AgentConfig:
    create_key(tmp_path / "gw.key")
    return AgentConfig.model_validate(
        {
            "gateway": {"id": gateway},
            "state_dir": str(tmp_path / "state"),
            "signing": {"alg": "hmac-sha256", "key_file": str(tmp_path / "gw.key")},
            "mqtt": {"host": broker.host, "port": broker.port, "client_id": f"agent-{gateway}"},
            "devices": [
                {
                    "id": f"m{unit}",
                    "profile": "eastron-sdm630",
                    "transport": {
                        **{"type": "modbus-rtu", "port": port, "baudrate": BAUD, "parity": "N"},
                        **{"unit_id": unit, "timeout_s": TIMEOUT_S},
                    },
                    "interval_s": INTERVAL_S,
                }
                for unit in (1, 2, 3)
            ],
        }
    )


def test_a_dead_meter_delays_the_others_by_its_timeout_at_most(tmp_path, broker, uid):
    gateway = f"gw-{uid}"
    meters = [SimMeter(id=f"m{u}", profile="eastron-sdm630", unit_id=u) for u in (1, 2, 3)]
    messages = Messages(broker.host, broker.port, gateway)

    async def run(agent_end: str, sim_end: str) -> tuple[Agent, list[LineRecord]]:
        server = SimServer(
            name="bus",
            protocol="modbus-rtu",
            serial_port=sim_end,
            line=SimLine(baudrate=BAUD, parity="N", wire_timing=True),
            meters=meters,
        )
        sim = ModbusRtuSimulator(server, build_models(Scenario(name="t", servers=[server])))
        await sim.start()
        sim.meters[DEAD].dead = True
        agent = Agent(agent_config(tmp_path, agent_end, broker, gateway), cycles=CYCLES)
        try:
            await asyncio.wait_for(agent.run(asyncio.Event()), 60)
        finally:
            await sim.stop()
        return agent, list(sim.log)

    try:
        with pty_pair(tmp_path) as (agent_end, sim_end):
            agent, log = asyncio.run(run(agent_end, sim_end))
        wait_for(
            lambda: all(len(messages.of(d)) == CYCLES for d in (*LIVE, DEAD)),
            timeout=10,
            what=f"{CYCLES} messages per device",
        )
    finally:
        messages.close()

    # the live meters: every cycle read, all good, none late by more than the dead one's timeout
    for device in LIVE:
        msgs = messages.of(device)
        assert all(r["quality"] == "good" for m in msgs for r in m["readings"]), device
        starts = [agent_ts(m) for m in msgs]
        offsets = [t - starts[0] - k * INTERVAL_S for k, t in enumerate(starts)]
        assert max(offsets) - min(offsets) <= MAX_DELAY_S, (device, offsets)
        assert agent.overruns[device] == 0

    # the dead meter: comm_error without numbers, one request per poll, backed off
    dead = next(p for p in agent.pollers if p.device == DEAD)
    assert all(
        r["quality"] == "comm_error" and r["value"] is None
        for m in messages.of(DEAD)
        for r in m["readings"]
    )
    asked = [r for r in log if r.target == "1"]
    assert not any(r.answered for r in asked)
    assert len(asked) == CYCLES - dead.health.skipped_polls < CYCLES, "backed off"
    assert f"no answer within {TIMEOUT_S:g} s; check unit id 1" in (dead.health.last_error or "")

    # the line, as the simulator saw it: strictly one request at a time, with the gaps
    live = sum(p.requests_per_cycle for p in agent.pollers if p.device in LIVE)
    assert len(log) == len(asked) + CYCLES * live, "as planned, no retries"
    for a, b in itertools.pairwise(log):
        if a.answered:
            assert b.start - a.end >= GAP_S - 2e-4, (a, b)
        else:  # nothing may be sent while the silent meter could still answer
            assert b.start - a.start >= TIMEOUT_S, (a, b)
