"""Physical conversions of metered quantities, each result marked as derived with its inputs.

- Gas volume at line conditions to base conditions: Vb = Vm·(p/pb)·(Tb/T)·(Zb/Z), p absolute.
- Gas standard volume to energy by the net calorific value, at the NCV's reference conditions.
- Steam mass to heat by the enthalpy at the measured p and T (IAPWS-IF97) minus a stated
  reference enthalpy (the feedwater or condensate returned), never a fixed value per tonne.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

ArrayOrFloat = float | NDArray[np.float64]


class ConversionError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class ReferenceConditions:
    pressure_kpa: float  # absolute
    temperature_k: float
    z: float = 1.0  # compressibility at these conditions

    def __str__(self) -> str:
        return f"{self.temperature_k - 273.15:g} °C, {self.pressure_kpa:g} kPa, Z = {self.z:g}"


NORMAL = ReferenceConditions(101.325, 273.15)  # "Nm³": 0 °C, 101.325 kPa
ISO_STANDARD = ReferenceConditions(101.325, 288.15)  # ISO 13443: 15 °C
CN_TRADE = ReferenceConditions(101.325, 293.15)  # 20 °C, used in Chinese gas trade


@dataclass(frozen=True, slots=True)
class Derived:
    """A value computed from measurements, with what it was computed from."""

    value: float
    unit: str
    method: str
    inputs: tuple[tuple[str, float, str], ...]  # (name, value, unit)
    reference: ReferenceConditions | None = None
    derived: bool = True


def _check_state(p_kpa: ArrayOrFloat, t_k: ArrayOrFloat) -> None:
    if np.any(np.asarray(p_kpa) <= 0):
        raise ConversionError(
            "pressure must be absolute and > 0 kPa; a gauge pressure needs the atmospheric "
            "pressure added"
        )
    if np.any(np.asarray(t_k) < 150):
        raise ConversionError("temperature must be in kelvin (> 150 K); °C + 273.15 = K")


def gas_correction_factor(
    p_kpa: ArrayOrFloat, t_k: ArrayOrFloat, base: ReferenceConditions, z: ArrayOrFloat = 1.0
) -> ArrayOrFloat:
    """C = Vb/Vm = (p/pb)·(Tb/T)·(Zb/Z); works on arrays of line conditions too."""
    _check_state(p_kpa, t_k)
    return (p_kpa / base.pressure_kpa) * (base.temperature_k / t_k) * (base.z / z)


def correct_gas_volume(
    vm_m3: float, p_kpa: float, t_k: float, base: ReferenceConditions, z: float = 1.0
) -> Derived:
    c = float(gas_correction_factor(p_kpa, t_k, base, z))
    return Derived(
        value=vm_m3 * c,
        unit="Nm³" if base == NORMAL else "m³ (base conditions)",
        method="Vb = Vm·(p/pb)·(Tb/T)·(Zb/Z)",
        inputs=(("Vm", vm_m3, "m³"), ("p", p_kpa, "kPa abs"), ("T", t_k, "K"), ("Z", z, "1")),
        reference=base,
    )


def rebase_gas_volume(v: float, source: ReferenceConditions, target: ReferenceConditions) -> float:
    """A base volume stated at one set of reference conditions, at another."""
    return float(
        v * gas_correction_factor(source.pressure_kpa, source.temperature_k, target, source.z)
    )


@dataclass(frozen=True, slots=True)
class CalorificValue:
    gj_per_volume: float  # GJ per m³ at `reference`
    reference: ReferenceConditions
    source: str


# 389.31 GJ per 10⁴ Nm³; "Nm³" taken as 0 °C / 101.325 kPa (check the guideline's footnote).
CN_NATURAL_GAS_NCV = CalorificValue(
    389.31 / 1e4, NORMAL, "Chinese GHG accounting guidelines, default NCV of natural gas"
)


def gas_energy_gj(
    volume: float, reference: ReferenceConditions, ncv: CalorificValue = CN_NATURAL_GAS_NCV
) -> Derived:
    """Energy of a base gas volume, rebased to the NCV's reference conditions first."""
    v = rebase_gas_volume(volume, reference, ncv.reference)
    return Derived(
        value=v * ncv.gj_per_volume,
        unit="GJ",
        method=f"E = V·NCV, NCV {ncv.gj_per_volume * 1e4:g} GJ/10⁴ m³ at {ncv.reference} "
        f"({ncv.source})",
        inputs=(("V", volume, f"m³ at {reference}"), ("NCV", ncv.gj_per_volume, "GJ/m³")),
        reference=ncv.reference,
    )


@dataclass(frozen=True, slots=True)
class EnthalpyReference:
    h_kj_per_kg: float
    description: str


# 83.74 kJ/kg = 20 °C × 4.1868 kJ/(kg·K): the water reference of the Chinese guidelines'
# AD = Ma·(En − 83.74)·10⁻³ GJ for purchased steam.
CN_GUIDELINE_WATER_20C = EnthalpyReference(83.74, "water at 20 °C (Chinese accounting guidelines)")


def water_reference(p_mpa: float, t_k: float, description: str) -> EnthalpyReference:
    """The enthalpy of returned condensate or feedwater at its measured p and T."""
    return EnthalpyReference(steam_enthalpy_kj_per_kg(p_mpa, t_k, allow_liquid=True), description)


def steam_enthalpy_kj_per_kg(p_mpa: float, t_k: float, *, allow_liquid: bool = False) -> float:
    """Specific enthalpy by IAPWS-IF97 at absolute pressure (MPa) and temperature (K)."""
    from iapws import IAPWS97  # the collector extra; imported here to keep import time low
    from iapws.iapws97 import _TSat_P

    _check_state(p_mpa * 1000.0, t_k)
    state = IAPWS97(P=p_mpa, T=t_k)
    if not allow_liquid and state.region == 1:
        raise ConversionError(
            f"water at {p_mpa:g} MPa, {t_k:g} K is liquid (saturation at {_TSat_P(p_mpa):.2f} K): "
            "check the pressure (absolute, MPa) and temperature (K) readings"
        )
    return float(state.h)


def steam_energy_gj(
    mass_t: float, p_mpa: float, t_k: float, reference: EnthalpyReference
) -> Derived:
    h = steam_enthalpy_kj_per_kg(p_mpa, t_k)
    return Derived(
        value=mass_t * (h - reference.h_kj_per_kg) / 1000.0,  # t·kJ/kg = MJ·10⁻³·10³ → GJ
        unit="GJ",
        method=f"Q = m·(h(p, T) − h_ref), IAPWS-IF97; h_ref {reference.h_kj_per_kg:g} kJ/kg "
        f"({reference.description})",
        inputs=(
            ("m", mass_t, "t"),
            ("p", p_mpa, "MPa abs"),
            ("T", t_k, "K"),
            ("h", h, "kJ/kg"),
            ("h_ref", reference.h_kj_per_kg, "kJ/kg"),
        ),
    )
