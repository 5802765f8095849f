"""Energy per batch for footprint engines: the adapter between the stores and `allocate()`.

Gathers the batches of the accounting period, the topology version, each meter's usable counter
readings and counter events (storage/counter_readings.py) and what the registry says about its
uncertainty (batch_metrology.py), runs the pure allocation (domain/energy.py) and returns one
batch's figures with the closure of every meter that contributed.

The period is the calendar month (or months) that contain the batch, unless one is given: the
allocation never reaches outside its period (idle energy at its edge becomes overhead), so a
fixed accounting period is what makes a batch's published figure the same whenever it is asked
for (docs/allocation.md, docs/batches.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, BaseModel, ConfigDict

from device_profiles.vocabulary import VOCABULARY

from .batch_metrology import MetrologyError, meter_uncertainty, register_step
from .domain.batches import Batch, DeclaredUnit
from .domain.counters import CounterReadings
from .domain.energy import Allocation, MediumEnergy, MeterClosure, allocate
from .domain.uncertainty import MeterUncertainty
from .storage.batches_sqlite import SqliteBatches, TopologyRecord
from .storage.counter_readings import CounterStore
from .storage.registry_sqlite import SqliteRegistry
from .topology_file import COUNTER_OF_MEDIUM

# worst first: the status a medium reports is the worst among its contributing meters
_STATUS_ORDER = ("uncalibrated", "calibration_expired", "not_yet_valid", "valid")


class NotFound(LookupError):
    pass


class EnergyUnavailable(ValueError):
    """The stored data does not allow the computation; the message says what to add or fix."""


class PeriodError(ValueError):
    pass


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class CalibrationOut(_Out):
    meter_id: str
    status: str
    certificate_id: str | None
    basis: str


class ContributionOut(_Out):
    meter_id: str
    rule: str
    key: str | None
    idle_policy: str
    sub_meters: list[str]
    quantity: float
    share_of_meter: float
    idle_quantity: float
    estimated_quantity: float
    coverage: float
    calibration: list[CalibrationOut]


class PerDeclaredUnit(_Out):
    declared_unit: DeclaredUnit
    quantity: float
    expanded_uncertainty: float


class MediumOut(_Out):
    medium: str
    unit: str
    quantity: float
    expanded_uncertainty: float
    coverage_factor: float
    standard_uncertainty: float
    coverage: float
    primary_data_share: float
    estimated_quantity: float
    calibration_status: str
    per_declared_unit: PerDeclaredUnit | None
    contributions: list[ContributionOut]
    method_text: str


class ClosureOut(_Out):
    meter_id: str
    rule: str
    medium: str
    unit: str
    window_start: AwareDatetime
    window_end: AwareDatetime
    total: float
    allocated: float
    overhead: float
    residual: float
    closed: bool
    coverage: float
    negative_intervals: int
    anomalies: list[str]


class PeriodOut(_Out):
    start: AwareDatetime
    end: AwareDatetime
    basis: str


class BatchEnergyOut(_Out):
    batch: Batch
    batch_version: int
    period: PeriodOut
    complete: bool
    topology_version: int
    batches_in_period: int
    media: list[MediumOut]
    closures: list[ClosureOut]


def calendar_months(start: datetime, end: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """From the first instant of the month containing start to the first instant of the month
    after the one containing end's last instant, in tz; returned in UTC."""
    first = start.astimezone(tz).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    last = (end - timedelta(microseconds=1)).astimezone(tz)
    year, month = (last.year + 1, 1) if last.month == 12 else (last.year, last.month + 1)
    after = datetime(year, month, 1, tzinfo=tz)
    return first.astimezone(UTC), after.astimezone(UTC)


def choose_period(batch: Batch, start: datetime | None, end: datetime | None, tz: str) -> PeriodOut:
    if (start is None) != (end is None):
        raise PeriodError("give both period_start and period_end, or neither (calendar months)")
    if start is not None and end is not None:
        if end <= start:
            raise PeriodError("period_end must be after period_start")
        return PeriodOut(start=start, end=end, basis="requested")
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise PeriodError(
            f"unknown time zone {tz!r}; use an IANA name like Asia/Shanghai"
        ) from None
    lo, hi = calendar_months(batch.start, batch.end, zone)
    return PeriodOut(start=lo, end=hi, basis=f"calendar month(s) containing the batch, {tz}")


