"""Counter events end to end without I/O: the poller's quality override, the signed event, the
collector's judgement, and the tracker state that survives a restart."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import typing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from collector.ingest.rules import AcceptedEvent, GatewayKey, Trust, judge
from device_profiles import Function, Profile, encode, find_profile, is_float
from device_profiles.dlt645 import Dlt645Profile, encode_bcd
from edge_agent.counter_quality import CounterNotice, CounterWatch
from edge_agent.counters import CounterEvent, CounterPolicy, EventKind
from edge_agent.messages import MessageSigner
from edge_agent.outbox import Outbox
from edge_agent.poller import DevicePoller
from edge_agent.transports import NoAnswer
from metertrace.signing import HmacSigner
from metertrace.wire import (
    CounterEventBody,
    CounterKind,
    EventMessage,
    verify_hmac,
)

pytestmark = pytest.mark.unit

KEY = b"k" * 32
T0 = datetime(2026, 11, 1, tzinfo=UTC)
GAS = "volume.gas.standard"
GAS_WRAP = 2**32 * 0.01  # u32 of 0.01 Nm³


def body(**over: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "quantity": GAS,
        "kind": "backward_step",
        "unit": "Nm³",
        "before": 1000.0,
        "after": 3.0,
        "ts_before": T0,
        "ts_after": T0 + timedelta(minutes=1),
        "reading_ts": T0 + timedelta(minutes=1),
        "consumption": None,
    }
    return {**fields, **over}


# --- the wire model -------------------------------------------------------------------------


def test_wire_kinds_are_the_trackers():
    assert set(typing.get_args(CounterKind)) == {k.value for k in EventKind}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ts_after": T0 - timedelta(seconds=1)}, "ts_before <= ts_after <= reading_ts"),
        ({"reading_ts": T0}, "ts_before <= ts_after <= reading_ts"),
        ({"kind": "wrap", "consumption": 1.0}, "names the wrap value"),
        ({"kind": "wrap", "wrap": 1e6}, "names the wrap value"),
        ({"consumption": 2.0}, "send consumption: null"),
        ({"after": 1001.0}, "after must be below before"),
        ({"kind": "jump", "after": 999.0}, "after must be above before"),
        ({"kind": "reset", "consumption": -1.0}, "greater than or equal to 0"),
        ({"kind": "rollover"}, "kind"),
    ],
)
def test_inconsistent_counter_bodies_are_refused(change, message):
    with pytest.raises(ValidationError, match=message):
        CounterEventBody.model_validate(body(**change))


def test_an_event_carries_exactly_the_body_it_names():
    signer = MessageSigner("gw-1", HmacSigner(KEY, kid="gw-1"))
    notice = CounterNotice(_event(EventKind.BACKWARD_STEP), "Nm³", None)
    msg = json.loads(signer.counter(1, notice)[1])
    loss = {"reason": "outbox_max_age", "first_seq": 1, "last_seq": 1, "count": 1,
            "first_ts": "2026-11-01T00:00:00Z", "last_ts": "2026-11-01T00:00:00Z"}  # fmt: skip
    for wrong, what in [
        ({**msg, "event": "data_loss"}, "got counter"),
        ({k: v for k, v in msg.items() if k != "counter"}, "got none"),
        ({**msg, "data_loss": loss}, "got data_loss, counter"),
    ]:
        with pytest.raises(ValidationError, match=what):
            EventMessage.model_validate(wrong)


def _event(kind: EventKind, after: float = 3.0, **kw: Any) -> CounterEvent:
    ts = T0 + timedelta(minutes=1)
    return CounterEvent(kind, "m1", GAS, ts, 1000.0, after, T0, ts, **kw)


def test_the_agent_signs_a_counter_event_the_collector_accepts():
    notice = CounterNotice(_event(EventKind.WRAP, wrap=GAS_WRAP), "Nm³", 0.75)
    topic, payload = MessageSigner("gw-1", HmacSigner(KEY, kid="gw-1")).counter(7, notice)
    raw = json.loads(payload)
    assert topic == "metertrace/v1/gw-1/events/m1" and verify_hmac(raw, KEY)
    assert raw["counter"] == {
        "quantity": GAS,
        "kind": "wrap",
        "unit": "Nm³",
        "before": 1000.0,
        "after": 3.0,
        "ts_before": "2026-11-01T00:00:00.000000Z",
        "ts_after": "2026-11-01T00:01:00.000000Z",
        "reading_ts": "2026-11-01T00:01:00.000000Z",
        "consumption": 0.75,
        "wrap": GAS_WRAP,
        "detail": "",
    }
    judged = judge(topic, payload, Trust.of({"gw-1": GatewayKey(KEY, frozenset({"m1"}))}))
    assert isinstance(judged, AcceptedEvent) and judged.event.counter is not None
    assert judged.event.data_loss is None and judged.event.counter.kind == "wrap"


def test_a_suspect_event_claiming_consumption_is_never_built():
    notice = CounterNotice(_event(EventKind.BACKWARD_STEP), "Nm³", 5.0)
    with pytest.raises(ValidationError, match="suspect"):
        MessageSigner("gw-1", HmacSigner(KEY, kid="gw-1")).counter(1, notice)


def test_documented_counter_example_is_valid_and_verifies():
    doc = (Path(__file__).resolve().parents[2] / "docs" / "wire-format.md").read_text()
    key = bytes.fromhex(re.search(r"key `([0-9a-f]{64})`", doc).group(1))
    blocks = [json.loads(b) for b in re.findall(r"```json\n(.*?)\n```", doc, re.S)]
    (example,) = [b for b in blocks if b.get("event") == "counter"]
    counter = EventMessage.model_validate(example).counter
    assert counter is not None and counter.kind == "reset" and counter.consumption == 0.5
    assert verify_hmac(example, key)


# --- judging polls --------------------------------------------------------------------------


def reading(value: float | None, quality: str = "good", quantity: str = GAS) -> dict[str, Any]:
    return {"quantity": quantity, "value": value, "unit": "Nm³", "raw": None, "quality": quality}


POLICIES = {GAS: CounterPolicy(wrap=GAS_WRAP, jitter=0.01)}


def test_the_watch_overrides_quality_and_keeps_the_events():
    watch = CounterWatch("m1")
    qualities = []
    for i, value in enumerate([1000.0, 2.0, 1000.5, 0.3, 0.4, 0.5, 0.6]):
        polled = [reading(value), reading(7.5, quantity="pressure.gas")]
        watch.judge(T0 + timedelta(minutes=i), polled, POLICIES)
        qualities.append(polled[0]["quality"])
        assert polled[1]["quality"] == "good"  # a gauge is never judged as a counter
    assert qualities == [
        "good",
        "out_of_range",  # 2.0 after 1000.0: a backward step, not a consumption of −998
        "good",  # the step was transient: counted from the trusted 1000.0
        "out_of_range",
        "out_of_range",
        "counter_reset",  # three readings agree on the new level
        "good",
    ]
    notices = watch.take()
    assert [n.event.kind for n in notices] == [
        EventKind.BACKWARD_STEP,
        EventKind.BACKWARD_STEP,
        EventKind.RESET,
    ]
    reset = notices[-1]
    assert (reset.event.before, reset.event.after, reset.consumption) == (1000.5, 0.3, 0.2)
    assert watch.take() == []


def test_failed_and_out_of_range_readings_are_not_fed():
    watch = CounterWatch("m1")
    watch.judge(T0, [reading(1000.0)], POLICIES)
    for i, r in enumerate([reading(None, "comm_error"), reading(5.0, "out_of_range")]):
        watch.judge(T0 + timedelta(minutes=1 + i), [r], POLICIES)
    assert watch.trusted() == {GAS: (1000.0, T0)} and watch.take() == []


def test_a_clock_that_steps_back_marks_the_reading_not_good(caplog):
    watch = CounterWatch("m1")
    watch.judge(T0, [reading(1000.0)], POLICIES)
    polled = [reading(1000.1)]
    watch.judge(T0 - timedelta(seconds=30), polled, POLICIES)
    assert polled[0]["quality"] == "out_of_range" and "clock stepped back" in caplog.text
    assert watch.trusted() == {GAS: (1000.0, T0)}


def test_a_wrap_is_good_with_its_event():
    watch = CounterWatch("m1")
    watch.judge(T0, [reading(GAS_WRAP - 0.5)], POLICIES)
    polled = [reading(0.25)]
    watch.judge(T0 + timedelta(minutes=1), polled, POLICIES)
    (notice,) = watch.take()
    assert polled[0]["quality"] == "good" and notice.event.kind is EventKind.WRAP
    assert notice.consumption == pytest.approx(0.75)


def test_events_that_could_not_be_stored_go_out_first_next_time():
    watch = CounterWatch("m1")
    watch.judge(T0, [reading(1000.0)], POLICIES)
    watch.judge(T0 + timedelta(minutes=1), [reading(1.0)], POLICIES)
    first = watch.take()
    watch.judge(
        T0 + timedelta(minutes=2), [reading(2000.0)], {GAS: CounterPolicy(max_rate_per_h=10.0)}
    )
    watch.put_back(first)
    kinds = [n.event.kind for n in watch.take()]
    assert kinds == [EventKind.BACKWARD_STEP, EventKind.JUMP]


def test_policy_of_a_dlt645_total():
    profile = find_profile("generic-dlt645-three-phase")
    assert isinstance(profile, Dlt645Profile)
    point = {p.quantity: p for p in profile.points()}["energy.active.import"]  # XXXXXX.XX
    policy = CounterPolicy.for_dlt645(point)
    assert policy.wrap == 1_000_000.0 and policy.jitter == pytest.approx(0.01)


# --- the poller with a fake meter -----------------------------------------------------------


class FakeModbusMeter:
    """Serves the profile's registers for the values it is given (no network)."""

    def __init__(self, profile: Profile, values: dict[str, float]) -> None:
        self.points, self.values, self.silent = profile.read_points(), values, False

    def turn(self) -> contextlib.nullcontext[None]:
        return contextlib.nullcontext()

    async def close(self) -> None:
        pass

    async def read(self, function: Function, address: int, count: int) -> list[int]:
        if self.silent:
            raise NoAnswer("gas", f"FC{function.code:02d} {address}+{count}", "timeout")
        regs: dict[int, int] = {}
        for p in self.points:
            if p.function is function:
                raw = (self.values.get(p.quantity, 0.0) - p.offset) / p.scale
                words = encode(raw if is_float(p.type) else round(raw), p.type, p.word_order,
                               p.byte_order)  # fmt: skip
                regs.update({p.address + i: w for i, w in enumerate(words)})
        return [regs.get(a, 0) for a in range(address, address + count)]


