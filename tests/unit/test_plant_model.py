"""The simulated plant: batch schedules and the lines' true loads, as meters see them."""

from __future__ import annotations

import csv
import io
import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from simulators.plant import PlantModel, PlantSpec
from simulators.scenario import Scenario, build_models, build_plant

pytestmark = pytest.mark.unit

EXAMPLE = Path(__file__).resolve().parents[2] / "metertrace" / "examples" / "three-lines"
EPOCH = datetime(2026, 11, 9, tzinfo=UTC)


def _doc() -> dict:
    return yaml.safe_load((EXAMPLE / "scenario.yaml").read_text())


def _plant(**over: object) -> PlantModel:
    return PlantModel(PlantSpec.model_validate(_doc()["plant"] | over), EPOCH)


def test_schedule_is_reproducible_and_leaves_idle_time() -> None:
    a, b = _plant(), _plant()
    assert [x.row() for x in a.batches] == [x.row() for x in b.batches]
    assert [x.row() for x in _plant(seed=7).batches] != [x.row() for x in a.batches]
    for line in ("L1", "L2", "L3"):
        runs = [x for x in a.batches if x.line == line]
        assert runs[0].start > EPOCH and runs[-1].end <= EPOCH + timedelta(days=7)
        for before, after in itertools.pairwise(runs):
            assert before.end < after.start  # one batch at a time, idle between
        for x in runs:
            assert x.start.second == 0 and x.end.second == 0  # whole minutes, as an MES reports


def test_batches_csv_is_what_batches_import_reads() -> None:
    plant = _plant()
    rows = list(csv.DictReader(io.StringIO(plant.batches_csv())))
    assert len(rows) == len(plant.batches)
    first = min(plant.batches, key=lambda b: b.start)
    assert rows[0]["id"] == first.id and rows[0]["start"].endswith("Z")
    assert float(rows[0]["produced_quantity"]) == first.produced_quantity


def test_cumulative_load_is_the_integral_of_the_rate() -> None:
    line = _plant().lines["L1"]
    b = line.batches[0]
    t0, t1 = EPOCH.timestamp(), b.end.timestamp() + 3600
    steps = 20000
    dt = (t1 - t0) / steps
    # midpoint rule over idle, the batch and idle again: the closed form must agree
    numeric = sum(line.rate("electricity", t0 + (i + 0.5) * dt) for i in range(steps)) * dt / 3600
    exact = line.cumulative("electricity", t1) - line.cumulative("electricity", t0)
    assert exact == pytest.approx(numeric, rel=1e-4)
    assert line.rate("electricity", b.start.timestamp() - 60) == 20.0  # idle
    assert line.rate("gas", b.start.timestamp() - 60) == 0.0


def test_per_unit_draw_adds_up_to_the_batch_quantity() -> None:
    line = _plant().lines["L2"]
    b = line.batches[2]
    drawn = line.cumulative("gas", b.end.timestamp()) - line.cumulative("gas", b.start.timestamp())
    assert drawn == pytest.approx(0.1 * b.produced_quantity, rel=1e-12)
    assert line.cumulative("steam", EPOCH.timestamp()) == 0.0


def test_a_main_meter_reads_the_sum_of_its_lines() -> None:
    scenario = Scenario.model_validate(_doc())
    plant = build_plant(scenario, EPOCH)
    models = build_models(scenario, EPOCH)
    assert plant is not None
    t = EPOCH.timestamp() + 3 * 86400 + 1234.5
    q = "energy.active.import"
    lines = sum(plant.lines[x].cumulative("electricity", t) for x in ("L1", "L2", "L3"))
    assert models["e-main"].value(q, t) == pytest.approx(152340.0 + lines, rel=1e-15)
    assert models["e-main"].indicated(q, t) == pytest.approx(1.0015 * (152340.0 + lines))
    power = models["e-main"].value("power.active.total", t)
    assert power == pytest.approx(sum(plant.lines[x].rate("electricity", t) for x in plant.lines))
    # the header's standing loss is drawn whatever the lines do
    steam = models["s-header"].value("mass.steam", EPOCH.timestamp() + 3600)
    assert steam == pytest.approx(12045.5 + 0.25)  # nothing runs in the first hour


def test_scenario_errors_name_the_fix() -> None:
    doc = _doc()
    doc["servers"][0]["meters"][1]["counters"]["energy.active.import"]["lines"] = ["L9"]
    with pytest.raises(ValidationError, match=r"names \['L9'\], which plant.lines does not"):
        Scenario.model_validate(doc)
    doc = _doc()
    doc["epoch"] = "now"
    with pytest.raises(ValidationError, match="set epoch to a fixed time"):
        Scenario.model_validate(doc)
    doc = _doc()
    doc["servers"][0]["meters"][3]["counters"]["volume.gas.standard"]["medium"] = "steam"
    with pytest.raises(ValueError, match="measures gas, not steam; set medium: gas"):
        build_models(Scenario.model_validate(doc), EPOCH)
    doc = _doc()
    doc["plant"]["lines"]["L1"]["loads"]["gas"] = {"per_unit": 0.1, "running": {"base": 1.0}}
    with pytest.raises(ValidationError, match="exactly one of running"):
        Scenario.model_validate(doc)
