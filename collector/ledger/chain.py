"""Verifying a device's hash chain: gaps, broken links, reordering and replays.

Each message names the chain hash of its predecessor. Given the stored messages of one device,
this says exactly which sequence numbers are missing, which links do not hold (an altered,
reordered or substituted message), where time runs backwards, and which messages arrived again
after later ones (replays). Pure: the collector feeds it rows, a verifier feeds it a bundle.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from metertrace.wire import GENESIS


@dataclass(frozen=True, slots=True)
class Link:
    seq: int
    hash: str
    prev: str
    ts: datetime


@dataclass(frozen=True, slots=True)
class Gap:
    first: int  # first missing sequence number
    last: int  # last missing sequence number
    explained: bool  # covered by a data-loss event from the gateway

    @property
    def count(self) -> int:
        return self.last - self.first + 1


@dataclass
class ChainReport:
    device: str
    messages: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    gaps: list[Gap] = field(default_factory=list)
    broken_links: list[int] = field(default_factory=list)  # seq whose prev != hash(seq - 1)
    time_reversals: list[int] = field(default_factory=list)  # seq stamped before seq - 1
    replays: list[int] = field(default_factory=list)  # seq received again after later ones

    @property
    def intact(self) -> bool:
        """No unexplained gap, no broken link, no time reversal."""
        return not (
            self.broken_links or self.time_reversals or any(not g.explained for g in self.gaps)
        )

    def summary(self) -> str:
        if self.intact and not self.gaps and not self.replays:
            return f"{self.device}: {self.messages} messages, chain intact"
        parts = []
        for g in self.gaps:
            kind = "explained gap" if g.explained else "gap"
            parts.append(f"{kind} seq {g.first}..{g.last} ({g.count} missing)")
        if self.broken_links:
            parts.append(f"broken link at seq {_ranges(self.broken_links)}")
        if self.time_reversals:
            parts.append(f"time runs backwards at seq {_ranges(self.time_reversals)}")
        if self.replays:
            parts.append(f"replayed seq {_ranges(self.replays)}")
        return f"{self.device}: " + "; ".join(parts)


def _ranges(seqs: Sequence[int]) -> str:
    out: list[str] = []
    start = prev = seqs[0]
    for s in [*seqs[1:], None]:
        if s is not None and s == prev + 1:
            prev = s
            continue
        out.append(str(start) if start == prev else f"{start}-{prev}")
        if s is not None:
            start = prev = s
    return ", ".join(out)


def _explained(first: int, last: int, losses: Iterable[tuple[int, int]]) -> bool:
    covered = sorted(r for r in losses if r[1] >= first and r[0] <= last)
    at = first
    for lo, hi in covered:
        if lo > at:
            return False
        at = max(at, hi + 1)
    return at > last


def verify_chain(
    device: str,
    links: Iterable[Link],
    *,
    losses: Iterable[tuple[int, int]] = (),
    arrival_order: Sequence[int] = (),
    replays: Iterable[int] = (),
) -> ChainReport:
    """Check the chain of one device.

    links: the stored messages (any order; one per seq). losses: seq ranges a data-loss event
    declared dropped. arrival_order: the seq of every received copy in arrival order, duplicates
    included; a copy that arrives after a higher seq had already arrived is a replay.
    replays: such late copies as the store recorded them (instead of, or with, arrival_order).
    """
    by_seq = {link.seq: link for link in links}
    report = ChainReport(device, messages=len(by_seq))
    losses = list(losses)
    if not by_seq:
        return report
    seqs = sorted(by_seq)
    report.first_seq, report.last_seq = seqs[0], seqs[-1]
    if seqs[0] > 1:
        report.gaps.append(Gap(1, seqs[0] - 1, _explained(1, seqs[0] - 1, losses)))
    elif by_seq[1].prev != GENESIS:
        report.broken_links.append(1)
    for a, b in itertools.pairwise(seqs):
        la, lb = by_seq[a], by_seq[b]
        if b > a + 1:
            report.gaps.append(Gap(a + 1, b - 1, _explained(a + 1, b - 1, losses)))
        elif lb.prev != la.hash:
            report.broken_links.append(b)
        if lb.ts < la.ts:
            report.time_reversals.append(b)
    seen: set[int] = set()
    highest = 0
    for s in arrival_order:
        if s in seen and s < highest:
            report.replays.append(s)
        seen.add(s)
        highest = max(highest, s)
    report.replays = sorted(set(report.replays) | set(replays))
    return report
