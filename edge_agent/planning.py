"""Read planning: the fewest requests that read every point of a device, each value whole.

Pure: planned once per device at start, so the request count per cycle is known and printable.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from device_profiles import Function, Point, decode, hexwords, is_float


class PlanError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class ReadBlock:
    function: Function
    address: int
    count: int
    points: tuple[Point, ...]

    @property
    def end(self) -> int:
        return self.address + self.count


def plan_reads(points: Iterable[Point], *, max_block: int, max_gap: int) -> list[ReadBlock]:
    """Coalesce points into blocks of at most max_block registers, spanning gaps <= max_gap.

    A point is never split across two requests: a 32-bit value read in two requests could mix
    two instants (a torn read).
    """
    blocks: list[ReadBlock] = []
    by_fc: dict[Function, list[Point]] = {}
    for p in points:
        if p.count > max_block:
            raise PlanError(
                f"{p.quantity} needs {p.count} registers in one read but max_block is {max_block}"
            )
        by_fc.setdefault(p.function, []).append(p)
    for fc in sorted(by_fc, key=lambda f: f.code):
        current: list[Point] = []
        for p in sorted(by_fc[fc], key=lambda p: p.address):
            if current:
                start, end = current[0].address, max(q.end for q in current)
                if p.address - end <= max_gap and p.end - start <= max_block:
                    current.append(p)
                    continue
                blocks.append(_block(fc, current))
            current = [p]
        if current:
            blocks.append(_block(fc, current))
    return blocks


def _block(fc: Function, pts: list[Point]) -> ReadBlock:
    start = pts[0].address
    return ReadBlock(fc, start, max(p.end for p in pts) - start, tuple(pts))


@dataclass(frozen=True, slots=True)
class Decoded:
    point: Point
    value: float | None  # None: the register holds no number (NaN/inf)
    raw: str


def decode_block(block: ReadBlock, words: Sequence[int]) -> list[Decoded]:
    if len(words) != block.count:
        raise PlanError(f"expected {block.count} registers at {block.address}, got {len(words)}")
    out = []
    for p in block.points:
        w = words[p.address - block.address : p.end - block.address]
        number = float(decode(w, p.type, p.word_order, p.byte_order))
        value = number * p.scale + p.offset if math.isfinite(number) else None
        if value is not None and not is_float(p.type):
            # 88312119 × 0.01 is 883121.1900000001 in binary; an integer register has no such digit
            value = float(f"{value:.15g}")
        out.append(Decoded(p, value, hexwords(w)))
    return out