class BatchEnergyService:
    def __init__(
        self, batches: SqliteBatches, registry: SqliteRegistry, counters: CounterStore
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
        topo = self.batches.topology(topology_version)
        if topo is None:
            raise (NotFound if topology_version else EnergyUnavailable)(
                f"topology version {topology_version} does not exist"
                if topology_version
                else "no topology is set: metertrace topology set plant-topology.yaml"
            )
        period = choose_period(record.batch, period_start, period_end, tz)
        if not (record.batch.start < period.end and period.start < record.batch.end):
            raise PeriodError(
                f"batch {batch_id} ran {record.batch.start.isoformat()} – "
                f"{record.batch.end.isoformat()}, outside the period; choose one that overlaps it"
            )
        batches = [r.batch for r in self.batches.batches(start=period.start, end=period.end)]
        try:
            alloc = self._allocate(record.batch, batches, topo, period)
        except ValueError as exc:  # the domain's errors (allocation, counters, batches, ...)
            raise EnergyUnavailable(str(exc)) from None
        be = alloc.batch(batch_id)
        contributing = {c.meter_id for m in be.media for c in m.contributions}
        return BatchEnergyOut(
            batch=record.batch,
            batch_version=record.version,
            period=period,
            complete=be.complete,
            topology_version=topo.version,
            batches_in_period=len(batches),
            media=[_medium(m) for m in be.media],
            closures=[_closure(c) for c in alloc.closures() if c.meter_id in contributing],
        )

    def _allocate(
        self, batch: Batch, batches: Sequence[Batch], topo: TopologyRecord, period: PeriodOut
    ) -> Allocation:
        doc = topo.topology
        meters = sorted(
            {m for a, _, _ in doc.topology.active(period.start, period.end)
             for m in (a.meter_id, *a.sub_meters)}
        )  # fmt: skip
        readings: dict[str, CounterReadings] = {}
        metrology: dict[str, MeterUncertainty] = {}
        for m in meters:
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
            r = self.counters.counter(m, qty, period.start, period.end)
            readings[m] = r
            resolution = settings.resolution
            if resolution is None:
                if device is None:
                    raise MetrologyError(
                        f"meter {m} is not registered: set meters.{m}.resolution in the topology"
                    )
                largest = float(abs(r.value).max()) if r.value.size else 0.0
                resolution = register_step(device, qty, largest)
            metrology[m] = meter_uncertainty(
                device, self.registry.certificates(m), qty, batch.start, batch.end, resolution, m
            )
        return allocate(batches, doc.topology, readings, metrology, period.start, period.end)


def _medium(m: MediumEnergy) -> MediumOut:
    statuses = {cal.status for c in m.contributions for cal in c.calibration}
    worst = next((s for s in _STATUS_ORDER if s in statuses), sorted(statuses)[0])
    per = None
    if m.per_declared_unit is not None and m.expanded_uncertainty_per_declared_unit is not None:
        per = PerDeclaredUnit(
            declared_unit=m.declared_unit,
            quantity=m.per_declared_unit,
            expanded_uncertainty=m.expanded_uncertainty_per_declared_unit,
        )
    return MediumOut(
        medium=m.medium,
        unit=m.unit,
        quantity=m.quantity,
        expanded_uncertainty=m.expanded_uncertainty,
        coverage_factor=m.coverage_factor,
        standard_uncertainty=m.standard_uncertainty,
        coverage=m.coverage,
        primary_data_share=m.primary_data_share,
        estimated_quantity=m.estimated_quantity,
        calibration_status=worst,
        per_declared_unit=per,
        contributions=[
            ContributionOut(
                meter_id=c.meter_id,
                rule=c.rule.value,
                key=None if c.key is None else c.key.value,
                idle_policy=c.idle_policy.value,
                sub_meters=list(c.sub_meters),
                quantity=c.quantity,
                share_of_meter=c.share_of_meter,
                idle_quantity=c.idle_quantity,
                estimated_quantity=c.estimated_quantity,
                coverage=c.coverage,
                calibration=[
                    CalibrationOut(
                        meter_id=k.meter_id,
                        status=k.status,
                        certificate_id=k.certificate_id,
                        basis=k.basis,
                    )
                    for k in c.calibration
                ],
            )
            for c in m.contributions
        ],
        method_text=m.method_text,
    )


def _closure(c: MeterClosure) -> ClosureOut:
    return ClosureOut(
        meter_id=c.meter_id,
        rule=c.rule.value,
        medium=c.medium,
        unit=c.unit,
        window_start=c.window_start,
        window_end=c.window_end,
        total=c.total,
        allocated=c.allocated,
        overhead=c.overhead,
        residual=c.residual,
        closed=c.closed,
        coverage=c.coverage,
        negative_intervals=c.negative_intervals,
        anomalies=list(c.anomalies),
    )
