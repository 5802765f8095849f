"""DCC import: the shipped sample becomes the shipped JSON certificate; bad input is refused
with the element path and the fix."""

from __future__ import annotations

import json
import time
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from collector.metrology.calibration import apply, derive, uncertainty
from collector.metrology.calibration_models import Certificate
from collector.metrology.dcc import DccError, import_dcc
from collector.metrology.dsi import conversion

pytestmark = pytest.mark.unit

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
SAMPLE = (EXAMPLES / "dcc-sdm630-cert.xml").read_bytes()
QUANTITIES = {
    "energy_activeImport": "energy.active.import",
    "power_activeTotal": "power.active.total",
}
ROOT = "dcc:digitalCalibrationCertificate"
RESULTS = f"{ROOT}/dcc:measurementResults/dcc:measurementResult/dcc:results"
ENERGY_LIST = f"{RESULTS}/dcc:result[1]/dcc:data/dcc:list"


def load(data: bytes = SAMPLE, **over: Any) -> Certificate:
    args: dict[str, Any] = {
        "device_id": "elec-main",
        "quantity": QUANTITIES,
        "issue_date": date(2026, 3, 5),
        "timezone": "Asia/Shanghai",
        **over,
    }
    return import_dcc(data, **args)


def edit(old: str, new: str, data: bytes = SAMPLE) -> bytes:
    text = data.decode()
    assert old in text, old
    return text.replace(old, new, 1).encode()


def refused(data: bytes, **over: Any) -> DccError:
    with pytest.raises(DccError) as info:
        load(data, **over)
    return info.value


def test_sample_dcc_imports_as_the_shipped_json_certificate():
    c = load()
    assert c == Certificate.model_validate(json.loads((EXAMPLES / "certificate.json").read_text()))
    assert c.serial_number == "FICT-630-000123" and c.device_id == "elec-main"
    assert c.device_description == "Eastron SDM630: Three-phase multifunction energy meter"
    assert c.calibration_date == date(2026, 3, 3) and c.valid_until == date(2027, 3, 3)
    assert c.authoriser == "Erika Example (fictitious)"
    assert c.method == (
        "Comparison with a reference standard meter at defined test energies (IEC 62053-21:2020)"
    )
    std = c.reference_standards[0]
    assert (std.id, std.certificate_id, std.due_date) == (
        "RS-3PH-0417",
        "SAMPLE-NMI-2025-0931",
        date(2026, 9, 30),
    )
    env = c.environment
    assert (env.temperature_c.min, env.temperature_c.max) == (22.6, 23.4)
    assert (env.humidity_pct.min, env.humidity_pct.max) == pytest.approx((38.0, 45.0))  # \one


def test_sample_points_units_and_uncertainties():
    c = load()
    energy = [p for p in c.points if p.quantity == "energy.active.import"]
    assert [(p.reference, p.indicated) for p in energy] == [
        (0.5, 0.508),
        (1.0, 1.012),
        (2.0, 2.021),
        (5.0, 5.043),
        (10.0, 10.084),
    ]
    assert [(p.uncertainty.value, p.uncertainty.unit) for p in energy if p.uncertainty] == [
        (0.2, "%"),
        (0.1, "%"),
        (0.06, "%"),
        (0.05, "%"),
        (0.05, "%"),
    ]
    power = [p for p in c.points if p.quantity == "power.active.total"]
    # \watt converted to kW; U on the measured value is absolute, in kW too
    assert (power[0].reference, power[0].indicated) == (1.0, 1.018)
    assert [p.uncertainty.value for p in power if p.uncertainty] == pytest.approx(
        [0.001, 0.0025, 0.005, 0.01]
    )
    assert {p.uncertainty.unit for p in power if p.uncertainty} == {"kW"}


def test_both_models_from_the_sample_reveal_the_meter_error():
    c = load()
    energy = derive(c, "energy.active.import", "gain_offset")
    assert energy.gain == pytest.approx(0.992111241275, rel=1e-9)  # 1/1.008 = 0.992063
    assert energy.offset == pytest.approx(-0.004146530425, rel=1e-6)
    assert uncertainty(energy, 100.0).expanded == pytest.approx(
        0.2
    )  # U = 0.2 % of a 100 kWh consumption
    power = derive(c, "power.active.total", "piecewise_linear")
    assert apply(power, 10.11) == (pytest.approx(10.0), ())
    assert apply(power, 7.58)[0] == pytest.approx(5.0 + (7.58 - 5.05) * 5.0 / 5.06)


