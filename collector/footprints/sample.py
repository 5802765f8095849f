"""Sample footprints (labelled as such) for the demo, the tests and the conformance run.

Gate-to-gate energy footprints of two LFP battery cells: the measured electricity, natural gas
and steam of the cell lines per kWh of cell capacity, times cited emission factors. The real
footprints come from batches (issue 5); these only have the same shape and plausible figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

from collector.footprints.model import CarbonFootprint, DataQualityIndicators, ProductFootprint
from collector.footprints.source import InMemoryFootprintSource

# Factors, each with its source (see docs/pact-conformance.md and the footprint reference).
GRID_KG_PER_KWH = Decimal("0.5306")  # China national grid average, data year 2023 (MEE/NBS)
GAS_GJ_PER_NM3 = Decimal("0.038931")  # NCV 389.31 GJ per 10^4 Nm3 (Chinese guideline default)
GAS_KG_PER_GJ = Decimal("15.3") * 44 / 12 * Decimal("0.99")  # 15.3 tC/TJ, 99 % oxidised
STEAM_GJ_PER_T = Decimal("2.769")  # enthalpy of saturated steam at 0.8 MPa (abs)
HEAT_KG_PER_GJ = Decimal("110")  # purchased heat/steam, 0.11 tCO2/GJ (Chinese guideline)

BOUNDARY = (
    "Gate-to-gate, measured energy only: electricity, natural gas and steam metered at the cell "
    "lines (electrode coating and drying, calendering, slitting, winding and assembly, "
    "electrolyte filling, formation and ageing) and allocated to production batches. Excluded: "
    "materials and all upstream (cradle-to-gate) emissions, process emissions other than fuel "
    "combustion, transport, packaging, end of life. Use it as the energy part of a PCF, not as "
    "a complete PCF."
)
ALLOCATION = (
    "ISO 14044 4.3.4.2 order: allocation avoided by sub-metering and by time-slicing dedicated "
    "meters to the batch running on their line; shared meters split by produced quantity; "
    "residual (main minus sub-meters) split by produced quantity; idle and changeover energy "
    "spread over the period's batches by production. Allocated shares sum to the metered totals."
)
UNCERTAINTY = (
    "Expanded uncertainty (GUM, k = 2) of the metered energy per declared unit: electricity "
    "0.8 %, natural gas 1.5 %, steam 2.4 % (meter accuracy class or calibration, resolution, "
    "allocation). Emission factor uncertainty (national averages) is not included."
)
EF_SOURCES = [
    {"name": "MEE/NBS China national grid average CO2 emission factor", "version": "2023"},
    {"name": "China GHG accounting guideline defaults (natural gas NCV, carbon content)",
     "version": "2015"},
    {"name": "China GHG accounting guideline, purchased heat 0.11 tCO2/GJ", "version": "2015"},
]  # fmt: skip
COMPANY = "Sample Cell Works (MeterTrace sample data, not a real plant)"
COMPANY_IDS = [
    "urn:uuid:2f0c6a9e-5b1d-4c8e-9f3a-7d6e5c4b3a21",
    "urn:pact:sample.metertrace.example:company-id:cell-works",
]


@dataclass(frozen=True)
class _Cell:
    sku: str
    name: str
    capacity_kwh: Decimal
    mass_kg: Decimal


CELL_105 = _Cell(
    "LFP-PRISM-105AH", "LFP prismatic cell 3.2 V 105 Ah", Decimal("0.336"), Decimal("1.98")
)
CELL_280 = _Cell(
    "LFP-PRISM-280AH", "LFP prismatic cell 3.2 V 280 Ah", Decimal("0.896"), Decimal("5.40")
)


def product_urn(cell: _Cell) -> str:
    return f"urn:pact:sample.metertrace.example:supplier-id:{cell.sku}"


def energy_emissions(kwh: Decimal, gas_nm3: Decimal, steam_t: Decimal) -> Decimal:
    """kgCO2 of one unit's measured energy, rounded to grams."""
    kg = (
        kwh * GRID_KG_PER_KWH
        + gas_nm3 * GAS_GJ_PER_NM3 * GAS_KG_PER_GJ
        + steam_t * STEAM_GJ_PER_T * HEAT_KG_PER_GJ
    )
    return kg.quantize(Decimal("0.001"))


