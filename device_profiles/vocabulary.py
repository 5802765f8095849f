"""The controlled vocabulary of measured quantities.

Every reading on the wire names one of these quantities and carries exactly its unit, so a
footprint engine never has to guess whether a number is Wh or kWh, m³ or Nm³.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    COUNTER = "counter"  # a monotonically increasing total (energy, volume, mass)
    GAUGE = "gauge"  # an instantaneous value (power, voltage, pressure)


@dataclass(frozen=True, slots=True)
class Quantity:
    name: str
    unit: str
    kind: Kind
    medium: str
    description: str


def _q(name: str, unit: str, kind: Kind, medium: str, description: str) -> Quantity:
    return Quantity(name, unit, kind, medium, description)


C, G = Kind.COUNTER, Kind.GAUGE

_ALL: tuple[Quantity, ...] = (
    _q("energy.active.import", "kWh", C, "electricity", "active energy delivered to the site"),
    _q("energy.active.export", "kWh", C, "electricity", "active energy delivered by the site"),
    _q("energy.active.total", "kWh", C, "electricity", "import plus export active energy"),
    _q("energy.reactive.import", "kvarh", C, "electricity", "reactive energy, import"),
    _q("energy.reactive.export", "kvarh", C, "electricity", "reactive energy, export"),
    _q("energy.apparent.import", "kVAh", C, "electricity", "apparent energy, import"),
    _q("power.active.total", "kW", G, "electricity", "total active power"),
    _q("power.active.l1", "kW", G, "electricity", "active power, phase 1"),
    _q("power.active.l2", "kW", G, "electricity", "active power, phase 2"),
    _q("power.active.l3", "kW", G, "electricity", "active power, phase 3"),
    _q("voltage.l1n", "V", G, "electricity", "phase 1 to neutral voltage"),
    _q("voltage.l2n", "V", G, "electricity", "phase 2 to neutral voltage"),
    _q("voltage.l3n", "V", G, "electricity", "phase 3 to neutral voltage"),
    _q("voltage.l1l2", "V", G, "electricity", "line voltage 1-2"),
    _q("voltage.l2l3", "V", G, "electricity", "line voltage 2-3"),
    _q("voltage.l3l1", "V", G, "electricity", "line voltage 3-1"),
    _q("current.l1", "A", G, "electricity", "phase 1 current"),
    _q("current.l2", "A", G, "electricity", "phase 2 current"),
    _q("current.l3", "A", G, "electricity", "phase 3 current"),
    _q("power_factor.total", "1", G, "electricity", "total power factor"),
    _q("frequency", "Hz", G, "electricity", "grid frequency"),
    _q("volume.gas.standard", "Nm³", C, "gas", "volume at the profile's reference conditions"),
    _q("volume.gas.working", "m³", C, "gas", "uncorrected volume at line conditions"),
    _q("flow.gas.standard", "Nm³/h", G, "gas", "flow rate at reference conditions"),
    _q("flow.gas.working", "m³/h", G, "gas", "flow rate at line conditions"),
    _q("pressure.gas", "kPa", G, "gas", "absolute line pressure"),
    _q("temperature.gas", "°C", G, "gas", "line temperature"),
    _q("conversion_factor.gas", "1", G, "gas", "volume conversion factor C = Vb/Vm"),
    _q("mass.steam", "t", C, "steam", "steam mass total"),
    _q("flow.steam.mass", "t/h", G, "steam", "steam mass flow rate"),
    _q("pressure.steam", "MPa", G, "steam", "absolute steam pressure"),
    _q("temperature.steam", "°C", G, "steam", "steam temperature"),
    _q("density.steam", "kg/m³", G, "steam", "steam density"),
    _q("energy.heat", "GJ", C, "steam", "heat total"),
)

VOCABULARY: dict[str, Quantity] = {q.name: q for q in _ALL}
MEDIA: frozenset[str] = frozenset(q.medium for q in _ALL)


def check_medium(value: str) -> str:
    """A pydantic-style check: the medium must be one the vocabulary knows."""
    if value not in MEDIA:
        raise ValueError(f"unknown medium {value!r}; use one of {sorted(MEDIA)}")
    return value


def quantity(name: str) -> Quantity:
    """Look a quantity up; the error lists the close names so a typo is easy to fix."""
    try:
        return VOCABULARY[name]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(name, VOCABULARY, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise KeyError(f"unknown quantity {name!r}{hint}") from None
