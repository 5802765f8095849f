"""The collector's layout holds (docs/architecture.md): imports run one way, pure models do no I/O,
and only the stores and the data layer speak SQL."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2] / "collector"
PURE = [
    "allocation/*.py",
    "ledger/chain.py", "ledger/gaps.py", "ledger/rollups.py", "ledger/batch_outcomes.py",
    "ingest/rules.py", "ingest/recompute.py",
    "metrology/registry.py", "metrology/certificates.py", "metrology/calibration.py",
    "metrology/calibration_models.py", "metrology/dcc*.py", "metrology/dsi.py",
    "batches/model.py", "batches/csv_format.py", "batches/period.py",
    "footprints/model.py", "footprints/filter.py", "factors/model.py",
]  # fmt: skip
IO = ("sqlalchemy", "collector.db", "fastapi", "starlette", "paho", "psycopg", "sqlite3")
# The only modules that speak SQL: the data layer and each capability's store.
SQL = {"db", "ledger/store.py", "ledger/counter_readings.py", "ledger/rollup_store.py",
       "ledger/usable.py", "metrology/registry_store.py", "batches/store.py",
       "factors/store.py", "footprints/published.py"}  # fmt: skip


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


def modules(pattern: str = "**/*.py") -> list[Path]:
    return sorted(p for p in ROOT.glob(pattern) if "migrations" not in p.parts)


def rel(p: Path) -> str:
    return p.relative_to(ROOT).as_posix()


def test_pure_models_import_no_database_web_or_broker_code():
    bad = {
        rel(p): sorted(i for i in imports(p) if i.startswith(IO))
        for pattern in PURE
        for p in modules(pattern)
    }
    assert {k: v for k, v in bad.items() if v} == {}


def test_the_allocation_imports_only_itself_and_the_batch_model_from_the_collector():
    own = ("collector.allocation", "collector.batches.model")  # a batch as a pure model
    bad = {
        rel(p): sorted(
            i for i in imports(p) if i.startswith("collector.") and not i.startswith(own)
        )
        for p in modules("allocation/*.py")
    }
    assert {k: v for k, v in bad.items() if v} == {}


def test_only_the_data_layer_and_the_stores_speak_sql():
    def allowed(r: str) -> bool:
        return r in SQL or r.split("/")[0] in SQL

    speaks = {
        rel(p)
        for p in modules()
        if any(i.startswith(("sqlalchemy", "collector.db.schema")) for i in imports(p))
    }
    # SQLAlchemy's error type is caught where a scratch database is replayed (the verifier)
    speaks -= {"evidence/verify.py"}
    assert sorted(r for r in speaks if not allowed(r)) == []


def test_nothing_but_the_composition_root_imports_the_http_routes():
    users = {rel(p) for p in modules() if any(i.startswith("collector.api") for i in imports(p))}
    assert sorted(u for u in users if not u.startswith("api/")) == ["bootstrap.py"]
