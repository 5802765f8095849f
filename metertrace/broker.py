"""Local MQTT brokers for the demo and the tests: Mosquitto, or amqtt when Mosquitto is absent."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

BrokerKind = Literal["auto", "mosquitto", "amqtt"]

INSTALL_HINT = (
    "install Mosquitto (Debian/Ubuntu: apt-get install mosquitto; macOS: brew install "
    "mosquitto), or pip install amqtt for a pure-Python broker good enough for a demo"
)


class BrokerUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class BrokerPlan:
    argv: list[str]
    banner: str
    protocol: Literal["5", "3.1.1"]  # what the agent and collector must speak to it


def find_mosquitto() -> str | None:
    # Debian installs it in /usr/sbin, which is often not on a normal user's PATH.
    return shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")


def mosquitto_conf(port: int, host: str = "127.0.0.1", extra: str = "") -> str:
    return (
        f"listener {port} {host}\n"
        "allow_anonymous true\n"
        "persistence false\n"
        # The default of 1000 silently drops a slow QoS 1 subscriber's backlog.
        "max_queued_messages 1000000\n"
        "log_dest stdout\n" + extra
    )


def _amqtt_conf(port: int, host: str) -> str:
    return (
        "listeners:\n  default:\n    type: tcp\n"
        f"    bind: {host}:{port}\n"
        "plugins:\n  amqtt.plugins.authentication.AnonymousAuthPlugin:\n    allow_anonymous: true\n"
    )


def plan_broker(kind: BrokerKind, workdir: Path, port: int, host: str = "127.0.0.1") -> BrokerPlan:
    mosquitto = find_mosquitto() if kind in ("auto", "mosquitto") else None
    if mosquitto:
        conf = workdir / "mosquitto.conf"
        conf.write_text(mosquitto_conf(port, host))
        return BrokerPlan(
            [mosquitto, "-c", str(conf)], f"broker: Mosquitto ({mosquitto}) on {host}:{port}", "5"
        )
    if kind == "mosquitto":
        raise BrokerUnavailable(f"Mosquitto not found on PATH or in /usr/sbin: {INSTALL_HINT}")
    if importlib.util.find_spec("amqtt") is None:
        raise BrokerUnavailable(f"no MQTT broker available: {INSTALL_HINT}")
    conf = workdir / "amqtt.yaml"
    conf.write_text(_amqtt_conf(port, host))
    exe = Path(sys.executable).with_name("amqtt")
    return BrokerPlan(
        [str(exe), "-c", str(conf)],
        f"broker: embedded amqtt on {host}:{port} (MQTT 3.1.1; no Mosquitto found — "
        "for production install Mosquitto)",
        "3.1.1",
    )
