"""Transports: how register blocks are read from a device (adapters over real protocols)."""

from __future__ import annotations

from typing import Protocol

from device_profiles import Function


class RegisterReader(Protocol):
    async def read(self, function: Function, address: int, count: int) -> list[int]:
        """Read count registers in ONE request, or raise CommError."""
        ...

    async def close(self) -> None: ...
