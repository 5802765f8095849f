"""A Mosquitto that keeps sessions and queued messages across a restart.

With `persistence false` (the suite's default) a restarted broker has forgotten the collector's
subscription and every QoS 1 message it had queued for it: a message the agent saw acknowledged
(and deleted from its outbox) would be lost. Mosquitto writes its state on a clean stop
(SIGTERM, which Broker.stop() sends) and restores it at start (docs/store-and-forward.md).
"""

from __future__ import annotations

import getpass
from pathlib import Path

from tests.conftest import Broker, start_broker


def persistence_conf(directory: Path) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    # Run as root, Mosquitto drops to user `mosquitto`, which cannot write into a test's tmp dir;
    # naming the current user keeps it (and is ignored when not root).
    return f"persistence true\npersistence_location {directory}/\nuser {getpass.getuser()}\n"


def start_persistent_broker(directory: Path) -> Broker:
    return start_broker(directory, extra_conf=persistence_conf(directory / "mosquitto-data"))
