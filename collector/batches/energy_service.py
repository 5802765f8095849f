"""Energy per batch for footprint engines: the adapter between the stores and `allocate()`.

Gathers the batches of the accounting period, the topology version, each meter's usable counter
readings and counter events (ledger/counter_readings.py) and what the registry says about its
uncertainty (batches/metrology.py), runs the pure allocation (allocation/energy.py) once for the
period and returns every batch's figures (`period_energy`) or one batch's with the closure of
every meter that contributed (`energy`): both read the same `PeriodEnergy`.

The figures' JSON models are in energy_out.py, the choice of the period in
period.py.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from collector.allocation.counters import CounterReadings
from collector.allocation.energy import Allocation, allocate
from collector.allocation.topology import Topology
from collector.allocation.uncertainty import MeterUncertainty
from collector.batches.energy_out import (
    BatchEnergyOut,
    BatchFiguresOut,
    ClosureOut,
    PeriodEnergyOut,
    PeriodOut,
    closure_out,
    medium_out,
)
from collector.batches.metrology import MetrologyError, meter_uncertainty, register_step
from collector.batches.model import Batch
from collector.batches.period import PeriodError, choose_period, requested_period
from collector.batches.store import BatchRecord, BatchStore, TopologyRecord
from collector.batches.topology_file import COUNTER_OF_MEDIUM
from collector.ledger.counter_readings import CounterStore
from collector.metrology.calibration import validity_window
from collector.metrology.certificates import StoredCertificate
from collector.metrology.registry import DeviceRecord
from collector.metrology.registry_store import RegistryStore
from device_profiles.vocabulary import VOCABULARY


class NotFound(LookupError):
    pass


class EnergyUnavailable(ValueError):
    """The stored data does not allow the computation; the message says what to add or fix."""


@dataclass(frozen=True, slots=True)
class PeriodEnergy:
    """One allocation of a period: each batch's figures, or why the uncertainty of its meters
    over its run cannot be stated (the only reason one batch fails and the others do not)."""

    period: PeriodOut
    topology_version: int
    batches_in_period: int
    figures: dict[str, BatchFiguresOut]
    unavailable: dict[str, str]  # batch id -> the reason, naming the meter and the fix
    closures: list[ClosureOut]  # empty when no batch could be computed

    def batch(self, batch_id: str) -> BatchEnergyOut:
        """The batch's figures as GET /api/v1/batches/{id}/energy reports them."""
        if batch_id in self.unavailable:
            raise EnergyUnavailable(self.unavailable[batch_id])
        f = self.figures.get(batch_id)
        if f is None:
            raise NotFound(
                f"batch {batch_id} is not among the batches of the period "
                f"{self.period.start.isoformat()} – {self.period.end.isoformat()}"
            )
        contributing = {c.meter_id for m in f.media for c in m.contributions}
        return BatchEnergyOut(
            batch=f.batch,
            batch_version=f.batch_version,
            period=self.period,
            complete=f.complete,
            topology_version=self.topology_version,
            batches_in_period=self.batches_in_period,
            media=f.media,
            closures=[c for c in self.closures if c.meter_id in contributing],
        )

    def out(self) -> PeriodEnergyOut:
        """Every batch's figures; refused if any batch has none (a partial answer would read as
        a complete period)."""
        if self.unavailable:
            (first, why), more = next(iter(self.unavailable.items())), len(self.unavailable) - 1
            also = f" (and {more} more batch(es) of the period)" if more else ""
            raise EnergyUnavailable(f"batch {first}{also}: {why}")
        return PeriodEnergyOut(
            period=self.period,
            topology_version=self.topology_version,
            batches_in_period=self.batches_in_period,
            batches=list(self.figures.values()),
            closures=self.closures,
        )


