"""The ingest benchmark's MQTT clients, each in a process of its own, and their remote control.

    python -m benchmarks.ingest_clients publish --port P --warmup FILE --messages FILE
    python -m benchmarks.ingest_clients subscribe --port P --warmup N --messages N

The publisher connects like the edge agent (paho-mqtt, MQTT 5, QoS 1) and says `ready`; on
`warmup` (a line on stdin) it publishes the warm-up messages, waits for every PUBACK and says
`warm`; on `go` it publishes every timed message as fast as paho takes them (at most `--window`
unacknowledged), waits for every PUBACK and prints one JSON line: when it began
(`time.monotonic()`, the system-wide CLOCK_MONOTONIC on Linux, so the parent can compare it with
its own clock) and its CPU time. The plain subscriber (the baseline) subscribes to the
collector's topics with QoS 1, says `ready` once subscribed and `warm` once it has the warm-up
messages, and prints one JSON line when it has received every timed message.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from metertrace.wire import TOPIC_ROOT

from .ingest_messages import read_messages

HOST = "127.0.0.1"
# What the collector subscribes to (collector.ingest.consumer.MqttConsumer.topics).
TOPICS = (f"{TOPIC_ROOT}/+/readings/+", f"{TOPIC_ROOT}/+/events/+")


class ClientFailed(RuntimeError):
    """A benchmark client that exited, said something unexpected or took too long."""

    def __init__(self, role: str, detail: str, log: Path) -> None:
        self.role, self.detail, self.log = role, detail, log
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        super().__init__(f"{role}: {detail}" + (f"; its stderr ({log}):\n{tail}" if tail else ""))


def _say(line: str) -> None:
    print(line, flush=True)


def _cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def _client(client_id: str) -> mqtt.Client:
    return mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
    )


class _Acks:
    """PUBACKs counted on paho's thread, awaited on the main one."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.count = 0

    def on_publish(self, _c: Any, _u: Any, _mid: int, _rc: Any, _p: Any) -> None:
        with self._cond:
            self.count += 1
            self._cond.notify_all()

    def wait(self, target: int, timeout_s: float) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: self.count >= target, timeout_s):
                sys.exit(f"publisher: {self.count} of {target} PUBACKs after {timeout_s:.0f} s")


