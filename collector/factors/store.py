"""Storage of users' emission factor records, append-only.

The built-in records (factors/model.py) stay in code, always present as the first versions of
their names. This table holds what users add: a new name from version 1, or the next version of
a name (an override) naming the record it supersedes. Rows are never updated or deleted (the
triggers refuse it); each says who stored it and when. Loading gives a FactorRegistry of the
built-in records and then the stored ones, in the order they were added.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import IntegrityError

from collector.db.engine import Database
from collector.db.schema import factor_records
from collector.factors.model import (
    BUILTIN,
    NO_SOURCE,
    Basis,
    EmissionFactor,
    FactorConflict,
    FactorError,
    FactorRegistry,
    check_user_record,
)
from metertrace.timeutil import parse_utc, to_wire


def _cited(source: str) -> str:
    if not source.strip():
        raise ValueError(NO_SOURCE)
    return source.strip()


Source = Annotated[
    str,
    AfterValidator(_cited),
    Field(description="the citation: issuing body and document (e.g. a supplier's contract)"),
]
Uncertainty = Annotated[
    float | None, Field(description="relative standard uncertainty (k = 1); none: not stated")
]


class NewFactor(BaseModel):
    """A whole record: version 1 of a new name, or the next version of a name."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="the lookup key, stable across versions, e.g. supplier-ppa-2025")
    version: int = Field(description="the next version of the name: 1 for a new name")
    value: float
    unit: str = Field(description="emitted mass per activity unit, e.g. kgCO2/kWh")
    gases: str = Field(description="CO2 or CO2e")
    gwp_set: str = Field(description="e.g. 'IPCC AR5 GWP100', or 'none (CO2 only)'")
    source: Source
    announcement: str | None = Field(None, description="announcement number, if the source has")
    data_year: int | None = None
    published: str | None = Field(None, description="ISO 8601 date, or year-month")
    geography: str = Field(description="ISO 3166 code, or GLOBAL")
    basis: Basis
    uncertainty_rel: Uncertainty = None
    supersedes: str | None = Field(
        None, description="the id (name@version) of the name's current record; none for version 1"
    )
    note: str = ""

    def record(self, created_by: str) -> EmissionFactor:
        return EmissionFactor(**self.model_dump(), created_by=created_by)


class FactorOverride(BaseModel):
    """A user's value for a name: the next version of its current record, which stays."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="the name whose current record this one supersedes")
    value: float = Field(description="in the current record's unit")
    source: Source
    note: str = Field(description="why this value replaces the current one")
    uncertainty_rel: Uncertainty = None


class FactorRecord(NewFactor):
    id: str = Field(description="name@version")
    created_by: str = Field(description="who stored it; 'built-in' for the records in code")
    builtin: bool
    current: bool = Field(description="the newest version of its name: the one footprints use")
    recorded_at: AwareDatetime | None = Field(description="when it was stored; none: built in")


class FactorInputError(FactorError):
    """A record or override that does not validate; `errors` name the fields (pydantic's)."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors))


def parse_input(body: Any) -> NewFactor | FactorOverride:
    """A body with a version is a whole record, one without an override; validated as that one
    kind, so each error names its field (a union would report both kinds). A missing field's
    error says what to give."""
    if not isinstance(body, dict):
        raise FactorInputError([{"loc": [], "type": "dict_type", "msg": (
            "give an object: a whole record (with version), or {name, value, source, note} to "
            "override a name's current record"
        )}])  # fmt: skip
    model: type[NewFactor | FactorOverride] = NewFactor if "version" in body else FactorOverride
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
    out: list[dict[str, Any]] = []
    for e in errors:
        field = model.model_fields.get(str(e["loc"][0])) if e["loc"] else None
        if e["type"] == "missing" and field is not None and field.description:
            e["msg"] = f"Field required: {field.description}"
        e["msg"] = e["msg"].removeprefix("Value error, ")  # our validators' text says it all
        out.append(dict(e))
    raise FactorInputError(out)


def _load(conn: Connection) -> tuple[FactorRegistry, dict[str, datetime]]:
    """(the built-in records then the stored ones, when each stored one was recorded)."""
    # "In the order added" without a rowid (PostgreSQL has none): by time, and within one
    # instant by name and version, so an override follows the record it supersedes.
    rows = conn.execute(
        select(factor_records.c.body, factor_records.c.recorded_at).order_by(
            factor_records.c.recorded_at, factor_records.c.name, factor_records.c.version
        )
    ).all()
    stored = [EmissionFactor.from_json(json.loads(r.body)) for r in rows]
    at = {f.id: parse_utc(r.recorded_at) for f, r in zip(stored, rows, strict=True)}
    return FactorRegistry([*BUILTIN, *stored]), at


class FactorStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def registry(self) -> FactorRegistry:
        """The built-in records, then the stored ones in the order they were added."""
        with self.db.read() as conn:
            return _load(conn)[0]

    def records(self, name: str | None = None) -> list[FactorRecord]:
        """Every record (or every version of `name`), by name and version."""
        with self.db.read() as conn:
            reg, at = _load(conn)
        chosen = [f for f in reg.records() if name is None or f.name == name]
        return [
            _out(f, current=reg.current(f.name).id == f.id, recorded_at=at.get(f.id))
            for f in sorted(chosen, key=lambda f: (f.name, f.version))
        ]

    def add(self, new: NewFactor, *, actor: str, at: datetime) -> FactorRecord:
        """Store a whole record; it must be the next version of its name (FactorConflict)."""
        record = new.record(actor)
        check_user_record(record)
        return self._append(lambda reg: reg.add_next(record), at)

    def override(self, o: FactorOverride, *, actor: str, at: datetime) -> FactorRecord:
        """Store a user's value as the next version of the name's current record."""

        def make(reg: FactorRegistry) -> EmissionFactor:
            if not reg.history(o.name):
                known = sorted({f.name for f in reg.records()})
                raise FactorError(
                    f"name: no factor named {o.name!r} to override (known: {known}); a new "
                    "name needs a whole record, version 1"
                )
            record = reg.override(
                o.name,
                value=o.value,
                created_by=actor,
                note=o.note,
                source=o.source,  # validated non-blank: override() would make one up
                uncertainty_rel=o.uncertainty_rel,
            )
            check_user_record(record)
            return record

        return self._append(make, at)

    def _append(
        self, make: Callable[[FactorRegistry], EmissionFactor], at: datetime
    ) -> FactorRecord:
        """make(the registry as stored) -> the new record, added to it (so it is the next version)
        and inserted in one transaction: a version cannot be taken twice. (PostgreSQL: two
        writers can both read version n; the primary key refuses the second n + 1.)"""
        with self.db.write() as conn:
            record = make(_load(conn)[0])
            try:
                conn.execute(
                    insert(factor_records).values(
                        name=record.name,
                        version=record.version,
                        supersedes=record.supersedes,
                        body=json.dumps(record.to_json()),
                        recorded_at=to_wire(at),
                        recorded_by=record.created_by,
                    )
                )
            except IntegrityError as exc:
                raise FactorConflict(
                    f"version: another record of factor {record.name} was stored as version "
                    f"{record.version} meanwhile; reload its history and add the record again "
                    f"(as version {record.version + 1})"
                ) from exc
        return _out(record, current=True, recorded_at=parse_utc(to_wire(at)))


def _out(f: EmissionFactor, *, current: bool, recorded_at: datetime | None) -> FactorRecord:
    return FactorRecord.model_validate(
        {**f.to_json(), "builtin": recorded_at is None, "current": current,
         "recorded_at": recorded_at}
    )  # fmt: skip
