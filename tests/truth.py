"""Comparing what was read with the simulator's ground truth, with an honest tolerance."""

from __future__ import annotations

import math
import struct

from device_profiles import DataType, Point
from simulators.scenario import MeterModel

# Reads happen within this long after the reading's timestamp on loopback; a counter's truth can
# move by at most its maximum rate times this while the request is under way.
MAX_READ_LATENCY_S = 0.25


def resolution(point: Point, value: float) -> float:
    """The smallest step the register can show around value (its encoding, not its accuracy)."""
    raw = (value - point.offset) / point.scale
    if point.type is DataType.F32:
        f = struct.unpack(">f", struct.pack(">f", raw))[0]
        step = math.ldexp(1.0, math.frexp(f)[1] - 24)  # one float32 ulp at f
    elif point.type is DataType.F64:
        step = math.ulp(raw)
    else:
        step = 1.0
    return step * abs(point.scale)


def tolerance(point: Point, model: MeterModel, t: float) -> float:
    """Encoding resolution plus how far the truth moves while the request is under way."""
    truth = model.value(point.quantity, t)
    steps = [MAX_READ_LATENCY_S * i / 10 for i in range(1, 11)]
    moving = max(abs(model.value(point.quantity, t + d) - truth) for d in steps)
    return resolution(point, truth) + moving
