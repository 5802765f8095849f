"""One meter's consumption over a window, split into batch shares and overhead, vectorised.

The window is cut at every start and end of a batch on the meter's lines; in each elementary
interval the set of running batches is constant. The meter's (or, for a residual meter, the main
meter's minus its sub-meters') consumption in an interval goes to the batches running in it:
all of it to the one batch of a dedicated meter's line, otherwise split by the key's weight in
the interval. Intervals where nothing runs are idle and follow the idle policy. The shares and
the overhead are then made to sum exactly to the metered total (exact_sum).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from collector.allocation.batch_table import BatchTable
from collector.allocation.consumption import Anomaly, CounterSeries
from collector.allocation.exact_sum import close_exactly
from collector.allocation.topology import IdlePolicy, Key, MeterAssignment, Rule

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]


class AllocationError(ValueError):
    def __init__(self, meter_id: str, detail: str) -> None:
        self.meter_id, self.detail = meter_id, detail
        super().__init__(f"meter {meter_id}: {detail}")


@dataclass(frozen=True, slots=True)
class MeterShares:
    """The split of one assignment's consumption over its window [w0, w1)."""

    assignment: MeterAssignment
    policy: IdlePolicy
    w0: float
    w1: float
    medium: str
    unit: str
    batch: I64  # batch indices (BatchTable) of the batches on the meter's lines in the window
    quantity: F64  # per batch; with overhead, sums (fsum) exactly to total
    estimated: F64  # part of quantity that fell in gaps (estimated in time)
    idle: F64  # part of quantity that came from idle intervals (by the policy)
    coverage: F64  # per batch: fraction of its run time in the window with data
    components: tuple[str, ...]  # meter ids: the meter, then sub-meters (subtracted)
    signs: F64
    component_quantity: F64  # (components, batches): each meter's part, before the sign
    total: float
    overhead: float
    closure_residual: float  # fsum(quantity) + overhead − total; 0.0 when closed
    coverage_window: float
    negative_intervals: int  # residual intervals below zero (sub-meters read more than main)
    anomalies: tuple[Anomaly, ...]


def _weights(a: MeterAssignment, t: BatchTable, bi: I64, run: F64) -> tuple[F64, F64, F64]:
    """Per batch: (rate per second while running, weight for ties, weight for the spread)."""
    key, meter = a.effective_key, a.meter_id
    dur = t.duration[bi]
    if key is Key.PRODUCED_QUANTITY:
        units = np.unique(t.unit[bi])
        if units.size > 1:
            names = ", ".join(t.unit_name(int(u)) for u in units)
            raise AllocationError(
                meter,
                f"key produced_quantity weighs batches of different declared units ({names}); "
                "declare key mass or run_time for this meter",
            )
        total = t.quantity[bi]
    elif key is Key.MASS:
        total = t.mass_kg[bi]
        missing = np.flatnonzero(np.isnan(total))
        if missing.size:
            ids = [t.batches[int(bi[i])].id for i in missing[:5]]
            raise AllocationError(meter, f"key mass needs mass_kg of batches {ids}")
    elif key is Key.RUN_TIME:
        total = dur
    else:
        assert a.fixed_shares is not None
        share = np.array([a.fixed_shares[t.line_names[int(c)]] for c in t.line[bi]])
        line_run = np.bincount(t.line[bi], weights=run, minlength=len(t.line_names))
        return share, share, share * run / line_run[t.line[bi]]
    rate = total / dur
    return rate, total, rate * run


@dataclass(frozen=True, slots=True)
class _Idle:
    component: F64  # (components, batches): idle energy received, per meter
    estimated: F64  # per batch
    claimed: F64  # per interval: the fraction of it that went to batches


def _split_idle(
    policy: IdlePolicy,
    idle: NDArray[np.bool_],
    k0: I64,
    k1: I64,
    tie: F64,
    spread: F64,
    d_e: F64,
    est_net: F64,
) -> _Idle:
    n_comp, n_int = d_e.shape
    nb = k0.size
    if policy is IdlePolicy.OVERHEAD or nb == 0 or not idle.any():
        return _Idle(np.zeros((n_comp, nb)), np.zeros(nb), np.zeros(n_int))
    if policy is IdlePolicy.SPREAD:
        share = spread / spread.sum()
        return _Idle(
            np.outer(d_e[:, idle].sum(axis=1), share),
            share * est_net[idle].sum(),
            idle.astype(np.float64),
        )
    # the interval just before each batch starts, or just after it ends
    k = k0 - 1 if policy is IdlePolicy.NEXT_BATCH else k1.copy()
    ok = (k >= 0) & (k < n_int)
    ok[ok] = idle[k[ok]]
    pos = np.flatnonzero(ok)
    k = k[pos]
    share = tie[pos] / np.bincount(k, weights=tie[pos], minlength=n_int)[k]
    return _Idle(
        np.stack([np.bincount(pos, share * d_e[c, k], minlength=nb) for c in range(n_comp)]),
        np.bincount(pos, share * est_net[k], minlength=nb).astype(np.float64),
        np.bincount(k, share, minlength=n_int).astype(np.float64),
    )


