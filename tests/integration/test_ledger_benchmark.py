"""A small run of benchmarks/bench_ledger.py on both engines: a week of the 50-meter plant stored
in the database, every batch figure computed through the service from the rollups and the
readings around the batch boundaries, equal to the last bit to the in-memory allocation of every
reading. (The full year is `make bench-ledger`; figures in benchmarks/README.md.)"""

from __future__ import annotations

import pytest

from benchmarks import bench_ledger

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_a_week_from_the_database_equals_the_in_memory_allocation(store, tmp_path):
    (row,) = bench_ledger.main(
        ["--store", store, "--days", "3", "--batches-per-line", "8", "--quiet",
         "--work", str(tmp_path)]
    )  # fmt: skip
    assert row["readings_stored"] == 50 * 3 * 8640
    assert row["batches"] == 80
    assert row["figures_equal"], row["differences"]
    assert row["closed"] == "50/50"
