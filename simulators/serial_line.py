"""What the serial simulators share: the wire time of frames and a log of the line's traffic.

A pty delivers bytes at once. With wire_timing a simulator holds each reply back by the time the
request and the reply would take on a real line at the configured speed, so a master sees the
round trip (and the load) of a real RS-485 bus.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .scenario import SimLine


def wire_time_s(line: SimLine, nbytes: int) -> float:
    bits = 1 + 8 + (0 if line.parity == "N" else 1) + line.stopbits
    return nbytes * bits / line.baudrate


def port_parity(path: str, line: SimLine) -> str:
    """A pty has no parity bit to check, and Linux refuses to set parity on one a second time
    (pymodbus configures its port twice): a pty is opened without."""
    return "N" if os.path.realpath(path).startswith("/dev/pts/") else line.parity


@dataclass
class LineRecord:
    """One request as the simulator saw it, in time.monotonic() seconds."""

    start: float  # the request arrived
    end: float  # the reply was written; start when the meter stayed silent
    target: str  # unit id or address asked for
    answered: bool = False
