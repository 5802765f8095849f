"""One timed run of the ingest benchmark: the plain subscriber's, or the collector's.

Both runs get the same pre-signed messages from the same publisher process through the same
broker. The clock starts at the publisher's first timed publish and stops when the plain
subscriber has received the last message, or when the collector's store holds every message
(committed: the benchmark sees it from a connection of its own). Before that, warm-up
messages from a device of their own go through untimed: they show the receiver is subscribed
and warm its code paths, as in a collector that has run for a while.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import Broker
from tests.helpers import free_port, tail, try_get_json

from .ingest_clients import Client, start_publisher, start_subscriber
from .ingest_messages import GATEWAY, PROFILE, READINGS_PER_MESSAGE, WARMUP_DEVICE
from .ingest_stores import Row, Stored, Target
from .machine import process_cpu_s
from .plant import metertrace_cmd, spawn, stop

POLL_S = 0.02  # how often the store is counted while the collector ingests
START_S = 60.0  # for a process to start and connect


class CollectorFailed(RuntimeError):
    """The collector did not start, or did not store every message in the target database."""

    def __init__(self, store: str, detail: str, log: Path) -> None:
        self.store, self.detail, self.log = store, detail, log
        super().__init__(f"{store}: {detail}\nlast lines of {log}:\n{tail(log, 20)}")


@dataclass(frozen=True)
class Traffic:
    """What is published in every run, and where the publisher reads it."""

    devices: list[str]
    warmup_file: Path
    warmup: int  # messages
    messages_file: Path
    messages: int  # timed messages
    window: int  # the publisher's unacknowledged messages at most

    @property
    def readings(self) -> int:
        return self.messages * READINGS_PER_MESSAGE


@dataclass
class Timing:
    receiver: str
    readings: int
    wall_s: float  # first timed publish until the last message received / stored
    cpu_s: float  # the receiving process: the plain subscriber or the collector
    broker_cpu_s: float
    publisher_cpu_s: float
    db_cpu_s: float | None = None  # PostgreSQL's backends; SQLite is in the collector's cpu_s

    @property
    def readings_per_s(self) -> float:
        return self.readings / self.wall_s

    def as_dict(self) -> dict[str, Any]:
        busy = {
            "receiver": self.cpu_s,
            "broker": self.broker_cpu_s,
            "publisher": self.publisher_cpu_s,
        }
        if self.db_cpu_s is not None:
            busy["database"] = self.db_cpu_s
        return {
            "receiver": self.receiver,
            "readings": self.readings,
            "wall_s": round(self.wall_s, 4),
            "readings_per_s": round(self.readings_per_s, 1),
            "cpu_s": round(self.cpu_s, 3),
            "cpu_us_per_reading": round(1e6 * self.cpu_s / self.readings, 2),
            "db_cpu_us_per_reading": (
                None if self.db_cpu_s is None else round(1e6 * self.db_cpu_s / self.readings, 2)
            ),
            # CPU seconds per wall second: 1.0 = that process kept one core busy the whole run
            "busy": {k: round(v / self.wall_s, 3) for k, v in busy.items()},
        }


@contextmanager
def _publisher(
    broker: Broker, traffic: Traffic, *, tag: str, workdir: Path, timeout_s: float
) -> Iterator[Client]:
    """The publisher process, connected, its warm-up published and acknowledged."""
    pub = start_publisher(
        broker.port,
        traffic.warmup_file,
        traffic.messages_file,
        window=traffic.window,
        timeout_s=timeout_s,
        tag=tag,
        workdir=workdir,
    )
    try:
        pub.expect("ready", START_S)
        pub.send("warmup")
        pub.expect("warm", timeout_s)
        yield pub
    finally:
        pub.stop()


def subscriber_run(
    broker: Broker, traffic: Traffic, *, tag: str, workdir: Path, timeout_s: float
) -> Timing:
    """The baseline: a plain paho-mqtt subscriber receives every message (QoS 1)."""
    sub = start_subscriber(
        broker.port, traffic.warmup, traffic.messages, timeout_s=timeout_s, tag=tag, workdir=workdir
    )
    try:
        sub.expect("ready", START_S)
        with _publisher(broker, traffic, tag=tag, workdir=workdir, timeout_s=timeout_s) as pub:
            sub.expect("warm", timeout_s)
            broker0 = process_cpu_s(broker.process.pid)
            pub.send("go")
            got = sub.result(timeout_s)
            broker_cpu = process_cpu_s(broker.process.pid) - broker0
            sent = pub.result(timeout_s)
    finally:
        sub.stop()
    return Timing(
        "plain subscriber",
        traffic.readings,
        wall_s=float(got["last_at"]) - float(sent["t0"]),
        cpu_s=float(got["cpu_s"]),
        broker_cpu_s=broker_cpu,
        publisher_cpu_s=float(sent["cpu_s"]),
    )


@dataclass
class CollectorRun:
    timing: Timing
    stored: Stored
    health: dict[str, Any]  # /api/v1/health after the run


def collector_config(
    target: Target, traffic: Traffic, key_entry: dict[str, str], *, broker: Broker, tag: str
) -> dict[str, Any]:
    """A collector.yaml (as data) trusting the benchmark's gateway and its devices."""
    devices = [*traffic.devices, WARMUP_DEVICE]
    return {
        "database": target.database_config(),
        "mqtt": {
            "host": broker.host,
            "port": broker.port,
            "client_id": f"bench-collector-{tag}",
            # the broker forgets this collector when it stops: no queue kept for it in the
            # next runs
            "session_expiry_s": 0,
        },
        "api": {"host": "127.0.0.1", "port": free_port()},
        "gateways": [
            {
                "id": GATEWAY,
                **key_entry,
                "devices": [{"id": d, "profile": PROFILE} for d in devices],
            }
        ],
    }


