"""Real footprints: one ProductFootprint per product and calendar month, from its batches.

Each batch's gate-to-gate energy is the batch energy API's figure (batches/energy_service.py,
its own accounting period: the calendar month(s) containing it); a batch counts in the month in
which it ends. Each such period is allocated once per refresh for all of its batches
(BatchEnergies), not once per batch. Per medium the batches' energy is summed, converted where
the factor needs it (steam t -> GJ by enthalpy), times the configured emission factor record
(factors/model.py), and divided by the month's produced quantity.
A month is computed once it has ended and `settle_h` has passed; every change of its figures is
published as a new version (published.py), never edited in place.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from uuid import UUID, uuid5
from zoneinfo import ZoneInfo

from collector.allocation.conversions import CN_GUIDELINE_WATER_20C, steam_energy_gj
from collector.batches.energy_out import BatchEnergyOut
from collector.batches.energy_service import BatchEnergyService, PeriodEnergy
from collector.batches.model import Batch
from collector.batches.period import calendar_months, choose_period
from collector.batches.store import BatchStore
from collector.db.engine import Database
from collector.factors.model import EmissionFactor, FactorRegistry, emissions
from collector.factors.store import FactorStore
from collector.footprints.footprint_settings import FootprintSettings
from collector.footprints.model import (
    CarbonFootprint,
    DataQualityIndicators,
    DeclaredUnit,
    ProductFootprint,
)
from collector.footprints.published import PublishedFootprints
from collector.ledger.counter_readings import CounterStore
from collector.metrology.registry_store import RegistryStore
from metertrace.timeutil import to_wire, utcnow

log = logging.getLogger(__name__)

NAMESPACE = UUID("6b1f3c52-8f0e-4d7a-9a51-3c2e7d0b9f41")  # MeterTrace footprints; never change
_RELIABILITY = {"valid": 1.0, "uncalibrated": 2.0, "calibration_expired": 3.0, "not_yet_valid": 3.0}

BOUNDARY = (
    "Gate-to-gate, measured energy only: the electricity, natural gas and steam metered at the "
    "production lines and allocated to this product's batches of the reference period, times "
    "the cited emission factors. Excluded: materials and all upstream (cradle-to-gate) "
    "emissions, process emissions other than fuel combustion, transport, packaging, end of "
    "life. Use it as the energy part of a PCF, not as a complete PCF."
)


@dataclass
class _Medium:
    unit: str = ""
    quantity: float = 0.0
    expanded_u: float = 0.0  # summed linearly: the batches share meters, errors correlate
    weighted_coverage: float = 0.0
    weighted_primary: float = 0.0
    statuses: set[str] = field(default_factory=set)
    methods: list[str] = field(default_factory=list)


def _local_days(start: datetime, end: datetime, zone: str) -> str:
    """The month's first and last day as its time zone's calendar shows them (end exclusive)."""
    tz = ZoneInfo(zone)
    last = (end - timedelta(microseconds=1)).astimezone(tz).date()
    return f"{start.astimezone(tz).date()} – {last}"


def period_of(batch: Batch, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The calendar month (UTC bounds) in which the batch ends."""
    return calendar_months(batch.end - timedelta(microseconds=1), batch.end, zone)


class BatchEnergies:
    """Each batch's energy over its own accounting period, as GET /api/v1/batches/{id}/energy
    gives it; each period is allocated once, when its first batch is asked for. A month's
    batches share their month's period, except those that started in an earlier month."""

    def __init__(self, service: BatchEnergyService, tz: str) -> None:
        self.service, self.tz = service, tz
        self._periods: dict[tuple[datetime, datetime], PeriodEnergy | Exception] = {}

    def of(self, batch: Batch) -> BatchEnergyOut:
        period = choose_period(batch, None, None, self.tz)
        key = (period.start, period.end)
        if key not in self._periods:
            try:
                self._periods[key] = self.service.allocate_period(period)
            except (ValueError, LookupError) as exc:  # every batch of the period fails alike
                self._periods[key] = exc
        got = self._periods[key]
        if isinstance(got, Exception):
            raise got.with_traceback(None)
        return got.batch(batch.id)


