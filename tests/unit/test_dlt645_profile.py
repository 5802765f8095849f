"""DL/T 645 profiles: BCD value formats, the profile schema, and the loader's protocol dispatch."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from device_profiles import Profile, ProfileError, load_catalogue, load_profile
from device_profiles.dlt645 import Dlt645Profile, ValueFormat, decode_bcd, encode_bcd

pytestmark = pytest.mark.unit

BASE = {
    "id": "acme-d1",
    "manufacturer": "Acme",
    "model": "D1",
    "medium": "electricity",
    "protocol": "dlt645",
    "source": "datasheet",
    "verified": True,
    "registers": [
        {"quantity": "energy.active.import", "di": "00010000", "format": "XXXXXX.XX", "unit": "kWh"}
    ],
}


def write(tmp_path: Path, data: dict) -> Path:
    p = tmp_path / f"{data['id']}.yaml"
    p.write_text(yaml.safe_dump(data, allow_unicode=True))
    return p


@pytest.mark.parametrize(
    ("fmt", "digits", "decimals", "size"),
    [("XXXXXX.XX", 8, 2, 4), ("XXX.X", 4, 1, 2), ("XXX.XXX", 6, 3, 3), ("XX.XXXX", 6, 4, 3),
     ("X.XXX", 4, 3, 2), ("XXXX", 4, 0, 2)],
)  # fmt: skip
def test_formats(fmt, digits, decimals, size):
    f = ValueFormat.parse(fmt)
    assert (f.digits, f.decimals, f.size) == (digits, decimals, size)


@pytest.mark.parametrize(("fmt", "message"), [("XXX.XX", "5 digits"), ("NN.NN", "not like")])
def test_bad_formats(fmt, message):
    with pytest.raises(ValueError, match=message):
        ValueFormat.parse(fmt)


# Values by hand: digits big-endian, then bytes reversed; a negative value sets 0x80 of the top byte
@pytest.mark.parametrize(
    ("value", "fmt", "signed", "wire"),
    [
        (12345.67, "XXXXXX.XX", False, "67452301"),
        (230.1, "XXX.X", False, "0123"),  # 2301
        (5.025, "XXX.XXX", True, "255000"),  # 00 50 25
        (-1.2345, "XX.XXXX", True, "452381"),  # 012345 with the sign bit: 81 23 45
        (-0.987, "X.XXX", True, "8789"),  # 0987 with the sign bit: 89 87
        (0.0, "XX.XXXX", True, "000000"),
    ],
)
def test_bcd_both_ways(value, fmt, signed, wire):
    f = ValueFormat.parse(fmt)
    assert encode_bcd(value, f, signed=signed).hex() == wire
    assert decode_bcd(bytes.fromhex(wire), f, signed=signed) == value


def test_an_unsigned_field_reads_its_top_bit_as_a_digit():
    assert decode_bcd(bytes.fromhex("00000080"), ValueFormat.parse("XXXXXX.XX"), signed=False) == (
        800000.0
    )


def test_a_nibble_above_nine_is_no_number():
    assert decode_bcd(b"\xff\xff", ValueFormat.parse("XXX.X"), signed=False) is None


def test_values_that_do_not_fit_are_refused():
    with pytest.raises(ValueError, match="does not fit"):
        encode_bcd(1000.0, ValueFormat.parse("XXX.X"), signed=False)
    with pytest.raises(ValueError, match="does not fit"):
        encode_bcd(80.0, ValueFormat.parse("XX.XXXX"), signed=True)  # the top bit is the sign
    with pytest.raises(ValueError, match="unsigned"):
        encode_bcd(-1.0, ValueFormat.parse("XXX.X"), signed=False)
    with pytest.raises(ValueError, match="needs 2 bytes"):
        decode_bcd(b"\x01", ValueFormat.parse("XXX.X"), signed=False)


def test_loader_dispatches_on_protocol(tmp_path):
    p = load_profile(write(tmp_path, BASE))
    assert isinstance(p, Dlt645Profile)
    (pt,) = p.points()
    assert (pt.di, pt.format.size, p.dlt645.baudrate, p.dlt645.parity) == ("00010000", 4, 2400, "E")
    modbus = {k: v for k, v in BASE.items() if k != "protocol"}
    modbus["registers"] = [{"quantity": "energy.active.import", "address": 0, "unit": "kWh"}]
    assert isinstance(load_profile(write(tmp_path, {**modbus, "id": "acme-m1"})), Profile)


TOTAL = "energy.active.total"


def _with(**changes):
    return {**BASE, **changes}


def _reg(**changes):
    return _with(registers=[{**BASE["registers"][0], **changes}])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_with(protocol="iec62056"), "protocol: 'iec62056' is unknown; use modbus or dlt645"),
        (_reg(di="0001000"), "registers[0].di: di '0001000' is not 8 hex digits"),
        (_reg(format="XXX.XX"), "registers[0].format: format 'XXX.XX' has 5 digits"),
        (_reg(unit="Wh"), "registers[0]: unit 'Wh' is not the unit of energy.active.import"),
        (_reg(address=0), "registers[0].address: unknown key"),
        (_with(dlt645={"baudrate": 2401}), "dlt645.baudrate: baudrate 2401"),
        (
            _with(registers=[BASE["registers"][0], {**BASE["registers"][0], "quantity": TOTAL}]),
            "registers[1]: di 00010000 is already read by registers[0]",
        ),
    ],
)  # fmt: skip
def test_errors_name_profile_and_field(tmp_path, data, message):
    with pytest.raises(ProfileError) as err:
        load_profile(write(tmp_path, data))
    assert str(err.value).startswith("acme-d1.yaml: ")
    assert message in str(err.value)


def test_the_catalogue_has_a_dlt645_meter():
    shipped = [p for p in load_catalogue().values() if isinstance(p, Dlt645Profile)]
    assert shipped, "at least one DL/T 645 profile ships"
    for p in shipped:
        assert {pt.quantity for pt in p.points()} >= {"energy.active.import", "power.active.total"}
