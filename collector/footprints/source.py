"""Where the PACT API gets its footprints: a port, and an in-memory adapter."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol
from uuid import UUID

from collector.footprints.model import ProductFootprint


class FootprintSource(Protocol):
    """The footprints a host offers. Implementations return the latest version of each."""

    def footprints(self) -> Sequence[ProductFootprint]:
        """Every footprint in one stable order (paging relies on it), oldest created first."""
        ...

    def footprint(self, pf_id: UUID) -> ProductFootprint | None: ...


class InMemoryFootprintSource:
    def __init__(self, footprints: Iterable[ProductFootprint] = ()) -> None:
        self._by_id: dict[UUID, ProductFootprint] = {}
        for pf in footprints:
            self.put(pf)

    def put(self, pf: ProductFootprint) -> None:
        """Add a footprint, or a new version of one; an older version never replaces a newer."""
        old = self._by_id.get(pf.id)
        if old is None or pf.version > old.version:
            self._by_id[pf.id] = pf

    def footprints(self) -> Sequence[ProductFootprint]:
        return sorted(self._by_id.values(), key=lambda pf: (pf.created, str(pf.id)))

    def footprint(self, pf_id: UUID) -> ProductFootprint | None:
        return self._by_id.get(pf_id)
