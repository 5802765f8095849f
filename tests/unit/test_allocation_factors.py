"""Emission factors: cited, versioned, never edited; emissions = activity × factor."""

from __future__ import annotations

import math

import pytest

from collector.factors.model import BUILTIN, Basis, FactorError, FactorRegistry, emissions

pytestmark = pytest.mark.unit


def test_builtin_records_carry_the_reference_values_and_their_citation() -> None:
    reg = FactorRegistry()
    grid = reg.current("cn-grid-average-2022")
    assert (grid.value, grid.unit, grid.data_year, grid.published) == (
        0.5366, "kgCO2/kWh", 2022, "2024-12-20",
    )  # fmt: skip
    assert grid.basis is Basis.LOCATION and grid.geography == "CN" and "MEE" in grid.source
    assert reg.current("cn-grid-excluding-market-non-fossil-2022").value == 0.5856
    assert reg.current("cn-grid-average-2023").value == 0.5306
    assert reg.current("cn-natural-gas").value == pytest.approx(2.16, abs=0.005)
    assert reg.current("ipcc-2006-natural-gas").value == 56100.0
    assert reg.current("cn-purchased-heat").unit == "tCO2/GJ"
    for r in BUILTIN:  # nothing the source does not give is made up
        assert r.source and r.gases == "CO2" and r.gwp_set.startswith("none")


def test_records_are_never_edited_an_override_is_a_new_version() -> None:
    reg = FactorRegistry()
    with pytest.raises(FactorError, match="never edited"):
        reg.add(reg.current("cn-grid-average-2022"))
    new = reg.override("cn-grid-average-2022", value=0.55, created_by="alice",
                       note="supplier-specific mix", uncertainty_rel=0.05)  # fmt: skip
    assert new.id == "cn-grid-average-2022@2" and new.supersedes == "cn-grid-average-2022@1"
    assert reg.current("cn-grid-average-2022") is new
    assert [r.value for r in reg.history("cn-grid-average-2022")] == [0.5366, 0.55]
    assert reg.get("cn-grid-average-2022@1").value == 0.5366
    assert "user override" in new.source and new.created_by == "alice"


def test_unknown_factor_names_the_known_ones() -> None:
    with pytest.raises(FactorError, match=r"known: .*cn-grid-average-2022"):
        FactorRegistry().current("grid")


def test_emissions_combine_relative_uncertainties_in_quadrature() -> None:
    reg = FactorRegistry()
    f = reg.override(
        "cn-grid-average-2022", value=0.5, created_by="t", note="", uncertainty_rel=0.03
    )
    e = emissions(100.0, "kWh", 2.0, f)  # activity U = 2 % at k = 2: u_rel 1 %
    assert e.kg == pytest.approx(50.0)
    assert e.expanded_uncertainty_kg == pytest.approx(2 * 50 * math.sqrt(0.01**2 + 0.03**2))
    assert e.factor_id == f.id and e.note == ""


def test_a_factor_without_stated_uncertainty_says_so() -> None:
    e = emissions(100.0, "kWh", 2.0, FactorRegistry().current("cn-grid-average-2022"))
    assert e.expanded_uncertainty_kg == pytest.approx(2 * 53.66 * 0.01)
    assert "states no uncertainty" in e.note


def test_units_are_converted_within_a_dimension_and_refused_across() -> None:
    reg = FactorRegistry()
    heat = emissions(10.0, "GJ", 0.0, reg.current("cn-purchased-heat"))
    assert heat.kg == pytest.approx(10 * 0.11 * 1000)  # tCO2 → kg
    gas = emissions(1000.0, "GJ", 0.0, reg.current("ipcc-2006-natural-gas"))
    assert gas.kg == pytest.approx(56100.0)  # 1000 GJ = 1 TJ
    assert emissions(1.0, "MWh", 0.0, reg.current("cn-grid-average-2022")).kg == pytest.approx(
        536.6
    )
    with pytest.raises(FactorError, match="activity in t cannot use a factor per GJ"):
        emissions(1.0, "t", 0.0, reg.current("cn-purchased-heat"))
