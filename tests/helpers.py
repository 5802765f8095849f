"""Process and wait helpers shared by the integration and end-to-end tests."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(
    condition: Callable[[], T | None], *, timeout: float, what: str, interval: float = 0.05
) -> T:
    """Poll a condition until it holds (returns a truthy value) or fail naming what was awaited."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def try_get_json(url: str) -> Any:
    try:
        return get_json(url)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def call_api(method: str, url: str, token: str, body: Any = None) -> tuple[int, Any]:
    """One JSON request with a bearer token: (status, decoded body), errors included."""
    req = urllib.request.Request(
        url,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def wait_collector(api: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Until the collector process answers /health subscribed, or fail with its log."""
    wait_for(
        lambda: (
            (try_get_json(f"{api}/health") or {}).get("mqtt_connected") or proc.poll() is not None
        ),
        timeout=30,
        what="collector up and subscribed",
    )
    assert proc.poll() is None, tail(log)


def metertrace(args: list[str], log: Path, **kw: Any) -> subprocess.Popen[bytes]:
    """Start `metertrace ARGS` as a real process, output to a log file."""
    f = open(log, "wb")  # noqa: SIM115 - the child owns it for its lifetime
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "metertrace.cli", *args],
        stdout=f,
        stderr=subprocess.STDOUT,
        env=env,
        **kw,
    )


def stop(proc: subprocess.Popen[bytes], timeout: float = 10) -> int:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return int(proc.returncode)


def tail(path: Path, n: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


@contextlib.contextmanager
def running_plant(directory: Path, api: str) -> Iterator[None]:
    """`sim run` and `collector serve` from the configs in directory, until the block ends."""
    sim = metertrace(
        [
            "sim",
            "run",
            "-c",
            str(directory / "scenario.yaml"),
            "--ready-file",
            str(directory / "sim.ready"),
        ],
        directory / "sim.log",
    )
    col = metertrace(
        ["collector", "serve", "-c", str(directory / "collector.yaml")], directory / "collector.log"
    )
    try:
        wait_for(
            lambda: (directory / "sim.ready").exists() or sim.poll() is not None,
            timeout=20,
            what="simulator listening",
        )
        assert sim.poll() is None, tail(directory / "sim.log")
        wait_collector(api, col, directory / "collector.log")
        yield
    finally:
        stop(col)
        stop(sim)
