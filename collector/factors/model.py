"""Emission factors as versioned, cited records; emissions = activity × factor.

A record is never edited: a correction or a user's own value is a new record with the next
version that names the one it supersedes. The built-in records are the ones in
../shared/reference/footprint.md; fields that source does not give (announcement numbers) are
None rather than guessed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import Any

from collector.allocation.uncertainty import K_DEFAULT, relative_product


class FactorError(ValueError):
    pass


class FactorConflict(FactorError):
    """A record that is not the next version of its name (another one was added meanwhile, or
    the version is mistyped); nothing was added."""


class Basis(StrEnum):
    LOCATION = "location-based grid average"
    EXCLUDING_MARKET_NON_FOSSIL = "grid average excluding market-traded non-fossil electricity"
    FUEL_COMBUSTION = "fuel combustion"
    PURCHASED_HEAT = "purchased heat or steam"


@dataclass(frozen=True, slots=True)
class EmissionFactor:
    name: str  # what it applies to; the lookup key, stable across versions
    version: int
    value: float
    unit: str  # emitted mass per activity unit, e.g. "kgCO2/kWh"
    gases: str  # "CO2" or "CO2e"
    gwp_set: str  # "none (CO2 only)" or e.g. "IPCC AR5 GWP100"
    source: str  # issuing body and document
    announcement: str | None  # announcement number, where the source gives it
    data_year: int | None  # None: not stated by the source used
    published: str | None  # ISO 8601 date, or year-month when only that is known
    geography: str  # ISO 3166 code
    basis: Basis
    uncertainty_rel: float | None = None  # standard (k = 1); None: not stated by the source
    supersedes: str | None = None  # id of the record this one replaces
    created_by: str = "built-in"
    note: str = ""

    @property
    def id(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def mass_unit(self) -> str:
        return self.unit.split("/", 1)[0]

    @property
    def activity_unit(self) -> str:
        return self.unit.split("/", 1)[1]

    def to_json(self) -> dict[str, Any]:
        """JSON-ready, with the id: how the factor store and evidence bundles hold a record."""
        return {**asdict(self), "basis": self.basis.value, "id": self.id}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EmissionFactor:
        fields = {k: v for k, v in data.items() if k != "id"}
        try:
            return cls(**{**fields, "basis": Basis(fields.get("basis", ""))})
        except (TypeError, ValueError) as exc:
            raise FactorError(f"not a factor record ({data.get('id')!r}): {exc}") from None


def _ng_guideline_kg_per_nm3() -> float:
    # NCV 389.31 GJ/10⁴ Nm³ × carbon content 15.3 tC/TJ × oxidation 99 % × 44/12
    return 389.31 / 1e4 * 15.3 * 0.99 * 44.0 / 12.0


_MEE_NBS = "MEE and NBS (China): electricity CO2 emission factors"


def _co2(name: str, value: float, unit: str, *, source: str, data_year: int | None,
         published: str | None, basis: Basis, geography: str = "CN",
         note: str = "") -> EmissionFactor:  # fmt: skip
    return EmissionFactor(
        name=name, version=1, value=value, unit=unit, gases="CO2", gwp_set="none (CO2 only)",
        source=source, announcement=None, data_year=data_year, published=published,
        geography=geography, basis=basis, note=note,
    )  # fmt: skip


BUILTIN: tuple[EmissionFactor, ...] = (
    _co2("cn-grid-average-2022", 0.5366, "kgCO2/kWh", source=f"{_MEE_NBS}, 2022",
         data_year=2022, published="2024-12-20", basis=Basis.LOCATION),
    _co2("cn-grid-excluding-market-non-fossil-2022", 0.5856, "kgCO2/kWh",
         source=f"{_MEE_NBS}, 2022", data_year=2022, published="2024-12-20",
         basis=Basis.EXCLUDING_MARKET_NON_FOSSIL),
    _co2("cn-grid-average-2023", 0.5306, "kgCO2/kWh", source=f"{_MEE_NBS}, 2023",
         data_year=2023, published="2026-01", basis=Basis.LOCATION,
         note="provincial values differ widely from the national average"),
    _co2("cn-natural-gas", _ng_guideline_kg_per_nm3(), "kgCO2/Nm³",
         source="Chinese GHG accounting guidelines, defaults: NCV 389.31 GJ/10⁴ Nm³, carbon "
         "content 15.3 tC/TJ, oxidation 99 %", data_year=None, published=None,
         basis=Basis.FUEL_COMBUSTION, note="computed NCV × CC × OF × 44/12 (≈ 2.16)"),
    _co2("ipcc-2006-natural-gas", 56100.0, "kgCO2/TJ",
         source="2006 IPCC Guidelines for National GHG Inventories, Vol. 2, natural gas default",
         data_year=None, published="2006", basis=Basis.FUEL_COMBUSTION, geography="GLOBAL"),
    _co2("cn-purchased-heat", 0.11, "tCO2/GJ",
         source="Chinese industry GHG accounting guidelines, purchased heat/steam",
         data_year=None, published=None, basis=Basis.PURCHASED_HEAT,
         note="steam mass is converted to GJ by its enthalpy (conversions.steam_energy_gj)"),
)  # fmt: skip


class FactorRegistry:
    """Append-only: records are added, superseded by new versions, never changed."""

    def __init__(self, records: Iterable[EmissionFactor] = BUILTIN) -> None:
        self._records: dict[str, EmissionFactor] = {}
        for r in records:
            self.add(r)

    def add(self, record: EmissionFactor) -> EmissionFactor:
        if record.id in self._records:
            raise FactorError(
                f"factor {record.id} exists; records are never edited: add version "
                f"{self.current(record.name).version + 1} instead (FactorRegistry.override)"
            )
        if "/" not in record.unit:
            raise FactorError(f"factor {record.id}: unit {record.unit!r} needs mass/activity")
        self._records[record.id] = record
        return record

    def records(self) -> tuple[EmissionFactor, ...]:
        """Every record, in the order added."""
        return tuple(self._records.values())

    def add_next(self, record: EmissionFactor) -> EmissionFactor:
        """Add `record` only as the next version of its name, naming the record it supersedes
        (FactorConflict when the version is not the next one)."""
        have = self.history(record.name)
        want, current = (have[-1].version + 1, have[-1].id) if have else (1, None)
        if record.version != want:
            now = f"is at version {want - 1}" if have else "has no records yet"
            raise FactorConflict(
                f"version: factor {record.name} {now}, so a new record is version {want}, not "
                f"{record.version}; reload its history and add the record as version {want}"
            )
        if record.supersedes != current:
            raise FactorError(
                f"supersedes: version {want} of {record.name} "
                + (f"supersedes {current}: set supersedes to {current!r}" if current
                   else "is its first record: leave supersedes empty")
                + f", not {record.supersedes!r}"
            )  # fmt: skip
        return self.add(record)

    def get(self, record_id: str) -> EmissionFactor:
        try:
            return self._records[record_id]
        except KeyError:
            raise FactorError(f"no factor record {record_id!r}") from None

    def history(self, name: str) -> tuple[EmissionFactor, ...]:
        return tuple(sorted((r for r in self._records.values() if r.name == name),
                            key=lambda r: r.version))  # fmt: skip

    def current(self, name: str) -> EmissionFactor:
        versions = self.history(name)
        if not versions:
            names = sorted({r.name for r in self._records.values()})
            raise FactorError(f"no factor named {name!r}; known: {names}")
        return versions[-1]

    def override(
        self,
        name: str,
        *,
        value: float,
        created_by: str,
        note: str,
        source: str | None = None,
        uncertainty_rel: float | None = None,
    ) -> EmissionFactor:
        """A user's value as a new version superseding the current one (which stays)."""
        base = self.current(name)
        return self.add(
            replace(
                base,
                version=base.version + 1,
                value=value,
                supersedes=base.id,
                created_by=created_by,
                note=note,
                source=source or f"user override of {base.id} by {created_by}",
                announcement=None if source else base.announcement,
                uncertainty_rel=uncertainty_rel,
            )
        )