class _Collector:
    """`metertrace collector serve` as a real process, and the store it should write."""

    def __init__(self, config: Path, target: Target, api_port: int) -> None:
        self.config, self.target = config, target
        self.log = config.with_suffix(".log")
        self.api = f"http://127.0.0.1:{api_port}/api/v1"
        self.proc = spawn(
            metertrace_cmd("--log-level", "WARNING", "collector", "serve", "-c", str(config)),
            self.log,
        )

    def fail(self, detail: str) -> CollectorFailed:
        return CollectorFailed(self.target.kind, detail, self.log)

    def health(self) -> dict[str, Any]:
        got = try_get_json(f"{self.api}/health")
        return got if isinstance(got, dict) else {}

    def alive(self) -> None:
        if self.proc.poll() is not None:
            raise self.fail(f"the collector exited with {self.proc.returncode}")

    def wait_subscribed(self) -> None:
        deadline = time.monotonic() + START_S
        while not self.health().get("mqtt_connected"):
            self.alive()
            if time.monotonic() > deadline:
                raise self.fail(f"not connected to the broker after {START_S:.0f} s")
            time.sleep(0.1)

    def wait_warm(self, warmup: int, timeout_s: float) -> None:
        """Until the warm-up is in the target; a collector that stores it elsewhere fails."""
        deadline = time.monotonic() + timeout_s
        elsewhere_since: float | None = None
        while self.target.messages() < warmup:
            self.alive()
            now = time.monotonic()
            if now > deadline:
                raise self.fail(
                    f"the warm-up ({warmup} messages) not in {self.target.describe()} after "
                    f"{timeout_s:.0f} s; the collector's health: {self.health()}"
                )
            if self.health().get("messages", 0) >= warmup:
                elsewhere_since = elsewhere_since or now
                if now - elsewhere_since > 3.0:
                    raise self.fail(self._elsewhere(warmup))
            time.sleep(0.1)

    def _elsewhere(self, warmup: int) -> str:
        default = self.config.parent / "collector.db"  # database.path's default
        where = f"; it wrote {default} (database.path's default)" if default.exists() else ""
        return (
            f"the collector stored the warm-up ({warmup} messages, says /health), but "
            f"{self.target.describe()} holds none{where}: this collector does not use "
            f"`database: {self.target.database_config()}` from its config"
        )

    def wait_stored(self, total: int, timeout_s: float) -> float:
        """Until the target holds total messages; the monotonic time it was seen."""
        deadline = time.monotonic() + timeout_s
        while True:
            n = self.target.messages()
            now = time.monotonic()
            if n >= total:
                return now
            if now > deadline:
                raise self.fail(
                    f"{self.target.describe()} holds {n} of {total} messages after "
                    f"{timeout_s:.0f} s (timeout); the collector's health: {self.health()}"
                )
            self.alive()
            time.sleep(POLL_S)


def collector_run(
    broker: Broker,
    target: Target,
    traffic: Traffic,
    expected: set[Row],
    key_entry: dict[str, str],
    *,
    tag: str,
    workdir: Path,
    timeout_s: float,
) -> CollectorRun:
    """`metertrace collector serve` ingests every message into target."""
    data = collector_config(target, traffic, key_entry, broker=broker, tag=tag)
    run_dir = workdir / f"collector-{tag}"
    run_dir.mkdir()
    config = run_dir / "collector.yaml"
    config.write_text(yaml.safe_dump(data))
    col = _Collector(config, target, int(data["api"]["port"]))
    try:
        col.wait_subscribed()
        with _publisher(broker, traffic, tag=tag, workdir=workdir, timeout_s=timeout_s) as pub:
            col.wait_warm(traffic.warmup, timeout_s)
            cpu0, broker0 = process_cpu_s(col.proc.pid), process_cpu_s(broker.process.pid)
            db0 = target.server_cpu_s()
            pub.send("go")
            end = col.wait_stored(traffic.warmup + traffic.messages, timeout_s)
            cpu = process_cpu_s(col.proc.pid) - cpu0
            broker_cpu = process_cpu_s(broker.process.pid) - broker0
            db1 = target.server_cpu_s()
            sent = pub.result(timeout_s)
        health = col.health()
    finally:
        stop(col.proc)
    timing = Timing(
        "collector",
        traffic.readings,
        wall_s=end - float(sent["t0"]),
        cpu_s=cpu,
        broker_cpu_s=broker_cpu,
        publisher_cpu_s=float(sent["cpu_s"]),
        db_cpu_s=None if db0 is None or db1 is None else db1 - db0,
    )
    return CollectorRun(timing, Stored.compare(target.rows(), expected), health)
