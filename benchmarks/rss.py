"""Resident memory of the real agent process (`metertrace agent run`) polling the plant.

Sampled from /proc/<pid>/status (Linux): VmRSS every sample, VmHWM (the kernel's peak) at the
end. Steady state is the median over the window that starts once every device has stored its
first message, so start-up imports and the first connections are in the peak only.
"""

from __future__ import annotations

import re
import sqlite3
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .plant import metertrace_cmd, spawn, stop


def vm_kib(pid: int, field: str) -> int:
    """One Vm* field of /proc/<pid>/status, in KiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB$", status, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"/proc/{pid}/status has no {field} line")
    return int(match.group(1))


def idle_import_kib(module: str) -> int:
    """RSS of a fresh interpreter that has imported module and done nothing else."""
    code = (
        f"import {module}, re; s = open('/proc/self/status').read(); "
        "print(re.search(r'^VmRSS:\\s+(\\d+) kB$', s, re.M).group(1))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return int(out.stdout.strip())


def _messages_per_device(db: Path) -> dict[str, int]:
    if not db.exists():
        return {}
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as con:
            return dict(con.execute("SELECT device, seq FROM chain").fetchall())
    except sqlite3.OperationalError:  # created but no schema yet, or locked for a moment
        return {}


@dataclass
class RssRun:
    samples_kib: list[int]
    steady_kib: int  # median VmRSS over the window
    peak_kib: int  # VmHWM at the end of the window
    window_s: float
    startup_s: float  # process start until every device stored a message
    messages: int  # messages stored during the whole run
    min_cycles: int  # polls of the device polled least
    overruns: int  # polls skipped because the previous one was still running
    exit_code: int

    def as_dict(self) -> dict[str, object]:
        return {
            "steady_mib": round(self.steady_kib / 1024, 1),
            "peak_mib": round(self.peak_kib / 1024, 1),
            "min_mib": round(min(self.samples_kib) / 1024, 1),
            # growth within the window: a leak shows as last well above first
            "first_mib": round(self.samples_kib[0] / 1024, 1),
            "last_mib": round(self.samples_kib[-1] / 1024, 1),
            "timeline_mib": [
                round(k / 1024, 1) for k in self.samples_kib[:: max(1, len(self.samples_kib) // 20)]
            ],
            "samples": len(self.samples_kib),
            "window_s": round(self.window_s, 1),
            "startup_s": round(self.startup_s, 2),
            "messages": self.messages,
            "min_cycles_per_device": self.min_cycles,
            "overruns": self.overruns,
            "exit_code": self.exit_code,
        }


def measure_agent(
    config: Path, state_dir: Path, devices: int, *, seconds: float, period_s: float = 0.1
) -> RssRun:
    log = config.with_suffix(".log")
    proc = spawn(metertrace_cmd("--log-level", "WARNING", "agent", "run", "-c", str(config)), log)
    db = state_dir / "agent.db"
    t0 = time.monotonic()
    try:
        while len(_messages_per_device(db)) < devices:
            if proc.poll() is not None or time.monotonic() - t0 > 60:
                raise RuntimeError(f"agent did not poll every device; its log:\n{log.read_text()}")
            time.sleep(period_s)
        startup = time.monotonic() - t0
        samples: list[int] = []
        while time.monotonic() - t0 - startup < seconds:
            if proc.poll() is not None:
                raise RuntimeError(f"agent exited with {proc.returncode}:\n{log.read_text()}")
            samples.append(vm_kib(proc.pid, "VmRSS"))
            time.sleep(period_s)
        window = time.monotonic() - t0 - startup
        peak = vm_kib(proc.pid, "VmHWM")
    finally:
        stop(proc)
    text = log.read_text(errors="replace")
    counts = _messages_per_device(db)
    return RssRun(
        samples_kib=samples,
        steady_kib=int(statistics.median(samples)),
        peak_kib=peak,
        window_s=window,
        startup_s=startup,
        messages=sum(counts.values()),
        min_cycles=min(counts.values(), default=0),
        overruns=text.count("skipped (overrun"),
        exit_code=int(proc.returncode),
    )