class BatchFootprintSource:
    """A FootprintSource over the collector's stores; see the module docstring."""

    def __init__(
        self,
        batches: BatchStore,
        registry: RegistryStore,
        counters: CounterStore,
        settings: FootprintSettings,
        *,
        factors: FactorRegistry | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.batches, self.settings, self.clock = batches, settings, clock
        self.service = BatchEnergyService(batches, registry, counters)
        # None: built-in and stored records (collector/factors/store.py), read again at every
        # refresh, so a user's override republishes the footprints that use it
        self._given_factors = factors
        self._factor_store = FactorStore(batches.db)
        self.factors = factors or self._factor_store.registry()
        self.zone = ZoneInfo(settings.time_zone)
        self.published = PublishedFootprints(batches.db)
        self.problems: dict[str, str] = {}  # scope -> why it is not (re)published
        self._lock = threading.Lock()
        self._refreshed: datetime | None = None

    # --- FootprintSource ----------------------------------------------------------------
    def footprints(self) -> Sequence[ProductFootprint]:
        self._refresh_if_due()
        return self.published.latest()

    def footprint(self, pf_id: UUID) -> ProductFootprint | None:
        self._refresh_if_due()
        return self.published.get(pf_id)

    # --- computation --------------------------------------------------------------------
    def _refresh_if_due(self) -> None:
        with self._lock:
            now = self.clock()
            due = timedelta(seconds=self.settings.refresh_s)
            if self._refreshed is None or now - self._refreshed >= due:
                self.refresh(now)
                self._refreshed = now

    def refresh(self, now: datetime | None = None) -> list[ProductFootprint]:
        """Compute every closed month of every product; publish what changed; return that."""
        now = now or self.clock()
        self.factors = self._given_factors or self._factor_store.registry()
        groups: dict[tuple[str, datetime, datetime], list[Batch]] = defaultdict(list)
        energies = BatchEnergies(self.service, self.settings.time_zone)
        for record in self.batches.batches(limit=10**9):
            start, end = period_of(record.batch, self.zone)
            if end + timedelta(hours=self.settings.settle_h) <= now:
                groups[(record.batch.product_id, start, end)].append(record.batch)
        changed = []
        for (product, start, end), members in sorted(groups.items()):
            scope = f"{product}|{to_wire(start)}|{to_wire(end)}"
            try:
                pf = self.footprint_of(product, start, end, members, now, energies=energies)
                new = self.published.publish(pf, scope=scope, at=now)
            except (ValueError, LookupError) as exc:  # the stores' and domain's errors
                self.problems[scope] = str(exc)
                log.warning("footprint of %s not (re)published: %s", scope, exc)
                continue
            self.problems.pop(scope, None)
            if new is not None:
                changed.append(new)
        return changed

    def footprint_of(
        self, product: str, start: datetime, end: datetime, members: Sequence[Batch],
        created: datetime, *, energies: BatchEnergies | None = None,
    ) -> ProductFootprint:  # fmt: skip
        """Version 1 of the footprint of `members`, the product's batches ending in the month
        (`energies`: shared by the months of one refresh, so each period is allocated once)."""
        units = {b.declared_unit.value for b in members}
        if len(units) != 1 or units <= {"piece"}:
            raise ValueError(
                f"product {product}: batches declare {sorted(units)}; one PACT declared unit "
                "is needed (piece is not one): correct the batches"
            )
        unit = DeclaredUnit(units.pop())
        produced = math.fsum(b.produced_quantity for b in members)
        media: dict[str, _Medium] = defaultdict(_Medium)
        energies = energies or BatchEnergies(self.service, self.settings.time_zone)
        for b in members:
            self._add(media, energies.of(b))
        pcf = self._carbon(media, produced, members, unit, min(start, *(b.start for b in members)),
                           end)  # fmt: skip
        s = self.settings
        entry = s.products.get(product)
        ids = (entry and entry.product_ids) or [s.product_id_template.format(product_id=product)]
        uid = uuid5(NAMESPACE, f"{product}|{to_wire(start)}|{to_wire(end)}|{unit.value}")
        name = members[0].product_name
        return ProductFootprint(
            id=uid,
            version=1,
            created=created,
            company_name=s.company_name,
            company_ids=s.company_ids,
            product_description=(entry and entry.product_description) or name,
            product_ids=ids,
            product_category_cpc=(entry and entry.product_category_cpc) or s.product_category_cpc,
            product_name_company=name,
            comment=f"Energy-only gate-to-gate footprint per {unit.value} of {name}, from "
            f"{len(members)} metered batch(es) ending {_local_days(start, end, s.time_zone)} "
            f"({s.time_zone}), {produced:g} {unit.value} produced. Fossil and biogenic carbon "
            "content are 0 because product carbon content is outside this boundary.",
            pcf=pcf,
        )

    @staticmethod
    def _add(media: dict[str, _Medium], energy: BatchEnergyOut) -> None:
        for m in energy.media:
            acc = media[m.medium]
            if acc.unit and acc.unit != m.unit:
                raise ValueError(f"medium {m.medium} is reported in {acc.unit} and {m.unit}")
            acc.unit = m.unit
            acc.quantity += m.quantity
            acc.expanded_u += m.expanded_uncertainty
            acc.weighted_coverage += m.coverage * m.quantity
            acc.weighted_primary += m.primary_data_share * m.quantity
            acc.statuses.add(m.calibration_status)
            if m.method_text not in acc.methods:
                acc.methods.append(m.method_text)

    def _activity(self, medium: str, acc: _Medium) -> tuple[float, float, str]:
        """(activity, its U, unit) in what the factor needs."""
        if medium == "steam" and acc.unit == "t":
            if self.settings.steam is None:
                raise ValueError("steam is metered in t: set pact.footprints.steam (p, T)")
            st = self.settings.steam
            gj = steam_energy_gj(
                acc.quantity, st.pressure_mpa, st.temperature_c + 273.15, CN_GUIDELINE_WATER_20C
            ).value
            scale = gj / acc.quantity if acc.quantity else 0.0
            return gj, acc.expanded_u * scale, "GJ"
        return acc.quantity, acc.expanded_u, acc.unit

    def _carbon(
        self, media: dict[str, _Medium], produced: float, members: Sequence[Batch],
        unit: DeclaredUnit, start: datetime, end: datetime,
    ) -> CarbonFootprint:  # fmt: skip
        s = self.settings
        kg_total = u2 = w_cov = w_pri = 0.0
        factors: list[EmissionFactor] = []
        statuses: set[str] = set()
        methods: list[str] = []
        lines: list[str] = []
        for medium, acc in sorted(media.items()):
            name = s.factors.get(medium)
            if name is None:
                raise ValueError(f"no emission factor for {medium}: set pact.footprints.factors")
            factor = self.factors.current(name)
            activity, u, act_unit = self._activity(medium, acc)
            e = emissions(activity, act_unit, u, factor)
            kg_total += e.kg
            u2 += e.expanded_uncertainty_kg**2  # media: separate meters, independent
            q = acc.quantity or 1.0
            w_cov += e.kg * acc.weighted_coverage / q
            w_pri += e.kg * acc.weighted_primary / q
            factors.append(factor)
            statuses |= acc.statuses
            methods += [f"{medium}: {t}" for t in acc.methods]
            lines.append(f"{medium} {acc.quantity:.6g} {acc.unit} ± {acc.expanded_u:.3g}")
        if kg_total <= 0:
            raise ValueError("no metered energy was allocated to these batches")
        coverage, primary = w_cov / kg_total, w_pri / kg_total
        per_unit = Decimal(repr(kg_total / produced)).quantize(Decimal("0.000001"))
        u_rel = math.sqrt(u2) / kg_total
        geo = 1.0 if all(f.geography == s.geography_country for f in factors) else 2.0
        masses = [b.mass_kg for b in members]
        mass = None if None in masses else math.fsum(m or 0.0 for m in masses) / produced
        return CarbonFootprint(
            declared_unit=unit,
            unitary_product_amount=Decimal(1),
            product_mass_per_declared_unit=None if mass is None else Decimal(repr(round(mass, 6))),
            p_cf_excluding_biogenic=per_unit,
            p_cf_including_biogenic=per_unit,
            fossil_ghg_emissions=per_unit,
            fossil_carbon_content=Decimal(0),
            biogenic_carbon_content=Decimal(0),
            characterization_factors="AR6",
            ipcc_characterization_factors_sources=["AR6"],
            cross_sectoral_standards_used=["ISO Standard 14067", "GHG Protocol Product standard"],
            boundary_processes_description=BOUNDARY,
            reference_period_start=start,
            reference_period_end=end,
            geography_country=s.geography_country,
            secondary_emission_factor_sources=[
                {"name": f"{f.source} ({f.id}, {f.unit})", "version": str(f.version)}
                for f in factors
            ],
            exempted_emissions_percent=0,
            exempted_emissions_description="None inside the stated gate-to-gate energy boundary.",
            packaging_emissions_included=False,
            allocation_rules_description="\n\n".join(methods),
            uncertainty_assessment_description=(
                f"Expanded uncertainty (GUM, k = 2) of the metered energy: ±{100 * u_rel:.2f} % "
                f"of pCfExcludingBiogenic ({'; '.join(lines)}; per medium summed linearly over "
                "the batches, media combined in quadrature). Emission factors without a stated "
                "uncertainty add none."
            ),
            primary_data_share=round(100 * primary, 2),
            dqi=DataQualityIndicators(
                coverage_percent=round(100 * coverage, 2),
                technological_dqr=1.0,  # measured on the product's own process
                temporal_dqr=1.0,  # measured in the reference period
                geographical_dqr=geo,
                completeness_dqr=1.0 if coverage >= 0.95 else 2.0 if coverage >= 0.8 else 3.0,
                reliability_dqr=max(_RELIABILITY.get(st, 3.0) for st in statuses),
            ),
        )


def open_batch_source(db: Database, settings: FootprintSettings) -> BatchFootprintSource:
    """The source over the collector's database."""
    return BatchFootprintSource(BatchStore(db), RegistryStore(db), CounterStore(db), settings)
