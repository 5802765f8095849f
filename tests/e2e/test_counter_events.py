"""Counter discontinuities through the whole chain, as real processes.

The agent polls a plant, stops; while it is down the gas converter's u32 total rolls over and
the steam meter is reset to 0 (the simulator comes back with those counters low, the others
continuing). The agent restarts from the trusted values it stored, so the collector ends up
with a wrap event (reading good, consumption known) and a backward step followed by a reset
(readings out_of_range, then counter_reset): never a good reading that went backwards.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.test_chain import configure
from tests.helpers import get_json, metertrace, stop, tail, wait_collector, wait_for

pytestmark = pytest.mark.e2e

GAS, STEAM = "volume.gas.standard", "mass.steam"
WRAP = 2**32 * 0.01  # the converter's u32 total of 0.01 Nm³ shows this as 0 again
BEFORE, AFTER = 3, 4  # agent cycles before and after the restart


def write_scenario(path: Path, scenario: dict[str, Any], gas: float, steam: float) -> None:
    meters = {m["id"]: m for m in scenario["servers"][0]["meters"]}
    meters["gas-boiler"]["counters"][GAS] = {"initial": gas, "rate": {"base": 36.0}}
    meters["steam-header"]["counters"][STEAM] = {"initial": steam, "rate": {"base": 6.5}}
    scenario["servers"][0]["meters"] = [meters["gas-boiler"], meters["steam-header"]]
    path.write_text(yaml.safe_dump(scenario, allow_unicode=True))


def start_sim(tmp: Path) -> Any:
    ready = tmp / "sim.ready"
    ready.unlink(missing_ok=True)
    sim = metertrace(
        ["sim", "run", "-c", str(tmp / "scenario.yaml"), "--ready-file", str(ready)],
        tmp / "sim.log",
    )
    wait_for(lambda: ready.exists() or sim.poll() is not None, timeout=20, what="simulator")
    assert sim.poll() is None, tail(tmp / "sim.log")
    return sim


def run_agent(tmp: Path, cycles: int) -> None:
    agent = metertrace(
        ["agent", "run", "-c", str(tmp / "gateway.yaml"), "--cycles", str(cycles)],
        tmp / "agent.log",
    )
    assert agent.wait(60) == 0, tail(tmp / "agent.log")


def test_wrap_and_reset_while_the_agent_was_down_become_events(tmp_path, broker, uid):
    plant, _ = configure(tmp_path, broker.port, uid)
    scenario = yaml.safe_load((tmp_path / "scenario.yaml").read_text())
    gateway = yaml.safe_load((tmp_path / "gateway.yaml").read_text())
    gateway["devices"] = [
        d for d in gateway["devices"] if d["id"] in ("gas-boiler", "steam-header")
    ]
    (tmp_path / "gateway.yaml").write_text(yaml.safe_dump(gateway, allow_unicode=True))
    # 1 Nm³ below the rollover, 0.01 Nm³/s: it stays below it for ~100 s
    write_scenario(tmp_path / "scenario.yaml", scenario, gas=WRAP - 1.0, steam=12045.5)

    col = metertrace(
        ["collector", "serve", "-c", str(tmp_path / "collector.yaml")], tmp_path / "collector.log"
    )
    sim = start_sim(tmp_path)
    try:
        wait_collector(plant.api, col, tmp_path / "collector.log")
        run_agent(tmp_path, BEFORE)
        stop(sim)
        # same epoch: the other counters continue; these two come back low
        write_scenario(tmp_path / "scenario.yaml", scenario, gas=0.0, steam=0.0)
        sim = start_sim(tmp_path)
        run_agent(tmp_path, AFTER)
        expected = 2 * (BEFORE + AFTER)
        wait_for(
            lambda: get_json(f"{plant.api}/health")["messages"] == expected,
            timeout=30,
            what=f"{expected} messages at the collector",
        )
        wait_for(
            lambda: get_json(f"{plant.api}/health")["events"] == 3,
            timeout=30,
            what="the wrap, backward step and reset events at the collector",
        )

        gas = get_json(f"{plant.api}/readings?device=gas-boiler&quantity={GAS}")
        assert [r["quality"] for r in gas] == ["good"] * (BEFORE + AFTER)
        (wrap,) = get_json(f"{plant.api}/events?device=gas-boiler")
        c = wrap["counter"]
        assert wrap["event"] == "counter" and wrap["reason"] is None and c["kind"] == "wrap"
        assert (c["before"], c["after"]) == (gas[BEFORE - 1]["value"], gas[BEFORE]["value"])
        assert c["wrap"] == pytest.approx(WRAP)
        assert c["consumption"] == pytest.approx(WRAP - c["before"] + c["after"], abs=1e-6)
        assert 0 < c["consumption"] < 2.0 and c["reading_ts"] == gas[BEFORE]["ts"]

        steam = get_json(f"{plant.api}/readings?device=steam-header&quantity={STEAM}")
        assert [r["quality"] for r in steam] == ["good"] * BEFORE + [
            "out_of_range",
            "out_of_range",
            "counter_reset",
            "good",
        ]
        step, reset = (e["counter"] for e in get_json(f"{plant.api}/events?device=steam-header"))
        assert (step["kind"], reset["kind"]) == ("backward_step", "reset")
        assert step["before"] == reset["before"] == steam[BEFORE - 1]["value"]
        assert step["after"] == reset["after"] == steam[BEFORE]["value"] < 1.0
        assert step["consumption"] is None
        assert reset["consumption"] == pytest.approx(
            steam[BEFORE + 2]["value"] - steam[BEFORE]["value"]
        )
        for rows in (gas, steam):  # what a consumption computation may use never goes back
            usable = [r for r in rows if r["quality"] in ("good", "counter_reset")]
            for prev, cur in itertools.pairwise(usable):
                explained = cur["quality"] == "counter_reset" or cur["ts"] == c["reading_ts"]
                assert cur["value"] >= prev["value"] or explained, (prev, cur)
        health = get_json(f"{plant.api}/health")
        assert health["quarantined"] == {} and health["reported_lost"] == 0
    finally:
        stop(sim)
        stop(col)
