"""What each message of an ingested batch turned out to be, from what the database said.

A batch is written with one INSERT ... ON CONFLICT DO NOTHING of each key's first offer; the
database answers which keys it inserted and, for the others, the hash already stored. From
that, every offer is judged as if the batch's messages had been sent one after the other: the
first offer of an inserted key is STORED, a later offer of the same key is compared with it,
an offer of a key stored before is compared with the stored hash. Pure: the store feeds it.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence, Set
from typing import TypeVar

from collector.ledger.port import Outcome

K = TypeVar("K", bound=Hashable)


def first_offers(keys: Sequence[K]) -> dict[K, int]:
    """Each key's first position in the batch: the offer that is inserted."""
    first: dict[K, int] = {}
    for i, key in enumerate(keys):
        first.setdefault(key, i)
    return first


def settle(
    offers: Sequence[tuple[K, str]], inserted: Set[K], stored: Mapping[K, str]
) -> list[Outcome]:
    """offers: (key, hash) in batch order; inserted: the keys this batch inserted (the first
    offer of each); stored: the hash stored before the batch, for every other key offered."""
    first = first_offers([key for key, _ in offers])
    out: list[Outcome] = []
    for i, (key, digest) in enumerate(offers):
        if key in inserted:
            if first[key] == i:
                out.append(Outcome.STORED)
                continue
            held = offers[first[key]][1]
        else:
            held = stored[key]
        out.append(Outcome.DUPLICATE if digest == held else Outcome.CONFLICT)
    return out


def late_duplicates(
    keys: Sequence[tuple[str, int]],
    outcomes: Sequence[Outcome],
    newest_before: Mapping[str, int],
) -> list[tuple[str, int, int]]:
    """(device, seq, newest seq) of each duplicate that arrived when a newer seq of its device
    was stored already (replay evidence); newest_before: each device's highest stored seq
    before the batch, the batch's own messages count from their place in it."""
    newest = dict(newest_before)
    late: list[tuple[str, int, int]] = []
    for (device, seq), outcome in zip(keys, outcomes, strict=True):
        top = newest.get(device)
        if outcome is Outcome.STORED:
            newest[device] = seq if top is None else max(top, seq)
        elif outcome is Outcome.DUPLICATE and top is not None and top > seq:
            late.append((device, seq, top))
    return late
