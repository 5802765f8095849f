"""CSV batch files: each bad row reported with row number, column, value and fix (data-driven)."""

from __future__ import annotations

import io

import pytest

from collector.batches.csv_format import parse_csv
from metertrace.progress import Progress

pytestmark = pytest.mark.unit

HEADER = "id,product_id,product_name,line,start,end,produced_quantity,declared_unit,mass_kg"
GOOD = "B1,P1,Widget,L1,2026-03-02T06:00:00Z,2026-03-02T14:00:00Z,1250.5,kilogram,"


def test_a_good_file():
    text = "\ufeff" + "\n".join([
        HEADER,
        GOOD,
        "B2,P1,Widget,L1,2026-03-02T22:00:00+08:00,2026-03-02T23:00:00+08:00,3,piece,2.5",
        "",
    ])  # fmt: skip
    parsed = parse_csv(text)
    assert parsed.errors == [] and parsed.rows == 2
    (r1, b1), (r2, b2) = parsed.batches
    assert (r1, r2) == (2, 3)
    assert b1.produced_quantity == 1250.5 and b1.mass_kg is None
    assert b2.start.isoformat() == "2026-03-02T14:00:00+00:00" and b2.mass_kg == 2.5


def test_columns_may_come_in_any_order_and_mass_is_optional():
    text = "line,id,product_id,product_name,start,end,declared_unit,produced_quantity\n"
    text += "L1,B1,P1,W,2026-03-02T06:00:00Z,2026-03-02T07:00:00Z,liter,10\n"
    (_, b), *_ = parse_csv(text).batches
    assert (b.line, b.id, b.declared_unit.value) == ("L1", "B1", "liter")


# (replace in GOOD, column, expected words in the problem or fix)
BAD_ROWS = [
    (("2026-03-02T06:00:00Z", "2026-03-02T06:00:00"), "start", "has no timezone"),
    (("2026-03-02T06:00:00Z", "02/03/2026 06:00"), "start", "not an ISO 8601 time"),
    (("2026-03-02T14:00:00Z", "2026-03-02T05:00:00Z"), "end", "is not after start"),
    (("1250.5", "1,250.5"), "(row)", "quote values that contain ','"),
    (("1250.5", "-3"), "produced_quantity", "not a positive number"),
    (("1250.5", "abc"), "produced_quantity", "no thousands separators"),
    (("1250.5", "nan"), "produced_quantity", "not a positive number"),
    (("kilogram", "kg"), "declared_unit", "did you mean 'kilogram'?"),
    (("kilogram", "kilograms"), "declared_unit", "did you mean 'kilogram'?"),
    (("kilogram", "barrel"), "declared_unit", "write one of: liter, kilogram"),
    (("kilogram,", "kilogram,0"), "mass_kg", "not a positive number"),
    (("B1,", ","), "id", "empty"),
    (("Widget", ""), "product_name", "empty"),
    (("B1,", "B1" + "x" * 200 + ","), "id", "at most 128 characters"),
]


@pytest.mark.parametrize(("edit", "column", "words"), BAD_ROWS, ids=[b[2] for b in BAD_ROWS])
def test_a_bad_row_is_named_with_its_column_and_fix(edit, column, words):
    bad = GOOD.replace(*edit)
    assert bad != GOOD
    text = "\n".join([HEADER, GOOD.replace("B1", "B0").replace("L1", "L0"), bad]) + "\n"
    parsed = parse_csv(text)
    assert [b.id for _, b in parsed.batches] == ["B0"]  # the good row stays usable
    (err,) = parsed.errors
    assert (err.row, err.column) == (3, column)
    assert words in f"{err.problem}; fix: {err.fix}"
    assert str(err).startswith(f"row 3, column {column}, value ")
    assert parsed.bad_rows == [3]


def test_duplicate_ids_and_overlaps_within_the_file():
    text = "\n".join([
        HEADER,
        GOOD,
        GOOD,
        GOOD.replace("B1", "B2").replace("T06:00:00Z", "T13:00:00Z").replace("T14", "T15"),
    ])  # fmt: skip
    errors = parse_csv(text).errors
    assert [(e.row, e.column) for e in errors] == [(3, "id"), (4, "start")]
    assert "also on row 2" in errors[0].problem
    assert "overlaps batch B1 (row 2" in errors[1].problem and "line L1" in errors[1].problem


@pytest.mark.parametrize(
    ("header", "column", "words"),
    [
        (HEADER.replace("produced_quantity", "quantity"), "quantity", "did you mean"),
        (HEADER.replace(",mass_kg", ",mass_kg,colour"), "colour", "unknown column"),
        (HEADER.replace("line,", ""), "line", "required column missing"),
        (HEADER.replace(",", ";"), "(header)", "separated by ';'"),
        ("", "(header)", "empty"),
    ],
)
def test_header_problems(header, column, words):
    parsed = parse_csv(header + "\n" + GOOD + "\n")
    assert parsed.batches == []
    assert any(e.row == 1 and e.column == column and words in str(e) for e in parsed.errors)


def test_progress_line_is_redrawn_on_a_terminal_and_written_once_otherwise():
    tty, log = io.StringIO(), io.StringIO()
    for stream, live in ((tty, True), (log, False)):
        p = Progress("checking f.csv", 4, stream, live=live)
        for n in range(1, 5):
            p.update(n)
        p.finish("ok")
    assert tty.getvalue().startswith("\rchecking f.csv: ")
    assert tty.getvalue().endswith("\rchecking f.csv: 4/4 rows (100 %) ok\n")
    assert log.getvalue() == "checking f.csv: 4/4 rows (100 %) ok\n"
