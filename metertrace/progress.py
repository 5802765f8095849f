"""A one-line progress report for long commands (a CSV import, a database copy)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """A one-line progress report on a stream (stderr), redrawn with \\r at most every 0.1 s.

    When the stream is not a terminal only the final line is written, so logs stay readable."""

    def __init__(
        self,
        label: str,
        total: int,
        stream: TextIO | None = None,
        live: bool | None = None,
        unit: str = "rows",
    ):
        self.label, self.total, self.unit = label, total, unit
        self.stream = sys.stderr if stream is None else stream  # the current one, not at import
        self.live = self.stream.isatty() if live is None else live
        self._last = 0.0
        self.done_count = 0

    def _line(self) -> str:
        pct = 100.0 * self.done_count / self.total if self.total else 100.0
        return f"{self.label}: {self.done_count}/{self.total} {self.unit} ({pct:.0f} %)"

    def update(self, done: int) -> None:
        self.done_count = done
        now = time.monotonic()
        if self.live and (now - self._last >= 0.1 or done == self.total):
            self._last = now
            self.stream.write("\r" + self._line())
            self.stream.flush()

    def finish(self, note: str = "") -> None:
        end = f" {note}" if note else ""
        self.stream.write(("\r" if self.live else "") + self._line() + end + "\n")
        self.stream.flush()
