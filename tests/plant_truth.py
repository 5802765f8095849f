"""What each batch truly drew, under the plant's declared rules, from the simulator's true loads.

An oracle for the end-to-end allocation test, written independently of collector/domain: it reads
the topology YAML as plain data, walks the period minute by minute (the plant's batches start and
end on whole minutes) and gives each minute's *true* consumption of every meter (its closed-form
counter, without the meter's error) to the batches running in it by the meter's key, or, when
none runs, by the idle policy. The collector computes the same from *metered* counters read every
poll and interpolated at batch boundaries; the difference is the measurement, which its stated
uncertainty must cover.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from simulators.plant import PlantBatch, PlantModel
from simulators.scenario import FedCounter, MeterModel

STEP_S = 60


@dataclass
class Truth:
    batch: dict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))
    overhead: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    total: dict[str, float] = field(default_factory=dict)  # per meter (residual: net)


def _counter(model: MeterModel) -> tuple[str, str]:
    (name, c), *_ = [(n, c) for n, c in model.spec.counters.items() if isinstance(c, FedCounter)]
    return name, c.medium


def _weights(key: str, b: PlantBatch) -> tuple[float, float, float]:
    """(rate while running, tie weight, spread weight per run-second), as the rules define."""
    if key == "produced_quantity":
        return b.produced_quantity / b.hours, b.produced_quantity, b.produced_quantity / b.hours
    if key == "run_time":
        return 1.0, b.hours, 1.0
    raise NotImplementedError(f"oracle has no key {key}")


def expected(
    plant: PlantModel,
    models: dict[str, MeterModel],
    topology: dict[str, Any],
    w0: float,
    w1: float,
) -> Truth:
    truth = Truth()
    n = round((w1 - w0) / STEP_S)
    times = [w0 + i * STEP_S for i in range(n + 1)]
    for a in topology["assignments"]:
        meter = a["meter_id"]
        qty, medium = _counter(models[meter])
        signed = [(models[meter], 1.0)] + [(models[s], -1.0) for s in a.get("sub_meters", [])]
        cum = [sum(sign * m.value(qty, t) for m, sign in signed) for t in times]
        minute = [cum[i + 1] - cum[i] for i in range(n)]
        truth.total[meter] = cum[-1] - cum[0]
        key = a.get("key") or "produced_quantity"
        policy = a.get("idle_policy") or topology["idle_policy"]
        batches = [b for b in plant.batches if b.line in a["lines"]]
        span = {b.id: (b.start.timestamp(), b.end.timestamp()) for b in batches}
        idle: list[int] = []
        for i in range(n):
            t = times[i]
            running = [b for b in batches if span[b.id][0] <= t < span[b.id][1]]
            if not running:
                idle.append(i)
                continue
            w = {b.id: _weights(key, b)[0] for b in running}
            for b in running:
                truth.batch[(b.id, medium)] += minute[i] * w[b.id] / sum(w.values())
        _idle(truth, policy, key, idle, minute, times, batches, span, meter, medium)
    return truth


def _idle(
    truth: Truth,
    policy: str,
    key: str,
    idle: list[int],
    minute: list[float],
    times: list[float],
    batches: list[PlantBatch],
    span: dict[str, tuple[float, float]],
    meter: str,
    medium: str,
) -> None:
    if policy == "spread_by_production":
        energy = sum(minute[i] for i in idle)
        run = {b.id: _weights(key, b)[2] * (span[b.id][1] - span[b.id][0]) for b in batches}
        for b in batches:
            truth.batch[(b.id, medium)] += energy * run[b.id] / sum(run.values())
        return
    if policy not in ("next_batch", "overhead"):
        raise NotImplementedError(f"oracle has no idle policy {policy}")
    # stretches of consecutive idle minutes; each goes to the batches starting right after it
    stretches: list[list[int]] = []
    for i in idle:
        if stretches and stretches[-1][-1] == i - 1:
            stretches[-1].append(i)
        else:
            stretches.append([i])
    for s in stretches:
        energy = sum(minute[i] for i in s)
        after = times[s[-1] + 1]
        nxt = [b for b in batches if span[b.id][0] == after] if policy == "next_batch" else []
        if not nxt:
            truth.overhead[meter] += energy
            continue
        tie = {b.id: _weights(key, b)[1] for b in nxt}
        for b in nxt:
            truth.batch[(b.id, medium)] += energy * tie[b.id] / sum(tie.values())
