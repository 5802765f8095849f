"""`metertrace calibration add|import|list|due` against a real collector process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml

from collector.api.auth import token_hash
from tests.helpers import free_port, metertrace, stop, tail, try_get_json, wait_for

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples"
TOKENS = {"wang": ("metrology", "t-wang-cli"), "li": ("plant_engineer", "t-li-cli")}


def run_cli(url: str, who: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "METERTRACE_TOKEN": TOKENS[who][1]}
    return subprocess.run(
        [sys.executable, "-m", "metertrace.cli", "calibration", "--url", url, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


@pytest.fixture
def api(tmp_path, broker, uid):
    port = free_port()
    config = {
        "database": {"path": "c.db"},
        "mqtt": {"host": "127.0.0.1", "port": broker.port, "client_id": f"col-{uid}"},
        "api": {
            "port": port,
            "keys": [
                {"name": n, "role": r, "token_sha256": token_hash(t)}
                for n, (r, t) in TOKENS.items()
            ],
        },
    }
    (tmp_path / "collector.yaml").write_text(yaml.safe_dump(config))
    proc = metertrace(
        ["collector", "serve", "-c", str(tmp_path / "collector.yaml")], tmp_path / "collector.log"
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(
            lambda: try_get_json(f"{url}/api/v1/health") or proc.poll() is not None,
            timeout=30,
            what="collector API",
        )
        assert proc.poll() is None, tail(tmp_path / "collector.log")
        device = {
            "id": "elec-main",
            "gateway": "gw-demo",
            "profile": "eastron-sdm630",
            "serial_number": "FICT-630-000123",
            "medium": "electricity",
            "location": {"site": "a"},
            "installed_at": "2026-01-01T00:00:00Z",
        }
        req = urllib.request.Request(
            f"{url}/api/v1/registry/devices",
            data=json.dumps(device).encode(),
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {TOKENS['li'][1]}",
            },
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 201
        yield url
    finally:
        stop(proc)


def test_metrology_cli_round_trip(api):
    r = run_cli(
        api,
        "wang",
        "add",
        str(EXAMPLES / "certificate.json"),
        "--correction",
        "energy.active.import=gain_offset",
    )
    assert r.returncode == 0, r.stderr
    assert "registered SAMPLE-EKL-2026-0142 v1 for elec-main" in r.stdout
    assert "energy.active.import" in r.stdout and "gain_offset" in r.stdout

    r = run_cli(
        api,
        "wang",
        "import",
        str(EXAMPLES / "dcc-sdm630-cert.xml"),
        "--device",
        "elec-main",
        "--valid-until",
        "2027-03-03",
        "--issue-date",
        "2026-03-05",
        "--timezone",
        "Asia/Shanghai",
        "--result",
        "energy_activeImport=energy.active.import",
        "--result",
        "power_activeTotal=power.active.total",
        "--correction",
        "power.active.total=piecewise_linear",
    )
    # the DCC carries the same certificate id and version: never edited, so refused
    assert r.returncode == 2 and "add v2 with supersedes" in r.stderr

    r = run_cli(api, "li", "list", "--device", "elec-main")
    assert r.returncode == 0 and "SAMPLE-EKL-2026-0142" in r.stdout
    r = run_cli(api, "li", "due", "--days", "3650")
    assert r.returncode == 0 and "elec-main" in r.stdout


def test_wrong_role_and_bad_flags_are_clear(api):
    r = run_cli(
        api,
        "li",
        "add",
        str(EXAMPLES / "certificate.json"),
        "--correction",
        "energy.active.import=gain_offset",
    )
    assert r.returncode == 2 and "plant_engineer may not manage calibration" in r.stderr
    r = run_cli(api, "wang", "add", str(EXAMPLES / "certificate.json"))
    assert r.returncode == 2 and "needs --correction QUANTITY=MODEL" in r.stderr
    r = run_cli("http://127.0.0.1:1", "wang", "list")
    assert r.returncode == 2 and "cannot reach the collector" in r.stderr
