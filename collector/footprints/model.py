"""PACT Technical Specifications v2.3 data model: ProductFootprint and CarbonFootprint.

Field names, enums and required fields follow the v2.3 OpenAPI schema that the official
conformance tool validates against (wbcsd/pact-conformance-service, src/schemas/openapi_v2_3.yaml).
Python attributes are snake_case; the JSON is camelCase (`model_dump(by_alias=True)`).
Emission values are decimal strings in kgCO2e (or kgC) per declared unit.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Final, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    model_validator,
)
from pydantic.alias_generators import to_camel

from metertrace.timeutil import to_wire

SPEC_VERSION: Final = "2.3.0"
# From this instant on, a reference period needs both primaryDataShare and dqi (spec v2.3).
DQI_REQUIRED_FROM = datetime(2025, 1, 1, tzinfo=UTC)


def _urn(value: str) -> str:
    if value[:4].lower() != "urn:" or len(value) < 6:
        raise ValueError(f"{value!r} is not a URN; write e.g. urn:pact:example.com:product-id:42")
    return value


def _unique(values: list[Any]) -> list[Any]:
    seen = [v for i, v in enumerate(values) if v in values[:i]]
    if seen:
        raise ValueError(f"duplicate entries {seen}; list each once")
    return values


def _years_later(ts: datetime, years: int) -> datetime:
    try:
        return ts.replace(year=ts.year + years)
    except ValueError:  # 29 February into a common year
        return ts.replace(year=ts.year + years, day=28)


# One timestamp format everywhere, so that string order equals time order (data recipients,
# including the conformance tool, compare these strings).
Timestamp = Annotated[AwareDatetime, PlainSerializer(to_wire, return_type=str)]
Urn = Annotated[str, AfterValidator(_urn)]
UrnSet = Annotated[list[Urn], Field(min_length=1), AfterValidator(_unique)]
# Decimal strings without exponent ("1E+1" would not match the spec's decimal syntax).
_plain = PlainSerializer(lambda d: format(d, "f"), return_type=str)
NonNegDecimal = Annotated[Decimal, Field(ge=0, allow_inf_nan=False), _plain]
AnyDecimal = Annotated[Decimal, Field(allow_inf_nan=False), _plain]
NonPosDecimal = Annotated[Decimal, Field(le=0, allow_inf_nan=False), _plain]
PositiveDecimal = Annotated[Decimal, Field(gt=0, allow_inf_nan=False), _plain]
Dqr = Annotated[float, Field(ge=1, le=3)]
Percent = Annotated[float, Field(ge=0, le=100)]


class _Pact(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True
    )

    def to_json(self) -> dict[str, Any]:
        """The spec's JSON: camelCase names, absent optional properties left out."""
        data: dict[str, Any] = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        return data


class Status(StrEnum):
    ACTIVE = "Active"
    DEPRECATED = "Deprecated"


class DeclaredUnit(StrEnum):
    LITER = "liter"
    KILOGRAM = "kilogram"
    CUBIC_METER = "cubic meter"
    KILOWATT_HOUR = "kilowatt hour"
    MEGAJOULE = "megajoule"
    TON_KILOMETER = "ton kilometer"
    SQUARE_METER = "square meter"


CrossSectoralStandardUsed = Literal[
    "GHG Protocol Product standard", "ISO Standard 14067", "ISO Standard 14044"
]
CrossSectoralStandard = Literal[
    "ISO14067", "ISO14083", "ISO14040-44", "GHGP-Product", "PEF", "PACT-1.0", "PACT-2.0", "PACT-3.0"
]
RegionOrSubregion = Literal[
    "Africa", "Americas", "Asia", "Europe", "Oceania", "Australia and New Zealand",
    "Central Asia", "Eastern Asia", "Eastern Europe", "Latin America and the Caribbean",
    "Melanesia", "Micronesia", "Northern Africa", "Northern America", "Northern Europe",
    "Polynesia", "South-eastern Asia", "Southern Asia", "Southern Europe", "Sub-Saharan Africa",
    "Western Asia", "Western Europe",
]  # fmt: skip


class DataQualityIndicators(_Pact):
    coverage_percent: Percent
    technological_dqr: Dqr = Field(alias="technologicalDQR")
    temporal_dqr: Dqr = Field(alias="temporalDQR")
    geographical_dqr: Dqr = Field(alias="geographicalDQR")
    completeness_dqr: Dqr = Field(alias="completenessDQR")
    reliability_dqr: Dqr = Field(alias="reliabilityDQR")


class EmissionFactorDatabase(_Pact):
    name: str = Field(min_length=1)
    version: str = Field(min_length=1)


class ProductOrSectorSpecificRule(_Pact):
    operator: Literal["PEF", "EPD International", "Other"]
    rule_names: Annotated[list[str], Field(min_length=1), AfterValidator(_unique)]
    other_operator_name: str | None = Field(None, min_length=1)


class Assurance(_Pact):
    assurance: bool
    provider_name: str
    coverage: Literal["corporate level", "product line", "PCF system", "product level"] | None = (
        None
    )
    level: Literal["limited", "reasonable"] | None = None
    boundary: Literal["Gate-to-Gate", "Cradle-to-Gate"] | None = None
    completed_at: Timestamp | None = None
    standard_name: str | None = None
    comments: str | None = None


