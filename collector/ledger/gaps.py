"""Gaps in a device's sequence numbers, and whether a gateway's data-loss event explains them.

A missing number the gateway reported as dropped (outbox bound exceeded) is a known,
documented loss; one nobody reported is unexplained and needs an investigation (the hash chain
check of a later issue reports those in detail). Pure: runs and reported ranges come in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise


@dataclass(frozen=True, slots=True)
class Reported:
    event_id: int
    first_seq: int
    last_seq: int


@dataclass(frozen=True, slots=True)
class Gap:
    first: int
    last: int  # inclusive
    explained_by: tuple[int, ...]  # event ids; empty: nobody reported these as dropped

    @property
    def count(self) -> int:
        return self.last - self.first + 1


def missing(runs: Iterable[tuple[int, int]], up_to: int = 0) -> list[tuple[int, int]]:
    """Ranges absent from 1..max(last stored, up_to), given stored runs sorted by first."""
    out: list[tuple[int, int]] = []
    expected = 1
    for first, last in runs:
        if first > expected:
            out.append((expected, first - 1))
        expected = max(expected, last + 1)
    if up_to >= expected:
        out.append((expected, up_to))
    return out


def find_gaps(runs: list[tuple[int, int]], reported: list[Reported]) -> list[Gap]:
    """Every missing range, split where the set of events covering it changes.

    Numbers a data-loss event names beyond the last stored message count as missing too: the
    gateway said they will never come.
    """
    up_to = max((r.last_seq for r in reported), default=0)
    gaps: list[Gap] = []
    for lo, hi in missing(runs, up_to):
        cuts = {lo, hi + 1}
        for r in reported:
            for c in (r.first_seq, r.last_seq + 1):
                if lo < c <= hi:
                    cuts.add(c)
        bounds = sorted(cuts)
        for a, b in pairwise(bounds):
            by = tuple(
                sorted(r.event_id for r in reported if r.first_seq <= a and b - 1 <= r.last_seq)
            )
            if gaps and gaps[-1].last == a - 1 and gaps[-1].explained_by == by:
                gaps[-1] = Gap(gaps[-1].first, b - 1, by)
            else:
                gaps.append(Gap(a, b - 1, by))
    return gaps