def publish(args: argparse.Namespace) -> None:
    warmup, timed = read_messages(args.warmup), read_messages(args.messages)
    acks, connected = _Acks(), threading.Event()
    client = _client(args.client_id)
    client.max_inflight_messages_set(args.window)
    client.on_publish = acks.on_publish

    def on_connect(_c: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if not rc.is_failure:
            connected.set()

    client.on_connect = on_connect
    client.connect(HOST, args.port)
    client.loop_start()
    if not connected.wait(10):
        sys.exit(f"publisher: not connected to {HOST}:{args.port} after 10 s")
    _say("ready")
    sent = 0
    for line in sys.stdin:
        command = line.strip()
        batch = {"warmup": warmup, "go": timed}.get(command)
        if batch is None:
            sys.exit(f"publisher: unknown command {command!r}")
        t0, cpu0 = time.monotonic(), _cpu_s()
        for topic, payload in batch:
            client.publish(topic, payload, qos=1)
        sent += len(batch)
        acks.wait(sent, args.timeout)
        if command == "warmup":
            _say("warm")
            continue
        t1 = time.monotonic()
        _say(json.dumps({"t0": t0, "acked_s": t1 - t0, "cpu_s": _cpu_s() - cpu0, "sent": sent}))
        break
    client.disconnect()
    client.loop_stop()


def subscribe(args: argparse.Namespace) -> None:
    warm, total = args.warmup, args.warmup + args.messages
    done, refused = threading.Event(), list[str]()
    state = {"received": 0, "redelivered": 0, "cpu_warm": 0.0}

    def on_connect(c: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if rc.is_failure:
            refused.append(str(rc))
            done.set()
        else:
            c.subscribe([(t, 1) for t in TOPICS])

    def on_message(c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        state["received"] += 1
        state["redelivered"] += int(msg.dup)
        n = state["received"]
        if n == warm:
            state["cpu_warm"] = _cpu_s()
            _say("warm")
        elif n == total:
            now = time.monotonic()
            cpu = _cpu_s() - state["cpu_warm"]
            _say(json.dumps({"last_at": now, "cpu_s": cpu, **state}))
            done.set()

    client = _client(args.client_id)
    client.on_connect = on_connect
    client.on_subscribe = lambda _c, _u, _mid, _rc, _p: _say("ready")
    client.on_message = on_message
    client.connect(HOST, args.port)
    client.loop_start()
    if not done.wait(args.timeout):
        sys.exit(f"subscriber: {state['received']} of {total} messages after {args.timeout:.0f} s")
    if refused:
        sys.exit(f"subscriber: the broker refused the connection: {refused[0]}")
    client.disconnect()
    client.loop_stop()


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.ingest_clients", description=__doc__)
    sub = p.add_subparsers(dest="role", required=True)
    pub = sub.add_parser("publish")
    pub.add_argument("--warmup", type=Path, required=True, help="messages file, untimed")
    pub.add_argument("--messages", type=Path, required=True, help="messages file, timed")
    pub.add_argument("--window", type=int, default=100, help="unacknowledged messages at most")
    pub.set_defaults(func=publish)
    s = sub.add_parser("subscribe")
    s.add_argument("--warmup", type=int, required=True, help="warm-up messages to expect")
    s.add_argument("--messages", type=int, required=True, help="timed messages to expect")
    s.set_defaults(func=subscribe)
    for q in (pub, s):
        q.add_argument("--port", type=int, required=True)
        q.add_argument("--client-id", required=True)
        q.add_argument("--timeout", type=float, default=300.0, help="seconds for each step")
    args = p.parse_args(argv)
    args.func(args)


# --- the parent's side ----------------------------------------------------------------------
@dataclass
class Client:
    """A client process driven by lines: commands to its stdin, replies from its stdout."""

    role: str
    proc: subprocess.Popen[str]
    log: Path
    lines: queue.Queue[str | None]

    @classmethod
    def start(cls, role: str, argv: list[str], log: Path) -> Client:
        with log.open("w") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "benchmarks.ingest_clients", *argv],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )
        lines: queue.Queue[str | None] = queue.Queue()

        def pump() -> None:  # a thread, so that waiting for a line can time out
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.put(line.rstrip("\n"))
            lines.put(None)

        threading.Thread(target=pump, name=f"{role}-stdout", daemon=True).start()
        return cls(role, proc, log, lines)

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def expect(self, word: str, timeout_s: float) -> None:
        got = self.reply(timeout_s, waiting_for=word)
        if got != word:
            raise ClientFailed(self.role, f"said {got!r}, expected {word!r}", self.log)

    def result(self, timeout_s: float) -> dict[str, Any]:
        line = self.reply(timeout_s, waiting_for="its result")
        try:
            out: dict[str, Any] = json.loads(line)
        except json.JSONDecodeError:
            detail = f"said {line!r}, expected its JSON result"
            raise ClientFailed(self.role, detail, self.log) from None
        return out

    def reply(self, timeout_s: float, *, waiting_for: str) -> str:
        try:
            line = self.lines.get(timeout=timeout_s)
        except queue.Empty:
            raise ClientFailed(
                self.role, f"nothing after {timeout_s:.0f} s waiting for {waiting_for}", self.log
            ) from None
        if line is None:
            code = self.proc.wait()
            raise ClientFailed(
                self.role, f"exited ({code}) while waiting for {waiting_for}", self.log
            )
        return line

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


def start_publisher(
    port: int,
    warmup: Path,
    messages: Path,
    *,
    window: int,
    timeout_s: float,
    tag: str,
    workdir: Path,
) -> Client:
    argv = ["publish", "--port", str(port), "--client-id", f"bench-pub-{tag}"]
    argv += ["--warmup", str(warmup), "--messages", str(messages), "--window", str(window)]
    argv += ["--timeout", str(timeout_s)]
    return Client.start("publisher", argv, workdir / f"publisher-{tag}.log")


def start_subscriber(
    port: int, warmup: int, messages: int, *, timeout_s: float, tag: str, workdir: Path
) -> Client:
    argv = ["subscribe", "--port", str(port), "--client-id", f"bench-sub-{tag}"]
    argv += ["--warmup", str(warmup), "--messages", str(messages), "--timeout", str(timeout_s)]
    return Client.start("plain subscriber", argv, workdir / f"subscriber-{tag}.log")


if __name__ == "__main__":
    main()
