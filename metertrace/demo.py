"""`metertrace demo`: simulated meters, a broker, the collector and the edge agent on one machine,
each a real process with its own log, and a live table of what arrives at the collector."""

from __future__ import annotations

import contextlib
import importlib.resources
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import yaml

from .broker import BrokerKind, BrokerUnavailable, plan_broker
from .signing import create_gateway_key

HOST = "127.0.0.1"
KEY_FILE = "keys/gw-demo.pem"
REFRESH_S = 2.0
STOP_TIMEOUT_S = 10.0
CLEAR_SCREEN = "\x1b[2J\x1b[H"
DEMO_DEVICE = "elec-main"


class DemoError(Exception):
    """A start step failed; the message says what to do about it."""


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log: Path


@dataclass
class Children:
    """The demo's processes in start order, so they can be stopped in reverse."""

    pid_file: Path
    started: list[Child] = field(default_factory=list)

    def add(self, child: Child) -> None:
        self.started.append(child)
        # Written after every start so a caller can still find the processes if a later step fails.
        self.pid_file.write_text("".join(f"{c.process.pid}\n" for c in self.started))

    def check_alive(self) -> None:
        for c in self.started:
            if c.process.poll() is not None:
                raise DemoError(
                    f"{c.name} exited with code {c.process.returncode}; "
                    f"last lines of {c.log}:\n{tail(c.log)}"
                )

    def stop_all(self) -> bool:
        """SIGTERM each, newest first; True if none needed SIGKILL."""
        clean = True
        for c in reversed(self.started):
            if c.process.poll() is None:
                c.process.terminate()
                try:
                    c.process.wait(STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    print(f"{c.name} did not stop within {STOP_TIMEOUT_S:.0f} s: killing it")
                    c.process.kill()
                    c.process.wait()
                    clean = False
        return clean


# --- ports and configs ---------------------------------------------------------------------
def free_ports(count: int, *, reserved: int) -> list[int]:
    """Ports the kernel hands out as free. All are held open together (with `reserved`) so none
    is handed out twice; a tiny race with other programs remains until the children bind."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(bind_port(reserved))
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in socks:
            s.bind((HOST, 0))
        return [int(s.getsockname()[1]) for s in socks]


@contextlib.contextmanager
def bind_port(port: int) -> Iterator[socket.socket]:
    with socket.socket() as s:
        # As uvicorn does, so a socket in TIME_WAIT from a previous run does not count as in use.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            raise DemoError(
                f"port {port} is in use: stop what uses it or pass --api-port"
            ) from None
        yield s


def port_open(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.2):
            return True
    except OSError:
        return False


def load_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path}: expected a mapping"
    return data


def dump_yaml(path: Path, data: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")


def write_configs(
    workdir: Path, *, broker_port: int, sim_port: int, api_port: int, protocol: str
) -> None:
    """Fresh copies of the packaged examples on every run: the ports differ each time."""
    examples = importlib.resources.files("metertrace") / "examples"
    configs: dict[str, dict[str, Any]] = {}
    for name in ("scenario.yaml", "gateway.yaml", "collector.yaml"):
        (workdir / name).write_text((examples / name).read_text(encoding="utf-8"), encoding="utf-8")
        configs[name] = load_yaml(workdir / name)
    configs["scenario.yaml"]["servers"][0]["port"] = sim_port
    for device in configs["gateway.yaml"]["devices"]:
        if "port" in device.get("transport", {}):
            device["transport"]["port"] = sim_port
    for name in ("gateway.yaml", "collector.yaml"):
        configs[name]["mqtt"].update(port=broker_port, protocol=protocol)
    configs["collector.yaml"]["api"]["port"] = api_port
    for name, data in configs.items():
        dump_yaml(workdir / name, data)
    if not (workdir / KEY_FILE).exists():
        create_gateway_key("gw-demo", workdir / KEY_FILE)


# --- processes -----------------------------------------------------------------------------
def tail(log: Path, lines: int = 20) -> str:
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def start_process(children: Children, name: str, argv: list[str], logs: Path) -> Child:
    log = logs / f"{name}.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            argv,
            cwd=children.pid_file.parent,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            # Out of the terminal's process group: Ctrl-C reaches only the demo, which then stops
            # the children in order (agent before broker) instead of all at once.
            process_group=0,
        )
    child = Child(name, process, log)
    children.add(child)
    return child


def metertrace_cmd(*args: str) -> list[str]:
    # The same interpreter, so the children use the environment the demo runs in.
    return [sys.executable, "-m", "metertrace.cli", *args]


def wait_until(
    condition: Callable[[], bool], *, timeout: float, what: str, child: Child, children: Children
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        children.check_alive()
        if time.monotonic() > deadline:
            raise DemoError(
                f"timed out after {timeout:.0f} s waiting for {what}; "
                f"last lines of {child.log}:\n{tail(child.log)}"
            )
        time.sleep(0.1)


def health_ok(api_port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{api_port}/api/v1/health", timeout=1) as r:
            return bool(r.status == 200)
    except (OSError, ValueError):
        return False


def start_all(children: Children, workdir: Path, api_port: int, broker_kind: BrokerKind) -> str:
    """Start everything in dependency order; returns the broker banner for the live header."""
    logs = workdir / "logs"
    logs.mkdir(exist_ok=True)
    broker_port, sim_port = free_ports(2, reserved=api_port)
    try:
        plan = plan_broker(broker_kind, workdir, broker_port, HOST)
    except BrokerUnavailable as exc:
        raise DemoError(str(exc)) from None
    write_configs(
        workdir,
        broker_port=broker_port,
        sim_port=sim_port,
        api_port=api_port,
        protocol=plan.protocol,
    )
    print(plan.banner, flush=True)
    banner = plan.banner
    broker = start_process(children, "broker", plan.argv, logs)

    ready = workdir / "sim.ready"
    ready.unlink(missing_ok=True)
    sim = start_process(
        children,
        "simulator",
        metertrace_cmd("sim", "run", "-c", "scenario.yaml", "--ready-file", str(ready)),
        logs,
    )
    wait_until(ready.exists, timeout=30, what="the simulated meters", child=sim, children=children)
    print(f"simulator: 3 meters on Modbus TCP {HOST}:{sim_port}", flush=True)

    wait_until(
        lambda: port_open(broker_port),
        timeout=15,
        what=f"the broker on port {broker_port}",
        child=broker,
        children=children,
    )
    collector = start_process(
        children, "collector", metertrace_cmd("collector", "serve", "-c", "collector.yaml"), logs
    )
    wait_until(
        lambda: health_ok(api_port),
        timeout=60,
        what="the collector's API",
        child=collector,
        children=children,
    )
    print(f"collector: HTTP API on {HOST}:{api_port}", flush=True)
    start_process(children, "agent", metertrace_cmd("agent", "run", "-c", "gateway.yaml"), logs)
    print("agent: polling the meters and publishing signed readings", flush=True)
    return banner


# --- the live table --------------------------------------------------------------------------
def get_json(api_port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://{HOST}:{api_port}{path}", timeout=5) as r:
        return json.loads(r.read())


def format_value(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def render_table(devices: list[dict[str, Any]], latest: dict[str, list[dict[str, Any]]]) -> str:
    lines: list[str] = []
    for device in devices:
        readings = latest.get(device["id"], [])
        if not readings:
            lines += [f"{device['id']}  (no readings yet)", ""]
            continue
        first = readings[0]
        lines.append(f"{device['id']}  seq {first['seq']}  {first['ts']}")
        for r in readings:
            lines.append(
                f"  {r['quantity']:<28} {format_value(r['value']):>16} {r['unit']:<8} "
                f"{r['quality']}"
            )
        lines.append("")
    return "\n".join(lines)


def header(workdir: Path, api_port: int, broker: str) -> str:
    base = f"http://{HOST}:{api_port}"
    return (
        f"{broker}\n"
        f"readings: {base}/api/v1/readings?device={DEMO_DEVICE}\n"
        f"API docs: {base}/docs\n"
        f"logs:     {workdir / 'logs'}\n"
        "Ctrl-C stops everything\n"
    )


def snapshot(api_port: int) -> str:
    try:
        devices: list[dict[str, Any]] = get_json(api_port, "/api/v1/devices")
        latest = {
            d["id"]: get_json(api_port, f"/api/v1/readings/latest?device={d['id']}")
            for d in devices
        }
    except (OSError, ValueError) as exc:
        # A slow answer under load is no reason to stop the demo; a dead collector is caught
        # by the liveness check instead.
        return f"(collector did not answer: {exc})"
    return render_table(devices, latest)


def show_live_table(children: Children, workdir: Path, api_port: int, broker: str) -> None:
    tty = sys.stdout.isatty()
    top = header(workdir, api_port, broker)
    while True:
        children.check_alive()
        table = snapshot(api_port)
        stamp = time.strftime("%H:%M:%S")
        print(f"{CLEAR_SCREEN if tty else ''}{top}\n{stamp}\n{table}", flush=True)
        time.sleep(REFRESH_S)


# --- entry point ---------------------------------------------------------------------------
def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def signals_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP stop the demo the way Ctrl-C does, so the children are stopped too."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextlib.contextmanager
def signals_ignored() -> Iterator[None]:
    # A second Ctrl-C while stopping must not leave children behind.
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    sigs = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in sigs}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def run_demo(workdir: Path, *, api_port: int = 8080, broker: BrokerKind = "auto") -> None:
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    children = Children(workdir / "pids")
    failure: DemoError | None = None
    with signals_interrupt():
        try:
            banner = start_all(children, workdir, api_port, broker)
            show_live_table(children, workdir, api_port, banner)
        except KeyboardInterrupt:
            pass
        except DemoError as exc:
            failure = exc
        finally:
            if children.started:
                with signals_ignored():
                    print("\nstopping ...", flush=True)
                    clean = children.stop_all()
                    print("stopped cleanly" if clean else "stopped (some had to be killed)")
    if failure is not None:
        raise SystemExit(f"metertrace demo: error: {failure}")
