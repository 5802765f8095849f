"""`metertrace demo` as a user runs it: readings of all three meters arrive within 30 s, and
Ctrl-C leaves no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

import pytest

from metertrace.broker import find_mosquitto
from tests.conftest import MOSQUITTO_HINT
from tests.helpers import free_port, try_get_json, wait_for

pytestmark = pytest.mark.integration

DEVICES = ("elec-main", "gas-boiler", "steam-header")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def pids(workdir: Path) -> list[int]:
    pid_file = workdir / "pids"
    return [int(p) for p in pid_file.read_text().split()] if pid_file.exists() else []


def drain(stream: IO[str], out: list[str]) -> None:
    # The table is printed every 2 s; unread, it would fill the pipe and block the demo.
    out.extend(stream)


@pytest.mark.parametrize(
    ("broker", "banner"), [("mosquitto", "broker: Mosquitto"), ("amqtt", "broker: embedded amqtt")]
)
def test_demo_shows_all_meters_and_stops_cleanly(tmp_path: Path, broker: str, banner: str) -> None:
    if broker == "mosquitto" and find_mosquitto() is None:
        pytest.fail(MOSQUITTO_HINT, pytrace=False)
    port = free_port()
    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "metertrace.cli",
            "demo",
            "--workdir",
            str(tmp_path),
            "--api-port",
            str(port),
            "--broker",
            broker,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    output: list[str] = []
    reader = threading.Thread(target=drain, args=(demo.stdout, output), daemon=True)
    reader.start()

    def good_readings(device: str) -> bool:
        rows = try_get_json(f"http://127.0.0.1:{port}/api/v1/readings?device={device}")
        return bool(rows) and any(r["quality"] == "good" for r in rows)

    def all_meters() -> bool:
        assert demo.poll() is None, "demo exited early:\n" + "".join(output)
        return all(good_readings(d) for d in DEVICES)

    try:
        wait_for(all_meters, timeout=30, what="good readings of all three meters", interval=0.5)

        demo.send_signal(signal.SIGINT)
        assert demo.wait(20) == 0, "".join(output)
    finally:
        if demo.poll() is None:
            # Let the demo stop its children itself; SIGKILL on it alone would orphan them.
            demo.send_signal(signal.SIGINT)
            try:
                demo.wait(40)
            except subprocess.TimeoutExpired:
                demo.kill()
                demo.wait()
                for pid in filter(alive, pids(tmp_path)):
                    os.kill(pid, signal.SIGKILL)
        reader.join(5)

    text = "".join(output)
    assert banner in text
    assert "Ctrl-C stops everything" in text
    assert "stopped cleanly" in text
    children = pids(tmp_path)
    assert len(children) == 4  # broker, simulator, collector, agent
    assert [p for p in children if alive(p)] == []