NO_SOURCE = (
    "a stored factor record needs its citation, the issuing body and document (e.g. "
    "'MEE and NBS (China): electricity CO2 emission factors, 2023' or a supplier's contract and "
    "date); give it"
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def check_user_record(r: EmissionFactor) -> None:
    """What a user's record needs to be stored: a name that is a key, a citation, a unit
    emissions() can use, a value. Raises FactorError naming the field and the fix."""
    if not _NAME.match(r.name):
        raise FactorError(
            f"name {r.name!r}: use letters, digits, '.', '_' and '-' (up to 100), e.g. "
            "supplier-ppa-2025"
        )
    if not r.source.strip():
        raise FactorError(f"source: {NO_SOURCE}")
    mass, _, activity = r.unit.partition("/")
    if mass not in _MASS_KG or not activity.strip():
        raise FactorError(
            f"unit {r.unit!r}: write mass/activity, the mass one of {sorted(_MASS_KG)}, e.g. "
            "kgCO2/kWh or tCO2/GJ"
        )
    if not math.isfinite(r.value) or r.value < 0:
        raise FactorError(f"value {r.value}: give the factor in {r.unit}, a number ≥ 0")
    u = r.uncertainty_rel
    if u is not None and (not math.isfinite(u) or u < 0):
        raise FactorError(
            f"uncertainty_rel {u}: the relative standard uncertainty (k = 1) as a fraction, "
            "e.g. 0.05 for 5 %, or leave it out when the source states none"
        )


_MASS_KG = {"kgCO2": 1.0, "tCO2": 1000.0, "kgCO2e": 1.0, "tCO2e": 1000.0, "gCO2": 1e-3}
_SAME_DIMENSION = [{"Wh": 1e-3, "kWh": 1.0, "MWh": 1e3}, {"MJ": 1e-3, "GJ": 1.0, "TJ": 1e3}]


def _activity_scale(activity_unit: str, factor_unit: str) -> float:
    if activity_unit == factor_unit:
        return 1.0
    for dim in _SAME_DIMENSION:
        if activity_unit in dim and factor_unit in dim:
            return dim[activity_unit] / dim[factor_unit]
    raise FactorError(
        f"activity in {activity_unit} cannot use a factor per {factor_unit}: convert it first "
        "(gas volume: conversions.correct_gas_volume / gas_energy_gj; steam: steam_energy_gj)"
    )


@dataclass(frozen=True, slots=True)
class Emission:
    kg: float  # emitted mass, kg of factor.gases
    expanded_uncertainty_kg: float  # U = k·u_c
    coverage_factor: float
    factor_id: str
    note: str


def emissions(
    activity: float, activity_unit: str, activity_expanded_u: float, factor: EmissionFactor,
    *, k: float = K_DEFAULT,
) -> Emission:  # fmt: skip
    """activity × factor; relative uncertainties (activity's, factor's) in quadrature."""
    scale = _activity_scale(activity_unit, factor.activity_unit)
    try:
        per_kg = _MASS_KG[factor.mass_unit]
    except KeyError:
        raise FactorError(f"factor {factor.id}: unknown mass unit {factor.mass_unit!r}") from None
    kg = activity * scale * factor.value * per_kg
    rel_activity = activity_expanded_u / k / abs(activity) if activity else 0.0
    rel = relative_product(rel_activity, factor.uncertainty_rel or 0.0)
    note = "" if factor.uncertainty_rel is not None else (
        f"factor {factor.id} states no uncertainty: U covers the activity only"
    )  # fmt: skip
    return Emission(kg, k * rel * abs(kg), k, factor.id, note)


__all__ = [
    "BUILTIN",
    "NO_SOURCE",
    "Basis",
    "Emission",
    "EmissionFactor",
    "FactorConflict",
    "FactorError",
    "FactorRegistry",
    "check_user_record",
    "emissions",
]