def test_single_quantity_form_and_explicit_leave_out():
    only_energy = {"energy_activeImport": "energy.active.import", "power_activeTotal": None}
    c = load(quantity=only_energy)
    assert {p.quantity for p in c.points} == {"energy.active.import"}
    err = refused(SAMPLE, quantity={"energy_activeImport": "energy.active.import"})
    assert "dcc:result[2]" in err.path and "power_activeTotal" in err.message
    # one quantity for every result: the power result's \watt cannot be kWh
    err = refused(SAMPLE, quantity="energy.active.import")
    assert err.path.endswith(
        "dcc:result[2]/dcc:data/dcc:list/dcc:quantity[1]/si:realListXMLList/si:unitXMLList"
    )
    assert "cannot be expressed in kWh" in err.message


def test_caller_supplies_what_the_dcc_lacks_and_may_not_contradict_it():
    assert "pass issue_date" in str(refused(SAMPLE, issue_date=None))
    no_recal = edit('<dcc:statement refType="basic_recalibration">', "<dcc:statement>")
    assert "pass valid_until" in str(refused(no_recal))
    assert load(no_recal, valid_until=date(2026, 12, 31)).valid_until == date(2026, 12, 31)
    # the site's calibration programme decides over the DCC's recalibration date
    assert load(valid_until=date(2026, 9, 1)).valid_until == date(2026, 9, 1)
    issued = edit(
        "<dcc:performanceLocation>",
        "<dcc:issueDate>2026-03-06</dcc:issueDate><dcc:performanceLocation>",
    )
    assert load(issued, issue_date=None).issue_date == date(2026, 3, 6)
    assert "drop issue_date" in str(refused(issued))


def test_reference_standard_due_date_from_the_caller_when_the_dcc_has_none():
    data = edit('refType="basic_recalibration" refId="refStd1"', 'refType="basic_note"')
    err = refused(data)
    assert "no due date for reference standard RS-3PH-0417" in err.message
    assert "reference_due" in err.message and err.path.endswith("dcc:measuringEquipment")
    c = load(data, reference_due={"RS-3PH-0417": date(2026, 12, 1)})
    assert c.reference_standards[0].due_date == date(2026, 12, 1)


def test_d_si_2_expanded_mu_reads_like_expanded_unc():
    data = SAMPLE.decode()
    for old, new in [
        ("si:expandedUncXMLList>", "si:expandedMUXMLList>"),
        ("si:uncertaintyXMLList>", "si:valueExpandedMUXMLList>"),
    ]:
        data = data.replace(old, new)
    data = data.replace(
        "<si:expandedMUXMLList>",
        "<si:measurementUncertaintyUnivariateXMLList><si:expandedMUXMLList>",
    )
    data = data.replace(
        "</si:expandedMUXMLList>",
        "</si:expandedMUXMLList></si:measurementUncertaintyUnivariateXMLList>",
    )
    assert load(data.encode()) == load()


def test_hybrid_takes_the_first_alternative_that_converts():
    hybrid = edit(
        "<si:realListXMLList>\n\t\t\t\t\t\t\t\t\t<si:valueXMLList>0.5000 1.0000",
        "<si:hybrid><si:realListXMLList><si:valueXMLList>1.8 3.6 7.2 18 36"
        "</si:valueXMLList><si:unitXMLList>\\mega\\joule</si:unitXMLList></si:realListXMLList>"
        "<si:realListXMLList>\n<si:valueXMLList>0.5000 1.0000",
    )
    hybrid = edit(
        "</si:realListXMLList>\n\t\t\t\t\t\t\t</dcc:quantity>",
        "</si:realListXMLList></si:hybrid>\n</dcc:quantity>",
        hybrid,
    )
    # the first alternative that converts (MJ -> kWh) is taken: the same values
    refs = [p.reference for p in load(hybrid).points[:5]]
    assert refs == pytest.approx([0.5, 1.0, 2.0, 5.0, 10.0], rel=1e-12)
    two = edit(
        "<si:hybrid>",
        "<si:real><si:value>1</si:value><si:unit>\\one</si:unit></si:real><si:hybrid>",
        hybrid,
    )
    assert "needs exactly one of si:real, si:realListXMLList or si:hybrid" in str(refused(two))


def row(ref: str, ind: str, u: str) -> str:
    def real(value: str, unc: str = "") -> str:
        unit = "<si:unit>\\kilo\\watt\\hour</si:unit>"
        return f"<si:real><si:value>{value}</si:value>{unit}{unc}</si:real>"

    unc = (
        f"<si:expandedUnc><si:uncertainty>{u}</si:uncertainty><si:coverageFactor>2"
        "</si:coverageFactor><si:coverageProbability>0.95</si:coverageProbability></si:expandedUnc>"
    )
    return (
        f'<dcc:list><dcc:quantity refType="basic_referenceValue">{real(ref)}</dcc:quantity>'
        f'<dcc:quantity refType="basic_measuredValue">{real(ind, unc)}</dcc:quantity></dcc:list>'
    )


