"""`metertrace agent check`: config validation, one poll per device, plan and values printed."""

from __future__ import annotations

import asyncio
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from device_profiles import find_profile
from edge_agent.check import check
from edge_agent.config import AgentConfig
from metertrace.signing import create_gateway_key
from simulators.modbus_tcp import ModbusTcpSimulator
from simulators.scenario import build_models, load_scenario
from tests.helpers import free_port, metertrace, stop, tail, wait_for

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "metertrace" / "examples"


def gateway_yaml(tmp: Path, sim_port: int, **override_port: int) -> Path:
    """The example gateway pointed at a simulator; override_port: device id -> another port."""
    if not (tmp / "keys" / "gw-demo.pem").exists():
        create_gateway_key("gw-demo", tmp / "keys" / "gw-demo.pem")
    data = yaml.safe_load((EXAMPLES / "gateway.yaml").read_text())
    for d in data["devices"]:
        d["transport"]["port"] = override_port.get(d["id"].replace("-", "_"), sim_port)
        d["transport"]["timeout_s"] = 0.5
    path = tmp / f"gateway-{len(list(tmp.glob('gateway-*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


def scenario_file(tmp: Path) -> Path:
    data = yaml.safe_load((EXAMPLES / "scenario.yaml").read_text())
    data["servers"][0]["port"] = free_port()
    (tmp / "scenario.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    return tmp / "scenario.yaml"


def test_check_prints_plan_and_values_and_fails_on_a_dead_device(tmp_path):
    scenario = load_scenario(scenario_file(tmp_path))

    async def run() -> tuple[bool, str, bool, str]:
        sim = ModbusTcpSimulator(scenario.servers[0], build_models(scenario))
        await sim.start()
        try:
            from metertrace.config import load_config

            config = load_config(gateway_yaml(tmp_path, sim.port), AgentConfig)
            healthy = io.StringIO()
            ok = await check(config, healthy)
            sim.meters["gas-boiler"].dead = True
            broken = io.StringIO()
            not_ok = await check(config, broken)
        finally:
            await sim.stop()
        return ok, healthy.getvalue(), not_ok, broken.getvalue()

    ok, out, not_ok, broken = asyncio.run(run())
    assert ok, out
    profile = find_profile("eastron-sdm630")
    m = re.search(r"elec-main: .*\n  request plan: (\d+) requests? per cycle for (\d+) points", out)
    assert m, out
    requests, points = int(m.group(1)), int(m.group(2))
    assert points == len(profile.points()) and requests < points
    assert len(re.findall(r"\n    FC04 address \d+ \(0x[0-9a-f]{4}\) count \d+", out)) >= requests
    for p in profile.points():
        assert re.search(
            rf"\n  {re.escape(p.quantity)} +-?[\d.e+-]+  {re.escape(p.unit)} +good ", out
        )
    assert "summary: 3 of 3 devices answered every request; 0 config problems" in out

    assert not not_ok
    assert "FAILED gas-boiler: FC03 " in broken
    assert "Modbus exception 4 (server device failure)" in broken
    assert re.search(r"\n  volume\.gas\.standard +-  Nm³ +comm_error", broken), broken


def test_check_command_exit_codes_against_the_simulator_process(tmp_path):
    scenario = scenario_file(tmp_path)
    sim = metertrace(
        ["sim", "run", "-c", str(scenario), "--ready-file", str(tmp_path / "ready")],
        tmp_path / "sim.log",
    )
    try:
        wait_for(
            lambda: (tmp_path / "ready").exists() or sim.poll() is not None,
            timeout=20,
            what="simulator ready",
        )
        assert sim.poll() is None, tail(tmp_path / "sim.log")
        port = int((tmp_path / "ready").read_text().split()[1])

        def agent_check(config: Path) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "metertrace.cli", "agent", "check", "-c", str(config)],
                capture_output=True,
                text=True,
                timeout=60,
            )

        good = agent_check(gateway_yaml(tmp_path, port))
        assert good.returncode == 0, good.stdout + good.stderr
        assert "energy.active.import" in good.stdout

        unreachable = agent_check(gateway_yaml(tmp_path, port, steam_header=free_port()))
        assert unreachable.returncode == 1, unreachable.stdout + unreachable.stderr
        assert "FAILED steam-header" in unreachable.stdout
        assert "connection refused or unreachable" in unreachable.stdout
    finally:
        stop(sim)

    bad = gateway_yaml(tmp_path, 70000)
    invalid = agent_check(bad)
    assert invalid.returncode == 2
    assert "devices[0].transport.port" in invalid.stderr and "65535" in invalid.stderr
