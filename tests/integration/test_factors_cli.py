"""`metertrace factors list|add` on the collector's database (-c collector.yaml) and over HTTP
(a real uvicorn server on a loopback port)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from collector.db import open_database
from collector.factors.model import BUILTIN
from collector.factors.store import FactorStore
from tests.batch_helpers import TOKENS
from tests.integration.test_batches_cli import collector_yaml, run, write

pytestmark = pytest.mark.integration

GRID = "cn-grid-average-2023"
RECORD = [
    "name: supplier-ppa-2025",
    "version: 1",
    "value: 0.12",
    "unit: kgCO2e/kWh",
    "gases: CO2e",
    "gwp_set: IPCC AR5 GWP100",
    "source: Supplier X, PPA emission certificate 2025-031",
    "published: 2025-06-01",  # a YAML date: stored as the text
    "geography: CN",
    "basis: location-based grid average",
]


@pytest.fixture
def config(tmp_path: Path, db_url: str) -> Path:
    return collector_yaml(tmp_path, db_url)


def stored(db_url: str) -> list[tuple[str, int, str | None, str]]:
    """The stored records, in the order they were added."""
    builtin = {f.id for f in BUILTIN}
    records = FactorStore(open_database(db_url)).registry().records()
    return [(f.name, f.version, f.supersedes, f.created_by) for f in records if f.id not in builtin]


def test_list_and_add_on_the_database(tmp_path, db_url, config, capsys):
    db = ["-c", str(config)]
    code, out, err = run(["factors", "list", *db], capsys)
    assert code == 0, err
    assert f"* {GRID}@1 " in out and "built-in" in out and "(* current" in out

    override = ["--override", GRID, "--value", "0.5712", "--note", "the plant's province"]
    code, _, err = run(["factors", "add", *override, *db], capsys)
    assert code == 2 and "--override needs --source" in err
    code, _, err = run(["factors", "add", *override, "--source", " ", *db], capsys)
    assert code == 2 and "source:" in err and "citation" in err
    assert stored(db_url) == []

    source = ["--source", "Provincial grid factor, Jiangsu 2023"]
    code, out, err = run(["factors", "add", *override, *source, *db, "--actor", "li"], capsys)
    assert code == 0, err
    assert out.strip() == f"stored {GRID}@2: 0.5712 kgCO2/kWh, superseding {GRID}@1"
    code, out, err = run(["factors", "list", "--name", GRID, *db], capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"  {GRID}@1 ") and lines[2].startswith(f"* {GRID}@2 ")
    assert " li " in lines[2] and "Jiangsu 2023; note: the plant's province" in lines[3]

    f = write(tmp_path / "ppa.yaml", RECORD)
    code, out, err = run(["factors", "add", str(f), *db], capsys)
    assert code == 0, err
    assert out.strip() == "stored supplier-ppa-2025@1: 0.12 kgCO2e/kWh"
    code, _, err = run(["factors", "add", str(f), *db], capsys)  # version 1 again
    assert code == 2 and "is at version 1, so a new record is version 2, not 1" in err
    code, out, err = run(["factors", "list", "--name", "supplier-ppa-2025", "--json", *db], capsys)
    assert code == 0, err
    (ppa,) = json.loads(out)
    assert (ppa["published"], ppa["created_by"], ppa["current"]) == ("2025-06-01", "cli", True)
    code, _, err = run(["factors", "list", "--name", "grid", *db], capsys)
    assert code == 2 and "no factor named 'grid'" in err
    assert stored(db_url) == [(GRID, 2, f"{GRID}@1", "li"), ("supplier-ppa-2025", 1, None, "cli")]


def test_list_and_add_over_http(tmp_path, db_url, served, capsys):
    _, url = served
    li, engine = (["--url", url, "--token", TOKENS[who][1]] for who in ("li", "engine"))
    override = ["--override", GRID, "--value", "0.5712", "--note", "province",
                "--source", "Provincial grid factor, Jiangsu 2023"]  # fmt: skip
    code, _, err = run(["factors", "add", *override, *engine], capsys)
    assert code == 2 and "403" in err and "may not manage devices" in err
    code, out, err = run(["factors", "add", *override, *li], capsys)
    assert code == 0, err
    assert out.startswith(f"stored {GRID}@2: 0.5712 kgCO2/kWh")
    code, out, err = run(["factors", "list", "--json", *engine], capsys)
    assert code == 0, err
    current = {r["name"]: r["version"] for r in json.loads(out) if r["current"]}
    assert current[GRID] == 2 and current["cn-natural-gas"] == 1
    f = write(tmp_path / "bad.yaml", [*RECORD[:3], "unit: kgCO2e", *RECORD[4:]])
    code, _, err = run(["factors", "add", str(f), *li], capsys)
    assert code == 2 and "unit 'kgCO2e'" in err and "mass/activity" in err
    f = write(tmp_path / "uncited.yaml", [r for r in RECORD if not r.startswith("source")])
    code, _, err = run(["factors", "add", str(f), *li], capsys)
    assert code == 2 and "source: Field required: the citation" in err
    assert stored(db_url) == [(GRID, 2, f"{GRID}@1", "li")]
