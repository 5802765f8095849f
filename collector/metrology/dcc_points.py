"""The calibration points of a DCC: reference and indicated values with their uncertainty.

See `collector.metrology.dcc` for where they are found. Values are converted to the quantity's
vocabulary unit; errors and uncertainties (differences) are scaled, never shifted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from collector.metrology.calibration_models import RELATIVE
from collector.metrology.dcc_xml import DccError, Node
from collector.metrology.dsi import Conversion, Values, half_step, number, pick
from device_profiles.vocabulary import quantity as vocabulary_quantity

REF, IND, ERR = "basic_referenceValue", "basic_measuredValue", "basic_measurementError"


def read_points(
    results: Node, quantity: str | Mapping[str, str | None]
) -> tuple[list[dict[str, Any]], list[Node]]:
    points: list[dict[str, Any]] = []
    used: list[Node] = []
    for mr in results.all("dcc:measurementResult"):
        for res in mr.one("dcc:results").all("dcc:result"):
            rows = _rows(res.one("dcc:data"))
            if rows:
                name = _quantity_of(res, quantity)
                if name is None:
                    continue
                for row in rows:
                    points += _row_points(row, name)
                if mr not in used:
                    used.append(mr)
    if not points:
        raise DccError(
            results.path,
            f"no dcc:result holds quantities with refType {REF} and {IND} (the calibration points)",
        )
    return points, used


def _quantity_of(result: Node, quantity: str | Mapping[str, str | None]) -> str | None:
    name = quantity if isinstance(quantity, str) else _mapped(result, quantity)
    if name is None:  # mapped to None: left out on purpose
        return None
    try:
        return vocabulary_quantity(name).name
    except KeyError as exc:
        raise DccError(result.path, exc.args[0]) from None


def _mapped(result: Node, quantity: Mapping[str, str | None]) -> str | None:
    keys = result.tokens("refType") | {result.el.get("id") or ""}
    names = {q for key, q in quantity.items() if key in keys}
    if len(names) != 1:
        raise DccError(
            result.path,
            "holds calibration points: map it by its id or refType "
            f"({', '.join(sorted(keys - {''}))}) to one quantity, or to None to leave it out",
        )
    return names.pop()


def _rows(container: Node) -> list[dict[str, Node]]:
    """Sets of reference/measured(/error) quantities: the container's own, then nested lists'."""
    roles: dict[str, Node] = {}
    for q in container.all("dcc:quantity"):
        for role in q.tokens("refType") & {REF, IND, ERR}:
            if role in roles:
                raise DccError(q.path, f"a second quantity with refType {role} here")
            roles[role] = q
    rows = []
    if REF in roles or IND in roles:
        if not (REF in roles and IND in roles):
            raise DccError(container.path, f"needs both a {REF} and a {IND} quantity")
        rows.append(roles)
    for sub in container.all("dcc:list"):
        rows += _rows(sub)
    return rows


def _row_points(row: dict[str, Node], quantity: str) -> list[dict[str, Any]]:
    unit = vocabulary_quantity(quantity).unit
    ref_v, ref_c = pick(row[REF], (unit,))
    ind_v, ind_c = pick(row[IND], (unit,))
    refs = [ref_c.value(x) for x in ref_v.floats()]
    inds = [ind_c.value(x) for x in ind_v.floats()]
    n = len(refs)
    if len(inds) != n:
        raise DccError(ind_v.path, f"has {len(inds)} values, the reference has {n}")
    sources = []
    if ERR in row:
        err_v, err_c = pick(row[ERR], (unit, RELATIVE))
        relative = err_c.unit == RELATIVE
        _check_errors(err_v, err_c.factor, relative, ref_v, ref_c, ind_v, ind_c, row[ERR])
        sources.append((err_v, err_c))
    sources += [(ind_v, ind_c), (ref_v, ref_c)]
    with_u = [(v, c) for v, c in sources if v.uncertainty is not None]
    if not with_u:
        raise DccError(
            row[IND].path,
            "no si:expandedUnc on the error, measured or reference value: "
            "MeterTrace needs U with its coverage factor",
        )
    v, c = with_u[0]
    assert v.uncertainty is not None and v.k is not None
    us = [c.spread(number(t, v.path)) for t in _each(v.uncertainty, n, v.path)]
    ks = [number(t, v.path) for t in _each(v.k, n, v.path)]
    ps = [number(t, v.path) for t in _each(v.probability, n, v.path)] if v.probability else None
    return [
        {
            "quantity": quantity,
            "unit": unit,
            "reference": refs[i],
            "indicated": inds[i],
            "uncertainty": {
                "value": us[i],
                "k": ks[i],
                "unit": c.unit,
                "coverage_probability": ps[i] if ps else None,
            },
        }
        for i in range(n)
    ]


def _each(tokens: list[str], n: int, path: str) -> list[str]:
    if len(tokens) == 1:
        return tokens * n
    if len(tokens) != n:
        raise DccError(path, f"{len(tokens)} uncertainty entries for {n} values; give 1 or {n}")
    return tokens


def _check_errors(
    err: Values,
    err_factor: float,
    relative: bool,
    ref: Values,
    ref_c: Conversion,
    ind: Values,
    ind_c: Conversion,
    where: Node,
) -> None:
    refs = [ref_c.value(x) for x in ref.floats()]
    inds = [ind_c.value(x) for x in ind.floats()]
    if len(err.tokens) != len(refs):
        raise DccError(where.path, f"{len(err.tokens)} errors for {len(refs)} points")
    for i, (tok, r, x) in enumerate(zip(err.tokens, refs, inds, strict=True)):
        given = number(tok, where.path) * err_factor
        # what rounding the printed reference and indicated values may carry, in the unit
        h_ref = ref_c.spread(half_step(ref.tokens[i]))
        h_ind = ind_c.spread(half_step(ind.tokens[i]))
        if relative:
            if r == 0:
                raise DccError(where.path, f"a relative error at point {i + 1} with reference 0")
            computed = (x - r) / r * 100
            tol = 100 * (h_ind + h_ref * abs(x / r)) / abs(r)
        else:
            computed, tol = x - r, h_ind + h_ref
        tol += half_step(tok) * err_factor + 1e-9 * max(1.0, abs(computed))
        if abs(given - computed) > tol:
            raise DccError(
                where.path,
                f"point {i + 1}: the stated error {tok} disagrees with indicated - "
                f"reference ({computed:.6g}); are {REF} and {IND} swapped?",
            )
