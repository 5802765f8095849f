"""Batches, the plant topology, and energy per batch or period (the footprint engines' interface).

Plant engineers record batches and set the topology; every role may read. Records are never
edited: a changed batch is a new version (supersede=true), a new topology a new version.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Query, Request, Response
from pydantic import BaseModel, ValidationError

from collector.api.auth import CanManageDevices, CanRead
from collector.api.deps import app_state
from collector.batches.energy_out import BatchEnergyOut, PeriodEnergyOut
from collector.batches.energy_service import BatchEnergyService, EnergyUnavailable, NotFound
from collector.batches.model import Batch
from collector.batches.period import PeriodError
from collector.batches.store import (
    BatchConflict,
    BatchRecord,
    BatchStore,
    RecordResult,
    TopologyRecord,
)
from collector.batches.topology_file import TopologyError, parse_topology
from collector.ledger.counter_readings import CounterStore
from metertrace.timeutil import parse_utc, utcnow

router = APIRouter(prefix="/api/v1", tags=["batches"])


def _batches(request: Request) -> BatchStore:
    return app_state(request, "batches", BatchStore, "batch store")


def _time(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_utc(value, field=name)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None


_ONE_OR_MANY = {"oneOf": [
    {"$ref": "#/components/schemas/Batch"},
    {"type": "array", "items": {"$ref": "#/components/schemas/Batch"}},
]}  # fmt: skip


def _validate(body: Any) -> list[Batch]:
    """Each batch validated on its own, so an error names the batch's index and field (a
    pydantic union would report every branch)."""
    items = body if isinstance(body, list) else [body]
    out, errors = [], []
    for i, item in enumerate(items):
        try:
            out.append(Batch.model_validate(item))
        except ValidationError as exc:
            where: list[Any] = ["body", i] if isinstance(body, list) else ["body"]
            for e in exc.errors(include_url=False, include_context=False, include_input=False):
                errors.append({**e, "loc": [*where, *e["loc"]]})
    if errors:
        raise HTTPException(422, errors)
    return out


@router.post(
    "/batches",
    response_model=RecordResult,
    status_code=201,
    openapi_extra={"requestBody": {"content": {"application/json": {"schema": _ONE_OR_MANY}}}},
)
def record_batches(
    body: Annotated[Any, Body(description="one batch, or a list of them (all or none)")],
    request: Request,
    response: Response,
    caller: CanManageDevices,
    supersede: Annotated[
        bool, Query(description="record changed batches as new versions of the stored ones")
    ] = False,
    reason: Annotated[str, Query(max_length=500, description="why, for a new version")] = "",
    source: Annotated[str, Query(max_length=200, description="e.g. csv:week-12.csv")] = "api",
) -> RecordResult:
    """Record batches in one transaction. The same batch again is a no-op (200); a changed one
    is refused (409) unless supersede=true, which adds a version naming the one it replaces."""
    batches = _validate(body)
    try:
        result = _batches(request).record(
            batches, actor=caller.name, at=utcnow(), source=source, supersede=supersede,
            reason=reason,
        )  # fmt: skip
    except BatchConflict as exc:
        raise HTTPException(
            409, {"message": str(exc), "conflicts": [c.model_dump() for c in exc.conflicts]}
        ) from None
    if not result.changed:
        response.status_code = 200
    return result


@router.get("/batches", response_model=list[BatchRecord])
def list_batches(
    request: Request,
    _: CanRead,
    product: Annotated[str | None, Query(description="product id")] = None,
    line: str | None = None,
    from_: Annotated[
        str | None, Query(alias="from", description="ISO 8601; batches ending after it")
    ] = None,
    to: Annotated[str | None, Query(description="ISO 8601; batches starting before it")] = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
) -> list[BatchRecord]:
    """Current versions of the batches, by start time; from/to select those overlapping
    [from, to)."""
    start, end = _time(from_, "from"), _time(to, "to")
    if start and end and end <= start:
        raise HTTPException(422, "to must be after from")
    return _batches(request).batches(product=product, line=line, start=start, end=end,
                                     limit=limit)  # fmt: skip


@router.get("/batches/{batch_id}", response_model=BatchRecord)
def get_batch(
    batch_id: str, request: Request, _: CanRead, version: int | None = None
) -> BatchRecord:
    """The batch (its newest version, or the given one)."""
    record = _batches(request).batch(batch_id, version)
    if record is None:
        raise HTTPException(404, f"batch {batch_id} (version {version or 'any'}) is not recorded")
    return record


@router.get("/batches/{batch_id}/history", response_model=list[BatchRecord])
def batch_history(batch_id: str, request: Request, _: CanRead) -> list[BatchRecord]:
    history = _batches(request).history(batch_id)
    if not history:
        raise HTTPException(404, f"batch {batch_id} is not recorded")
    return history


# The period an energy figure (or its evidence) is computed over: see docs/batches.md.
PeriodStart = Annotated[
    str | None, Query(description="ISO 8601; default: the calendar month(s) of the batch")
]
PeriodEnd = Annotated[str | None, Query(description="ISO 8601, exclusive")]
Tz = Annotated[str, Query(description="time zone of the calendar months")]
TopologyVersion = Annotated[int | None, Query(ge=1, description="default: newest")]


@contextmanager
def energy_errors() -> Iterator[None]:
    """The energy service's errors as HTTP statuses (docs/batches.md, Errors)."""
    try:
        yield
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except PeriodError as exc:
        raise HTTPException(422, str(exc)) from None
    except EnergyUnavailable as exc:
        raise HTTPException(409, str(exc)) from None


