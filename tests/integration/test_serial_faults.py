"""Faults on a serial line, over a real pty pair: each gets a clear message (device, request,
cause) in the poller's health, a silent device is backed off and comes back by itself, and a
reply that comes too late is never taken for another meter's."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from device_profiles import Function, find_profile
from edge_agent.errors import CommError
from edge_agent.poller import DevicePoller
from edge_agent.transports import NoAnswer
from edge_agent.transports.dlt645 import Dlt645Reader
from edge_agent.transports.modbus_rtu import ModbusRtuReader
from edge_agent.transports.serial_bus import LineSettings, SerialBus, modbus_rtu_gap_s
from simulators.dlt645 import Dlt645Simulator
from simulators.modbus_rtu import ModbusRtuSimulator
from simulators.scenario import Scenario, SimMeter, SimServer, build_models
from tests.serial_pty import pty_pair

pytestmark = pytest.mark.integration

SDM630 = find_profile("eastron-sdm630")
DLT = find_profile("generic-dlt645-three-phase")
LINE = LineSettings(9600, "N")


@asynccontextmanager
async def rtu_line(tmp_path: Path) -> AsyncIterator[tuple[ModbusRtuSimulator, SerialBus]]:
    meter = SimMeter(id="m7", profile="eastron-sdm630", unit_id=7, gauges={"voltage.l1n": 231})
    with pty_pair(tmp_path) as (agent_end, sim_end):
        server = SimServer(name="s", protocol="modbus-rtu", serial_port=sim_end, meters=[meter])
        sim = ModbusRtuSimulator(server, build_models(Scenario(name="t", servers=[server])))
        await sim.start()
        bus = SerialBus(agent_end, LINE, "modbus-rtu", modbus_rtu_gap_s(LINE))
        try:
            yield sim, bus
        finally:
            await bus.close()
            await sim.stop()


def dlt_meter(meter_id: str, address: str, volts: float) -> SimMeter:
    return SimMeter(id=meter_id, profile=DLT.id, address=address, gauges={"voltage.l1n": volts})


@asynccontextmanager
async def dlt_line(
    tmp_path: Path, *meters: SimMeter
) -> AsyncIterator[tuple[Dlt645Simulator, SerialBus]]:
    with pty_pair(tmp_path) as (agent_end, sim_end):
        server = SimServer(name="s", protocol="dlt645", serial_port=sim_end, meters=list(meters))
        sim = Dlt645Simulator(server, build_models(Scenario(name="t", servers=[server])))
        await sim.start()
        bus = SerialBus(agent_end, LineSettings(2400, "E"), "dlt645", gap_s=0.005)
        try:
            yield sim, bus
        finally:
            await bus.close()
            await sim.stop()


def test_a_missing_serial_port_names_device_request_and_cause():
    async def run() -> DevicePoller:
        bus = SerialBus("/dev/ttyMISSING9", LINE, "modbus-rtu", 0.004)
        poller = DevicePoller("elec-1", SDM630, ModbusRtuReader("elec-1", bus, 1, 0.2))
        _, readings = await poller.poll()
        assert {(r["quality"], r["value"]) for r in readings} == {("comm_error", None)}
        return poller

    poller = asyncio.run(run())
    error = poller.health.last_error or ""
    assert error.startswith("elec-1: FC04 0+")
    assert "on /dev/ttyMISSING9 (modbus-rtu, 9600 8N1): cannot open the serial port" in error
    assert "No such file or directory" in error
    assert poller.health.failed_requests == 1, "nothing more is tried once the line is missing"
    assert poller.health.consecutive_failures == 1


def test_a_wrong_unit_id_is_silence_with_a_hint(tmp_path):
    async def run() -> None:
        async with rtu_line(tmp_path) as (sim, bus):
            with pytest.raises(NoAnswer) as err:
                await ModbusRtuReader("elec-1", bus, 9, 0.2).read(Function.INPUT, 0, 2)
            assert str(err.value) == (
                f"elec-1: FC04 0+2 unit 9 on {bus.path} (modbus-rtu, 9600 8N1): no answer within "
                "0.2 s; check unit id 9, baud rate and parity (9600 8N1) and wiring"
            )
            assert sim.log == type(sim.log)(), "nobody answered (or was asked as unit 7)"

    asyncio.run(run())


def test_a_modbus_exception_names_its_code_and_is_no_silence(tmp_path):
    async def run() -> None:
        async with rtu_line(tmp_path) as (_, bus):
            reader = ModbusRtuReader("elec-1", bus, 7, 0.5)
            with pytest.raises(CommError) as err:
                await reader.read(Function.INPUT, 0x300, 2)  # the SDM630 has nothing there
            assert not isinstance(err.value, NoAnswer)
            assert "FC04 768+2 unit 7" in str(err.value)
            assert str(err.value).endswith("Modbus exception 2 (illegal data address)")
            assert await reader.read(Function.INPUT, 0, 2), "the line is fine afterwards"

    asyncio.run(run())


def test_dlt645_unknown_di_is_an_abnormal_reply_and_a_wrong_address_is_silence(tmp_path):
    async def run() -> None:
        async with dlt_line(tmp_path, dlt_meter("d1", "000000000001", 230.0)) as (_, bus):
            reader = Dlt645Reader("d1", bus, "000000000001", 0.3)
            with pytest.raises(CommError) as err:
                await reader.read_di("02800002", 2)  # frequency: not in this profile
            assert not isinstance(err.value, NoAnswer)
            assert "read DI 02800002 from address 000000000001" in str(err.value)
            assert "abnormal reply, error 0x02 (no requested data" in str(err.value)
            with pytest.raises(NoAnswer, match=r"no answer within 0\.3 s; check the address"):
                await Dlt645Reader("d2", bus, "000000000002", 0.3).read_di("02010100", 2)
            assert await reader.read_di("02010100", 2) == bytes.fromhex("0023")  # 230.0 V

    asyncio.run(run())


def test_a_late_reply_is_never_taken_for_the_next_meters(tmp_path):
    async def run() -> None:
        meters = (dlt_meter("d1", "000000000001", 111.1), dlt_meter("d2", "000000000002", 222.2))
        async with dlt_line(tmp_path, *meters) as (sim, bus):
            sim.meters["d1"].slow_s = 0.3  # answers after d1's reader gave up
            sim.meters["d2"].slow_s = 0.25  # so d1's answer arrives while d2's is awaited
            with pytest.raises(NoAnswer):
                await Dlt645Reader("d1", bus, "000000000001", 0.15).read_di("02010100", 2)
            value = await Dlt645Reader("d2", bus, "000000000002", 0.5).read_di("02010100", 2)
            assert value == bytes.fromhex("2222")  # 222.2 V, not d1's 111.1
            assert [r.answered for r in sim.log] == [True, True], "d1 did answer, late"

    asyncio.run(run())


def test_a_silent_meter_is_backed_off_and_comes_back_by_itself(tmp_path):
    async def run() -> None:
        async with dlt_line(tmp_path, dlt_meter("d1", "000000000001", 230.0)) as (sim, bus):
            sim.meters["d1"].dead = True
            poller = DevicePoller("d1", DLT, Dlt645Reader("d1", bus, "000000000001", 0.1))
            for _ in range(2):
                _, readings = await poller.poll()
                assert {r["quality"] for r in readings} == {"comm_error"}
            assert len(sim.log) == 2, "one request per poll: a silent meter ends its poll"
            assert poller.health.consecutive_failures == 2
            _, readings = await poller.poll()  # skipped: not asked at all
            assert len(sim.log) == 2 and {r["quality"] for r in readings} == {"comm_error"}
            assert poller.health.skipped_polls == 1
            sim.meters["d1"].dead = False
            _, readings = await poller.poll()
            assert {r["quality"] for r in readings} == {"good"}
            h = poller.health
            assert (h.consecutive_failures, h.skipped_polls, h.last_ok is not None) == (0, 0, True)

    asyncio.run(run())
