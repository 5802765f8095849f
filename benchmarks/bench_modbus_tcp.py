"""Modbus TCP benchmark: agent readings/s against raw pymodbus, requests per cycle, agent RSS.

    .venv/bin/python -m benchmarks.bench_modbus_tcp --devices 100 --cycles 20

Simulated meters run in their own process (`metertrace sim run`), Mosquitto in another; the
throughput modes run in this process, the RSS run is the real `metertrace agent run`.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pymodbus
import yaml

from edge_agent.config import AgentConfig
from metertrace.config import load_config
from metertrace.keys import create_key
from tests.conftest import start_broker

from .machine import machine
from .plant import Meter, gateway_config, layout, modbus_profile, simulators
from .report import render
from .request_count import count_requests
from .rss import idle_import_kib, measure_agent
from .throughput import Measurement, Runner, run_agent, run_agent_mqtt, run_baseline

RATIO_GOAL = 0.9
RSS_GOAL_MB = 60.0  # decimal megabytes: 57.2 MiB
MODES: dict[str, Runner] = {
    "baseline": run_baseline,
    "agent": run_agent,
    "agent_mqtt": run_agent_mqtt,
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_modbus_tcp", description=__doc__)
    p.add_argument("--devices", type=int, default=100, help="simulated meters")
    p.add_argument("--per-gateway", type=int, default=10, help="meters (unit ids) per TCP address")
    p.add_argument("--cycles", type=int, default=20, help="timed polls per device and mode")
    p.add_argument("--repeat", type=int, default=5, help="rounds of every mode; medians reported")
    p.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="delay of every meter answer; 0 = as fast as the simulator can answer (capacity)",
    )
    p.add_argument(
        "--signing",
        choices=["ed25519", "hmac-sha256"],
        default="ed25519",
        help="the agent's message signature (ed25519 is its default)",
    )
    p.add_argument("--rss-seconds", type=float, default=20.0, help="0 skips the RSS run")
    p.add_argument("--rss-interval", type=float, default=1.0, help="poll interval in the RSS run")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/modbus_tcp.json"))
    return p.parse_args(argv)


def request_table(plant: dict[str, list[Meter]]) -> dict[str, Any]:
    devices: dict[str, int] = {}
    for meters in plant.values():
        for m in meters:
            devices[m.profile] = devices.get(m.profile, 0) + 1
    rows = []
    for profile, n in sorted(devices.items()):
        rows.append({**count_requests(modbus_profile(profile)).as_dict(), "devices": n})
    cycle = {
        k: sum(int(r[k]) * int(r["devices"]) for r in rows)
        for k in ("points", "naive", "runs", "minimum", "planned")
    }
    return {"profiles": rows, "per_cycle": cycle}


def _median(runs: list[Measurement]) -> Measurement:
    return sorted(runs, key=lambda m: m.readings_per_s)[len(runs) // 2]


ConfigWriter = Callable[[str, float], AgentConfig]  # (name, poll interval) -> loaded config


def throughput(
    write_config: ConfigWriter, repeat: int, cycles: int, others: dict[str, int]
) -> dict[str, Any]:
    runs: dict[str, list[Measurement]] = {mode: [] for mode in MODES}
    for r in range(repeat):  # interleaved, so drift on the machine hits every mode alike
        for mode, runner in MODES.items():
            runs[mode].append(runner(write_config(f"{mode}-{r}", 1.0), cycles, others))
    med = {mode: _median(ms) for mode, ms in runs.items()}
    base = med["baseline"].readings_per_s
    return {
        "median": {mode: m.as_dict() for mode, m in med.items()},
        "ratio": {
            mode: round(med[mode].readings_per_s / base, 3) for mode in ("agent", "agent_mqtt")
        },
        "paired_ratios": {
            mode: [
                round(a.readings_per_s / b.readings_per_s, 3)
                for a, b in zip(runs[mode], runs["baseline"], strict=True)
            ]
            for mode in ("agent", "agent_mqtt")
        },
        "runs": {mode: [m.as_dict() for m in ms] for mode, ms in runs.items()},
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    plant = layout(args.devices, args.per_gateway)
    with (
        tempfile.TemporaryDirectory(prefix="bench-modbus-tcp-") as tmp_name,
        simulators(plant, Path(tmp_name), latency_ms=args.latency_ms) as sims,
    ):
        tmp = Path(tmp_name)
        broker = start_broker(tmp)
        try:
            if args.signing == "hmac-sha256":
                key = tmp / "gw-bench.key"
                create_key(key)
            else:
                key = tmp / "gw-bench.pem"  # the first agent creates it, like on a new gateway

            def write_config(name: str, interval_s: float) -> AgentConfig:
                path = tmp / f"{name}.yaml"
                data = gateway_config(
                    plant,
                    sims.ports,
                    signing=args.signing,
                    key_file=key,
                    state_dir=tmp / name,
                    mqtt_port=broker.port,
                    interval_s=interval_s,
                )
                path.write_text(yaml.safe_dump(data))
                return load_config(path, AgentConfig)

            others = {"simulator": sims.pid, "mosquitto": broker.process.pid}
            result: dict[str, Any] = {
                "requests": request_table(plant),
                "throughput": throughput(write_config, args.repeat, args.cycles, others),
            }
            if args.rss_seconds > 0:
                write_config("rss", args.rss_interval)
                rss = measure_agent(
                    tmp / "rss.yaml", tmp / "rss", args.devices, seconds=args.rss_seconds
                )
                result["rss"] = {
                    **rss.as_dict(),
                    "interval_s": args.rss_interval,
                    "idle_import_edge_agent_runner_mib": round(
                        idle_import_kib("edge_agent.runner") / 1024, 1
                    ),
                    "idle_interpreter_mib": round(idle_import_kib("sys") / 1024, 1),
                }
        finally:
            broker.stop()
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    plant = layout(args.devices, args.per_gateway)
    result: dict[str, Any] = {
        "command": shlex.join(
            [os.path.relpath(sys.executable), "-m", "benchmarks.bench_modbus_tcp", *argv]
        ),
        "machine": machine(pymodbus=pymodbus.__version__),
        "setup": {
            "devices": args.devices,
            "gateways": len(plant),
            "per_gateway": args.per_gateway,
            "cycles": args.cycles,
            "repeat": args.repeat,
            "latency_ms": args.latency_ms,
            "signing": args.signing,
        },
        **run(args),
    }
    print(render(result, ratio_goal=RATIO_GOAL, rss_goal_mb=RSS_GOAL_MB))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"written: {args.out}")
    return result


if __name__ == "__main__":
    main()
