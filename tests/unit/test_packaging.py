"""The gateway install stays light: the agent extra never pulls the collector's dependencies."""

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("fastapi", "numpy", "influxdb-client", "uvicorn")


def test_agent_extra_excludes_collector_dependencies():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    agent = " ".join(extras["agent"]).lower()
    core = " ".join(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    ).lower()
    for name in HEAVY:
        assert name not in agent and name not in core, name
    for required in ("pymodbus", "pyserial", "paho-mqtt", "apscheduler"):
        assert required in agent


def test_agent_code_imports_no_collector_dependency():
    code = (
        "import sys, edge_agent.runner, edge_agent.config, metertrace.cli\n"
        "bad = [m for m in ('fastapi', 'numpy', 'influxdb_client', 'uvicorn', 'collector') "
        "if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_missing_extra_names_the_extra(tmp_path):
    # Hide fastapi: the collector command must say which extra to install, not crash.
    (tmp_path / "fastapi.py").write_text("raise ModuleNotFoundError(name='fastapi')\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("gateways: []\n")
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.modules['fastapi'] = None; from metertrace.cli import main; "
            f"main(['collector', 'serve', '-c', r'{cfg}'])",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert r.returncode == 2
    assert "pip install 'metertrace[collector]'" in r.stderr


def test_the_migrations_ship_inside_the_package():
    # Alembic's script directory is read from the installed package (no alembic.ini): the
    # revisions and the template are package data, env.py a module of the package.
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folder = ROOT / "collector" / "db" / "migrations"
    assert (folder / "__init__.py").exists() and (folder / "env.py").exists()
    shipped = {p for pattern in setuptools["package-data"]["collector.db.migrations"]
               for p in folder.glob(pattern)}  # fmt: skip
    revisions = set(folder.glob("versions/*.py"))
    assert len(revisions) >= 2 and revisions <= shipped
    assert folder / "script.py.mako" in shipped