class FakeDlt645Meter:
    def __init__(self, profile: Dlt645Profile, values: dict[str, float]) -> None:
        self.points = {p.di: p for p in profile.points()}
        self.values = values

    def turn(self) -> contextlib.nullcontext[None]:
        return contextlib.nullcontext()

    async def close(self) -> None:
        pass

    async def read_di(self, di: str, size: int) -> bytes:
        p = self.points[di]
        return encode_bcd(self.values.get(p.quantity, 0.0), p.format, signed=p.signed)


def poll_all(poller: DevicePoller, values: list[float], meter: Any, quantity: str) -> list[str]:
    async def run() -> list[str]:
        out = []
        for v in values:
            meter.values[quantity] = v
            _, readings = await poller.poll()
            out.append(next(r["quality"] for r in readings if r["quantity"] == quantity))
        return out

    return asyncio.run(run())


def test_the_poller_marks_a_backward_total_and_reports_it():
    profile = find_profile("synthetic-gas-converter")
    assert isinstance(profile, Profile)
    meter = FakeModbusMeter(profile, {"volume.gas.working": 500.0, "pressure.gas": 200.0})
    poller = DevicePoller("gas", profile, meter)
    qualities = poll_all(poller, [883120.0, 12.5, 12.75, 13.0, 13.25], meter, GAS)
    assert qualities == ["good", "out_of_range", "out_of_range", "counter_reset", "good"]
    notices = poller.take_events()
    assert [(n.event.kind, n.unit) for n in notices] == [
        (EventKind.BACKWARD_STEP, "Nm³"),
        (EventKind.RESET, "Nm³"),
    ]
    assert (notices[0].event.before, notices[0].event.after) == (883120.0, 12.5)
    assert poller.counters.trusted()[GAS][0] == 13.25
    assert poller.counters.trusted()["volume.gas.working"][0] == 500.0


