"""Every config file the project ships is valid: examples, docker configs, the demo scenario."""

from pathlib import Path

import pytest

from collector.config import CollectorConfig
from edge_agent.config import AgentConfig
from metertrace.config import load_config
from simulators.scenario import Scenario, build_models

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
DIRS = [ROOT / "metertrace" / "examples", ROOT / "docker" / "config"]
MODELS = {"gateway.yaml": AgentConfig, "collector.yaml": CollectorConfig, "scenario.yaml": Scenario}


@pytest.mark.parametrize("path", [d / n for d in DIRS for n in MODELS], ids=str)
def test_shipped_config_is_valid(path):
    cfg = load_config(path, MODELS[path.name])
    if isinstance(cfg, Scenario):
        assert build_models(cfg)  # every meter's profile and quantities are consistent
