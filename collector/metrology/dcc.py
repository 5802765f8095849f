"""Import of a PTB Digital Calibration Certificate (DCC XML, schema 3.x) as a Certificate.

Where each field comes from (dcc = https://ptb.de/dcc, si = https://ptb.de/si):

- certificate_id: administrativeData/coreData/uniqueIdentifier
- calibration_date: coreData/endPerformanceDate (after beginPerformanceDate: the results hold
  from the end of the calibration)
- issue_date: coreData/issueDate when present; schema 3.1 has no such element, then the caller's
- laboratory: calibrationLaboratory/contact/name; calibrationLaboratoryCode is the
  accreditation (absent: null, not accredited)
- customer: customer/name. authoriser: respPersons/respPerson with mainSigner true, else the first
- serial_number: items/item/identifications/identification with issuer `manufacturer` (when
  there are several, the one whose name says "serial"); device_description: manufacturer, model,
  item name. device_id is MeterTrace's and always the caller's.
- valid_until: the caller's (the site's calibration programme decides), else a statement with
  refType `basic_recalibration` and no refId (its dcc:date)
- reference_standards: measurementResult/measuringEquipments/measuringEquipment (those with
  refType `basic_normalUsed`, else all): first identification value, certificate/referralID,
  and the due date from a `basic_recalibration` statement whose refId is the equipment's id,
  else from the caller's reference_due[standard id]
- method: usedMethod names (with their norms), except refType `basic_uncertainty`
- environment: influenceCondition refType `basic_temperature` and `basic_humidityRelative`: the
  span of their quantities (…Min and …Max, or one value)
- points: every dcc:result whose data (or dcc:list, nested lists being rows) holds quantities
  with refType `basic_referenceValue` and `basic_measuredValue`; a `basic_measurementError`
  quantity, if present, must agree with indicated − reference within the printed rounding
  (this catches swapped reference and indicated values)
- uncertainty, per point: si:expandedUnc(XMLList) of the error quantity (relative when the
  error is in \\percent or \\one), else of the measured value, else of the reference value.
  A single U or k in an XMLList applies to every point.

A field the DCC lacks and the caller does not give, or a disagreement between the two, is an
error naming the element path and the argument to pass.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Any

from pydantic import ValidationError

from collector.metrology.calibration_models import Certificate, CertificateRef
from collector.metrology.dcc_points import read_points
from collector.metrology.dcc_xml import MAX_DCC_BYTES, DccError, Node, parse
from collector.metrology.dsi import pick
from device_profiles.loader import format_validation_error

__all__ = ["MAX_DCC_BYTES", "DccError", "import_dcc"]

RECALIBRATION = "basic_recalibration"
_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})(Z|[+-]\d{2}:\d{2})?$")


def import_dcc(
    data: bytes,
    *,
    device_id: str,
    quantity: str | Mapping[str, str | None],
    valid_until: date | None = None,
    issue_date: date | None = None,
    reference_due: Mapping[str, date] | None = None,
    version: int = 1,
    supersedes: CertificateRef | None = None,
    timezone: str = "UTC",
    max_bytes: int = MAX_DCC_BYTES,
) -> Certificate:
    """Read a DCC into a Certificate.

    `quantity` is the vocabulary quantity of every result's points, or, when a DCC covers
    several, a mapping from each dcc:result's id or refType to its quantity (None leaves that
    result out). `data` is the file's bytes; read at most `max_bytes + 1` of them.
    """
    root = parse(data, max_bytes)
    if root.path != "dcc:digitalCalibrationCertificate":
        raise DccError(root.path, "is not dcc:digitalCalibrationCertificate (https://ptb.de/dcc)")
    schema = root.el.get("schemaVersion", "")
    if not schema.startswith("3."):
        raise DccError(root.path, f"schemaVersion {schema!r}: MeterTrace reads DCC schema 3.x")
    admin = root.one("dcc:administrativeData")
    core = admin.one("dcc:coreData")
    begin, end = (
        _date(core.one("dcc:beginPerformanceDate")),
        _date(core.one("dcc:endPerformanceDate")),
    )
    if end < begin:
        raise DccError(core.path, "endPerformanceDate is before beginPerformanceDate")
    issue_node = core.opt("dcc:issueDate")
    issued = _date(issue_node) if issue_node is not None else None
    if issued is not None and issue_date is not None and issued != issue_date:
        raise DccError(core.path, f"issueDate is {issued}, not {issue_date}: drop issue_date")
    if (issued or issue_date) is None:
        raise DccError(core.path, "the DCC has no issueDate: pass issue_date")
    recal = _recalibration_dates(admin)
    item = _single(admin.one("dcc:items"), "dcc:item")
    item_due = recal.get(None) or recal.get(item.el.get("id") or "")
    if valid_until is None and item_due is None:
        raise DccError(
            admin.path,
            f"no statement refType {RECALIBRATION} dates the recalibration: pass "
            "valid_until from the site's calibration programme",
        )
    results = root.one("dcc:measurementResults")
    points, used = read_points(results, quantity)
    lab = admin.one("dcc:calibrationLaboratory")
    code = lab.opt("dcc:calibrationLaboratoryCode")
    fields: dict[str, Any] = {
        "certificate_id": core.one("dcc:uniqueIdentifier").text(),
        "version": version,
        "supersedes": supersedes,
        "laboratory": {
            "name": lab.one("dcc:contact").one("dcc:name").content(),
            "accreditation": code.text() if code is not None else None,
        },
        "customer": admin.one("dcc:customer").one("dcc:name").content(),
        "serial_number": _serial(item),
        "device_id": device_id,
        "device_description": _description(item),
        "method": _methods(used),
        "calibration_date": end,
        "issue_date": issued or issue_date,
        "valid_until": valid_until or item_due,
        "timezone": timezone,
        "reference_standards": _standards(used, recal, reference_due or {}),
        "environment": {
            "temperature_c": _span(used, "basic_temperature", "°C"),
            "humidity_pct": _span(used, "basic_humidityRelative", "%"),
        },
        "points": points,
        "authoriser": _authoriser(admin.one("dcc:respPersons")),
    }
    try:
        return Certificate.model_validate(fields)
    except ValidationError as exc:
        raise DccError(
            root.path, f"not a valid certificate: {format_validation_error(exc)}"
        ) from None


def _date(n: Node) -> date:
    m = _DATE.match(n.text())
    if not m:
        raise DccError(n.path, f"{n.text()!r} is not an xs:date (YYYY-MM-DD)")
    try:
        return date.fromisoformat(m.group(1))
    except ValueError as exc:
        raise DccError(n.path, str(exc)) from None


def _single(parent: Node, name: str) -> Node:
    found = parent.all(name)
    if len(found) != 1:
        raise DccError(parent.path, f"holds {len(found)} {name}; MeterTrace imports one per DCC")
    return found[0]


def _recalibration_dates(admin: Node) -> dict[str | None, date]:
    """Recalibration dates by refId (None: the calibrated item itself)."""
    out: dict[str | None, date] = {}
    statements = admin.opt("dcc:statements")
    for st in statements.all("dcc:statement") if statements is not None else []:
        when = st.opt("dcc:date")
        if RECALIBRATION not in st.tokens("refType") or when is None:
            continue
        refs: set[str | None] = set(st.tokens("refId")) or {None}
        for ref in refs:
            if ref in out and out[ref] != _date(when):
                raise DccError(st.path, f"a second, different recalibration date for {ref}")
            out[ref] = _date(when)
    return out


def _serial(item: Node) -> str:
    ids = item.one("dcc:identifications").all("dcc:identification")
    maker = [i for i in ids if i.one("dcc:issuer").text() == "manufacturer"]
    if len(maker) > 1:
        maker = [i for i in maker if _names_serial(i)]
    if len(maker) != 1:
        raise DccError(
            item.path,
            "needs one identification with issuer manufacturer (the serial number); "
            "with several, name the serial number's 'Serial no.'",
        )
    return maker[0].one("dcc:value").text()


def _names_serial(ident: Node) -> bool:
    name = ident.opt("dcc:name")
    texts = [c.text() for c in name.all("dcc:content")] if name is not None else []
    return any("serial" in t.lower() or "serien" in t.lower() for t in texts)


def _description(item: Node) -> str:
    maker = item.opt("dcc:manufacturer")
    model = item.opt("dcc:model")
    parts = [maker.one("dcc:name").content() if maker is not None else ""]
    parts.append(model.text() if model is not None else "")
    label = " ".join(p for p in parts if p)
    name = item.one("dcc:name").content()
    return f"{label}: {name}" if label else name


def _authoriser(persons: Node) -> str:
    people = persons.all("dcc:respPerson")
    if not people:
        raise DccError(persons.path, "names no dcc:respPerson (who authorised the certificate)")
    main = [p for p in people if (s := p.opt("dcc:mainSigner")) is not None and s.text() == "true"]
    return (main or people)[0].one("dcc:person").one("dcc:name").content()


def _methods(used: list[Node]) -> str:
    names: list[str] = []
    for result in used:
        methods = result.opt("dcc:usedMethods")
        for m in methods.all("dcc:usedMethod") if methods is not None else []:
            if "basic_uncertainty" in m.tokens("refType"):
                continue
            norms = ", ".join(n.text() for n in m.all("dcc:norm"))
            text = m.one("dcc:name").content() + (f" ({norms})" if norms else "")
            if text not in names:
                names.append(text)
    if not names:
        raise DccError(used[0].path, "no dcc:usedMethod names the calibration method")
    return "; ".join(names)


def _standards(
    used: list[Node], recal: dict[str | None, date], given: Mapping[str, date]
) -> list[dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for result in used:
        group = result.opt("dcc:measuringEquipments")
        eqs = group.all("dcc:measuringEquipment") if group is not None else []
        for eq in [e for e in eqs if "basic_normalUsed" in e.tokens("refType")] or eqs:
            idents = eq.opt("dcc:identifications")
            first = idents.all("dcc:identification")[:1] if idents is not None else []
            std_id = first[0].one("dcc:value").text() if first else eq.el.get("id")
            if not std_id:
                raise DccError(eq.path, "needs an identification (the standard's id)")
            cert = eq.opt("dcc:certificate")
            if cert is None:
                raise DccError(
                    eq.path,
                    "has no dcc:certificate with its referralID: the traceability "
                    "chain needs the reference standard's own certificate id",
                )
            due = recal.get(eq.el.get("id") or "") or given.get(std_id)
            if due is None:
                raise DccError(
                    eq.path,
                    f"no due date for reference standard {std_id}: add a statement "
                    f"refType {RECALIBRATION} refId={eq.el.get('id')!r} or pass "
                    f"reference_due={{{std_id!r}: date}}",
                )
            out[std_id] = {
                "id": std_id,
                "certificate_id": cert.one("dcc:referralID").text(),
                "due_date": due,
                "description": eq.one("dcc:name").content(),
            }
    if not out:
        raise DccError(used[0].path, "no dcc:measuringEquipment: the reference standard is needed")
    return list(out.values())


def _span(used: list[Node], ref_type: str, unit: str) -> dict[str, float]:
    values: list[float] = []
    for result in used:
        group = result.opt("dcc:influenceConditions")
        for c in group.all("dcc:influenceCondition") if group is not None else []:
            if ref_type in c.tokens("refType"):
                for q in c.one("dcc:data").all("dcc:quantity"):
                    v, conv = pick(q, (unit,))
                    values += [conv.value(x) for x in v.floats()]
    if not values:
        raise DccError(used[0].path, f"no dcc:influenceCondition refType {ref_type} with values")
    return {"min": min(values), "max": max(values)}
