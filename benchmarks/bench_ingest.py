"""Ingest benchmark: MQTT -> committed row in the collector's store, against a plain subscriber.

    .venv/bin/python -m benchmarks.bench_ingest                      # SQLite and PostgreSQL
    .venv/bin/python -m benchmarks.bench_ingest --store sqlite --json

One gateway's pre-signed messages (default 20 devices x 1000 messages x 10 readings) go through
a private Mosquitto on 127.0.0.1, published by a process of their own as fast as the broker
takes them. The baseline is a plain paho-mqtt subscriber (QoS 1) receiving them; then the real
`metertrace collector serve` verifies, de-duplicates and stores them, timed until the last row
is committed. Reported per store: readings/s of each, their ratio, and the collector process's
CPU time per reading (with PostgreSQL, the server's CPU for the collector's connections too).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path
from typing import Any

from metertrace.broker import find_mosquitto
from tests.conftest import start_broker

from .ingest_clients import ClientFailed
from .ingest_messages import (
    READINGS_PER_MESSAGE,
    WARMUP_DEVICE,
    device_ids,
    expected_rows,
    gateway_key,
    sign_messages,
    write_messages,
)
from .ingest_runs import (
    CollectorFailed,
    CollectorRun,
    Timing,
    Traffic,
    collector_run,
    subscriber_run,
)
from .ingest_stores import PG_ADMIN_URL, STORES, StoreUnavailable, open_target
from .machine import machine

FAILURES = (ClientFailed, CollectorFailed, StoreUnavailable)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_ingest", description=__doc__)
    p.add_argument("--devices", type=int, default=20, help="meters of the one gateway")
    p.add_argument("--messages", type=int, default=1000, help="timed messages per device")
    p.add_argument("--warmup", type=int, default=20, help="untimed messages first, one device")
    p.add_argument(
        "--store",
        action="append",
        choices=STORES,
        help="the collector's database; repeat for several (default: all)",
    )
    p.add_argument("--repeat", type=int, default=3, help="rounds per store; medians reported")
    p.add_argument("--signing", choices=["ed25519", "hmac-sha256"], default="ed25519")
    p.add_argument(
        "--window",
        type=int,
        default=100,
        help="the publisher's unacknowledged messages at most (one edge agent keeps 20; 100 "
        "gave the fastest and steadiest baseline on 2 cores)",
    )
    p.add_argument(
        "--broker-inflight",
        type=int,
        help="Mosquitto's max_inflight_messages: QoS 1 messages it has unacknowledged at one "
        "subscriber at most; 0: no limit (default: Mosquitto's own, 20)",
    )
    p.add_argument("--timeout", type=float, default=300.0, help="seconds any one step may take")
    p.add_argument(
        "--pg-url",
        default=PG_ADMIN_URL,
        help="PostgreSQL, as a user who may CREATE DATABASE (default: $METERTRACE_TEST_PG_URL "
        "or postgres@127.0.0.1:5432)",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON, not a table")
    p.add_argument("--out", type=Path, help="also write the JSON result to this file")
    args = p.parse_args(argv)
    for name in ("devices", "messages", "warmup", "repeat", "window"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be at least 1, not {getattr(args, name)}")
    if args.broker_inflight is not None and args.broker_inflight < 0:
        p.error(f"--broker-inflight must be 0 (no limit) or more, not {args.broker_inflight}")
    if args.timeout <= 0:
        p.error(f"--timeout must be positive, not {args.timeout:g}")
    args.store = args.store or list(STORES)
    return args


def _mosquitto_version() -> str:
    exe = find_mosquitto()
    if exe is None:
        return "not found"
    out = subprocess.run([exe, "-h"], capture_output=True, text=True, check=False).stdout
    return out.splitlines()[0].removeprefix("mosquitto version ") if out else "unknown"


def _summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the rounds; the ratio is the median of each round's own ratio."""

    def med(*keys: str) -> float:
        values = []
        for r in rounds:
            v: Any = r
            for k in keys:
                v = v[k]
            values.append(float(v))
        return round(statistics.median(values), 3)

    db = [r["collector"]["db_cpu_us_per_reading"] for r in rounds]
    return {
        "readings": rounds[0]["collector"]["readings"],
        "collector_readings_per_s": med("collector", "readings_per_s"),
        "subscriber_readings_per_s": med("subscriber", "readings_per_s"),
        "ratio": med("ratio"),
        "collector_cpu_us_per_reading": med("collector", "cpu_us_per_reading"),
        "subscriber_cpu_us_per_reading": med("subscriber", "cpu_us_per_reading"),
        "db_cpu_us_per_reading": None if None in db else round(statistics.median(db), 2),
        "exactly_once": all(r["stored"]["exactly_once"] for r in rounds),
    }


def _round(base: Timing, col: CollectorRun) -> dict[str, Any]:
    return {
        "subscriber": base.as_dict(),
        "collector": col.timing.as_dict(),
        "ratio": round(col.timing.readings_per_s / base.readings_per_s, 3),
        "stored": {**col.stored.__dict__, "exactly_once": col.stored.exactly_once},
        "health": {k: col.health.get(k) for k in ("messages", "readings", "duplicates")}
        | {"quarantined": col.health.get("quarantined")},
    }


