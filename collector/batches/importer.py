"""`metertrace batches import FILE.csv`: check every row, report, then record all or nothing.

The rows are checked first (csv_format.py), with a progress line on stderr; any problem stops the
import before anything is written, unless --skip-bad-rows, which records the good rows and lists
the skipped ones. The batches are then recorded in one transaction (collector/batches/store.py):
the same batch again is a no-op, a changed one is refused unless --supersede.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, TextIO

from collector.batches.csv_format import count_rows, parse_csv, report
from collector.batches.model import Batch
from collector.batches.store import BatchConflict, RecordResult
from metertrace.progress import Progress


class ImportFailed(Exception):
    """Nothing was imported; the message says why and what to do."""


class Recorder(Protocol):
    def record(self, batches: Sequence[Batch], *, supersede: bool, source: str) -> RecordResult: ...


def run_import(
    path: Path,
    client: Recorder,
    *,
    supersede: bool = False,
    skip_bad_rows: bool = False,
    stream: TextIO | None = None,
    live: bool | None = None,
) -> str:
    """Check every row, report the problems, then record the batches all at once (or none)."""
    stream = sys.stderr if stream is None else stream
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ImportFailed(f"{path}: not UTF-8 text; save it as CSV UTF-8") from None
    except OSError as exc:
        raise ImportFailed(f"{path}: cannot read: {exc.strerror}") from None
    progress = Progress(f"checking {path.name}", count_rows(text), stream, live)
    parsed = parse_csv(text, progress=progress.update)
    progress.finish(f"{len(parsed.errors)} problem(s)" if parsed.errors else "ok")
    report(parsed.errors, stream)
    bad = parsed.bad_rows
    if parsed.errors and (not skip_bad_rows or not bad):
        hint = (
            f"fix them, or pass --skip-bad-rows to import the {len(parsed.batches)} good rows"
            if bad
            else "fix the header"
        )
        raise ImportFailed(
            f"{path}: nothing imported: {len(parsed.errors)} problem(s) in "
            f"{len(bad) or 1} row(s); {hint}"
        )
    if not parsed.batches:
        return f"{path}: no batches in the file, nothing imported"
    stream.write(f"storing {len(parsed.batches)} batches ...\n")
    try:
        result = client.record(
            [b for _, b in parsed.batches], supersede=supersede, source=f"csv:{path.name}"
        )
    except BatchConflict as exc:
        rows = {b.id: n for n, b in parsed.batches}
        for c in exc.conflicts:
            stream.write(f"row {rows.get(c.batch_id, '?')}, batch {c.batch_id}: {c.detail}\n")
        raise ImportFailed(
            f"{path}: nothing imported: {len(exc.conflicts)} batch(es) conflict with what is "
            "recorded (listed above)"
        ) from None
    skipped = f", {len(bad)} bad row(s) skipped: {bad}" if bad else ""
    return (
        f"{path}: {len(result.created)} created, {len(result.superseded)} superseded (new "
        f"versions), {len(result.unchanged)} unchanged{skipped}"
    )
