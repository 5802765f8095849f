"""Batches from a CSV file, every row checked, every problem reported with its fix.

One batch per row, a header naming the columns (any order):
id, product_id, product_name, line, start, end, produced_quantity, declared_unit[, mass_kg].
Times are ISO 8601 with a timezone. Rows are numbered as a spreadsheet shows them (the header
is row 1). Nothing is guessed: a unit written `kg` is refused with "did you mean kilogram".
"""

from __future__ import annotations

import csv
import difflib
import io
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TextIO

from pydantic import ValidationError

from collector.batches.model import Batch, DeclaredUnit
from metertrace.timeutil import parse_utc

REQUIRED = (
    "id",
    "product_id",
    "product_name",
    "line",
    "start",
    "end",
    "produced_quantity",
    "declared_unit",
)
OPTIONAL = ("mass_kg",)
COLUMNS = REQUIRED + OPTIONAL
UNITS = [u.value for u in DeclaredUnit]
_UNIT_ALIASES = {
    "kg": "kilogram",
    "l": "liter",
    "litre": "liter",
    "m3": "cubic meter",
    "m³": "cubic meter",
    "kwh": "kilowatt hour",
    "mj": "megajoule",
    "tkm": "ton kilometer",
    "m2": "square meter",
    "m²": "square meter",
    "pcs": "piece",
    "pc": "piece",
    "pieces": "piece",
}


@dataclass(frozen=True, slots=True)
class RowError:
    row: int  # as a spreadsheet numbers it: the header is row 1
    column: str
    value: str
    problem: str
    fix: str

    def __str__(self) -> str:
        where = f"row {self.row}, column {self.column}, value {self.value!r}"
        return f"{where}: {self.problem}; fix: {self.fix}"


@dataclass
class ParsedFile:
    rows: int = 0
    batches: list[tuple[int, Batch]] = field(default_factory=list)  # (row, batch)
    errors: list[RowError] = field(default_factory=list)

    @property
    def bad_rows(self) -> list[int]:
        return sorted({e.row for e in self.errors if e.row > 1})


def _number(
    value: str, column: str, row: int, errors: list[RowError], *, unit: str
) -> float | None:
    try:
        x = float(value)
    except ValueError:
        x = math.nan
    if not (math.isfinite(x) and x > 0):
        errors.append(
            RowError(
                row,
                column,
                value,
                "not a positive number",
                f"write a number > 0 in {unit} with '.' as decimal point and no "
                "thousands separators, e.g. 1250.5",
            )
        )
        return None
    return x


def _unit(value: str, row: int, errors: list[RowError]) -> str | None:
    if value in UNITS:
        return value
    guess = _UNIT_ALIASES.get(value.strip().lower()) or next(
        iter(difflib.get_close_matches(value.strip().lower(), UNITS, n=1)), None
    )
    hint = f"did you mean {guess!r}? " if guess else ""
    errors.append(
        RowError(
            row,
            "declared_unit",
            value,
            "not a PACT declared unit",
            f"{hint}write one of: {', '.join(UNITS)}",
        )
    )
    return None


def _time(value: str, column: str, row: int, errors: list[RowError]) -> object:
    try:
        return parse_utc(value, field=column)
    except ValueError as exc:
        problem = "has no timezone" if "timezone" in str(exc) else "is not an ISO 8601 time"
        errors.append(
            RowError(
                row,
                column,
                value,
                problem,
                "write e.g. 2026-03-02T06:00:00Z (UTC) or 2026-03-02T14:00:00+08:00",
            )
        )
        return None


