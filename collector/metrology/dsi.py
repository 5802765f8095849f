"""D-SI (the DCC's SI format): units mapped to MeterTrace's vocabulary units, and values read
from si:real, si:realListXMLList and si:hybrid.

Units are matched exactly (after trimming) against the table below; anything else is an error
naming the element, never a guess. A D-SI unit converts to a vocabulary unit of the same
dimension (\\watt\\hour -> kWh is ×0.001; \\kelvin -> °C shifts by -273.15). D-SI has no normal
cubic metre: \\metre\\tothe{3} is accepted for Nm³ quantities, whose reference conditions the
device profile states.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from collector.metrology.dcc_xml import DccError, Node

# D-SI unit -> (dimension, factor to the dimension's base, shift to the base)
_E = 1 / 3.6e6  # kWh per joule
_DSI: dict[str, tuple[str, float, float]] = {
    r"\watt\hour": ("energy", 1e-3, 0),
    r"\kilo\watt\hour": ("energy", 1.0, 0),
    r"\mega\watt\hour": ("energy", 1e3, 0),
    r"\joule": ("energy", _E, 0),
    r"\kilo\joule": ("energy", _E * 1e3, 0),
    r"\mega\joule": ("energy", _E * 1e6, 0),
    r"\giga\joule": ("energy", _E * 1e9, 0),
    r"\volt\ampere\hour": ("apparent_energy", 1e-3, 0),
    r"\kilo\volt\ampere\hour": ("apparent_energy", 1.0, 0),
    r"\watt": ("power", 1e-3, 0),
    r"\kilo\watt": ("power", 1.0, 0),
    r"\mega\watt": ("power", 1e3, 0),
    r"\volt": ("voltage", 1.0, 0),
    r"\kilo\volt": ("voltage", 1e3, 0),
    r"\ampere": ("current", 1.0, 0),
    r"\milli\ampere": ("current", 1e-3, 0),
    r"\hertz": ("frequency", 1.0, 0),
    r"\metre\tothe{3}": ("volume", 1.0, 0),
    r"\metre\tothe{3}\hour\tothe{-1}": ("volume_flow", 1.0, 0),
    r"\metre\tothe{3}\second\tothe{-1}": ("volume_flow", 3600.0, 0),
    r"\kilogram": ("mass", 1e-3, 0),
    r"\tonne": ("mass", 1.0, 0),
    r"\kilogram\hour\tothe{-1}": ("mass_flow", 1e-3, 0),
    r"\tonne\hour\tothe{-1}": ("mass_flow", 1.0, 0),
    r"\kilogram\second\tothe{-1}": ("mass_flow", 3.6, 0),
    r"\pascal": ("pressure", 1e-3, 0),
    r"\kilo\pascal": ("pressure", 1.0, 0),
    r"\mega\pascal": ("pressure", 1e3, 0),
    r"\degreecelsius": ("temperature", 1.0, 0),
    r"\kelvin": ("temperature", 1.0, -273.15),
    r"\kilogram\metre\tothe{-3}": ("density", 1.0, 0),
    r"\one": ("ratio", 1.0, 0),
    r"\percent": ("ratio", 0.01, 0),
}
# vocabulary unit -> (dimension, factor to the base)
_VOCAB: dict[str, tuple[str, float]] = {
    "kWh": ("energy", 1.0),
    "GJ": ("energy", _E * 1e9),
    "kVAh": ("apparent_energy", 1.0),
    "kW": ("power", 1.0),
    "V": ("voltage", 1.0),
    "A": ("current", 1.0),
    "Hz": ("frequency", 1.0),
    "m³": ("volume", 1.0),
    "Nm³": ("volume", 1.0),
    "m³/h": ("volume_flow", 1.0),
    "Nm³/h": ("volume_flow", 1.0),
    "t": ("mass", 1.0),
    "t/h": ("mass_flow", 1.0),
    "kPa": ("pressure", 1.0),
    "MPa": ("pressure", 1e3),
    "°C": ("temperature", 1.0),
    "kg/m³": ("density", 1.0),
    "1": ("ratio", 1.0),
    "%": ("ratio", 0.01),
}


@dataclass(frozen=True, slots=True)
class Conversion:
    unit: str  # the vocabulary unit converted to
    factor: float
    shift: float

    def value(self, v: float) -> float:
        return v * self.factor + self.shift

    def spread(self, u: float) -> float:
        """An uncertainty or a difference: scales, never shifts."""
        return u * self.factor


def dimension(dsi_unit: str, path: str) -> str:
    try:
        return _DSI[dsi_unit.strip()][0]
    except KeyError:
        raise DccError(
            path, f"unknown D-SI unit {dsi_unit!r}; MeterTrace maps {', '.join(sorted(_DSI))}"
        ) from None


def conversion(dsi_unit: str, target: str, path: str) -> Conversion:
    dim = dimension(dsi_unit, path)
    _, factor, shift = _DSI[dsi_unit.strip()]
    if target not in _VOCAB or _VOCAB[target][0] != dim:
        raise DccError(path, f"D-SI unit {dsi_unit!r} ({dim}) cannot be expressed in {target}")
    to_target = _VOCAB[target][1]
    return Conversion(target, factor / to_target, shift / to_target)


@dataclass(frozen=True, slots=True)
class Values:
    """One si:real or si:realListXMLList: decimal strings as written, so rounding is known."""

    tokens: list[str]
    unit: str
    unit_path: str
    uncertainty: list[str] | None  # U, as written
    k: list[str] | None
    probability: list[str] | None
    path: str

    def floats(self) -> list[float]:
        return [number(t, self.path) for t in self.tokens]


def number(token: str, path: str) -> float:
    try:
        v = float(Decimal(token))
    except InvalidOperation:
        raise DccError(path, f"{token!r} is not a number") from None
    if not math.isfinite(v):
        raise DccError(path, f"{token!r} is not a finite number")
    return v


def half_step(token: str) -> float:
    """Half a unit in the last written digit: the rounding a printed value may carry."""
    exponent = Decimal(token).as_tuple().exponent
    return 0.5 * 10.0 ** int(exponent) if isinstance(exponent, int) else 0.0


def alternatives(quantity: Node) -> list[Values]:
    """The values of a dcc:quantity; several for si:hybrid (one quantity in several units)."""
    found = [quantity.opt(n) for n in ("si:real", "si:realListXMLList", "si:hybrid")]
    present = [n for n in found if n is not None]
    if len(present) != 1:
        raise DccError(
            quantity.path, "needs exactly one of si:real, si:realListXMLList or si:hybrid"
        )
    node = present[0]
    if node.el.tag.endswith("}hybrid"):
        out = [_real(n) for n in node.all("si:real")]
        out += [_list(n) for n in node.all("si:realListXMLList")]
        if not out:
            raise DccError(node.path, "si:hybrid holds no si:real or si:realListXMLList")
        return out
    return [_real(node) if node.el.tag.endswith("}real") else _list(node)]


def pick(quantity: Node, targets: tuple[str, ...]) -> tuple[Values, Conversion]:
    """The first alternative whose unit converts to one of the targets, in target order."""
    options = alternatives(quantity)
    for target in targets:
        for v in options:
            dim = dimension(v.unit, v.unit_path)
            if target in _VOCAB and _VOCAB[target][0] == dim:
                return v, conversion(v.unit, target, v.unit_path)
    units = ", ".join(v.unit for v in options)
    raise DccError(
        options[0].unit_path, f"unit {units} cannot be expressed in {' or '.join(targets)}"
    )


# Where U, k and p sit: D-SI 1.x si:expandedUnc, and D-SI 2.x (DCC 3.3) si:expandedMU.
_SINGLE = (
    ("si:expandedUnc", "si:uncertainty", "si:coverageFactor", "si:coverageProbability"),
    (
        "si:measurementUncertaintyUnivariate/si:expandedMU",
        "si:valueExpandedMU",
        "si:coverageFactor",
        "si:coverageProbability",
    ),
)
_LISTED = (
    (
        "si:expandedUncXMLList",
        "si:uncertaintyXMLList",
        "si:coverageFactorXMLList",
        "si:coverageProbabilityXMLList",
    ),
    (
        "si:measurementUncertaintyUnivariateXMLList/si:expandedMUXMLList",
        "si:valueExpandedMUXMLList",
        "si:coverageFactorXMLList",
        "si:coverageProbabilityXMLList",
    ),
)
_Tokens = list[str] | None


def _expanded(n: Node, forms: tuple[tuple[str, str, str, str], ...]) -> tuple[_Tokens, ...]:
    for where, value, k, p in forms:
        node: Node | None = n
        for part in where.split("/"):
            node = node.opt(part) if node is not None else None
        if node is not None:
            prob = node.opt(p)
            return (
                node.one(value).text().split(),
                node.one(k).text().split(),
                prob.text().split() if prob is not None else None,
            )
    return None, None, None


def _real(n: Node) -> Values:
    u, k, p = _expanded(n, _SINGLE)
    unit = n.one("si:unit")
    value = n.one("si:value").text()
    return Values([value], unit.text(), unit.path, u, k, p, n.path)


def _list(n: Node) -> Values:
    unit_node = n.one("si:unitXMLList")
    units = set(unit_node.text().split())
    if len(units) != 1:
        raise DccError(unit_node.path, f"mixes units {sorted(units)}; MeterTrace needs one unit")
    u, k, p = _expanded(n, _LISTED)
    tokens = n.one("si:valueXMLList").text().split()
    return Values(tokens, units.pop(), unit_node.path, u, k, p, n.path)
