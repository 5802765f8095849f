"""The benchmarks at a tiny size: they run end to end and report what they claim.

Structure and counts only, never timing: figures on a shared CI machine mean nothing.
"""

from __future__ import annotations

import json

import pytest

from benchmarks import bench_ingest, bench_modbus_tcp
from benchmarks.request_count import minimum_requests
from device_profiles import find_profile
from tests.databases import ENGINES, PG_ADMIN_URL

DEVICES, CYCLES = 5, 2
# unit ids 1..5 of the first gateway: SDM630, SDM630, gas converter, SDM630, steam vortex
VALUES_PER_CYCLE = 3 * 17 + 6 + 5


@pytest.mark.integration
def test_benchmark_runs_and_reports_every_figure(tmp_path, capsys):
    out = tmp_path / "result.json"
    result = bench_modbus_tcp.main(
        [
            *("--devices", str(DEVICES), "--cycles", str(CYCLES), "--repeat", "1"),
            *("--rss-seconds", "1", "--rss-interval", "0.5", "--out", str(out)),
        ]
    )

    assert json.loads(out.read_text()) == result
    printed = capsys.readouterr().out
    assert "command: " in printed and "--devices 5" in result["command"]

    requests = result["requests"]
    assert requests["per_cycle"]["points"] == VALUES_PER_CYCLE
    assert requests["per_cycle"]["naive"] == VALUES_PER_CYCLE
    for row in requests["profiles"]:
        assert row["runs"] <= row["minimum"] <= row["planned"] <= row["naive"], row
    assert sum(r["devices"] for r in requests["profiles"]) == DEVICES

    t = result["throughput"]
    assert set(t["median"]) == {"baseline", "agent", "agent_mqtt"}
    for mode, row in t["median"].items():
        # every value read in every timed cycle, none failed: the modes did the same work
        assert row["readings"] == CYCLES * VALUES_PER_CYCLE, mode
        assert row["requests"] == CYCLES * requests["per_cycle"]["planned"], mode
        assert row["missing"] == 0 and row["readings_per_s"] > 0, mode
    assert set(t["ratio"]) == {"agent", "agent_mqtt"}
    assert all(r > 0 for r in t["ratio"].values())

    rss = result["rss"]
    assert rss["exit_code"] == 0
    assert rss["min_cycles_per_device"] >= 1 and rss["messages"] >= DEVICES
    assert 0 < rss["idle_interpreter_mib"] < rss["idle_import_edge_agent_runner_mib"]
    assert rss["idle_interpreter_mib"] < rss["steady_mib"] <= rss["peak_mib"]


@pytest.mark.integration
@pytest.mark.parametrize("store", ENGINES)
def test_ingest_benchmark_stores_every_reading_once(store, tmp_path, capsys):
    # 5 devices x 20 messages x 10 readings, after 2 warm-up messages of 10 readings
    out = tmp_path / "ingest.json"
    result = bench_ingest.main(
        [
            *("--devices", "5", "--messages", "20", "--warmup", "2", "--repeat", "1"),
            *("--store", store, "--pg-url", PG_ADMIN_URL, "--out", str(out)),
        ]
    )

    assert json.loads(out.read_text()) == result
    printed = capsys.readouterr().out
    assert f"--store {store}" in result["command"] and "command: " in printed
    r = result["stores"][store]
    assert r["ok"], r.get("error")
    assert result["setup"]["readings"] == r["readings"] == 1000
    (one,) = r["rounds"]
    assert one["stored"] == {
        "readings": 1020,
        "missing": 0,
        "extra": 0,
        "duplicated": 0,
        "exactly_once": True,
    }
    assert one["health"] == {"messages": 102, "readings": 1020, "duplicates": 0, "quarantined": {}}
    for figure in ("collector_readings_per_s", "subscriber_readings_per_s", "ratio"):
        assert r[figure] > 0, figure
    assert r["collector_cpu_us_per_reading"] > 0
    assert (r["db_cpu_us_per_reading"] is None) == (store == "sqlite")


@pytest.mark.unit
@pytest.mark.parametrize(
    ("max_block", "max_gap", "expected"),
    [
        (80, 40, 2),  # the SDM630 as shipped: 0x00-0x4F in one read, 0x156 in another
        (125, 124, 2),  # 0x50 to 0x156 is a gap of 262 registers: never one read
        (2, 0, 17),  # room for one float32 per read: one request per value
        (80, 0, 5),  # no gap readable: the runs 0x00-0x11, 0x34, 0x3E, 0x46-0x4F, 0x156
        (4, 40, 11),  # two float32 per read: 5 reads for 0x00-0x11, then 1+1+2+1+1
    ],
)
def test_minimum_requests_of_the_sdm630(max_block, max_gap, expected):
    points = find_profile("eastron-sdm630").points()
    assert minimum_requests(points, max_block=max_block, max_gap=max_gap) == expected
