"""The registries' storage: devices, gateway keys, certificates, and the audit log.

Every table is append-only: rows are inserted, never updated or deleted, and each write records
an audit entry (who, when, what before and after) in the same transaction.

A version is read and its successor inserted in one write transaction. On SQLite that
transaction holds the write lock, so writers take turns; on PostgreSQL (READ COMMITTED) two
writers can both read version n and both insert n + 1: the primary key refuses the second,
whose edit is then as stale as one caught by `expected_version`, and is reported the same way
(RegistryConflict).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Row, exists, func, insert, select
from sqlalchemy.exc import IntegrityError

from collector.db.engine import Database
from collector.db.schema import (
    audit_log,
    certificates,
    device_records,
    gateway_keys,
    key_retirements,
    replacements,
)
from collector.metrology.certificates import StoredCertificate
from collector.metrology.registry import (
    AuditEntry,
    DeviceRecord,
    DeviceSpec,
    Replacement,
    next_version,
)
from metertrace.signing import EnrolledKey, enrolled_ed25519
from metertrace.timeutil import parse_utc, to_wire

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class RegistryConflict(ValueError):
    """A write that contradicts what is recorded (e.g. a version someone else just added)."""


def _stale_device(device: str, have: int, expected: int) -> str:
    return (
        f"device {device} is at version {have}, not {expected}; "
        "reload it and apply your change again"
    )


def _certificate_exists(certificate_id: str, version: int) -> str:
    return (
        f"certificate {certificate_id} v{version} exists; certificates are never edited: "
        f"add v{version + 1} with supersedes"
    )


@contextmanager
def _refused_as(message: str) -> Iterator[None]:
    """An insert the primary key refuses (another writer took the key first) as a conflict."""
    try:
        yield
    except IntegrityError as exc:
        raise RegistryConflict(message) from exc


_DEVICE_COLUMNS = (
    device_records.c.version,
    device_records.c.spec,
    device_records.c.recorded_at,
    device_records.c.recorded_by,
    device_records.c.reason,
)


def _device_record(r: Row[*tuple[Any, ...]]) -> DeviceRecord:
    return DeviceRecord(
        spec=DeviceSpec.model_validate_json(r.spec),
        version=r.version,
        recorded_at=parse_utc(r.recorded_at),
        recorded_by=r.recorded_by,
        reason=r.reason,
    )


def _newest_device(conn: Connection, device: str) -> DeviceRecord | None:
    row = conn.execute(
        select(*_DEVICE_COLUMNS)
        .where(device_records.c.device == device)
        .order_by(device_records.c.version.desc())
        .limit(1)
    ).first()
    return None if row is None else _device_record(row)


def _json_or_none(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def _audit(
    conn: Connection,
    at: str,
    actor: str,
    role: str,
    action: str,
    entity: str,
    entity_id: str,
    before: Any,
    after: Any,
) -> None:
    conn.execute(
        insert(audit_log).values(
            at=at,
            actor=actor,
            role=role,
            action=action,
            entity=entity,
            entity_id=entity_id,
            before=_json_or_none(before),
            after=_json_or_none(after),
        )
    )


def _insert_device(
    conn: Connection, spec: DeviceSpec, version: int, at: str, actor: str, reason: str
) -> None:
    with _refused_as(_stale_device(spec.id, version, version - 1)):
        conn.execute(
            insert(device_records).values(
                device=spec.id,
                version=version,
                spec=spec.model_dump_json(),
                recorded_at=at,
                recorded_by=actor,
                reason=reason,
            )
        )


class RegistryStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- devices -------------------------------------------------------------------------
    def device_history(self, device: str) -> list[DeviceRecord]:
        with self.db.read() as conn:
            rows = conn.execute(
                select(*_DEVICE_COLUMNS)
                .where(device_records.c.device == device)
                .order_by(device_records.c.version)
            ).all()
        return [_device_record(r) for r in rows]

    def device(self, device: str) -> DeviceRecord | None:
        with self.db.read() as conn:
            return _newest_device(conn, device)

    def devices(self) -> list[DeviceRecord]:
        """The newest version of every device, by id."""
        newer = device_records.alias("newer")
        with self.db.read() as conn:
            rows = conn.execute(
                select(*_DEVICE_COLUMNS)
                .where(
                    ~exists().where(
                        newer.c.device == device_records.c.device,
                        newer.c.version > device_records.c.version,
                    )
                )
                .order_by(device_records.c.device)
            ).all()
        return [_device_record(r) for r in rows]

    def record_device(
        self,
        spec: DeviceSpec,
        *,
        actor: str,
        role: str,
        at: datetime,
        reason: str = "",
        expected_version: int | None = None,
    ) -> DeviceRecord:
        """Add a version; expected_version (optimistic locking) refuses a stale edit."""
        ts = to_wire(at)
        with self.db.write() as conn:
            current = _newest_device(conn, spec.id)
            have = current.version if current else 0
            if expected_version is not None and expected_version != have:
                raise RegistryConflict(_stale_device(spec.id, have, expected_version))
            version = next_version(current, spec)
            _insert_device(conn, spec, version, ts, actor, reason)
            _audit(
                conn,
                ts,
                actor,
                role,
                "device.create" if version == 1 else "device.update",
                "device",
                spec.id,
                current.spec.model_dump(mode="json") if current else None,
                spec.model_dump(mode="json"),
            )
        return DeviceRecord(
            spec=spec, version=version, recorded_at=at, recorded_by=actor, reason=reason
        )

    def record_replacement(
        self, event: Replacement, *, actor: str, role: str, at: datetime
    ) -> DeviceRecord:
        """The replacement event and the device's new version (new serial) in one transaction."""
        ts = to_wire(at)
        reason = f"meter replaced at {to_wire(event.at)}"
        with self.db.write() as conn:
            current = _newest_device(conn, event.device)
            if current is None:
                raise RegistryConflict(f"device {event.device} is not registered")
            if current.spec.serial_number != event.old_serial:
                raise RegistryConflict(
                    f"device {event.device} has meter {current.spec.serial_number}, "
                    f"not {event.old_serial}"
                )
            conn.execute(
                insert(replacements).values(
                    device=event.device, at=to_wire(event.at), body=event.model_dump_json()
                )
            )
            spec = current.spec.model_copy(update={"serial_number": event.new_serial})
            version = current.version + 1
            _insert_device(conn, spec, version, ts, actor, reason)
            _audit(
                conn,
                ts,
                actor,
                role,
                "device.replace",
                "device",
                event.device,
                {"serial_number": event.old_serial},
                event.model_dump(mode="json"),
            )
        return DeviceRecord(
            spec=spec, version=version, recorded_at=at, recorded_by=actor, reason=reason
        )

    def replacements(self, device: str) -> list[Replacement]:
        with self.db.read() as conn:
            bodies = conn.scalars(
                select(replacements.c.body)
                .where(replacements.c.device == device)
                .order_by(replacements.c.at, replacements.c.id)
            ).all()
        return [Replacement.model_validate_json(b) for b in bodies]

    # --- gateway keys ----------------------------------------------------------------------
    def enrol_key(
        self, gateway: str, public_raw: bytes, *, actor: str, role: str, at: datetime
    ) -> EnrolledKey:
        """Enrol a gateway's Ed25519 public key; its previous key is retired from `at` on,
        and still verifies the messages stamped before that."""
        # Valid for any earlier stamp: a gateway signs (and buffers) before anyone enrols its key.
        # Only a retirement bounds a key; the enrolment time is kept for the record.
        key = enrolled_ed25519(gateway, public_raw, _EPOCH)
        ts = to_wire(at)
        enrolled = f"key {key.kid} is already enrolled"
        with self.db.write() as conn:
            if conn.scalar(select(exists().where(gateway_keys.c.kid == key.kid))):
                raise RegistryConflict(enrolled)
            old = conn.scalars(
                select(gateway_keys.c.kid)
                .outerjoin(key_retirements, key_retirements.c.kid == gateway_keys.c.kid)
                .where(gateway_keys.c.gateway == gateway, key_retirements.c.kid.is_(None))
                .order_by(gateway_keys.c.valid_from, gateway_keys.c.kid)
            ).all()
            with _refused_as(
                f"gateway {gateway} enrolled another key at the same time; "
                "list its keys and enrol again if this one is still wanted"
            ):
                for kid in old:
                    conn.execute(insert(key_retirements).values(kid=kid, retired_at=ts))
            with _refused_as(enrolled):
                conn.execute(
                    insert(gateway_keys).values(
                        gateway=gateway,
                        kid=key.kid,
                        alg=key.alg,
                        material=key.material,
                        valid_from=ts,
                    )
                )
            _audit(
                conn,
                ts,
                actor,
                role,
                "gateway.enrol_key",
                "gateway",
                gateway,
                {"retired": list(old)} if old else None,
                {"kid": key.kid},
            )
        return key

    def gateway_keys(self) -> list[EnrolledKey]:
        with self.db.read() as conn:
            rows = conn.execute(
                select(
                    gateway_keys.c.gateway,
                    gateway_keys.c.kid,
                    gateway_keys.c.alg,
                    gateway_keys.c.material,
                    key_retirements.c.retired_at,
                )
                .outerjoin(key_retirements, key_retirements.c.kid == gateway_keys.c.kid)
                .order_by(gateway_keys.c.valid_from, gateway_keys.c.kid)
            ).all()
        return [
            EnrolledKey(
                r.gateway,
                r.kid,
                r.alg,
                bytes(r.material),
                _EPOCH,
                parse_utc(r.retired_at) if r.retired_at else None,
            )
            for r in rows
        ]

    def enrolled_at(self) -> dict[str, datetime]:
        with self.db.read() as conn:
            rows = conn.execute(select(gateway_keys.c.kid, gateway_keys.c.valid_from)).all()
        return {r.kid: parse_utc(r.valid_from) for r in rows}

    # --- certificates ----------------------------------------------------------------------
    def add_certificate(self, stored: StoredCertificate, *, role: str) -> StoredCertificate:
        """Append a certificate version; what it supersedes must exist, nothing is replaced."""
        cert = stored.certificate
        exists_already = _certificate_exists(cert.certificate_id, cert.version)
        with self.db.write() as conn:
            if _newest_device(conn, cert.device_id) is None:
                raise RegistryConflict(
                    f"device {cert.device_id} is not registered; register it before its "
                    "certificate (POST /api/v1/registry/devices)"
                )
            if _has_certificate(conn, cert.certificate_id, cert.version):
                raise RegistryConflict(exists_already)
            old = cert.supersedes
            if old is not None and not _has_certificate(conn, old.certificate_id, old.version):
                raise RegistryConflict(
                    f"supersedes {old.certificate_id} v{old.version}, which is not recorded"
                )
            ts = to_wire(stored.recorded_at)
            with _refused_as(exists_already):
                conn.execute(
                    insert(certificates).values(
                        certificate_id=cert.certificate_id,
                        version=cert.version,
                        device=cert.device_id,
                        body=stored.model_dump_json(),
                        recorded_at=ts,
                        recorded_by=stored.recorded_by,
                    )
                )
            _audit(
                conn,
                ts,
                stored.recorded_by,
                role,
                "certificate.add",
                "certificate",
                f"{cert.certificate_id}/v{cert.version}",
                None if old is None else old.model_dump(mode="json"),
                {
                    "device": cert.device_id,
                    "valid_until": cert.valid_until.isoformat(),
                    "corrections": [c.kind.value for c in stored.corrections],
                },
            )
        return stored

    def certificates(self, device: str | None = None) -> list[StoredCertificate]:
        query = select(certificates.c.body)
        if device:
            query = query.where(certificates.c.device == device)
        query = query.order_by(
            certificates.c.recorded_at, certificates.c.certificate_id, certificates.c.version
        )
        with self.db.read() as conn:
            bodies = conn.scalars(query).all()
        return [StoredCertificate.model_validate_json(b) for b in bodies]

    def generation(self) -> int:
        """Changes with every registry write (each is audited), in this process or another."""
        # The number of audit entries, not the highest id: on PostgreSQL ids are taken when a
        # row is inserted, not when it commits, so a write can commit below an id already seen.
        with self.db.read() as conn:
            return int(conn.scalar(select(func.count()).select_from(audit_log)) or 0)

    # --- audit ---------------------------------------------------------------------------
    def audit(self, *, entity_id: str | None = None, limit: int = 1000) -> list[AuditEntry]:
        query = select(audit_log)
        if entity_id:
            query = query.where(audit_log.c.entity_id == entity_id)
        with self.db.read() as conn:
            rows = conn.execute(query.order_by(audit_log.c.id).limit(limit)).all()
        return [
            AuditEntry(
                id=r.id,
                at=parse_utc(r.at),
                actor=r.actor,
                role=r.role,
                action=r.action,
                entity=r.entity,
                entity_id=r.entity_id,
                before=json.loads(r.before) if r.before else None,
                after=json.loads(r.after) if r.after else None,
            )
            for r in rows
        ]


def _has_certificate(conn: Connection, certificate_id: str, version: int) -> bool:
    return bool(
        conn.scalar(
            select(
                exists().where(
                    certificates.c.certificate_id == certificate_id,
                    certificates.c.version == version,
                )
            )
        )
    )
