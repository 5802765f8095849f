"""Read planning: the fewest requests that read every point of a device, each value whole.

Pure (apart from `read_block`, which only drives an injected reader): planned once per device
at start, so the request count per cycle is known and printable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from device_profiles import NO_RATIOS, Function, Order, Point, Profile, Ratio, Ratios, hexwords
from device_profiles.point import exact
from metertrace.wire import Quality

from .errors import CommError
from .transports import RegisterReader

TORN_READ_ATTEMPTS = 3


class PlanError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class ReadBlock:
    function: Function
    address: int
    count: int
    points: tuple[Point, ...]
    guarded: bool = False  # one register per request, with the torn-read guard

    @property
    def end(self) -> int:
        return self.address + self.count

    @property
    def requests(self) -> int:
        """Requests per cycle when nothing changes under the guard (2n − 1 for n words)."""
        return 2 * self.count - 1 if self.guarded else 1

    def word_address(self, significance: int) -> int:
        """The address of the value's word of this significance (0 = least significant)."""
        p = self.points[0]
        if p.word_order is Order.BIG:
            return self.address + self.count - 1 - significance
        return self.address + significance


def plan_reads(
    points: Iterable[Point], *, max_block: int, max_gap: int, single_register_only: bool = False
) -> list[ReadBlock]:
    """Coalesce points into blocks of at most max_block registers, spanning gaps <= max_gap.

    A point is never split across two requests: a 32-bit value read in two requests could mix
    two instants (a torn read). A device that only answers single-register reads gets one
    request per register, and its multi-register values a guarded block (torn_read_guard).
    """
    if single_register_only:
        return [
            ReadBlock(p.function, p.address, p.count, (p,), guarded=p.count > 1)
            for p in sorted(points, key=lambda p: (p.function.code, p.address))
        ]
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


def plan_profile(profile: Profile, ratios: Ratios = NO_RATIOS) -> list[ReadBlock]:
    """The plan of one device: its quantities and the meter's own CT/VT ratio registers.

    Refuses (PlanError) a device whose transforms need a ratio nobody provides.
    """
    missing = [r for r in sorted(profile.ratios_from_config()) if ratios.get(r) is None]
    if missing:
        names = " and ".join(f"{r.value}_ratio" for r in missing)
        raise PlanError(
            f"profile {profile.id} reads secondary-side values and does not read the "
            f"{'/'.join(r.value.upper() for r in missing)} ratio from the meter: "
            f"set {names} (primary/secondary) in the device config"
        )
    m = profile.modbus
    return plan_reads(
        profile.read_points(),
        max_block=m.max_block,
        max_gap=m.max_gap,
        single_register_only=m.single_register_only,
    )


def _block(fc: Function, pts: list[Point]) -> ReadBlock:
    start = pts[0].address
    return ReadBlock(fc, start, max(p.end for p in pts) - start, tuple(pts))


@dataclass(frozen=True, slots=True)
class NextWord:
    significance: int  # read this word next (0 = least significant)


@dataclass(frozen=True, slots=True)
class Settled:
    words: tuple[int, ...]  # a consistent value, most significant word first


@dataclass(frozen=True, slots=True)
class Torn:
    attempts: int  # the value changed during every attempt: no consistent value


def torn_read_guard(
    reads: Sequence[int], *, words: int, attempts: int
) -> NextWord | Settled | Torn:
    """What to do next when a value of `words` registers must be read one register at a time.

    `reads` is every word read so far for this value, in order; the answer is the next word to
    read, the consistent value, or Torn after `attempts` tries. Pure, so every interleaving of
    reads and counter changes can be tested.

    The guard: read from the most significant word down to the least and back up again
    (hi, lo, hi for 32 bits; w3 w2 w1 w0 w1 w2 w3 for 64), and accept when every upper word
    read the same twice. Why that is enough for a total (a value that only rises, as the
    registers' unsigned bit pattern of an integer, BCD or positive float total does): the top
    word is monotonic, so equal at the first and last read means constant in between; with it
    constant, the next word is monotonic over its own (nested, shorter) interval, so equal twice
    means constant too; and so on down. When the least significant word is read every upper
    word therefore still holds the value read: all the words belong to that one instant. For a
    gauge (which may go down and up again) the guard rejects any change it sees of the upper
    words, which is the best single-register reads can do.

    When an upper word differs, the attempt is repeated; the last read of the top word starts
    the next attempt (it precedes all later reads, so the argument still holds), so attempt k
    costs 2n − 2 further reads.
    """
    if words < 1 or attempts < 1:
        raise ValueError("words and attempts must be >= 1")
    order = [*range(words - 1, -1, -1), *range(1, words)]  # significances: n-1 .. 0 .. n-1
    if words == 1:  # one register is read atomically
        return Settled((reads[0],)) if reads else NextWord(0)
    stride = 2 * words - 2
    for k in range(attempts):
        attempt = reads[k * stride : k * stride + len(order)]
        if len(attempt) < len(order):
            return NextWord(order[len(attempt)])
        if all(attempt[words - 1 - s] == attempt[words - 1 + s] for s in range(1, words)):
            return Settled(tuple(attempt[:words]))
    return Torn(attempts)


