"""What the energy API answers: a batch's (or a period's) figures per medium, with the meters'
closures, as JSON models; and their conversion from the pure allocation's results
(allocation/energy.py). GET /api/v1/batches/{id}/energy, GET /api/v1/energy, the evidence bundle's
computation.json and the PACT source all read these."""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict

from collector.allocation.energy import MediumEnergy, MeterClosure
from collector.batches.model import Batch, DeclaredUnit

# worst first: the status a medium reports is the worst among its contributing meters
_STATUS_ORDER = ("uncalibrated", "calibration_expired", "not_yet_valid", "valid")


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


class BatchFiguresOut(_Out):
    """A batch's part of a period's allocation: BatchEnergyOut without what the period states."""

    batch: Batch
    batch_version: int
    complete: bool
    media: list[MediumOut]


class PeriodEnergyOut(_Out):
    period: PeriodOut
    topology_version: int
    batches_in_period: int
    batches: list[BatchFiguresOut]
    closures: list[ClosureOut]  # every meter and window of the period, contributing or not


def medium_out(m: MediumEnergy) -> MediumOut:
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


def closure_out(c: MeterClosure) -> ClosureOut:
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
