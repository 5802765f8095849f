"""Serial lines without hardware: a socat pseudo-terminal pair, one end per side."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.helpers import wait_for


@contextmanager
def pty_pair(directory: Path, name: str = "tty") -> Iterator[tuple[str, str]]:
    """(master end, simulator end): bytes written to one arrive at the other, at once."""
    socat = shutil.which("socat")
    if socat is None:
        pytest.fail("socat is required for the serial tests: apt-get install socat", pytrace=False)
    a, b = directory / f"{name}-agent", directory / f"{name}-sim"
    proc = subprocess.Popen(
        [socat, "-d", "-d", f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: a.exists() and b.exists(), timeout=5, what=f"socat ptys {a}, {b}")
        yield str(a), str(b)
    finally:
        proc.terminate()
        proc.wait(5)