def _header_errors(header: list[str]) -> list[RowError]:
    errors = []
    if len(header) == 1 and ";" in header[0]:
        return [
            RowError(
                1,
                "(header)",
                header[0],
                "the file is separated by ';'",
                "save it as comma-separated values (CSV with ',')",
            )
        ]
    for name in header:
        if name not in COLUMNS:
            close = difflib.get_close_matches(name, COLUMNS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            errors.append(
                RowError(1, name, name, "unknown column", f"{hint}columns are {', '.join(COLUMNS)}")
            )
    for name in REQUIRED:
        if name not in header:
            errors.append(
                RowError(
                    1, name, "", "required column missing", f"add a column {name!r} to the header"
                )
            )
    dup = sorted({n for n in header if header.count(n) > 1})
    errors += [RowError(1, n, n, "column given twice", "keep one") for n in dup]
    return errors


def _row(cells: dict[str, str], row: int, errors: list[RowError]) -> Batch | None:
    before = len(errors)
    for name in REQUIRED:
        if not cells.get(name, "").strip():
            errors.append(RowError(row, name, "", "empty", f"give the batch's {name}"))
    if len(errors) > before:
        return None
    start = _time(cells["start"], "start", row, errors)
    end = _time(cells["end"], "end", row, errors)
    qty = _number(
        cells["produced_quantity"], "produced_quantity", row, errors, unit="the declared unit"
    )
    unit = _unit(cells["declared_unit"], row, errors)
    mass_text = cells.get("mass_kg", "").strip()
    mass = _number(mass_text, "mass_kg", row, errors, unit="kg") if mass_text else None
    if len(errors) > before:
        return None
    data = {k: cells[k].strip() for k in ("id", "product_id", "product_name", "line")}
    try:
        return Batch.model_validate(
            {
                **data,
                "start": start,
                "end": end,
                "produced_quantity": qty,
                "declared_unit": unit,
                "mass_kg": mass,
            }
        )
    except ValidationError as exc:
        for err in exc.errors():
            column = str(err["loc"][0]) if err["loc"] else "end"
            msg = err["msg"].removeprefix("Value error, ")
            errors.append(
                RowError(
                    row,
                    column,
                    cells.get(column, ""),
                    msg,
                    "correct the value" if err["loc"] else "make end later than start",
                )
            )
        return None


def _overlaps(batches: list[tuple[int, Batch]], errors: list[RowError]) -> None:
    """A line runs one batch at a time: report the later of two overlapping rows."""
    by_line: dict[str, list[tuple[int, Batch]]] = {}
    for rb in batches:
        by_line.setdefault(rb[1].line, []).append(rb)
    for items in by_line.values():
        items.sort(key=lambda rb: (rb[1].start, rb[0]))
        latest_end: tuple[int, Batch] | None = None
        for row, b in items:
            if latest_end is not None and b.start < latest_end[1].end:
                r0, b0 = latest_end
                errors.append(
                    RowError(
                        row,
                        "start",
                        b.start.isoformat(),
                        f"overlaps batch {b0.id} (row {r0}, until {b0.end.isoformat()}) "
                        f"on line {b.line}",
                        "a line runs one batch at a time: correct the times or the line",
                    )
                )
            if latest_end is None or b.end > latest_end[1].end:
                latest_end = (row, b)


def parse_csv(text: str, *, progress: Callable[[int], None] | None = None) -> ParsedFile:
    out = ParsedFile()
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff")))
    header = [h.strip() for h in next(reader, [])]
    if not header:
        out.errors.append(
            RowError(
                1,
                "(header)",
                "",
                "the file is empty",
                f"start with a header row: {','.join(COLUMNS)}",
            )
        )
        return out
    out.errors += _header_errors(header)
    if out.errors:
        return out
    first: dict[str, int] = {}
    for n, cells in enumerate(reader, start=2):
        out.rows += 1
        if progress is not None:
            progress(out.rows)
        if not any(c.strip() for c in cells):
            continue  # a blank line (e.g. at the end of the file)
        if len(cells) != len(header):
            out.errors.append(
                RowError(
                    n,
                    "(row)",
                    ",".join(cells),
                    f"{len(cells)} fields, the header has {len(header)}",
                    "quote values that contain ',' and give every column",
                )
            )
            continue
        b = _row(dict(zip(header, cells, strict=True)), n, out.errors)
        if b is None:
            continue
        if b.id in first:
            out.errors.append(
                RowError(
                    n,
                    "id",
                    b.id,
                    f"also on row {first[b.id]}",
                    "give each batch one row and a unique id",
                )
            )
            continue
        first[b.id] = n
        out.batches.append((n, b))
    _overlaps(out.batches, out.errors)
    bad = set(out.bad_rows)
    out.batches = [(n, b) for n, b in out.batches if n not in bad]
    return out


def count_rows(text: str) -> int:
    return max(0, sum(1 for _ in csv.reader(io.StringIO(text))) - 1)


def report(errors: Iterable[RowError], stream: TextIO) -> None:
    for e in errors:
        stream.write(f"{e}\n")