@dataclass(slots=True)
class _Meter:
    """One meter of the period as the stores describe it."""

    id: str
    device: DeviceRecord | None
    certificates: list[StoredCertificate]
    quantity: str
    readings: CounterReadings
    resolution: float
    bounds: list[datetime]  # every certificate's validity bounds, sorted
    ratings: list[MeterUncertainty | str] = field(default_factory=list, init=False)  # str: why not
    _index: dict[tuple[int, ...], int] = field(default_factory=dict, init=False)
    _distinct: dict[MeterUncertainty | str, int] = field(default_factory=dict, init=False)

    def rating(self, start: datetime, end: datetime) -> int:
        """Index in `ratings` of the meter's uncertainty over a run [start, end]: equal ratings
        share an index. The certificate in force only changes at a validity bound, so runs whose
        ends fall between the same bounds (or on the same one) share the computation, which
        would otherwise cost more than the allocation for 10,000 batches."""
        key = tuple(f(self.bounds, t) for t in (start, end) for f in (bisect_left, bisect_right))
        found = self._index.get(key)
        if found is None:
            try:
                got: MeterUncertainty | str = meter_uncertainty(
                    self.device, self.certificates, self.quantity, start, end, self.resolution,
                    self.id,
                )  # fmt: skip
            except MetrologyError as exc:
                got = str(exc)
            found = self._distinct.setdefault(got, len(self.ratings))
            if found == len(self.ratings):
                self.ratings.append(got)
            self._index[key] = found
        return found


class BatchEnergyService:
    def __init__(
        self, batches: BatchStore, registry: RegistryStore, counters: CounterStore
    ) -> None:
        self.batches, self.registry, self.counters = batches, registry, counters

    def energy(
        self,
        batch_id: str,
        *,
        period_start: datetime | None = None,
        period_end: datetime | None = None,
        tz: str = "UTC",
        topology_version: int | None = None,
    ) -> BatchEnergyOut:
        record = self.batches.batch(batch_id)
        if record is None:
            raise NotFound(f"batch {batch_id} is not recorded; see GET /api/v1/batches")
        topo = self._topology(topology_version)
        period = choose_period(record.batch, period_start, period_end, tz)
        if not (record.batch.start < period.end and period.start < record.batch.end):
            raise PeriodError(
                f"batch {batch_id} ran {record.batch.start.isoformat()} – "
                f"{record.batch.end.isoformat()}, outside the period; choose one that overlaps it"
            )
        return self._allocate(period, topo, only={batch_id}).batch(batch_id)

    def period_energy(
        self, start: datetime, end: datetime, *, topology_version: int | None = None
    ) -> PeriodEnergyOut:
        """Every batch of [start, end) and every meter's closure, from one allocation; each
        batch's figures are those of `energy()` over the same period."""
        period = requested_period(start, end)
        return self.allocate_period(period, topology_version=topology_version).out()

    def allocate_period(
        self, period: PeriodOut, *, topology_version: int | None = None
    ) -> PeriodEnergy:
        """The allocation of the period, for callers that use each batch on its own (a batch
        whose meters have no stated uncertainty over its run fails alone: PeriodEnergy.batch)."""
        return self._allocate(period, self._topology(topology_version))

    def _topology(self, version: int | None) -> TopologyRecord:
        topo = self.batches.topology(version)
        if topo is None:
            raise (NotFound if version else EnergyUnavailable)(
                f"topology version {version} does not exist"
                if version
                else "no topology is set: metertrace topology set plant-topology.yaml"
            )
        return topo

    def _allocate(
        self, period: PeriodOut, topo: TopologyRecord, only: Collection[str] | None = None
    ) -> PeriodEnergy:
        """Allocate the period once; figures for its batches (or `only` those)."""
        records = self.batches.batches(start=period.start, end=period.end)
        batches = [r.batch for r in records]
        try:
            meters = self._meters(topo, period, batches)
        except ValueError as exc:  # the domain's errors (metrology, counters, ...)
            raise EnergyUnavailable(str(exc)) from None
        # Only the calibration terms depend on the batch (its run decides the certificate in
        # force): batches with the same rating of every meter share one Allocation's budget.
        groups: dict[tuple[int, ...], list[BatchRecord]] = {}
        unavailable: dict[str, str] = {}
        for r in records:
            if only is None or r.batch.id in only:
                key = tuple(m.rating(r.batch.start, r.batch.end) for m in meters)
                why = _unrated(meters, key)
                if why is None:
                    groups.setdefault(key, []).append(r)
                else:
                    unavailable[r.batch.id] = why
        if not groups and not unavailable:
            # no batch: the meters' closures still stand; with no batch to price, the
            # ratings over the period itself only have to exist
            key = tuple(m.rating(period.start, period.end) for m in meters)
            if (why := _unrated(meters, key)) is not None:
                raise EnergyUnavailable(why)
            groups[key] = []
        first: Allocation | None = None
        figures: dict[str, BatchFiguresOut] = {}
        for key, members in groups.items():
            rated = {
                m.id: rating
                for m, i in zip(meters, key, strict=True)
                if isinstance(rating := m.ratings[i], MeterUncertainty)
            }  # every one is: a batch with a reason was left out above
            try:
                if first is None:
                    readings = {m.id: m.readings for m in meters}
                    alloc = first = allocate(
                        batches, topo.topology.topology, readings, rated, period.start,
                        period.end,
                    )  # fmt: skip
                else:  # the same split, only its uncertainty budget priced with these ratings
                    alloc = Allocation(first.table, first.topology, first.shares, rated,
                                       first.start, first.end)  # fmt: skip
                for r in members:
                    be = alloc.batch(r.batch.id)
                    figures[r.batch.id] = BatchFiguresOut(
                        batch=r.batch,
                        batch_version=r.version,
                        complete=be.complete,
                        media=[medium_out(m) for m in be.media],
                    )
            except ValueError as exc:  # the domain's errors (allocation, counters, batches, ...)
                raise EnergyUnavailable(str(exc)) from None
        return PeriodEnergy(
            period=period,
            topology_version=topo.version,
            batches_in_period=len(batches),
            figures={r.batch.id: figures[r.batch.id] for r in records if r.batch.id in figures},
            unavailable=unavailable,
            closures=[] if first is None else [closure_out(c) for c in first.closures()],
        )

    def _meters(
        self, topo: TopologyRecord, period: PeriodOut, batches: Sequence[Batch]
    ) -> list[_Meter]:
        doc = topo.topology
        cuts = _cuts(doc.topology, period, batches)
        ids = sorted(
            {m for a, _, _ in doc.topology.active(period.start, period.end)
             for m in (a.meter_id, *a.sub_meters)}
        )  # fmt: skip
        meters = []
        for m in ids:
            device = self.registry.device(m)
            settings = doc.settings(m)
            qty = settings.quantity
            if qty is None:
                if device is None:
                    raise MetrologyError(
                        f"meter {m} is not registered, so its medium and counter are unknown; "
                        f"register it or name meters.{m}.quantity in the topology"
                    )
                qty = COUNTER_OF_MEDIUM[device.spec.medium]
            if device is not None and VOCABULARY[qty].medium != device.spec.medium:
                raise MetrologyError(
                    f"meter {m} is registered as {device.spec.medium} but the topology reads "
                    f"{qty}; correct meters.{m}.quantity"
                )
            # only what the allocation evaluates: the counter at this meter's cuts
            r = self.counters.counter_at(m, qty, period.start, period.end, cuts[m])
            resolution = settings.resolution
            if resolution is None:
                if device is None:
                    raise MetrologyError(
                        f"meter {m} is not registered: set meters.{m}.resolution in the topology"
                    )
                largest = float(abs(r.value).max()) if r.value.size else 0.0
                resolution = register_step(device, qty, largest)
            certs = self.registry.certificates(m)
            bounds = sorted({t for c in certs for t in validity_window(c.certificate)})
            meters.append(_Meter(m, device, certs, qty, r, resolution, bounds))
        return meters