class CarbonFootprint(_Pact):
    declared_unit: DeclaredUnit
    unitary_product_amount: PositiveDecimal
    product_mass_per_declared_unit: NonNegDecimal | None = None
    p_cf_excluding_biogenic: NonNegDecimal
    p_cf_including_biogenic: AnyDecimal | None = None
    fossil_ghg_emissions: NonNegDecimal
    fossil_carbon_content: NonNegDecimal
    biogenic_carbon_content: NonNegDecimal
    d_luc_ghg_emissions: NonNegDecimal | None = None
    land_management_ghg_emissions: AnyDecimal | None = None
    other_biogenic_ghg_emissions: NonNegDecimal | None = None
    i_luc_ghg_emissions: NonNegDecimal | None = None
    biogenic_carbon_withdrawal: NonPosDecimal | None = None
    aircraft_ghg_emissions: NonNegDecimal | None = None
    characterization_factors: Literal["AR5", "AR6"]
    ipcc_characterization_factors_sources: Annotated[
        list[Annotated[str, Field(pattern=r"^AR\d+$")]],
        Field(min_length=1),
        AfterValidator(_unique),
    ]
    cross_sectoral_standards_used: Annotated[
        list[CrossSectoralStandardUsed], Field(min_length=1), AfterValidator(_unique)
    ]
    cross_sectoral_standards: (
        Annotated[list[CrossSectoralStandard], Field(min_length=1), AfterValidator(_unique)] | None
    ) = None
    product_or_sector_specific_rules: list[ProductOrSectorSpecificRule] | None = Field(
        None, min_length=1
    )
    biogenic_accounting_methodology: Literal["PEF", "ISO", "GHGP", "Quantis"] | None = None
    boundary_processes_description: str
    reference_period_start: Timestamp
    reference_period_end: Timestamp
    geography_region_or_subregion: RegionOrSubregion | None = None
    geography_country: str | None = Field(None, pattern=r"^[A-Z]{2}$")
    geography_country_subdivision: str | None = Field(None, pattern=r"^[A-Z]{2}-[A-Z0-9]{1,3}$")
    secondary_emission_factor_sources: list[EmissionFactorDatabase] | None = Field(
        None, min_length=1
    )
    # The v2 methodology caps exemptions at 5 % (the schema's bound is 100).
    exempted_emissions_percent: float = Field(ge=0, le=5)
    exempted_emissions_description: str
    packaging_emissions_included: bool
    packaging_ghg_emissions: NonNegDecimal | None = None
    allocation_rules_description: str | None = None
    uncertainty_assessment_description: str | None = None
    primary_data_share: Percent | None = None
    dqi: DataQualityIndicators | None = None
    assurance: Assurance | None = None

    @model_validator(mode="after")
    def _rules(self) -> CarbonFootprint:
        if self.reference_period_end <= self.reference_period_start:
            raise ValueError("referencePeriodEnd must be after referencePeriodStart")
        geos = [
            self.geography_region_or_subregion,
            self.geography_country,
            self.geography_country_subdivision,
        ]
        if sum(g is not None for g in geos) > 1:
            raise ValueError(
                "set at most one of geographyRegionOrSubregion, geographyCountry, "
                "geographyCountrySubdivision (none means global)"
            )
        if self.packaging_ghg_emissions is not None and not self.packaging_emissions_included:
            raise ValueError(
                "packagingGhgEmissions is set but packagingEmissionsIncluded is false; "
                "drop the value or set the flag"
            )
        if self.reference_period_end > DQI_REQUIRED_FROM:
            missing = [n for n in ("primary_data_share", "dqi") if getattr(self, n) is None]
            if missing:
                names = " and ".join(to_camel(n) for n in missing)
                raise ValueError(
                    f"{names} required: the reference period reaches into 2025 or later, "
                    "where PACT v2.3 requires both primaryDataShare and dqi"
                )
        elif self.primary_data_share is None and self.dqi is None:
            raise ValueError("set primaryDataShare or dqi (PACT v2.3 requires at least one)")
        return self


class DataModelExtension(_Pact):
    spec_version: str
    data_schema: str
    documentation: str | None = None
    data: dict[str, Any]


class ProductFootprint(_Pact):
    id: UUID
    spec_version: Literal["2.3.0"] = SPEC_VERSION
    preceding_pf_ids: Annotated[list[UUID], Field(min_length=1), AfterValidator(_unique)] | None = (
        None
    )
    version: int = Field(ge=0)
    created: Timestamp
    updated: Timestamp | None = None
    status: Status = Status.ACTIVE
    status_comment: str | None = None
    validity_period_start: Timestamp | None = None
    validity_period_end: Timestamp | None = None
    company_name: str = Field(min_length=1)
    company_ids: UrnSet
    product_description: str
    product_ids: UrnSet
    product_classifications: UrnSet | None = None
    # Deprecated by productClassifications in 2.3 but still required by the 2.3 schema.
    product_category_cpc: str = Field(min_length=1)
    product_name_company: str = Field(min_length=1)
    comment: str
    pcf: CarbonFootprint
    extensions: list[DataModelExtension] | None = None

    @model_validator(mode="after")
    def _rules(self) -> ProductFootprint:
        if self.preceding_pf_ids and self.id in self.preceding_pf_ids:
            raise ValueError(f"precedingPfIds lists the footprint's own id {self.id}")
        if self.updated is not None and self.updated < self.created:
            raise ValueError("updated is before created")
        start, end = self.validity_period_start, self.validity_period_end
        if (start is None) != (end is None):
            raise ValueError("set both validityPeriodStart and validityPeriodEnd, or neither")
        if start is not None and end is not None:
            ref_end = self.pcf.reference_period_end
            if start < ref_end:
                raise ValueError("validityPeriodStart must not be before referencePeriodEnd")
            if end <= start:
                raise ValueError("validityPeriodEnd must be after validityPeriodStart")
            if end > _years_later(ref_end, 3):
                raise ValueError(
                    "validityPeriodEnd must be at most 3 years after referencePeriodEnd"
                )
        return self