def test_a_failed_poll_is_not_a_counter_reading():
    profile = find_profile("synthetic-gas-converter")
    assert isinstance(profile, Profile)
    meter = FakeModbusMeter(profile, {})
    poller = DevicePoller("gas", profile, meter)
    assert poll_all(poller, [100.0], meter, GAS) == ["good"]
    meter.silent = True
    assert poll_all(poller, [0.0], meter, GAS) == ["comm_error"]
    meter.silent = False
    poller.backoff.succeeded()  # the backoff would skip the next poll after a silent one
    assert poll_all(poller, [100.5], meter, GAS) == ["good"]
    assert poller.take_events() == []


def test_the_dlt645_poller_detects_a_wrap_of_the_decimal_display():
    profile = find_profile("generic-dlt645-three-phase")
    assert isinstance(profile, Dlt645Profile)
    meter = FakeDlt645Meter(profile, {})
    poller = DevicePoller("d1", profile, meter)
    qualities = poll_all(poller, [999_999.5, 0.25], meter, "energy.active.import")
    assert qualities == ["good", "good"]
    (notice,) = poller.take_events()
    assert notice.event.kind is EventKind.WRAP and notice.unit == "kWh"
    assert notice.consumption == pytest.approx(0.75) and notice.event.wrap == 1_000_000.0