async def read_block(
    reader: RegisterReader, block: ReadBlock, *, device: str, attempts: int = TORN_READ_ATTEMPTS
) -> list[int]:
    """Read one block: in one request, or word by word under the torn-read guard."""
    if not block.guarded:
        return await reader.read(block.function, block.address, block.count)
    reads: list[int] = []
    while True:
        step = torn_read_guard(reads, words=block.count, attempts=attempts)
        if isinstance(step, Settled):
            by_address = {block.word_address(s): w for s, w in enumerate(reversed(step.words))}
            return [by_address[a] for a in range(block.address, block.end)]
        if isinstance(step, Torn):
            raise CommError(
                device,
                f"FC{block.function.code:02d} {block.address}+{block.count} word by word",
                f"the value changed during each of {step.attempts} guarded reads (torn)",
            )
        (word,) = await reader.read(block.function, block.word_address(step.significance), 1)
        reads.append(word)


@dataclass(frozen=True, slots=True)
class Decoded:
    point: Point
    value: float | None  # None: no value (failed read, N/A sentinel, NaN, bad BCD)
    raw: str | None  # the point's registers as read, hex; None when the read failed
    quality: Quality
    factor: float = 1.0  # the CT/VT ratio applied (for counter wrap and rate limits)

    def reading(self) -> dict[str, Any]:
        """The wire reading (docs/wire-format.md)."""
        return {
            "quantity": self.point.quantity,
            "value": self.value,
            "unit": self.point.unit,
            "raw": self.raw,
            "quality": self.quality.value,
        }


def decode_block(
    block: ReadBlock, words: Sequence[int], ratios: Mapping[Ratio, float | None] | None = None
) -> list[Decoded]:
    """Decode one block's quantities; ratios are the effective CT/VT values (None: no number)."""
    if len(words) != block.count:
        raise PlanError(f"expected {block.count} registers at {block.address}, got {len(words)}")
    out = []
    for p in block.points:
        if p.ratio_of is not None:
            continue
        w = words[p.address - block.address : p.end - block.address]
        raw, value = hexwords(w), p.scaled(w)
        factor: float | None = 1.0
        for r in p.transform.ratios if p.transform else ():
            if ratios is None or r not in ratios:
                raise PlanError(f"{p.quantity} needs the {r.value} ratio; none was given")
            f = ratios[r]
            factor = None if f is None or factor is None else factor * f
        if value is None or factor is None:
            out.append(Decoded(p, None, raw, Quality.NOT_AVAILABLE))
            continue
        if p.transform is not None:
            value = exact(value * factor)
        quality = Quality.GOOD if p.in_range(value) else Quality.OUT_OF_RANGE
        out.append(Decoded(p, value, raw, quality, factor))
    return out


def decode_poll(
    plan: Sequence[ReadBlock],
    answers: Sequence[Sequence[int] | None],
    ratios: Ratios = NO_RATIOS,
) -> list[Decoded]:
    """Decode one poll: answers[i] holds plan[i]'s registers, or None when that read failed.

    The meter's own CT/VT ratios are taken from their registers first (a ratio in `ratios`, from
    the device config, wins). A value whose ratio could not be read is comm_error, and one whose
    ratio register holds no positive number is not_available: never a secondary value
    published as primary.
    """
    if len(answers) != len(plan):
        raise PlanError(f"{len(answers)} answers for {len(plan)} planned blocks")
    effective: dict[Ratio, float | None] = {r: ratios.get(r) for r in Ratio}
    unread: set[Ratio] = set()
    for block, words in zip(plan, answers, strict=True):
        for p in block.points:
            if p.ratio_of is None or ratios.get(p.ratio_of) is not None:
                continue
            if words is None:
                unread.add(p.ratio_of)
                continue
            v = p.scaled(words[p.address - block.address : p.end - block.address])
            effective[p.ratio_of] = v if v is not None and v > 0 else None
    out: list[Decoded] = []
    for block, words in zip(plan, answers, strict=True):
        if words is None:
            out += [
                Decoded(p, None, None, Quality.COMM_ERROR)
                for p in block.points
                if p.ratio_of is None
            ]
            continue
        for d in decode_block(block, words, effective):
            t = d.point.transform
            if t is not None and unread.intersection(t.ratios):
                d = Decoded(d.point, None, d.raw, Quality.COMM_ERROR)
            out.append(d)
    return out
