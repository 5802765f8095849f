"""Serial transports in gateway.yaml, line timing, bus sharing rules and aligned schedules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from device_profiles import find_profile
from edge_agent.config import AgentConfig, DeviceSettings, ModbusRtuTransport
from edge_agent.runner import schedule_for
from edge_agent.transports.factory import TransportFactory
from edge_agent.transports.serial_bus import LineSettings, modbus_rtu_gap_s
from metertrace.config import ConfigError, load_config

pytestmark = pytest.mark.unit

AGENT = """
gateway: {id: gw-1}
signing: {key_file: k.key}
devices:
  - id: m1
    profile: eastron-sdm630
    transport: {type: modbus-rtu, port: /dev/ttyUSB0, baudrate: 9600, parity: N, unit_id: 3}
  - id: d1
    profile: generic-dlt645-three-phase
    transport: {type: dlt645, port: /dev/ttyUSB1, address: "000000123456"}
"""


def load(tmp_path: Path, text: str) -> AgentConfig:
    p = tmp_path / "gateway.yaml"
    p.write_text(text)
    return load_config(p, AgentConfig)


def test_serial_transports_load_with_defaults(tmp_path):
    m1, d1 = load(tmp_path, AGENT).devices
    assert isinstance(m1.transport, ModbusRtuTransport)
    assert (m1.transport.stopbits, m1.transport.bytesize, m1.transport.timeout_s) == (1, 8, 1.0)
    assert d1.transport.type == "dlt645" and d1.transport.baudrate is None  # from the profile


@pytest.mark.parametrize(
    ("replace", "by", "message"),
    [
        ("parity: N", "parity: X", "devices[0].transport.parity: Input should be 'N', 'E' or 'O'"),
        ("baudrate: 9600", "baudrate: 9601", "devices[0].transport.baudrate: baudrate 9601 is not"),
        ("unit_id: 3", "unit_id: 248", "devices[0].transport.unit_id: Input should be less"),
        ("unit_id: 3", "unit: 3", "devices[0].transport.unit: unknown key"),
        ('"000000123456"', '"12345"', "devices[1].transport.address: String should match"),
        ("type: dlt645", "type: dlt-645", "devices[1].transport: type 'dlt-645' is unknown; use"),
        ("port: /dev/ttyUSB1, ", "", "devices[1].transport.port: Field required"),
    ],
)
def test_errors_name_the_field(tmp_path, replace, by, message):
    with pytest.raises(ConfigError) as err:
        load(tmp_path, AGENT.replace(replace, by))
    assert message in str(err.value)


def test_align_needs_an_interval_that_divides_a_day(tmp_path):
    with pytest.raises(ConfigError, match=r"devices\[0\]: align: interval_s 7 does not divide"):
        load(
            tmp_path,
            AGENT.replace("unit_id: 3}", "unit_id: 3}\n    interval_s: 7\n    align: true"),
        )


@pytest.mark.parametrize(
    ("line", "bits", "gap_ms"),
    [
        (LineSettings(9600, "E"), 11, 4.0104),  # 3.5 × 11 bits / 9600
        (LineSettings(9600, "N"), 10, 3.6458),
        (LineSettings(2400, "E"), 11, 16.0417),
        (LineSettings(19200, "N", stopbits=2), 11, 2.0052),
        (LineSettings(38400, "N"), 10, 1.75),  # fixed above 19200 baud
        (LineSettings(115200, "E"), 11, 1.75),
    ],
)
def test_modbus_rtu_inter_frame_gap(line, bits, gap_ms):
    assert line.bits_per_char == bits
    assert modbus_rtu_gap_s(line) * 1000 == pytest.approx(gap_ms, abs=1e-4)


def device(dev_id: str, **transport: object) -> DeviceSettings:
    profile = "generic-dlt645-three-phase" if transport["type"] == "dlt645" else "eastron-sdm630"
    return DeviceSettings.model_validate({"id": dev_id, "profile": profile, "transport": transport})


RTU = {"type": "modbus-rtu", "port": "/dev/ttyS9", "baudrate": 9600, "parity": "N"}
DLT = {"type": "dlt645", "port": "/dev/ttyS8", "address": "000000000001"}


def readers(*devices: DeviceSettings) -> TransportFactory:
    factory = TransportFactory()
    for d in devices:
        factory.reader(d, find_profile(d.profile))
    return factory


def test_devices_on_one_port_share_one_bus():
    f = readers(
        device("a", **RTU, unit_id=1),
        device("b", **RTU, unit_id=2),
        device("c", **DLT),
        device("d", **{**DLT, "address": "000000000002"}),
    )
    buses = {b.path: b for b in f.buses()}
    assert set(buses) == {"/dev/ttyS9", "/dev/ttyS8"}
    dlt = buses["/dev/ttyS8"]
    assert (str(dlt.line), dlt.gap_s) == ("2400 8E1", 0.02), "the profile's line, 20 ms default"


@pytest.mark.parametrize(
    ("second", "message"),
    [
        ({**RTU, "baudrate": 19200, "unit_id": 2}, "already used by a with modbus-rtu at 9600 8N1"),
        ({**RTU, "unit_id": 1}, "unit id 1 on /dev/ttyS9 is already a's"),
        ({**DLT, "port": "/dev/ttyS9"}, "already used by a with modbus-rtu"),
    ],
)
def test_a_line_has_one_protocol_one_setting_and_unique_addresses(second, message):
    with pytest.raises(ConfigError, match=message):
        readers(device("a", **RTU, unit_id=1), device("b", **second))


def test_profile_and_transport_must_speak_the_same_protocol():
    d = DeviceSettings.model_validate({"id": "x", "profile": "eastron-sdm630", "transport": DLT})
    with pytest.raises(ConfigError, match="profile eastron-sdm630 speaks modbus but its transport"):
        TransportFactory().reader(d, find_profile(d.profile))


def aligned(interval_s: float, now: datetime) -> tuple[datetime, datetime]:
    d = device("a", **RTU).model_copy(update={"interval_s": interval_s, "align": True})
    trigger, first = schedule_for(d, now)
    return first, trigger.get_next_fire_time(first, first + timedelta(microseconds=1))


def test_aligned_polls_fall_on_boundaries_since_midnight_utc():
    now = datetime(2026, 3, 1, 10, 7, 12, 345000, tzinfo=UTC)
    first, second = aligned(900, now)
    assert (first, second) == (
        datetime(2026, 3, 1, 10, 15, tzinfo=UTC),
        datetime(2026, 3, 1, 10, 30, tzinfo=UTC),
    )
    first, second = aligned(0.5, now)
    assert (first.microsecond, second - first) == (500000, timedelta(seconds=0.5))
    on_boundary = datetime(2026, 3, 1, 10, 15, tzinfo=UTC)
    assert aligned(900, on_boundary)[0] == on_boundary


def test_unaligned_polls_start_at_once():
    now = datetime(2026, 3, 1, 10, 7, 12, tzinfo=UTC)
    _, first = schedule_for(device("a", **RTU), now)
    assert first == now
