import pytest
from pydantic import ValidationError

from device_profiles import find_profile
from simulators.rates import Rate
from simulators.scenario import Counter, MeterModel, RateOf, SimMeter

pytestmark = pytest.mark.unit


def test_integral_matches_numeric_integration():
    rate = Rate(base=420.0, amplitude=80.0, period_s=600)
    n, t_end = 200_000, 1234.5
    dt = t_end / n
    numeric = sum(rate.at((i + 0.5) * dt) for i in range(n)) * dt / 3600
    assert rate.integral(t_end) == pytest.approx(numeric, rel=1e-9)


def test_negative_rate_is_refused():
    with pytest.raises(ValidationError, match="rate negative"):
        Rate(base=1.0, amplitude=2.0)


def test_model_values():
    spec = SimMeter(
        id="m",
        profile="eastron-sdm630",
        counters={"energy.active.import": Counter(initial=100.0, rate=Rate(base=360.0))},
        gauges={"voltage.l1n": 230.0, "power.active.total": RateOf(rate_of="energy.active.import")},
    )
    m = MeterModel(spec, find_profile("eastron-sdm630"), epoch=1000.0)
    assert m.value("energy.active.import", 1010.0) == pytest.approx(101.0)  # 360 kW for 10 s
    assert m.value("power.active.total", 1010.0) == 360.0
    assert m.value("voltage.l1n", 5.0) == 230.0
    assert m.value("frequency", 5.0) == 0.0  # not in the scenario: the meter shows 0


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"counters": {"volume.gas.standard": Counter(rate=Rate(base=1))}}, "does not map"),
        ({"counters": {"voltage.l1n": Counter(rate=Rate(base=1))}}, "is a gauge"),
        (
            {"gauges": {"power.active.total": RateOf(rate_of="energy.active.import")}},
            "names no counter",
        ),
    ],
)
def test_inconsistent_meter_is_refused(kw, message):
    with pytest.raises(ValueError, match=message):
        MeterModel(
            SimMeter(id="m", profile="eastron-sdm630", **kw), find_profile("eastron-sdm630"), 0.0
        )
