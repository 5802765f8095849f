"""`metertrace sim run` whose meters take a fixed time to answer each request.

The shipped simulators answer in tens of microseconds; a real meter behind a Modbus TCP gateway
takes milliseconds (an RS-485 line at 9600 baud needs ~0.2 s to carry an 80-register answer).
With a delay the benchmark measures the agent where it runs, waiting on meters, instead of in a
CPU race against the simulator. Only this benchmark process is patched; simulators/ is unchanged.

    python -m benchmarks.slow_sim -c scenario.yaml --ready-file F --latency-ms 5
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from simulators.modbus_tcp import SimulatedMeter
from simulators.runner import run
from simulators.scenario import load_scenario

Answer = Callable[..., Awaitable[Any]]


def delayed(answer: Answer, seconds: float) -> Answer:
    async def slow(*args: Any) -> Any:
        await asyncio.sleep(seconds)  # the server answers other connections meanwhile
        return await answer(*args)

    return slow


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.slow_sim")
    p.add_argument("-c", "--config", required=True, type=Path)
    p.add_argument("--ready-file", required=True)
    p.add_argument("--latency-ms", required=True, type=float)
    args = p.parse_args(argv)
    # before any meter exists, so every SimDevice is built with the slow action
    setattr(  # noqa: B010 - assigning to a method directly is a mypy error
        SimulatedMeter,
        "_on_request",
        delayed(SimulatedMeter._on_request, args.latency_ms / 1000),
    )
    scenario = load_scenario(args.config)

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run(scenario, stop, args.ready_file)

    asyncio.run(runner())


if __name__ == "__main__":
    main()