def run(args: argparse.Namespace, tmp: Path) -> dict[str, dict[str, Any]]:
    key = gateway_key(args.signing, tmp)
    devices = device_ids(args.devices)
    warmup_file, messages_file = tmp / "warmup.msgs", tmp / "timed.msgs"
    write_messages(warmup_file, sign_messages(key.signer, [WARMUP_DEVICE], args.warmup))
    write_messages(messages_file, sign_messages(key.signer, devices, args.messages))
    traffic = Traffic(
        devices, warmup_file, args.warmup, messages_file, args.devices * args.messages, args.window
    )
    expected = expected_rows(devices, args.messages) | expected_rows([WARMUP_DEVICE], args.warmup)
    stores: dict[str, dict[str, Any]] = {s: {"rounds": []} for s in args.store}
    inflight = args.broker_inflight
    broker = start_broker(tmp, "" if inflight is None else f"max_inflight_messages {inflight}\n")
    try:
        for r in range(args.repeat):  # interleaved, so drift on the machine hits every store
            for store, out in stores.items():
                if "error" in out:
                    continue
                tag = f"{store}-{r}"
                try:
                    base = subscriber_run(
                        broker, traffic, tag=tag, workdir=tmp, timeout_s=args.timeout
                    )
                    with open_target(store, tmp / tag, pg_admin_url=args.pg_url) as target:
                        col = collector_run(
                            broker,
                            target,
                            traffic,
                            expected,
                            key.entry,
                            tag=tag,
                            workdir=tmp,
                            timeout_s=args.timeout,
                        )
                except FAILURES as exc:
                    out["error"] = f"round {r + 1}: {exc}"
                    continue
                out["rounds"].append(_round(base, col))
                if not col.stored.exactly_once:
                    out["error"] = f"round {r + 1}: not every reading stored once: {col.stored}"
    finally:
        broker.stop()
    for out in stores.values():
        if out["rounds"]:
            out.update(_summary(out["rounds"]))
        out["ok"] = "error" not in out
    return stores


def render(result: dict[str, Any]) -> str:
    s, m = result["setup"], result["machine"]
    out = [
        f"Ingest benchmark: {s['devices']} devices x {s['messages_per_device']} messages x "
        f"{s['readings_per_message']} readings = {s['readings']:,} readings per run, "
        f"{s['signing']} signatures, publisher window {s['window']}, "
        f"{s['repeat']} round(s) per store (medians)",
        f"machine: {m['nproc']} CPUs ({m['cpu']}), Python {m['python']}, Mosquitto "
        f"{m['mosquitto']}, paho-mqtt {m['paho-mqtt']}, SQLite {m['sqlite']}",
        f"code: {m['commit']}",
        "",
        "readings/s from the first publish to the last row committed (collector) or message "
        "received (plain subscriber); CPU µs per reading of the collector process, of the "
        "PostgreSQL backends serving it (db) and of the plain subscriber (sub)",
        "",
        f"{'store':12}{'readings':>10}{'collector rd/s':>16}{'subscriber rd/s':>17}{'ratio':>7}"
        f"{'CPU µs/rd':>11}{'db µs/rd':>10}{'sub µs/rd':>11}",
    ]
    notes = []
    for store, r in result["stores"].items():
        if "ratio" in r:
            db = "-" if r["db_cpu_us_per_reading"] is None else f"{r['db_cpu_us_per_reading']:.0f}"
            out.append(
                f"{store:12}{r['readings']:>10,}{r['collector_readings_per_s']:>16,.0f}"
                f"{r['subscriber_readings_per_s']:>17,.0f}{r['ratio']:>7.2f}"
                f"{r['collector_cpu_us_per_reading']:>11.0f}{db:>10}"
                f"{r['subscriber_cpu_us_per_reading']:>11.1f}"
            )
            ratios = ", ".join(f"{x['ratio']:.2f}" for x in r["rounds"])
            busy = r["rounds"][-1]["collector"]["busy"]
            notes.append(
                f"{store}: ratio per round {ratios}; stored exactly once: {r['exactly_once']}; "
                "busy (CPU s per wall s, last round): "
                + ", ".join(f"{k} {v:.2f}" for k, v in busy.items())
            )
        if not r["ok"]:
            out.append(f"{store:12}FAILED (see below)")
            notes.append(f"{store} FAILED: {r['error']}")
    out += ["", *notes, "", f"command: {result['command']}"]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    result: dict[str, Any] = {
        "command": shlex.join(
            [os.path.relpath(sys.executable), "-m", "benchmarks.bench_ingest", *argv]
        ),
        "machine": machine(
            mosquitto=_mosquitto_version(),
            **{"paho-mqtt": version("paho-mqtt")},
            sqlite=sqlite3.sqlite_version,
        ),
        "setup": {
            "devices": args.devices,
            "messages_per_device": args.messages,
            "readings_per_message": READINGS_PER_MESSAGE,
            "readings": args.devices * args.messages * READINGS_PER_MESSAGE,
            "warmup_messages": args.warmup,
            "signing": args.signing,
            "window": args.window,
            "broker_inflight": args.broker_inflight,
            "repeat": args.repeat,
            "stores": args.store,
        },
    }
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        result["stores"] = run(args, Path(tmp))
    text = json.dumps(result, indent=2, ensure_ascii=False)
    print(text if args.json else render(result))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return result


if __name__ == "__main__":
    sys.exit(0 if all(s["ok"] for s in main()["stores"].values()) else 1)
