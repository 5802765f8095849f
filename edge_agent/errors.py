"""Errors of the edge agent; each carries the device and request it concerns."""

from __future__ import annotations


class AgentError(Exception):
    pass


class CommError(AgentError):
    """A request got no usable answer: timeout, connection refused, Modbus exception."""

    def __init__(self, device: str, what: str, detail: str) -> None:
        self.device, self.what, self.detail = device, what, detail
        super().__init__(f"{device}: {what}: {detail}")