def _unrated(meters: list[_Meter], key: tuple[int, ...]) -> str | None:
    """Why the first meter (in id order) has no uncertainty for these ratings, or None."""
    return next(
        (why for m, i in zip(meters, key, strict=True) if isinstance(why := m.ratings[i], str)),
        None,
    )


def _cuts(
    topology: Topology, period: PeriodOut, batches: Sequence[Batch]
) -> dict[str, list[datetime]]:
    """Per meter, every instant at which the allocation evaluates its counter: the period's
    edges, its assignments' windows, and the starts and ends (clipped to the window) of the
    batches on the lines it serves, as a main or sub-meter (allocation.split_meter)."""
    by_line: dict[str, list[Batch]] = {}
    for b in batches:
        by_line.setdefault(b.line, []).append(b)
    out: dict[str, set[datetime]] = {}
    for a, w0, w1 in topology.active(period.start, period.end):
        at = {period.start, period.end, w0, w1}
        for line in a.lines:
            for b in by_line.get(line, ()):
                if b.start < w1 and b.end > w0:
                    at |= {max(b.start, w0), min(b.end, w1)}
        for m in (a.meter_id, *a.sub_meters):
            out.setdefault(m, {period.start, period.end}).update(at)
    return {m: sorted(x) for m, x in out.items()}
