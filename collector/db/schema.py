"""The collector's schema, defined once for SQLite and PostgreSQL (SQLAlchemy Core `MetaData`).

Each capability's store queries these tables; the migrations (collector/db/migrations/) create
and change them, and `metertrace collector db check` compares a database with this file.

Conventions:
- Reading and message times (`ts`) are integer microseconds since the Unix epoch, UTC: exact,
  compact, and ordered the same way on every engine (range and boundary queries use them).
- Other times are ISO 8601 text in UTC as `metertrace.timeutil.to_wire` writes it (fixed
  width, `Z`): they are compared as text, so on PostgreSQL they use the byte-order "C"
  collation, under which text order is time order.
- Certification data is append-only: the migrations install triggers that refuse UPDATE and
  DELETE on the ledger, the registries, batches, topologies, factors and published footprints
  (`APPEND_ONLY` below, with the message each refusal gives).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Double,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    and_,
    literal_column,
    or_,
)
from sqlalchemy.dialects import postgresql

from collector.allocation.counters import UNUSABLE
from metertrace.wire import Quality

metadata = MetaData()

# Text compared in byte order on PostgreSQL (ISO times, ids); plain TEXT on SQLite (BINARY).
Key = Text().with_variant(postgresql.TEXT(collation="C"), "postgresql")
# Microseconds since 1970-01-01T00:00:00Z.
Micros = BigInteger
# An autoincrementing id: SQLite's INTEGER PRIMARY KEY (the rowid), a BIGSERIAL on PostgreSQL.
RowId = BigInteger().with_variant(Integer, "sqlite")


def _pk_id() -> Column[int]:
    return Column("id", RowId, primary_key=True, autoincrement=True)


# --- ledger (collector/ledger/) -------------------------------------------------------------
gateways = Table(
    "gateways",
    metadata,
    Column("id", Key, primary_key=True),
    Column("key_id", Text, nullable=False),
    Column("registered_at", Key, nullable=False),
)
devices = Table(
    "devices",
    metadata,
    Column("id", Key, primary_key=True),
    Column("gateway", Key, nullable=False),
    Column("profile", Text, nullable=False),
    Column("registered_at", Key, nullable=False),
)
messages = Table(
    "messages",
    metadata,
    Column("device", Key, primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("gateway", Key, nullable=False),
    Column("ts", Micros, nullable=False),
    Column("received_at", Key, nullable=False),
    Column("hash", Text, nullable=False),
    Column("prev", Text, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Index("messages_by_time", "device", "ts"),
)
# The readings that measure a counter: good and counter_reset (the first reading at a confirmed
# new level); comm_error/not_available carry no value, out_of_range is suspect.
USABLE = tuple(q.value for q in Quality if q not in UNUSABLE)


def _usable_value(r: Any) -> ColumnElement[bool]:
    # SQL constants, not bound parameters: the partial index readings_usable serves a query
    # only when the planner sees that the query's condition implies the index's, which neither
    # SQLite nor a prepared PostgreSQL plan can for a parameter; OR of equalities, so that the
    # query's text is the index's.
    quality = or_(*(r.quality == literal_column(f"'{q}'") for q in USABLE))
    return and_(quality, r.value.is_not(None))


readings = Table(
    "readings",
    metadata,
    Column("device", Key, primary_key=True),
    Column("quantity", Key, primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("ts", Micros, nullable=False),
    Column("value", Double),
    Column("unit", Text, nullable=False),
    Column("raw", Text),
    Column("quality", Text, nullable=False),
    Column("uncorrected", Double),
    Column("cal_status", Text),
    Column("certificate", Text),
    Column("certificate_version", Integer),
    Column("cal_check", Text),
    Index("readings_by_time", "device", "quantity", "ts"),
)
USABLE_VALUE = _usable_value(readings.c)
# The boundary probes and counter reads of the allocation (ledger/counter_readings.py) answered
# from the index alone: only usable readings, with their value (revision 0003).
Index(
    "readings_usable",
    readings.c.device,
    readings.c.quantity,
    readings.c.ts,
    readings.c.value,
    sqlite_where=USABLE_VALUE,
    postgresql_where=USABLE_VALUE,
)
late_duplicates = Table(
    "late_duplicates",
    metadata,
    Column("device", Key, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("received_at", Key, nullable=False),
    Column("newest_seq", BigInteger, nullable=False),
    Index("late_duplicates_by_device", "device", "seq"),
)
quarantine = Table(
    "quarantine",
    metadata,
    _pk_id(),
    Column("received_at", Key, nullable=False),
    Column("topic", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("detail", Text, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    sqlite_autoincrement=True,
)
events = Table(
    "events",
    metadata,
    Column("gateway", Key, primary_key=True),
    Column("id", BigInteger, primary_key=True),
    Column("device", Key, nullable=False),
    Column("ts", Key, nullable=False),
    Column("received_at", Key, nullable=False),
    Column("event", Text, nullable=False),
    Column("reason", Text),
    Column("first_seq", BigInteger),
    Column("last_seq", BigInteger),
    Column("count", BigInteger),
    Column("first_ts", Key),
    Column("last_ts", Key),
    Column("counter", Text),
    Column("hash", Text, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Index("events_by_device", "device", "first_seq"),
)
# A meter's usable readings per 15 minutes (collector/ledger/rollups.py): derived from
# `readings`, kept in step with ingest, rebuildable from it (`metertrace collector db rollups`);
# so not append-only. Times in µs; dirty: merged out of order, steps unknown, read raw.
counter_rollups = Table(
    "counter_rollups",
    metadata,
    Column("device", Key, primary_key=True),
    Column("quantity", Key, primary_key=True),
    Column("bucket", Micros, primary_key=True),
    Column("first_ts", Micros, nullable=False),
    Column("first_value", Double, nullable=False),
    Column("last_ts", Micros, nullable=False),
    Column("last_value", Double, nullable=False),
    Column("n", BigInteger, nullable=False),
    Column("max_dt", Micros, nullable=False),
    Column("min_dv", Double),
    Column("dirty", Integer, nullable=False),
)
# Running totals that are not rows of their own (the duplicates ignored).
counters = Table(
    "counters",
    metadata,
    Column("name", Key, primary_key=True),
    Column("value", BigInteger, nullable=False),
)

# --- metrology (collector/metrology/) -------------------------------------------------------
device_records = Table(
    "device_records",
    metadata,
    Column("device", Key, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("spec", Text, nullable=False),
    Column("recorded_at", Key, nullable=False),
    Column("recorded_by", Text, nullable=False),
    Column("reason", Text, nullable=False),
)
replacements = Table(
    "replacements",
    metadata,
    _pk_id(),
    Column("device", Key, nullable=False),
    Column("at", Key, nullable=False),
    Column("body", Text, nullable=False),
    sqlite_autoincrement=True,
)
gateway_keys = Table(
    "gateway_keys",
    metadata,
    Column("gateway", Key, nullable=False),
    Column("kid", Key, primary_key=True),
    Column("alg", Text, nullable=False),
    Column("material", LargeBinary, nullable=False),
    Column("valid_from", Key, nullable=False),
)
key_retirements = Table(
    "key_retirements",
    metadata,
    Column("kid", Key, primary_key=True),
    Column("retired_at", Key, nullable=False),
)
certificates = Table(
    "certificates",
    metadata,
    Column("certificate_id", Key, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("device", Key, nullable=False),
    Column("body", Text, nullable=False),
    Column("recorded_at", Key, nullable=False),
    Column("recorded_by", Text, nullable=False),
    Index("certificates_by_device", "device"),
)
audit_log = Table(
    "audit_log",
    metadata,
    _pk_id(),
    Column("at", Key, nullable=False),
    Column("actor", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("entity", Text, nullable=False),
    Column("entity_id", Key, nullable=False),
    Column("before", Text),
    Column("after", Text),
    sqlite_autoincrement=True,
)

# --- batches (collector/batches/) -----------------------------------------------------------
batch_records = Table(
    "batch_records",
    metadata,
    Column("batch_id", Key, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("supersedes", Integer),
    Column("product_id", Key, nullable=False),
    Column("line", Key, nullable=False),
    Column("start", Key, nullable=False),
    Column("end", Key, nullable=False),
    Column("body", Text, nullable=False),
    Column("digest", Text, nullable=False),
    Column("recorded_at", Key, nullable=False),
    Column("recorded_by", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Index("batch_records_by_line", "line", "start"),
    Index("batch_records_by_start", "start"),
)
topology_versions = Table(
    "topology_versions",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("supersedes", Integer),
    Column("document", Text, nullable=False),
    Column("source_text", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("digest", Text, nullable=False),
    Column("recorded_at", Key, nullable=False),
    Column("recorded_by", Text, nullable=False),
)

# --- emission factors (collector/factors/) --------------------------------------------------
factor_records = Table(
    "factor_records",
    metadata,
    Column("name", Key, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("supersedes", Text),
    Column("body", Text, nullable=False),
    Column("recorded_at", Key, nullable=False),
    Column("recorded_by", Text, nullable=False),
)

# --- published PACT footprints (collector/footprints/) --------------------------------------
pact_footprints = Table(
    "pact_footprints",
    metadata,
    Column("id", Key, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("scope", Key, nullable=False),
    Column("digest", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("recorded_at", Key, nullable=False),
    Index("pact_footprints_scope", "scope"),
)

# Tables the application only ever inserts into, with the refusal an UPDATE or DELETE gets.
APPEND_ONLY: dict[str, str] = {
    "messages": "the ledger is append-only: messages are never changed or removed",
    "readings": "the ledger is append-only: readings are never changed or removed",
    "events": "the ledger is append-only: events are never changed or removed",
    "late_duplicates": "the ledger is append-only: replay evidence is never removed",
    "quarantine": "the quarantine is append-only: refused messages are kept as evidence",
    "device_records": "device records are append-only",
    "replacements": "meter replacements are append-only",
    "gateway_keys": "gateway keys are append-only: enrol a new key",
    "key_retirements": "key retirements are append-only",
    "certificates": "certificates are append-only: add a new version",
    "audit_log": "the audit log is append-only",
    "batch_records": "batch records are append-only: record a new version",
    "topology_versions": "topology versions are append-only: set a new version",
    "factor_records": "factor records are append-only: add a new version",
    "pact_footprints": "published footprints are append-only: publish a new version",
}