# --- the state that survives a restart ------------------------------------------------------


def test_trusted_values_are_stored_with_the_message_and_restored(tmp_path):
    signer = MessageSigner("gw-1", HmacSigner(KEY, kid="gw-1"))
    watch = CounterWatch("m1")
    box = Outbox(tmp_path / "agent.db")

    def store(ts: datetime, value: float) -> None:
        polled = [reading(value)]
        watch.judge(ts, polled, POLICIES)
        box.append(
            "m1",
            lambda s, p: signer.reading("m1", ts, polled, s, p),
            at=ts,
            trusted=watch.trusted(),
            events=(watch.take(), signer.counter),
        )

    store(T0, 1000.0)
    store(T0 + timedelta(minutes=1), 1000.5)
    box.close()
    box = Outbox(tmp_path / "agent.db")  # the agent restarts; the meter was reset meanwhile
    assert box.trusted("m1") == {GAS: (1000.5, T0 + timedelta(minutes=1))}
    assert box.trusted("other") == {}
    watch = CounterWatch("m1")
    watch.restore(box.trusted("m1"))
    store(T0 + timedelta(minutes=5), 0.2)
    rows = box.pending()
    assert [r.topic.split("/")[3] for r in rows] == ["readings"] * 3 + ["events"]
    assert json.loads(rows[2].payload)["readings"][0]["quality"] == "out_of_range"
    event = EventMessage.model_validate_json(rows[3].payload)
    assert event.counter is not None and event.counter.kind == "backward_step"
    assert (event.counter.before, event.counter.after) == (1000.5, 0.2)
    assert box.depth() == 4


def test_an_event_that_cannot_be_built_leaves_no_reading_either(tmp_path):
    box = Outbox(tmp_path / "agent.db")
    signer = MessageSigner("gw-1", HmacSigner(KEY, kid="gw-1"))
    bad = CounterNotice(_event(EventKind.BACKWARD_STEP), "Nm³", 5.0)  # refused by the schema
    with pytest.raises(ValidationError):
        box.append(
            "m1",
            lambda s, p: signer.reading("m1", T0, [reading(1.0)], s, p),
            trusted={GAS: (1.0, T0)},
            events=([bad], signer.counter),
        )
    assert box.depth() == 0 and box.last_seq("m1") == 0 and box.trusted("m1") == {}
