"""Conversions against known values: gas volume correction, NCV, IAPWS-IF97 enthalpies."""

from __future__ import annotations

import numpy as np
import pytest

from collector.allocation.conversions import (
    CN_GUIDELINE_WATER_20C,
    CN_NATURAL_GAS_NCV,
    CN_TRADE,
    NORMAL,
    ConversionError,
    correct_gas_volume,
    gas_correction_factor,
    gas_energy_gj,
    rebase_gas_volume,
    steam_energy_gj,
    steam_enthalpy_kj_per_kg,
    water_reference,
)

pytestmark = pytest.mark.unit


def test_gas_volume_correction_is_marked_derived_with_its_conditions() -> None:
    d = correct_gas_volume(100.0, p_kpa=202.65, t_k=293.15, base=NORMAL)
    assert d.value == pytest.approx(100 * 2 * 273.15 / 293.15)  # twice the pressure, 20 °C
    assert d.derived and d.reference == NORMAL and d.unit == "Nm³"
    assert ("p", 202.65, "kPa abs") in d.inputs
    assert "0 °C, 101.325 kPa" in str(d.reference)


def test_compressibility_enters_as_zb_over_z() -> None:
    c = gas_correction_factor(101.325, 273.15, NORMAL, z=0.95)
    assert c == pytest.approx(1 / 0.95)


def test_correction_factor_works_on_arrays() -> None:
    c = gas_correction_factor(np.array([101.325, 202.65]), np.array([273.15, 546.3]), NORMAL)
    assert np.allclose(c, [1.0, 1.0])


@pytest.mark.parametrize(("p", "t", "match"), [(0.0, 293.15, "absolute"), (150.0, 20.0, "kelvin")])
def test_gauge_pressure_or_celsius_is_refused(p: float, t: float, match: str) -> None:
    with pytest.raises(ConversionError, match=match):
        correct_gas_volume(1.0, p, t, NORMAL)


def test_ncv_of_the_chinese_guideline_and_rebasing() -> None:
    d = gas_energy_gj(1e4, NORMAL)
    assert d.value == pytest.approx(389.31) and d.unit == "GJ" and d.derived
    assert CN_NATURAL_GAS_NCV.reference == NORMAL
    # 10⁴ m³ at 20 °C is less gas than 10⁴ Nm³ at 0 °C: rebased first
    assert rebase_gas_volume(1e4, CN_TRADE, NORMAL) == pytest.approx(1e4 * 273.15 / 293.15)
    assert gas_energy_gj(1e4, CN_TRADE).value == pytest.approx(389.31 * 273.15 / 293.15)


@pytest.mark.parametrize(
    ("p_mpa", "t_k", "h"),
    [  # IAPWS-IF97 verification values (Tables 5 and 15 of the release)
        (3.0, 300.0, 115.331273),
        (80.0, 300.0, 184.142828),
        (3.0, 500.0, 975.542239),
        (0.0035, 300.0, 2549.91145),
        (0.0035, 700.0, 3335.68375),
        (30.0, 700.0, 2631.49474),
    ],
)
def test_enthalpy_matches_the_iapws_if97_verification_tables(p_mpa, t_k, h) -> None:
    assert steam_enthalpy_kj_per_kg(p_mpa, t_k, allow_liquid=True) == pytest.approx(h, rel=1e-8)


def test_superheated_steam_at_1_mpa_200_c() -> None:
    assert steam_enthalpy_kj_per_kg(1.0, 473.15) == pytest.approx(2827.9, abs=0.5)


def test_steam_energy_is_mass_times_enthalpy_rise_over_the_stated_reference() -> None:
    d = steam_energy_gj(10.0, 1.0, 473.15, CN_GUIDELINE_WATER_20C)
    h = steam_enthalpy_kj_per_kg(1.0, 473.15)
    assert d.value == pytest.approx(10 * (h - 83.74) / 1000)  # t · kJ/kg → GJ
    assert d.derived and "83.74" in d.method and ("h_ref", 83.74, "kJ/kg") in d.inputs
    condensate = water_reference(0.5, 353.15, "condensate returned at 80 °C")
    assert 334 < condensate.h_kj_per_kg < 336  # water at 80 °C ≈ 335 kJ/kg
    assert steam_energy_gj(10.0, 1.0, 473.15, condensate).value < d.value


def test_liquid_water_is_not_taken_for_steam() -> None:
    with pytest.raises(ConversionError, match=r"liquid \(saturation at 453.04 K\)"):
        steam_enthalpy_kj_per_kg(1.0, 373.15)
