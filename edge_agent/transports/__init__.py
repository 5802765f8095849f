"""Transports: how a device's values are read (adapters over real protocols)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol, runtime_checkable

from device_profiles import Function

from ..errors import CommError


class NoAnswer(CommError):
    """The device said nothing usable: timeout, port missing, connection refused.

    Unlike an exception reply (the device is there and refuses one request), this ends the
    device's poll at once and counts towards its backoff: asking again now would only hold the
    line for another timeout.
    """


class Transport(Protocol):
    def turn(self) -> AbstractAsyncContextManager[None]:
        """Exclusive use of the line for one poll (a no-op where requests may interleave)."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class RegisterReader(Transport, Protocol):
    async def read(self, function: Function, address: int, count: int) -> list[int]:
        """Read count registers in ONE request, or raise CommError."""
        ...


@runtime_checkable
class DataIdReader(Transport, Protocol):
    async def read_di(self, di: str, size: int) -> bytes:
        """The value bytes (lowest first, offset removed) of one DI, or raise CommError."""
        ...
