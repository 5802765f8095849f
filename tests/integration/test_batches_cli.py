"""`metertrace batches import|export` and `metertrace topology set`, against the collector's
database (-c collector.yaml) and over HTTP (a real uvicorn server on a loopback port)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from sqlalchemy import select

from collector.db import open_database
from collector.db.schema import batch_records
from metertrace.cli import main
from tests.batch_helpers import TOKENS
from tests.integration.test_batch_energy_api import TOPOLOGY, build

pytestmark = pytest.mark.integration

HEADER = "id,product_id,product_name,line,start,end,produced_quantity,declared_unit"
ROWS = [
    "B1,P1,Widget,L1,2026-03-10T01:00:00Z,2026-03-10T03:00:00Z,100,kilogram",
    "B2,P2,Gadget,L2,2026-03-10T02:00:00Z,2026-03-10T04:00:00Z,300,kilogram",
    "B3,P1,Widget,L1,2026-03-10T05:00:00Z,2026-03-10T06:00:00Z,50,kilogram",
]


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def collector_yaml(tmp_path: Path, db_url: str) -> Path:
    return write(tmp_path / "collector.yaml", [f"database: {{url: '{db_url}'}}"])


@pytest.fixture
def config(tmp_path: Path, db_url: str) -> Path:
    return collector_yaml(tmp_path, db_url)


def stored(db_url: str) -> list[tuple[str, int]]:
    query = select(batch_records.c.batch_id, batch_records.c.version).order_by(
        batch_records.c.batch_id, batch_records.c.version
    )
    with open_database(db_url).read() as conn:
        return [(r.batch_id, r.version) for r in conn.execute(query)]


def test_a_file_with_errors_imports_nothing_and_lists_every_problem(
    tmp_path, db_url, config, capsys
):
    bad = [ROWS[0], ROWS[1].replace("300", "3OO"), ROWS[2].replace("kilogram", "kg")]
    f = write(tmp_path / "week.csv", [HEADER, *bad])
    code, _, err = run(["batches", "import", str(f), "-c", str(config)], capsys)
    assert code == 2
    assert "checking week.csv: 3/3 rows (100 %) 2 problem(s)" in err
    assert "row 3, column produced_quantity, value '3OO': not a positive number" in err
    assert "row 4, column declared_unit, value 'kg'" in err and "did you mean 'kilogram'" in err
    assert "nothing imported: 2 problem(s) in 2 row(s)" in err and "--skip-bad-rows" in err
    assert stored(db_url) == []

    code, out, err = run(
        ["batches", "import", str(f), "-c", str(config), "--skip-bad-rows"], capsys
    )
    assert code == 0, err
    assert (
        "1 created, 0 superseded (new versions), 0 unchanged, 2 bad row(s) skipped: [3, 4]" in out
    )
    assert stored(db_url) == [("B1", 1)]


def test_reimport_is_a_no_op_and_a_change_needs_supersede(tmp_path, db_url, config, capsys):
    f = write(tmp_path / "week.csv", [HEADER, *ROWS])
    argv = ["batches", "import", str(f), "-c", str(config)]
    assert "3 created" in run(argv, capsys)[1]
    assert "0 created, 0 superseded (new versions), 3 unchanged" in run(argv, capsys)[1]
    write(f, [HEADER, ROWS[0], ROWS[1].replace("300", "310"), ROWS[2]])
    code, _, err = run(argv, capsys)
    assert code == 2 and "row 3, batch B2: is recorded (version 1) with different content" in err
    assert stored(db_url) == [("B1", 1), ("B2", 1), ("B3", 1)]
    code, out, _ = run([*argv, "--supersede"], capsys)
    assert code == 0 and "0 created, 1 superseded (new versions), 2 unchanged" in out
    assert stored(db_url) == [("B1", 1), ("B2", 1), ("B2", 2), ("B3", 1)]


def test_topology_set_validates_and_versions(tmp_path, config, capsys):
    f = write(tmp_path / "plant-topology.yaml", [TOPOLOGY.format(policy="next_batch")])
    argv = ["topology", "set", str(f), "-c", str(config)]
    code, out, _ = run(argv, capsys)
    assert code == 0 and "plant-topology.yaml: stored as topology version 1" in out
    assert "unchanged, still topology version 1" in run(argv, capsys)[1]
    write(f, [TOPOLOGY.format(policy="next_batch").replace("rule: shared", "rule: sharde")])
    code, _, err = run(argv, capsys)
    assert code == 2
    assert "plant-topology.yaml: assignments[1].rule: Input should be 'dedicated'" in err


def test_export_csv_and_json_from_the_database(tmp_path, db_url, capsys):
    build(db_url)  # the plant of test_batch_energy_api
    config = collector_yaml(tmp_path, db_url)
    code, out, err = run(["batches", "export", "B1", "--format", "csv", "-c", str(config)], capsys)
    assert code == 0, err
    (row,) = list(csv.DictReader(io.StringIO(out)))
    assert (row["batch_id"], row["medium"], row["unit"]) == ("B1", "electricity", "kWh")
    assert float(row["quantity"]) == pytest.approx(45.0)
    assert float(row["per_declared_unit"]) == pytest.approx(0.45)
    assert row["meters"] == "e-a:dedicated:0.375; e-s:shared:0.15625"
    assert row["period_start"] == "2026-03-01T00:00:00Z" and "ISO 14044" in row["method_text"]
    out_file = tmp_path / "b1.json"
    argv = ["batches", "export", "B1", "-c", str(config), "-o", str(out_file)]
    assert run([*argv, "--period-start", "2026-03-10T00:00:00Z"], capsys)[0] == 2
    assert run(argv, capsys)[0] == 0
    assert json.loads(out_file.read_text())["media"][0]["quantity"] == pytest.approx(45.0)
    code, _, err = run(["batches", "export", "B9", "-c", str(config)], capsys)
    assert code == 2 and "batch B9 is not recorded" in err


def test_the_same_commands_over_http(tmp_path, served, capsys):
    _, url = served
    li, engine = TOKENS["li"][1], TOKENS["engine"][1]
    f = write(tmp_path / "week.csv", [HEADER, *ROWS])
    code, _, err = run(["batches", "import", str(f), "--url", url, "--token", engine], capsys)
    assert code == 2 and "403" in err and "may not manage devices" in err
    code, out, err = run(["batches", "import", str(f), "--url", url, "--token", li], capsys)
    assert code == 0 and "3 created" in out, err
    write(f, [HEADER, ROWS[0].replace("100", "90")])
    code, _, err = run(["batches", "import", str(f), "--url", url, "--token", li], capsys)
    assert code == 2 and "row 2, batch B1: is recorded (version 1)" in err
    top = write(tmp_path / "plant.yaml", ["idle_policy: overhead", "assignments: []"])
    code, _, err = run(["topology", "set", str(top), "--url", url, "--token", li], capsys)
    assert code == 2 and "plant.yaml: assignments: Tuple should have at least 1 item" in err
    code, _, err = run(["batches", "export", "B1", "--url", url, "--token", engine], capsys)
    assert code == 2 and "409" in err and "no topology is set" in err


def test_a_simulated_plant_schedule_imports_as_an_mes_export(tmp_path, db_url, config, capsys):
    scenario = Path(__file__).resolve().parents[2] / "metertrace/examples/three-lines/scenario.yaml"
    out = tmp_path / "week.csv"
    code, _, err = run(["sim", "batches", "-c", str(scenario), "-o", str(out)], capsys)
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert f"wrote {len(rows)} batches" in err and {r["line"] for r in rows} == {"L1", "L2", "L3"}
    code, _, err = run(["batches", "import", str(out), "-c", str(config)], capsys)
    assert code == 0, err
    assert sorted(b for b, _ in stored(db_url)) == sorted(r["id"] for r in rows)
    # a scenario without a plant has no batches to give
    plain = scenario.parents[1] / "scenario.yaml"
    code, _, _ = run(["sim", "batches", "-c", str(plain)], capsys)
    assert code != 0
