"""Energy per batch and medium: the allocation of every meter, gathered with its quality.

`allocate()` is the entry point: batches, topology, readings and metrology in, an `Allocation`
out, from which each batch's energy (per medium: quantity, U at k = 2, coverage, primary-data
share, contributing meters with share, rule and calibration status, method text) and each
meter's closure are read. Pure: no I/O; all inputs are passed in.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

from collector.allocation.allocation import AllocationError, MeterShares, split_meter
from collector.allocation.batch_table import BatchTable
from collector.allocation.consumption import GAP_FACTOR, CounterSeries, prepare
from collector.allocation.counters import CounterReadings
from collector.allocation.method_text import describe
from collector.allocation.timebase import epoch_s, from_epoch_s
from collector.allocation.topology import IdlePolicy, Key, Rule, Topology
from collector.allocation.uncertainty import (
    K_DEFAULT,
    Budget,
    MeterUncertainty,
    reading_difference_u,
)
from collector.batches.model import Batch, DeclaredUnit

F64 = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Calibration:
    meter_id: str
    status: str
    certificate_id: str | None
    basis: str


@dataclass(frozen=True, slots=True)
class MeterContribution:
    meter_id: str
    rule: Rule
    key: Key | None
    idle_policy: IdlePolicy
    sub_meters: tuple[str, ...]
    quantity: float
    share_of_meter: float  # of the meter's metered total over its window in the period
    idle_quantity: float  # the part received from idle intervals
    estimated_quantity: float
    coverage: float  # of the batch's run time, this meter (and its sub-meters) had data
    calibration: tuple[Calibration, ...]  # the meter, then its sub-meters


@dataclass(frozen=True, slots=True)
class MediumEnergy:
    medium: str
    unit: str
    quantity: float
    estimated_quantity: float  # in gaps: delta measured, its time spread assumed
    primary_data_share: float  # measured (not estimated in time) / quantity
    coverage: float  # the lowest coverage among the contributing meters
    standard_uncertainty: float
    expanded_uncertainty: float  # U = k·u_c
    coverage_factor: float
    declared_unit: DeclaredUnit
    per_declared_unit: float | None  # None when the batch is not wholly inside the period
    expanded_uncertainty_per_declared_unit: float | None
    contributions: tuple[MeterContribution, ...]
    method_text: str


@dataclass(frozen=True, slots=True)
class BatchEnergy:
    batch: Batch
    period_start: datetime
    period_end: datetime
    complete: bool  # the batch lies wholly inside the period
    media: tuple[MediumEnergy, ...]


@dataclass(frozen=True, slots=True)
class MeterClosure:
    meter_id: str
    rule: Rule
    medium: str
    unit: str
    window_start: datetime
    window_end: datetime
    total: float
    allocated: float  # to batches
    overhead: float
    residual: float  # fsum(shares) + overhead − total: 0.0 when closed
    coverage: float
    negative_intervals: int
    anomalies: tuple[str, ...]

    @property
    def closed(self) -> bool:
        return self.residual == 0.0


@dataclass(frozen=True, slots=True)
class _Medium:
    quantity: F64
    estimated: F64
    coverage: F64
    u_c: F64


class Allocation:
    def __init__(
        self,
        table: BatchTable,
        topology: Topology,
        shares: Sequence[MeterShares],
        metrology: Mapping[str, MeterUncertainty],
        start: datetime,
        end: datetime,
    ) -> None:
        self.table, self.topology, self.shares = table, topology, tuple(shares)
        self.metrology, self.start, self.end = metrology, start, end
        for ms in self.shares:
            for m in ms.components:
                if m not in metrology:
                    raise AllocationError(
                        m,
                        "no uncertainty record: give its calibration certificate or accuracy class",
                    )
        # (batch, owning MeterShares, position in it), sorted by batch: a batch's rows at once
        batch_of = np.concatenate([np.zeros(0, np.int64), *(ms.batch for ms in self.shares)])
        owner = np.repeat(np.arange(len(self.shares)), [ms.batch.size for ms in self.shares])
        pos = np.concatenate(
            [np.zeros(0, np.int64), *(np.arange(ms.batch.size) for ms in self.shares)]
        )
        order = np.argsort(batch_of, kind="stable")
        self._by_batch = (batch_of[order], owner[order], pos[order])
        self._texts: dict[tuple[int, ...], str] = {}

    @cached_property
    def media(self) -> dict[tuple[str, str], _Medium]:
        """Per (medium, unit), arrays over all batches."""
        n = len(self.table.batches)
        acc: dict[tuple[str, str], tuple[F64, F64, F64, Budget]] = {}
        for ms in self.shares:
            q, est, cov, budget = acc.setdefault(
                (ms.medium, ms.unit), (np.zeros(n), np.zeros(n), np.full(n, np.inf), Budget(n))
            )
            q[ms.batch] += ms.quantity
            est[ms.batch] += ms.estimated
            cov[ms.batch] = np.minimum(cov[ms.batch], ms.coverage)
            for c, m in enumerate(ms.components):
                mu = self.metrology[m]
                e = ms.component_quantity[c]
                budget.independent(ms.batch, np.full(e.size, reading_difference_u(mu.resolution)))
                group = mu.calibration_group or f"meter:{m}"
                budget.correlated(group, m, ms.batch, ms.signs[c] * mu.relative_u * e)
            budget.independent(ms.batch, ms.assignment.key_uncertainty_rel * np.abs(ms.quantity))
        return {k: _Medium(q, est, cov, b.u_c()) for k, (q, est, cov, b) in acc.items()}

    def closures(self) -> list[MeterClosure]:
        return [
            MeterClosure(
                meter_id=ms.assignment.meter_id,
                rule=ms.assignment.rule,
                medium=ms.medium,
                unit=ms.unit,
                window_start=from_epoch_s(ms.w0),
                window_end=from_epoch_s(ms.w1),
                total=ms.total,
                allocated=math.fsum(ms.quantity.tolist()),
                overhead=ms.overhead,
                residual=ms.closure_residual,
                coverage=ms.coverage_window,
                negative_intervals=ms.negative_intervals,
                anomalies=tuple(str(a) for a in ms.anomalies),
            )
            for ms in self.shares
        ]

    def _method_text(self, owners: tuple[int, ...]) -> str:
        if owners not in self._texts:
            self._texts[owners] = describe(
                [(self.shares[i].assignment, self.shares[i].policy) for i in owners]
            )
        return self._texts[owners]

    @cached_property
    def _rows(self) -> list[tuple[list[float], list[float], list[float], list[float],
                                  tuple[Calibration, ...]]]:  # fmt: skip
        """Per MeterShares, its columns as Python floats (reading numpy scalars one by one for
        10,000 batches costs more than the allocation itself)."""
        out = []
        for ms in self.shares:
            cal = tuple(
                Calibration(m, mu.calibration_status, mu.certificate_id, mu.basis)
                for m in ms.components
                for mu in (self.metrology[m],)
            )
            cols = (ms.quantity, ms.idle, ms.estimated, ms.coverage)
            out.append((*(c.tolist() for c in cols), cal))
        return out

    def _contribution(self, owner: int, p: int) -> MeterContribution:
        ms = self.shares[owner]
        a = ms.assignment
        quantity, idle, estimated, coverage, calibration = self._rows[owner]
        return MeterContribution(
            meter_id=a.meter_id,
            rule=a.rule,
            key=None if a.rule is Rule.DEDICATED else a.effective_key,
            idle_policy=ms.policy,
            sub_meters=a.sub_meters,
            quantity=quantity[p],
            share_of_meter=quantity[p] / ms.total if ms.total else 0.0,
            idle_quantity=idle[p],
            estimated_quantity=estimated[p],
            coverage=coverage[p],
            calibration=calibration,
        )

    def batch(self, batch_id: str) -> BatchEnergy:
        try:
            b = self.table.index[batch_id]
        except KeyError:
            raise KeyError(f"batch {batch_id!r} is not among the allocated batches") from None
        batch = self.table.batches[b]
        complete = bool(
            epoch_s(self.start) <= self.table.start[b] and self.table.end[b] <= epoch_s(self.end)
        )
        idx, owner, pos = self._by_batch
        lo, hi = np.searchsorted(idx, [b, b + 1])
        found: dict[tuple[str, str], list[tuple[int, int]]] = {}
        for o, p in zip(owner[lo:hi].tolist(), pos[lo:hi].tolist(), strict=True):
            ms = self.shares[o]
            found.setdefault((ms.medium, ms.unit), []).append((o, p))
        media = []
        for (medium, unit), rows in sorted(found.items()):
            arr = self.media[(medium, unit)]
            q, u = float(arr.quantity[b]), float(arr.u_c[b])
            est = float(arr.estimated[b])
            big_u = K_DEFAULT * u
            per = batch.produced_quantity
            contributions = tuple(self._contribution(o, p) for o, p in rows)
            owners = tuple(sorted(o for o, _ in rows))
            media.append(
                MediumEnergy(
                    medium=medium,
                    unit=unit,
                    quantity=q,
                    estimated_quantity=est,
                    primary_data_share=max(0.0, 1.0 - abs(est) / abs(q)) if q else 1.0,
                    coverage=float(arr.coverage[b]),
                    standard_uncertainty=u,
                    expanded_uncertainty=big_u,
                    coverage_factor=K_DEFAULT,
                    declared_unit=batch.declared_unit,
                    per_declared_unit=q / per if complete else None,
                    expanded_uncertainty_per_declared_unit=big_u / per if complete else None,
                    contributions=contributions,
                    method_text=self._method_text(owners),
                )
            )
        return BatchEnergy(batch, self.start, self.end, complete, tuple(media))

    def batches(self) -> Iterator[BatchEnergy]:
        for b in self.table.batches:
            yield self.batch(b.id)


def _check_period(start: datetime, end: datetime) -> None:
    epoch_s(start), epoch_s(end)  # refuses naive instants, naming them
    if end <= start:
        raise ValueError(f"period end {end.isoformat()} must be after start {start.isoformat()}")


def allocate_series(
    batches: Sequence[Batch],
    topology: Topology,
    series: Mapping[str, CounterSeries],
    metrology: Mapping[str, MeterUncertainty],
    start: datetime,
    end: datetime,
) -> Allocation:
    """Allocate over [start, end) from prepared counter series (see consumption.prepare)."""
    _check_period(start, end)
    table = BatchTable.of(batches)
    shares = [
        split_meter(a, topology.policy_of(a), epoch_s(w0), epoch_s(w1), table, series)
        for a, w0, w1 in topology.active(start, end)
    ]
    return Allocation(table, topology, shares, metrology, start, end)


def allocate(
    batches: Sequence[Batch],
    topology: Topology,
    readings: Mapping[str, CounterReadings],
    metrology: Mapping[str, MeterUncertainty],
    start: datetime,
    end: datetime,
    *,
    gap_factor: float = GAP_FACTOR,
) -> Allocation:
    """Allocate every meter of the topology over [start, end) to the batches."""
    _check_period(start, end)
    needed = {m for a, _, _ in topology.active(start, end) for m in (a.meter_id, *a.sub_meters)}
    series = {m: prepare(readings[m], gap_factor=gap_factor) for m in needed if m in readings}
    return allocate_series(batches, topology, series, metrology, start, end)
