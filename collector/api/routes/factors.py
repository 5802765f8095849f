"""Emission factor records: the built-in ones and those users add, never edited.

Every role may read. Adding a record (a new name, or a user's value overriding a name's current
record) needs the role that manages devices, batches and the topology (plant_engineer, admin):
factors are an input of the footprints like the topology, not calibration data.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Request
from pydantic import BaseModel

from collector.api.auth import CanManageDevices, CanRead
from collector.api.deps import app_state
from collector.factors.model import FactorConflict, FactorError
from collector.factors.store import (
    FactorInputError,
    FactorOverride,
    FactorRecord,
    FactorStore,
    NewFactor,
    parse_input,
)
from metertrace.timeutil import utcnow

router = APIRouter(prefix="/api/v1", tags=["factors"])


def _factors(request: Request) -> FactorStore:
    return app_state(request, "factors", FactorStore, "factor store")


@router.get("/factors", response_model=list[FactorRecord])
def list_factors(request: Request, _: CanRead) -> list[FactorRecord]:
    """Every record, built-in and stored, by name and version; `current` marks the version of
    each name that footprints use."""
    return _factors(request).records()


@router.get("/factors/{name}", response_model=list[FactorRecord])
def factor_history(name: str, request: Request, _: CanRead) -> list[FactorRecord]:
    """Every version of one name, oldest first."""
    history = _factors(request).records(name)
    if not history:
        raise HTTPException(404, f"no factor named {name!r}: GET /api/v1/factors lists them")
    return history


def _inline(model: type[BaseModel]) -> dict[str, Any]:
    # Basis is in the components already: FactorRecord, the response, refers to it
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schema.pop("$defs", None)
    return schema


_EITHER = {"oneOf": [_inline(NewFactor), _inline(FactorOverride)]}


@router.post(
    "/factors",
    response_model=FactorRecord,
    status_code=201,
    openapi_extra={"requestBody": {"content": {"application/json": {"schema": _EITHER}}}},
)
def add_factor(
    body: Annotated[Any, Body(description="a whole record (with version), or an override")],
    request: Request,
    caller: CanManageDevices,
) -> FactorRecord:
    """Store a record: a whole one (version 1 of a new name, or the next version of a name,
    naming in `supersedes` the record it replaces), or an override {name, value, source, note,
    uncertainty_rel?} of a name's current record. 409 when the version is not the next one,
    422 naming the field (a record needs a source, a unit mass/activity)."""
    store = _factors(request)
    try:
        new = parse_input(body)
    except FactorInputError as exc:
        raise HTTPException(422, [{**e, "loc": ["body", *e["loc"]]} for e in exc.errors]) from None
    try:
        if isinstance(new, NewFactor):
            return store.add(new, actor=caller.name, at=utcnow())
        return store.override(new, actor=caller.name, at=utcnow())
    except FactorConflict as exc:
        raise HTTPException(409, str(exc)) from None
    except FactorError as exc:
        raise HTTPException(422, str(exc)) from None
