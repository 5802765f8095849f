"""The allocation method in words (PACT allocationRulesDescription), generated from the
topology actually used, in ISO 14044 4.3.4.2's order of preference."""

from __future__ import annotations

from collections.abc import Sequence

from collector.allocation.topology import IdlePolicy, Key, MeterAssignment, Rule

PREAMBLE = (
    "Allocation follows the order of preference of ISO 14044:2006, 4.3.4.2 (adopted by ISO "
    "14067:2018 and GB/T 24067-2024): allocation is first avoided by subdivision (sub-metering, "
    "and time-slicing a meter to the batch running on its line); where a meter serves several "
    "lines its consumption is partitioned by a physical relationship; other relationships come "
    "last."
)
CLOSING = (
    "Meter counters are interpolated linearly between readings at every batch start and end. "
    "Each meter's shares, with its unallocated overhead, sum exactly to its metered consumption "
    "over the period (checked). Economic allocation is not used."
)

_KEY_TEXT = {
    Key.PRODUCED_QUANTITY: "produced quantity in each interval (production assumed uniform "
    "over each batch)",
    Key.MASS: "mass produced in each interval (production assumed uniform over each batch)",
    Key.RUN_TIME: "run time (equal shares among the batches running at the same time)",
}

_IDLE_TEXT = {
    IdlePolicy.NEXT_BATCH: "goes to the next batch on the meter's lines",
    IdlePolicy.PREVIOUS_BATCH: "goes to the previous batch on the meter's lines",
    IdlePolicy.SPREAD: "is spread over all batches of the meter's lines in the period by their "
    "key (produced quantity unless stated)",
    IdlePolicy.OVERHEAD: "is reported as unallocated overhead, not carried by any batch",
}


def _lines(a: MeterAssignment) -> str:
    return ", ".join(a.lines)


def _split(a: MeterAssignment) -> str:
    if len(a.lines) == 1:
        return f"attributed to the batch running on line {a.lines[0]}"
    if a.key is Key.FIXED_SHARES:
        assert a.fixed_shares is not None
        shares = ", ".join(f"{line} {share:.1%}" for line, share in a.fixed_shares.items())
        return (
            f"split among lines {_lines(a)} by fixed shares ({shares}; basis: "
            f"{a.key_basis or 'not stated'}), renormalised among the lines with a batch running"
        )
    basis = f"; basis: {a.key_basis}" if a.key_basis else ""
    return f"partitioned among the batches running at the same time on lines {_lines(a)} by " + (
        _KEY_TEXT[a.effective_key] + basis
    )


def _sentence(a: MeterAssignment) -> tuple[int, str]:
    """(ISO 4.3.4.2 step, sentence) for one meter."""
    if a.rule is Rule.DEDICATED:
        return 1, (
            f"meter {a.meter_id} is dedicated to line {a.lines[0]}: its consumption while a batch "
            "runs there is that batch's"
        )
    step = 1 if len(a.lines) == 1 else (3 if a.key is Key.FIXED_SHARES else 2)
    if a.rule is Rule.RESIDUAL:
        subs = ", ".join(a.sub_meters)
        return step, f"residual of main meter {a.meter_id} minus sub-meter(s) {subs}, {_split(a)}"
    return step, f"meter {a.meter_id}: {_split(a)}"


def describe(items: Sequence[tuple[MeterAssignment, IdlePolicy]]) -> str:
    """Method text for the given assignments (with their effective idle policies)."""
    steps: dict[int, list[str]] = {1: [], 2: [], 3: []}
    for a, _ in sorted(items, key=lambda x: x[0].meter_id):
        step, text = _sentence(a)
        steps[step].append(text)
    out = [PREAMBLE]
    heads = {
        1: "Allocation avoided (subdivision)",
        2: "Partitioned by a physical relationship",
        3: "Partitioned by another relationship",
    }
    for step, texts in steps.items():
        if texts:
            out.append(f"{heads[step]}: " + "; ".join(texts) + ".")
    by_policy: dict[IdlePolicy, list[str]] = {}
    for a, policy in items:
        by_policy.setdefault(policy, []).append(a.meter_id)
    for policy, meters in sorted(by_policy.items()):
        out.append(
            f"Energy metered while no batch runs (idle, changeover) on meter(s) "
            f"{', '.join(sorted(meters))} {_IDLE_TEXT[policy]}."
        )
    out.append(CLOSING)
    return " ".join(out)
