"""Batches as columns, for the vectorised allocation (10,000 batches: no per-batch Python)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from collector.batches.model import Batch, DeclaredUnit

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
_UNITS = list(DeclaredUnit)


class BatchError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class BatchTable:
    batches: tuple[Batch, ...]
    index: dict[str, int]
    line_names: tuple[str, ...]
    line: I64  # code into line_names
    start: F64  # epoch s
    end: F64
    quantity: F64
    unit: I64  # code into DeclaredUnit
    mass_kg: F64  # NaN where not given

    @property
    def duration(self) -> F64:
        return self.end - self.start

    def line_code(self, line: str) -> int | None:
        try:
            return self.line_names.index(line)
        except ValueError:
            return None

    @classmethod
    def of(cls, batches: Sequence[Batch]) -> BatchTable:
        """Columns of the batches; refuses duplicate ids and overlapping batches on one line."""
        index: dict[str, int] = {}
        for i, b in enumerate(batches):
            if index.setdefault(b.id, i) != i:
                raise BatchError(f"batch id {b.id!r} appears twice; batch ids must be unique")
        line_names = tuple(sorted({b.line for b in batches}))
        codes = {name: i for i, name in enumerate(line_names)}
        table = cls(
            batches=tuple(batches),
            index=index,
            line_names=line_names,
            line=np.array([codes[b.line] for b in batches], dtype=np.int64),
            start=np.array([b.start.timestamp() for b in batches], dtype=np.float64),
            end=np.array([b.end.timestamp() for b in batches], dtype=np.float64),
            quantity=np.array([b.produced_quantity for b in batches], dtype=np.float64),
            unit=np.array([_UNITS.index(b.declared_unit) for b in batches], dtype=np.int64),
            mass_kg=np.array(
                [np.nan if b.mass_kg is None else b.mass_kg for b in batches], dtype=np.float64
            ),
        )
        table._check_no_overlap()
        return table

    def _check_no_overlap(self) -> None:
        # a line runs one batch at a time: that is what makes a dedicated meter's split exact
        order = np.lexsort((self.start, self.line))
        same_line = self.line[order][1:] == self.line[order][:-1]
        overlap = np.flatnonzero(same_line & (self.start[order][1:] < self.end[order][:-1]))
        if overlap.size:
            a = self.batches[int(order[overlap[0]])]
            b = self.batches[int(order[overlap[0] + 1])]
            raise BatchError(
                f"batches {a.id} ({a.start.isoformat()} – {a.end.isoformat()}) and {b.id} "
                f"({b.start.isoformat()} – {b.end.isoformat()}) overlap on line {a.line}; a line "
                "runs one batch at a time: correct the times or model two lines"
            )

    def unit_name(self, code: int) -> DeclaredUnit:
        return _UNITS[code]
