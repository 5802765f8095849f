"""PACT v2.3 ProductFootprint/CarbonFootprint: the JSON the spec wants, and its rules."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

from collector.footprints.model import ProductFootprint
from collector.footprints.sample import (
    GAS_GJ_PER_NM3,
    GAS_KG_PER_GJ,
    energy_emissions,
    sample_footprints,
)

pytestmark = pytest.mark.unit

PF = sample_footprints()[1]  # LFP 105 Ah cell, Q4 2025


def pf_json(**pcf_changes: object) -> dict[str, object]:
    data = PF.to_json()
    data["pcf"] = {**data["pcf"], **pcf_changes}
    return data


def test_json_uses_the_spec_names_and_decimal_strings():
    data = PF.to_json()
    assert data["specVersion"] == "2.3.0"
    assert {"companyIds", "productIds", "productCategoryCpc", "productNameCompany"} <= set(data)
    pcf = data["pcf"]
    assert pcf["declaredUnit"] == "kilowatt hour"
    assert pcf["pCfExcludingBiogenic"] == "28.445" and pcf["unitaryProductAmount"] == "0.336"
    assert pcf["dqi"]["technologicalDQR"] == 1.0 and "coveragePercent" in pcf["dqi"]
    assert "updated" not in data  # absent optional properties are left out, not null
    assert "Gate-to-gate" in pcf["boundaryProcessesDescription"]
    assert "measured energy only" in pcf["boundaryProcessesDescription"]


def test_json_round_trips():
    for pf in sample_footprints():
        assert ProductFootprint.model_validate(pf.to_json()) == pf


def test_timestamps_have_one_format_so_string_order_is_time_order():
    created = [pf.to_json()["created"] for pf in sample_footprints()]
    assert all(c.endswith("Z") and len(c) == len(created[0]) for c in created)
    assert sorted(created) == [
        pf.to_json()["created"] for pf in sorted(sample_footprints(), key=lambda p: p.created)
    ]


def test_sample_emissions_follow_from_the_cited_factors():
    # 14.62 kWh, 0.41 Nm3, 0.0030 t per 0.336 kWh cell
    per_kwh = [Decimal(v) / Decimal("0.336") for v in ("14.62", "0.41", "0.0030")]
    expected = (
        per_kwh[0] * Decimal("0.5306")
        + per_kwh[1] * GAS_GJ_PER_NM3 * GAS_KG_PER_GJ
        + per_kwh[2] * Decimal("2.769") * 110
    )
    assert energy_emissions(*per_kwh) == expected.quantize(Decimal("0.001"))
    assert abs(GAS_GJ_PER_NM3 * GAS_KG_PER_GJ - Decimal("2.162")) < Decimal("0.001")  # kg/Nm3


def test_a_reference_period_from_2025_needs_primary_data_share_and_dqi():
    for missing in ("primaryDataShare", "dqi"):
        data = pf_json()
        del data["pcf"][missing]  # type: ignore[attr-defined]
        with pytest.raises(ValidationError, match=f"{missing} required"):
            ProductFootprint.model_validate(data)


def test_before_2025_one_of_primary_data_share_and_dqi_is_enough():
    data = pf_json(
        referencePeriodStart="2024-01-01T00:00:00Z", referencePeriodEnd="2025-01-01T00:00:00Z"
    )
    del data["pcf"]["dqi"]  # type: ignore[attr-defined]
    ProductFootprint.model_validate(data)
    del data["pcf"]["primaryDataShare"]  # type: ignore[attr-defined]
    with pytest.raises(ValidationError, match="primaryDataShare or dqi"):
        ProductFootprint.model_validate(data)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"declaredUnit": "piece"}, "declaredUnit"),  # not in the v2.3 enum the tool checks
        ({"unitaryProductAmount": "0"}, "greater than 0"),
        ({"pCfExcludingBiogenic": "-1"}, "greater than or equal to 0"),
        ({"biogenicCarbonWithdrawal": "1.5"}, "less than or equal to 0"),
        ({"fossilGhgEmissions": "NaN"}, "fossilGhgEmissions"),
        ({"geographyRegionOrSubregion": "Eastern Asia"}, "at most one of"),
        ({"packagingGhgEmissions": "0.1"}, "packagingEmissionsIncluded is false"),
        ({"exemptedEmissionsPercent": 6}, "less than or equal to 5"),
        ({"ipccCharacterizationFactorsSources": ["AR6", "AR6"]}, "duplicate"),
        ({"crossSectoralStandardsUsed": ["ISO 14067"]}, "crossSectoralStandardsUsed"),
        ({"referencePeriodEnd": "2025-10-01T00:00:00Z"}, "after referencePeriodStart"),
        ({"referencePeriodStart": "2025-10-01T00:00:00"}, "timezone"),
        (
            {
                "dqi": {
                    "coveragePercent": 100,
                    "technologicalDQR": 1,
                    "temporalDQR": 1,
                    "geographicalDQR": 1,
                    "completenessDQR": 4,
                    "reliabilityDQR": 1,
                }
            },
            "less than or equal to 3",
        ),
    ],
)
def test_carbon_footprint_rules(changes, message):
    with pytest.raises(ValidationError, match=message):
        ProductFootprint.model_validate(pf_json(**changes))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"productIds": ["LFP-105"]}, "not a URN"),
        ({"companyIds": []}, "at least 1"),
        ({"productIds": ["urn:gtin:1", "urn:gtin:1"]}, "duplicate"),
        ({"id": "not-a-uuid"}, "id"),
        ({"specVersion": "2.2.0"}, "specVersion"),
        ({"status": "Retired"}, "status"),
        ({"precedingPfIds": [str(PF.id)]}, "own id"),
        ({"validityPeriodStart": "2026-02-01T00:00:00Z"}, "both validityPeriodStart"),
        (
            {
                "validityPeriodStart": "2025-12-01T00:00:00Z",
                "validityPeriodEnd": "2027-01-01T00:00:00Z",
            },
            "not be before referencePeriodEnd",
        ),
        (
            {
                "validityPeriodStart": "2026-01-01T00:00:00Z",
                "validityPeriodEnd": "2029-01-02T00:00:00Z",
            },
            "at most 3 years",
        ),
        ({"unknownField": 1}, "Extra inputs"),
    ],
)
def test_product_footprint_rules(changes, message):
    with pytest.raises(ValidationError, match=message):
        ProductFootprint.model_validate({**PF.to_json(), **changes})


def test_validity_period_within_three_years_is_accepted():
    data = {
        **PF.to_json(),
        "validityPeriodStart": "2026-01-01T00:00:00Z",
        "validityPeriodEnd": "2029-01-01T00:00:00Z",
    }
    pf = ProductFootprint.model_validate(data)
    assert pf.validity_period_end == datetime(2029, 1, 1, tzinfo=UTC)


def test_decimals_are_written_without_exponent():
    pf = ProductFootprint.model_validate(
        pf_json(pCfExcludingBiogenic="1E+1", fossilGhgEmissions=0.1)
    )
    assert pf.to_json()["pcf"]["pCfExcludingBiogenic"] == "10"
    assert pf.to_json()["pcf"]["fossilGhgEmissions"] == "0.1"
