"""The topology file: the documented example loads; what cannot be read says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from collector.allocation.topology import IdlePolicy, Rule
from collector.batches.csv_format import parse_csv
from collector.batches.topology_file import TopologyError, parse_topology

pytestmark = pytest.mark.unit

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


def test_the_documented_examples_load():
    doc = parse_topology((EXAMPLES / "plant-topology.yaml").read_text(), source="example")
    topology = doc.topology
    assert topology.idle_policy is IdlePolicy.NEXT_BATCH
    rules = {a.meter_id: a.rule for a in topology.assignments}
    assert rules["elec-main"] is Rule.RESIDUAL and rules["gas-boiler"] is Rule.SHARED
    assert doc.settings("elec-main").quantity == "energy.active.import"
    assert doc.settings("elec-l1").quantity is None  # from the device's medium
    parsed = parse_csv((EXAMPLES / "batches.csv").read_text())
    assert parsed.errors == [] and len(parsed.batches) == 3


def test_json_is_yaml_and_the_digest_ignores_formatting():
    text = (EXAMPLES / "plant-topology.yaml").read_text()
    doc = parse_topology(text, source="a")
    again = parse_topology(json.dumps(doc.model_dump(mode="json")), source="b")
    assert again == doc and again.digest() == doc.digest()


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("idle_policy: [", "plant.yaml: not valid YAML"),
        ("- a\n- b\n", "plant.yaml: a topology is a YAML mapping"),
        ("", "plant.yaml: a topology is a YAML mapping"),
        ("idle_policy: overhead\n", "plant.yaml: assignments: Field required"),
    ],
)
def test_unreadable_files(text, words):
    with pytest.raises(TopologyError) as err:
        parse_topology(text, source="plant.yaml")
    assert str(err.value).startswith(words)
