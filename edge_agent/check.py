"""`metertrace agent check -c gateway.yaml`: is this gateway ready to run?

Validates what the schema alone cannot (profiles, key file), polls every device once without
MQTT, and prints per device the request plan and a table of decoded values with unit and
quality. Returns False, and the command exits non-zero, if any device or check failed.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from device_profiles import ProfileError, find_profile
from metertrace.keys import KeyFileError, read_key
from metertrace.signing import SigningKeyError, load_or_create_ed25519
from metertrace.wire import Quality

from .config import AgentConfig, DeviceSettings
from .poller import DevicePoller
from .runner import build_pollers
from .transports.factory import TransportFactory


@dataclass
class DeviceResult:
    poller: DevicePoller
    settings: DeviceSettings
    readings: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        failed = any(r["quality"] == Quality.COMM_ERROR.value for r in self.readings)
        return bool(self.readings) and not failed and not self.errors


def config_problems(config: AgentConfig) -> tuple[list[str], list[DeviceSettings]]:
    """Problems named by their YAML path with the fix, and the devices that can be polled."""
    problems: list[str] = []
    key_file = config.signing.key_file
    try:
        if config.signing.alg == "hmac-sha256":
            read_key(key_file)
        elif key_file.exists():
            load_or_create_ed25519(config.gateway.id, key_file)
        elif not os.access(key_file.parent if key_file.parent.exists() else Path("."), os.W_OK):
            problems.append(f"signing.key_file: {key_file} is missing and cannot be created here")
    except (KeyFileError, SigningKeyError) as exc:
        problems.append(f"signing.key_file: {exc}")
    usable = []
    for i, d in enumerate(config.devices):
        try:
            find_profile(d.profile, config.profile_dirs)
        except (ProfileError, ValueError) as exc:
            problems.append(
                f"devices[{i}].profile: {exc} (fix the name, or add its folder to profile_dirs)"
            )
            continue
        usable.append(d)
    return problems, usable


async def check(config: AgentConfig, out: TextIO) -> bool:
    problems, usable = config_problems(config)
    print(
        f"config: gateway {config.gateway.id}, {len(config.devices)} devices, "
        f"MQTT {config.mqtt.host}:{config.mqtt.port} (not contacted by this check)",
        file=out,
    )
    for p in problems:
        print(f"config error: {p}", file=out)
    factory = TransportFactory()
    try:
        ready: list[tuple[DevicePoller, DeviceSettings]] = []
        for d in usable:
            try:  # one device at a time, so one that cannot be set up is named, not fatal
                (poller,) = build_pollers(config.model_copy(update={"devices": [d]}), factory)
            except Exception as exc:
                i = config.devices.index(d)
                problems.append(f"devices[{i}] ({d.id}): cannot be set up: {exc}")
                print(f"config error: {problems[-1]}", file=out)
                continue
            ready.append((poller, d))
        results = await asyncio.gather(*(_poll(p, d) for p, d in ready))
    finally:
        await factory.close()
    for r in results:
        _print_device(r, out)
    failed = [r for r in results if not r.ok]
    print(
        f"\nsummary: {len(results) - len(failed)} of {_n(len(config.devices), 'device')} "
        f"answered every request; {_n(len(problems), 'config problem')}",
        file=out,
    )
    for r in failed:
        reasons = [e.removeprefix(f"{r.settings.id}: ") for e in r.errors] or ["no readings"]
        print(f"  FAILED {r.settings.id}: {'; '.join(reasons)}", file=out)
    return not failed and not problems


async def _poll(poller: DevicePoller, settings: DeviceSettings) -> DeviceResult:
    result = DeviceResult(poller, settings)
    before = poller.health.failed_requests
    t0 = time.perf_counter()
    try:
        _, result.readings = await poller.poll()
    except Exception as exc:  # report every device, whatever one of them does
        result.errors.append(f"{type(exc).__name__}: {exc}")
    result.seconds = time.perf_counter() - t0
    if poller.health.failed_requests > before and poller.health.last_error:
        result.errors.append(poller.health.last_error)
    return result


def describe_request(block: Any) -> str:
    """One planned request: function code, first address, count, and what it carries."""
    points = getattr(block, "points", ())
    function = getattr(block, "function", None)
    if function is not None and hasattr(block, "address") and hasattr(block, "count"):
        code = getattr(function, "code", function)
        head = f"FC{int(code):02d} address {block.address} ({block.address:#06x}) "
        head += f"count {block.count}"
        requests = getattr(block, "requests", 1)
        if requests != 1:
            head += f" ({requests} single-register requests, torn-read guard)"
    elif hasattr(block, "di"):  # DL/T 645: one request per data identifier
        return f"DI {block.di}: {block.quantity} [{block.unit}]"
    else:
        head = str(block)
    names = ", ".join(getattr(p, "quantity", str(p)) for p in points)
    return f"{head}: {_n(len(points), 'point')} ({names})" if points else head


def plan_of(poller: DevicePoller) -> tuple[list[Any], int, int]:
    """(the requests of one cycle, how many requests that is, how many points they read)."""
    items: list[Any] = [*poller.plan, *getattr(poller, "dis", [])]
    n_points = sum(len(getattr(b, "points", ())) or 1 for b in items)
    requests = getattr(poller, "requests_per_cycle", len(items))
    return items, int(requests), n_points


def _print_device(r: DeviceResult, out: TextIO) -> None:
    s = r.settings
    items, requests, n_points = plan_of(r.poller)
    transport = ", ".join(f"{k} {v}" for k, v in s.transport.model_dump().items() if k != "type")
    print(f"\n{s.id}: profile {s.profile}, {s.transport.type} ({transport})", file=out)
    print(
        f"  request plan: {_n(requests, 'request')} per cycle for {_n(n_points, 'point')}", file=out
    )
    for item in items:
        print(f"    {describe_request(item)}", file=out)
    if r.readings:
        rows = [("quantity", "value", "unit", "quality", "raw")] + [
            (
                x["quantity"],
                "-" if x["value"] is None else f"{x['value']:.10g}",
                x["unit"],
                x["quality"],
                x.get("raw") or "-",
            )
            for x in r.readings
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        for row in rows:
            cells = [row[0].ljust(widths[0]), row[1].rjust(widths[1])]
            cells += [row[2].ljust(widths[2]), row[3].ljust(widths[3]), row[4]]
            print("  " + "  ".join(cells), file=out)
    verdict = "OK" if r.ok else "FAILED"
    print(f"  result: {verdict} in {r.seconds:.3f} s", file=out)
    for e in r.errors:
        print(f"  error: {e}", file=out)


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