def _footprint(
    pf_id: str,
    cell: _Cell,
    period: tuple[datetime, datetime],
    created: datetime,
    per_cell: tuple[str, str, str],
    dqi: DataQualityIndicators,
    primary_share: float,
) -> ProductFootprint:
    kwh, gas, steam = (Decimal(v) / cell.capacity_kwh for v in per_cell)
    kg = energy_emissions(kwh, gas, steam)
    pcf = CarbonFootprint(
        declared_unit="kilowatt hour",
        unitary_product_amount=cell.capacity_kwh,
        product_mass_per_declared_unit=(cell.mass_kg / cell.capacity_kwh).quantize(
            Decimal("0.001")
        ),
        p_cf_excluding_biogenic=kg,
        p_cf_including_biogenic=kg,
        fossil_ghg_emissions=kg,
        fossil_carbon_content=Decimal(0),
        biogenic_carbon_content=Decimal(0),
        characterization_factors="AR6",
        ipcc_characterization_factors_sources=["AR6"],
        cross_sectoral_standards_used=["ISO Standard 14067", "GHG Protocol Product standard"],
        cross_sectoral_standards=["ISO14067", "GHGP-Product", "PACT-2.0"],
        boundary_processes_description=BOUNDARY,
        reference_period_start=period[0],
        reference_period_end=period[1],
        geography_country="CN",
        secondary_emission_factor_sources=EF_SOURCES,
        exempted_emissions_percent=0,
        exempted_emissions_description="None inside the stated gate-to-gate energy boundary.",
        packaging_emissions_included=False,
        allocation_rules_description=ALLOCATION,
        uncertainty_assessment_description=UNCERTAINTY,
        primary_data_share=primary_share,
        dqi=dqi,
    )
    return ProductFootprint(
        id=UUID(pf_id),
        version=1,
        created=created,
        company_name=COMPANY,
        company_ids=COMPANY_IDS,
        product_description=f"{cell.name}, lithium iron phosphate, about {cell.mass_kg} kg, "
        "unpackaged.",
        product_ids=[product_urn(cell)],
        product_classifications=["urn:pact:unstats.un.org:cpc-2.1:46420"],
        product_category_cpc="46420",
        product_name_company=cell.name,
        comment="SAMPLE DATA. Energy-only gate-to-gate footprint per kWh of cell capacity, from "
        f"per-cell metered energy {per_cell[0]} kWh electricity, {per_cell[1]} Nm3 natural gas, "
        f"{per_cell[2]} t steam. fossilCarbonContent and biogenicCarbonContent are 0 because "
        "product carbon content is outside this boundary, not because it was assessed. The grid "
        "factor is CO2 only.",
        pcf=pcf,
    )


def _utc(y: int, m: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, tzinfo=UTC)


Q3 = (_utc(2025, 7, 1), _utc(2025, 10, 1))
Q4 = (_utc(2025, 10, 1), _utc(2026, 1, 1))
MEASURED = DataQualityIndicators(
    coverage_percent=100,
    technological_dqr=1.0,
    temporal_dqr=1.0,
    geographical_dqr=1.0,
    completeness_dqr=1.1,
    reliability_dqr=1.2,
)


def sample_footprints() -> list[ProductFootprint]:
    return [
        _footprint("9d91fa01-0f5b-4060-91b9-092f50b4137e", CELL_105, Q3, _utc(2025, 10, 20, 8),
                   ("15.10", "0.44", "0.0033"), MEASURED, 97.1),
        _footprint("afcea76e-2b5f-4826-ab5e-0ead34664cc9", CELL_105, Q4, _utc(2026, 1, 19, 8),
                   ("14.62", "0.41", "0.0030"), MEASURED, 97.8),
        _footprint("86a70772-917d-4adf-a594-15e2fc263605", CELL_280, Q4, _utc(2026, 1, 19, 8, 5),
                   ("34.10", "0.95", "0.0071"), MEASURED, 96.4),
    ]  # fmt: skip


def sample_source() -> InMemoryFootprintSource:
    return InMemoryFootprintSource(sample_footprints())