def test_nested_lists_of_scalar_rows():
    text = SAMPLE.decode()
    start = text.index("<dcc:list>")
    end = text.index("</dcc:list>") + len("</dcc:list>")
    rows = (
        "<dcc:list>"
        + row("1.0000", "1.012", "0.002")
        + row("10.0000", "10.084", "0.01")
        + "</dcc:list>"
    )
    c = load((text[:start] + rows + text[end:]).encode(), quantity=QUANTITIES)
    energy = [p for p in c.points if p.quantity == "energy.active.import"]
    assert [(p.reference, p.indicated) for p in energy] == [(1.0, 1.012), (10.0, 10.084)]
    assert [(p.uncertainty.value, p.uncertainty.unit) for p in energy if p.uncertainty] == [
        (0.002, "kWh"),
        (0.01, "kWh"),
    ]


def test_malformed_xml_is_a_clear_error():
    err = refused(SAMPLE[:2000])
    assert err.message.startswith("malformed XML:") and "line" in err.message


def test_missing_required_element_names_its_parent():
    err = refused(edit("<dcc:uniqueIdentifier>SAMPLE-EKL-2026-0142</dcc:uniqueIdentifier>", ""))
    assert err.path == f"{ROOT}/dcc:administrativeData/dcc:coreData"
    assert err.message == "required element dcc:uniqueIdentifier is missing"
    no_points = edit('refType="basic_measuredValue"', 'refType="basic_other"')
    err = refused(no_points)
    assert err.path == ENERGY_LIST and "needs both" in err.message


def test_unknown_unit_names_the_element():
    err = refused(edit("\\kilo\\watt\\hour", "\\kilo\\furlong"))
    assert err.path == f"{ENERGY_LIST}/dcc:quantity[1]/si:realListXMLList/si:unitXMLList"
    assert "unknown D-SI unit '\\\\kilo\\\\furlong'" in err.message


def test_swapped_reference_and_indicated_contradict_the_stated_error():
    swapped = SAMPLE.decode().replace('"basic_referenceValue"', '"TMP"')
    swapped = swapped.replace('"basic_measuredValue"', '"basic_referenceValue"', 1)
    swapped = swapped.replace('"TMP"', '"basic_measuredValue"', 1)
    err = refused(swapped.encode())
    assert "point 1: the stated error 1.600 disagrees" in err.message and "swapped" in err.message


@pytest.mark.parametrize(
    "payload",
    [
        # billion laughs
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><lolz>&lol2;</lolz>',
        # external entity
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><x>&xxe;</x>',
        "<!doctype x><x/>",
    ],
)
def test_doctype_and_entity_declarations_are_refused_before_parsing(payload):
    start = time.monotonic()
    err = refused(payload.encode())
    assert "declarations are refused" in err.message and time.monotonic() - start < 1


def test_size_cap_encoding_and_root_are_checked():
    assert "stop at 1000" in str(refused(SAMPLE, max_bytes=1000))
    latin = edit('encoding="utf-8"', 'encoding="ISO-8859-1"')
    assert "save the DCC as UTF-8" in str(refused(latin))
    assert "not UTF-8" in str(refused(b"<x>\xff</x>"))
    assert "is not dcc:digitalCalibrationCertificate" in str(refused(b"<x/>"))
    v2 = edit('schemaVersion="3.1.2"', 'schemaVersion="2.4.0"')
    assert "reads DCC schema 3.x" in str(refused(v2))


def test_invalid_certificate_content_is_reported_with_the_field():
    err = refused(edit("<dcc:date>2026-09-30</dcc:date>", "<dcc:date>2026-03-01</dcc:date>"))
    assert "reference_standards: [0] RS-3PH-0417 was due on 2026-03-01" in err.message
    assert "device id 'elec main'" in str(refused(SAMPLE, device_id="elec main"))


def test_d_si_unit_conversions():
    assert conversion("\\watt\\hour", "kWh", "p").value(1500.0) == pytest.approx(1.5)
    assert conversion("\\giga\\joule", "kWh", "p").value(1.0) == pytest.approx(277.7777777778)
    assert conversion("\\kelvin", "°C", "p").value(300.0) == pytest.approx(26.85)
    assert conversion("\\kelvin", "°C", "p").spread(0.5) == 0.5  # differences never shift
    assert conversion("\\one", "%", "p").value(0.45) == pytest.approx(45.0)
    assert conversion("\\metre\\tothe{3}", "Nm³", "p").factor == 1.0
    assert conversion("\\mega\\pascal", "kPa", "p").value(1.0) == 1000.0
    with pytest.raises(DccError, match="cannot be expressed in kW"):
        conversion("\\kilo\\watt\\hour", "kW", "p")
