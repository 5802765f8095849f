from pathlib import Path

import pytest

from collector.config import CollectorConfig
from edge_agent.config import AgentConfig
from metertrace.config import ConfigError, load_config

pytestmark = pytest.mark.unit

AGENT = """
gateway: {id: gw-1}
signing: {key_file: k.key}
devices:
  - id: m1
    profile: eastron-sdm630
    transport: {type: modbus-tcp, host: 127.0.0.1, port: 502}
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "gateway.yaml"
    p.write_text(text)
    return p


def test_relative_paths_are_relative_to_the_config_file(tmp_path):
    cfg = load_config(write(tmp_path, AGENT), AgentConfig)
    assert cfg.signing.key_file == tmp_path.resolve() / "k.key"
    assert cfg.state_dir == tmp_path.resolve() / "state"


@pytest.mark.parametrize(
    ("replace", "by", "message"),
    [
        ("port: 502", "port: 70000", "devices[0].transport.port: Input should be less than"),
        ("type: modbus-tcp", "type: modbus-tpc", "devices[0].transport"),
        ("id: gw-1", "id: gw/1", "gateway.id: gateway id 'gw/1' must be"),
        ("signing:", "signin:", "signin: unknown key"),
    ],
)
def test_errors_name_file_and_yaml_path(tmp_path, replace, by, message):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, AGENT.replace(replace, by)), AgentConfig)
    assert str(err.value).startswith(str(tmp_path / "gateway.yaml"))
    assert message in str(err.value)


def test_duplicate_device_ids(tmp_path):
    text = AGENT + AGENT.split("devices:\n")[1]
    with pytest.raises(ConfigError, match=r"devices\[1\]\.id: 'm1' is used twice"):
        load_config(write(tmp_path, text), AgentConfig)


def test_collector_device_belongs_to_one_gateway(tmp_path):
    text = """
gateways:
  - {id: a, key_file: a.key, devices: [{id: m1, profile: eastron-sdm630}]}
  - {id: b, key_file: b.key, devices: [{id: m1, profile: eastron-sdm630}]}
"""
    with pytest.raises(ConfigError, match=r"gateways\[1\]\.devices\[0\]\.id: 'm1' already"):
        load_config(write(tmp_path, text), CollectorConfig)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.yaml", AgentConfig)


def test_collector_default_database_sits_beside_the_config(tmp_path):
    p = tmp_path / "collector.yaml"
    p.write_text("gateways: []\n")
    assert load_config(p, CollectorConfig).database.path == tmp_path.resolve() / "collector.db"