def split_meter(
    a: MeterAssignment,
    policy: IdlePolicy,
    w0: float,
    w1: float,
    table: BatchTable,
    series: Mapping[str, CounterSeries],
) -> MeterShares:
    components = (a.meter_id, *a.sub_meters)
    missing = [m for m in components if m not in series]
    if missing:
        raise AllocationError(a.meter_id, f"no readings for meter(s) {missing}")
    main = series[a.meter_id]
    for m in a.sub_meters:
        if series[m].unit != main.unit:
            raise AllocationError(
                a.meter_id, f"sub-meter {m} reads {series[m].unit}, the main meter {main.unit}"
            )
    signs = np.array([1.0] + [-1.0] * len(a.sub_meters))
    codes = [c for c in (table.line_code(x) for x in a.lines) if c is not None]
    sel = np.isin(table.line, codes) & (table.start < w1) & (table.end > w0)
    bi = np.flatnonzero(sel)
    s, e = np.maximum(table.start[bi], w0), np.minimum(table.end[bi], w1)
    cuts = np.unique(np.concatenate(([w0, w1], s, e)))
    n_int = cuts.size - 1
    ivs = [series[m].intervals(cuts) for m in components]
    d_e = np.stack([iv.quantity for iv in ivs])  # (components, intervals)
    net = signs @ d_e
    gross = np.abs(d_e).sum(axis=0)
    est_abs = np.abs(np.stack([iv.estimated for iv in ivs])).sum(axis=0)
    est_frac = np.clip(np.divide(est_abs, gross, out=np.zeros(n_int), where=gross > 0), 0, 1)
    length = np.diff(cuts)
    unc = np.minimum(np.sum([iv.uncovered_s for iv in ivs], axis=0), length)

    k0, k1 = np.searchsorted(cuts, s), np.searchsorted(cuts, e)
    counts = k1 - k0
    inc_b = np.repeat(np.arange(bi.size), counts)
    inc_k = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    inc_k += np.repeat(k0, counts)
    run = e - s
    # On one line one batch runs at a time: the key cannot change the split nor break a tie,
    # so it is only evaluated (and its data required) where it matters.
    single = len(a.lines) == 1 or a.rule is Rule.DEDICATED
    rate = tie = spread = np.ones(bi.size)
    if bi.size and (not single or policy is IdlePolicy.SPREAD):
        rate, tie, spread = _weights(a, table, bi, run)
        if single:
            rate = tie = np.ones(bi.size)
    w = rate[inc_b] * length[inc_k]
    den = np.bincount(inc_k, weights=w, minlength=n_int)
    frac = w / den[inc_k]
    idle = den == 0
    est_net = est_frac * net
    got = _split_idle(policy, idle, k0, k1, tie, spread, d_e, est_net)
    nb = bi.size
    comp = got.component + np.stack(
        [np.bincount(inc_b, frac * d_e[c, inc_k], minlength=nb) for c in range(len(components))]
    )
    est = np.bincount(inc_b, frac * est_net[inc_k], minlength=nb) + got.estimated
    overhead = float(np.sum(net[idle] * (1.0 - got.claimed[idle])))
    uncovered = np.bincount(inc_b, unc[inc_k], minlength=nb)
    edges = np.array([w0, w1])
    total = float(signs @ np.array([np.diff(series[m].at(edges))[0] for m in components]))
    parts, residual = close_exactly(np.append(signs @ comp, overhead), total)
    return MeterShares(
        assignment=a,
        policy=policy,
        w0=w0,
        w1=w1,
        medium=main.medium,
        unit=main.unit,
        batch=bi,
        quantity=parts[:-1],
        estimated=est,
        idle=signs @ got.component,
        coverage=1.0 - uncovered / run,
        components=components,
        signs=signs,
        component_quantity=comp,
        total=total,
        overhead=float(parts[-1]),
        closure_residual=residual,
        coverage_window=1.0 - float(unc.sum()) / (w1 - w0),
        negative_intervals=int(np.count_nonzero(net < 0)) if a.sub_meters else 0,
        anomalies=tuple(
            x for m in components for x in series[m].anomalies if x.t_to > w0 and x.t_from < w1
        ),
    )