@router.get("/batches/{batch_id}/energy", response_model=BatchEnergyOut)
def batch_energy(
    batch_id: str,
    request: Request,
    _: CanRead,
    period_start: PeriodStart = None,
    period_end: PeriodEnd = None,
    tz: Tz = "UTC",
    topology_version: TopologyVersion = None,
) -> BatchEnergyOut:
    """Per medium: quantity, unit, U (k = 2), coverage, primary-data share, calibration status,
    the contributing meters with their shares and rules, the method text; per declared unit."""
    batches = _batches(request)
    counters = CounterStore(batches.db)
    with energy_errors():
        return BatchEnergyService(batches, request.app.state.registry, counters).energy(
            batch_id,
            period_start=_time(period_start, "period_start"),
            period_end=_time(period_end, "period_end"),
            tz=tz,
            topology_version=topology_version,
        )


@router.get("/energy", response_model=PeriodEnergyOut)
def period_energy(
    request: Request,
    _: CanRead,
    period_start: Annotated[PeriodStart, Query(description="ISO 8601, required")] = None,
    period_end: Annotated[PeriodEnd, Query(description="ISO 8601, exclusive, required")] = None,
    topology_version: TopologyVersion = None,
) -> PeriodEnergyOut:
    """Every batch overlapping [period_start, period_end) from one allocation of the period,
    each with the figures /batches/{id}/energy gives for the same period, and the closure of
    every meter (allocated + overhead = total)."""
    start, end = _required(period_start, "period_start"), _required(period_end, "period_end")
    batches = _batches(request)
    counters = CounterStore(batches.db)
    with energy_errors():
        return BatchEnergyService(batches, request.app.state.registry, counters).period_energy(
            start, end, topology_version=topology_version
        )


def _required(value: str | None, name: str) -> datetime:
    t = _time(value, name)
    if t is None:
        raise HTTPException(
            422, f"{name} is required: give it as ISO 8601, e.g. ?{name}=2026-03-01T00:00:00Z"
        )
    return t


class TopologySet(BaseModel):
    stored: bool
    record: TopologyRecord


@router.put("/topology", response_model=TopologySet)
def set_topology(
    request: Request,
    response: Response,
    caller: CanManageDevices,
    text: Annotated[str, Body(media_type="application/yaml", description="the topology YAML")],
    source: Annotated[str, Query(max_length=200, description="e.g. the file name")] = "api",
) -> TopologySet:
    """Store the topology as a new version (201); the same content again changes nothing (200)."""
    try:
        doc = parse_topology(text, source=source)
    except TopologyError as exc:
        raise HTTPException(422, str(exc)) from None
    record, stored = _batches(request).set_topology(
        doc, source_text=text, source=source, actor=caller.name, at=utcnow()
    )
    response.status_code = 201 if stored else 200
    return TopologySet(stored=stored, record=record)


@router.get("/topology", response_model=TopologyRecord)
def get_topology(
    request: Request, _: CanRead, version: Annotated[int | None, Query(ge=1)] = None
) -> TopologyRecord:
    record = _batches(request).topology(version)
    if record is None:
        raise HTTPException(
            404, "no topology is set: metertrace topology set plant-topology.yaml"
            if version is None else f"topology version {version} does not exist",
        )  # fmt: skip
    return record


@router.get("/topology/versions", response_model=list[int])
def topology_versions(request: Request, _: CanRead) -> list[int]:
    return _batches(request).topology_versions()
