"""Fixtures shared by the integration tests of the CLI commands that talk to the API."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import uvicorn

from tests.batch_helpers import Plant, plant
from tests.helpers import free_port, wait_for


@pytest.fixture
def served(db_url: str) -> Iterator[tuple[Plant, str]]:
    p = plant(db_url)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(p.client.app, host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=10, what="the collector API to listen")
    yield p, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
