"""The simulated plant a benchmark runs against, and the processes that serve it.

A plant here is several Modbus TCP gateways (serial-to-TCP converters or meter concentrators),
each with up to ten meters behind it as unit ids: the shape a site with 100 meters usually has,
and the one where requests on one connection must go one at a time. Each gateway's ten meters
mix the three shipped profiles, six electricity meters to two gas and two steam meters.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from device_profiles import Kind, Profile, find_profile
from simulators.rates import Rate
from simulators.scenario import Counter, RateOf, Scenario, SimMeter, SimServer

# unit ids 1..10 behind each gateway; a smaller plant still gets all three kinds of meter
PROFILE_MIX = (
    "eastron-sdm630",
    "eastron-sdm630",
    "synthetic-gas-converter",
    "eastron-sdm630",
    "synthetic-steam-vortex",
    "eastron-sdm630",
    "eastron-sdm630",
    "synthetic-gas-converter",
    "eastron-sdm630",
    "synthetic-steam-vortex",
)
RATE = Rate(base=3600.0, amplitude=1800.0, period_s=60)


@dataclass(frozen=True, slots=True)
class Meter:
    id: str
    profile: str
    gateway: str
    unit_id: int


def layout(devices: int, per_gateway: int) -> dict[str, list[Meter]]:
    """Gateway name -> its meters, filled in order: 100 devices, 10 per gateway -> 10 gateways."""
    if devices < 1 or not 1 <= per_gateway <= 247:
        raise ValueError(f"devices ({devices}) >= 1 and 1 <= per_gateway ({per_gateway}) <= 247")
    plant: dict[str, list[Meter]] = {}
    for i in range(devices):
        gw, unit = f"gw{i // per_gateway:03d}", i % per_gateway + 1
        profile = PROFILE_MIX[(unit - 1) % len(PROFILE_MIX)]
        plant.setdefault(gw, []).append(Meter(f"{gw}-u{unit:03d}", profile, gw, unit))
    return plant


def modbus_profile(name: str, dirs: Iterable[Path] = ()) -> Profile:
    profile = find_profile(name, dirs)
    if not isinstance(profile, Profile):
        raise ValueError(f"profile {name} is not a Modbus profile; this plant is Modbus TCP")
    return profile


def _sim_meter(m: Meter) -> SimMeter:
    counters: dict[str, Counter] = {}
    gauges: dict[str, float | RateOf] = {}
    for i, p in enumerate(modbus_profile(m.profile).points()):
        if p.kind is Kind.COUNTER:
            counters[p.quantity] = Counter(initial=10_000.0 + 1000 * i, rate=RATE)
        else:
            gauges[p.quantity] = 1.1 + i
    return SimMeter(id=m.id, profile=m.profile, unit_id=m.unit_id, counters=counters, gauges=gauges)


def scenario(plant: dict[str, list[Meter]]) -> Scenario:
    """Every gateway on a free port (0): the simulator reports the ports it got."""
    return Scenario(
        name="bench",
        servers=[
            SimServer(name=gw, port=0, meters=[_sim_meter(m) for m in meters])
            for gw, meters in plant.items()
        ],
    )


def metertrace_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "metertrace.cli", *args]


def spawn(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"}
        )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass(frozen=True, slots=True)
class Simulators:
    pid: int
    ports: dict[str, int]  # gateway name -> TCP port


@contextmanager
def simulators(
    plant: dict[str, list[Meter]], workdir: Path, *, latency_ms: float = 0.0
) -> Iterator[Simulators]:
    """`metertrace sim run` in its own process, so it never shares the measured event loop.

    With latency_ms, every answer is delayed that long (benchmarks.slow_sim).
    """
    conf, ready, log = workdir / "scenario.yaml", workdir / "sim.ready", workdir / "sim.log"
    conf.write_text(yaml.safe_dump(scenario(plant).model_dump(mode="json"), allow_unicode=True))
    args = ["-c", str(conf), "--ready-file", str(ready)]
    if latency_ms:
        argv = [sys.executable, "-m", "benchmarks.slow_sim", *args, "--latency-ms", f"{latency_ms}"]
    else:
        argv = metertrace_cmd("sim", "run", *args)
    proc = spawn(argv, log)
    try:
        ports = _await_ready(proc, ready, len(plant), log)
        yield Simulators(proc.pid, ports)
    finally:
        stop(proc)


def _await_ready(
    proc: subprocess.Popen[bytes], ready: Path, servers: int, log: Path
) -> dict[str, int]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"simulator exited with {proc.returncode}:\n{log.read_text()}")
        if ready.exists():
            lines = ready.read_text().splitlines()
            if len(lines) == servers:  # the file is written in one go but may be read mid-way
                return {name: int(port) for name, port in (ln.split() for ln in lines)}
        time.sleep(0.05)
    raise RuntimeError(f"simulator not listening after 60 s; see {log}")


def gateway_config(
    plant: dict[str, list[Meter]],
    ports: dict[str, int],
    *,
    signing: str,
    key_file: Path,
    state_dir: Path,
    mqtt_port: int,
    interval_s: float,
) -> dict[str, Any]:
    """A gateway.yaml (as data) polling every meter of the plant."""
    return {
        "gateway": {"id": "gw-bench", "site": "benchmark"},
        "state_dir": str(state_dir),
        "signing": {"alg": signing, "key_file": str(key_file)},
        "mqtt": {"host": "127.0.0.1", "port": mqtt_port, "client_id": f"bench-{state_dir.name}"},
        "devices": [
            {
                "id": m.id,
                "profile": m.profile,
                "transport": {
                    "type": "modbus-tcp",
                    "host": "127.0.0.1",
                    "port": ports[m.gateway],
                    "unit_id": m.unit_id,
                    "timeout_s": 2.0,
                },
                "interval_s": interval_s,
            }
            for meters in plant.values()
            for m in meters
        ],
    }
