"""Shared fixtures. Services are real: a Mosquitto this suite starts on a free port."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from metertrace.broker import find_mosquitto, mosquitto_conf
from tests.databases import ENGINES, Databases
from tests.helpers import free_port, port_open, wait_for

MOSQUITTO_HINT = (
    "Mosquitto is required for the integration and end-to-end tests and was not found on PATH "
    "or in /usr/sbin. Install it (Debian/Ubuntu: apt-get install mosquitto; macOS: brew install "
    "mosquitto) or run `make test`, which installs it where it can."
)


@dataclass
class Broker:
    host: str
    port: int
    process: subprocess.Popen[bytes]
    conf: Path

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)

    def start(self) -> None:
        """(Re)start on the same port, for tests that take the broker away and back."""
        self.process = _spawn(self.conf, self.conf.with_suffix(".log"))
        wait_for(lambda: port_open(self.port), timeout=10, what=f"mosquitto on {self.port}")


def _spawn(conf: Path, log: Path) -> subprocess.Popen[bytes]:
    exe = find_mosquitto()
    if exe is None:
        pytest.fail(MOSQUITTO_HINT, pytrace=False)
    return subprocess.Popen([exe, "-c", str(conf)], stdout=log.open("ab"), stderr=subprocess.STDOUT)


def start_broker(directory: Path, extra_conf: str = "") -> Broker:
    port = free_port()
    conf = directory / f"mosquitto-{port}.conf"
    conf.write_text(mosquitto_conf(port, extra=extra_conf))
    broker = Broker("127.0.0.1", port, _spawn(conf, conf.with_suffix(".log")), conf)
    wait_for(lambda: port_open(port), timeout=10, what=f"mosquitto on port {port}")
    return broker


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    b = start_broker(tmp_path_factory.mktemp("broker"))
    yield b
    if b.process.poll() is None:
        b.stop()


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Broker]:
    """A broker for one test only, for tests that stop and restart it."""
    b = start_broker(tmp_path)
    yield b
    if b.process.poll() is None:
        b.stop()


@pytest.fixture
def uid() -> str:
    """A unique suffix so tests sharing a broker never see each other's topics."""
    return uuid.uuid4().hex[:8]


@pytest.fixture(params=ENGINES)
def databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Databases]:
    """Databases of each engine in turn (the test runs once on SQLite, once on PostgreSQL)."""
    dbs = Databases(request.param, tmp_path, request.node.name[:12])
    yield dbs
    dbs.cleanup()


@pytest.fixture
def db_url(databases: Databases) -> str:
    """A fresh, empty database: a SQLite file, then a PostgreSQL database of its own."""
    return databases.new()
