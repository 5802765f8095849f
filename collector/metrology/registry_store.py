"""SQLite adapter for the registries: devices, gateway keys, certificates, and the audit log.

Every table is append-only: rows are inserted, never updated or deleted, and each write records
an audit entry (who, when, what before and after) in the same transaction.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from collector.db.engine import connect
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

_SCHEMA = """
CREATE TABLE IF NOT EXISTS device_records (
    device TEXT NOT NULL,
    version INTEGER NOT NULL,
    spec TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (device, version)
);
CREATE TABLE IF NOT EXISTS replacements (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device TEXT NOT NULL,
    at TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS gateway_keys (
    gateway TEXT NOT NULL,
    kid TEXT NOT NULL PRIMARY KEY,
    alg TEXT NOT NULL,
    material BLOB NOT NULL,
    valid_from TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS key_retirements (
    kid TEXT NOT NULL PRIMARY KEY REFERENCES gateway_keys(kid),
    retired_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS certificates (
    certificate_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    device TEXT NOT NULL,
    body TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    PRIMARY KEY (certificate_id, version)
);
CREATE INDEX IF NOT EXISTS certificates_by_device ON certificates (device);
CREATE TABLE IF NOT EXISTS audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    action TEXT NOT NULL,
    entity TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    before TEXT,
    after TEXT
);
CREATE TRIGGER IF NOT EXISTS device_records_append_only BEFORE UPDATE ON device_records
BEGIN SELECT RAISE(ABORT, 'device records are append-only'); END;
CREATE TRIGGER IF NOT EXISTS certificates_append_only BEFORE UPDATE ON certificates
BEGIN SELECT RAISE(ABORT, 'certificates are append-only: add a new version'); END;
CREATE TRIGGER IF NOT EXISTS audit_append_only BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class RegistryConflict(ValueError):
    """A write that contradicts what is recorded (e.g. a version someone else just added)."""


class SqliteRegistry:
    def __init__(self, path: Path) -> None:
        self._db = connect(path, _SCHEMA)
        self._lock = threading.Lock()

    def _audit(
        self,
        at: str,
        actor: str,
        role: str,
        action: str,
        entity: str,
        entity_id: str,
        before: Any,
        after: Any,
    ) -> None:
        self._db.execute(
            "INSERT INTO audit_log (at, actor, role, action, entity, entity_id, before, after) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                at,
                actor,
                role,
                action,
                entity,
                entity_id,
                None if before is None else json.dumps(before),
                None if after is None else json.dumps(after),
            ),
        )

    def _tx(self) -> _Tx:
        return _Tx(self._db, self._lock)

    # --- devices -------------------------------------------------------------------------
    def device_history(self, device: str) -> list[DeviceRecord]:
        rows = self._db.execute(
            "SELECT version, spec, recorded_at, recorded_by, reason FROM device_records "
            "WHERE device = ? ORDER BY version",
            (device,),
        ).fetchall()
        return [
            DeviceRecord(
                spec=DeviceSpec.model_validate_json(r[1]),
                version=r[0],
                recorded_at=parse_utc(r[2]),
                recorded_by=r[3],
                reason=r[4],
            )
            for r in rows
        ]

    def device(self, device: str) -> DeviceRecord | None:
        history = self.device_history(device)
        return history[-1] if history else None

    def devices(self) -> list[DeviceRecord]:
        ids = [
            r[0]
            for r in self._db.execute(
                "SELECT DISTINCT device FROM device_records ORDER BY device"
            ).fetchall()
        ]
        return [d for d in (self.device(i) for i in ids) if d is not None]

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
        with self._tx():
            current = self.device(spec.id)
            have = current.version if current else 0
            if expected_version is not None and expected_version != have:
                raise RegistryConflict(
                    f"device {spec.id} is at version {have}, not {expected_version}; "
                    "reload it and apply your change again"
                )
            version = next_version(current, spec)
            record = DeviceRecord(
                spec=spec, version=version, recorded_at=at, recorded_by=actor, reason=reason
            )
            ts = to_wire(at)
            self._db.execute(
                "INSERT INTO device_records (device, version, spec, recorded_at, recorded_by, "
                "reason) VALUES (?, ?, ?, ?, ?, ?)",
                (spec.id, version, spec.model_dump_json(), ts, actor, reason),
            )
            self._audit(
                ts,
                actor,
                role,
                "device.create" if version == 1 else "device.update",
                "device",
                spec.id,
                current.spec.model_dump(mode="json") if current else None,
                spec.model_dump(mode="json"),
            )
        return record

    def record_replacement(
        self, event: Replacement, *, actor: str, role: str, at: datetime
    ) -> DeviceRecord:
        """The replacement event and the device's new version (new serial) in one transaction."""
        with self._tx():
            current = self.device(event.device)
            if current is None:
                raise RegistryConflict(f"device {event.device} is not registered")
            if current.spec.serial_number != event.old_serial:
                raise RegistryConflict(
                    f"device {event.device} has meter {current.spec.serial_number}, "
                    f"not {event.old_serial}"
                )
            ts = to_wire(at)
            self._db.execute(
                "INSERT INTO replacements (device, at, body) VALUES (?, ?, ?)",
                (event.device, to_wire(event.at), event.model_dump_json()),
            )
            spec = current.spec.model_copy(update={"serial_number": event.new_serial})
            version = current.version + 1
            self._db.execute(
                "INSERT INTO device_records (device, version, spec, recorded_at, recorded_by, "
                "reason) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    event.device,
                    version,
                    spec.model_dump_json(),
                    ts,
                    actor,
                    f"meter replaced at {to_wire(event.at)}",
                ),
            )
            self._audit(
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
            spec=spec,
            version=version,
            recorded_at=at,
            recorded_by=actor,
            reason=f"meter replaced at {to_wire(event.at)}",
        )

    def replacements(self, device: str) -> list[Replacement]:
        rows = self._db.execute(
            "SELECT body FROM replacements WHERE device = ? ORDER BY at, id", (device,)
        ).fetchall()
        return [Replacement.model_validate_json(r[0]) for r in rows]

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
        with self._tx():
            if self._db.execute("SELECT 1 FROM gateway_keys WHERE kid = ?", (key.kid,)).fetchone():
                raise RegistryConflict(f"key {key.kid} is already enrolled")
            old = self._db.execute(
                "SELECT k.kid FROM gateway_keys k LEFT JOIN key_retirements r ON r.kid = k.kid "
                "WHERE k.gateway = ? AND r.kid IS NULL",
                (gateway,),
            ).fetchall()
            for (kid,) in old:
                self._db.execute(
                    "INSERT INTO key_retirements (kid, retired_at) VALUES (?, ?)", (kid, ts)
                )
            self._db.execute(
                "INSERT INTO gateway_keys (gateway, kid, alg, material, valid_from) "
                "VALUES (?, ?, ?, ?, ?)",
                (gateway, key.kid, key.alg, key.material, ts),
            )
            self._audit(
                ts,
                actor,
                role,
                "gateway.enrol_key",
                "gateway",
                gateway,
                {"retired": [k for (k,) in old]} if old else None,
                {"kid": key.kid},
            )
        return key

    def gateway_keys(self) -> list[EnrolledKey]:
        rows = self._db.execute(
            "SELECT k.gateway, k.kid, k.alg, k.material, k.valid_from, r.retired_at "
            "FROM gateway_keys k LEFT JOIN key_retirements r ON r.kid = k.kid ORDER BY k.valid_from"
        ).fetchall()
        return [
            EnrolledKey(r[0], r[1], r[2], bytes(r[3]), _EPOCH, parse_utc(r[5]) if r[5] else None)
            for r in rows
        ]

    def enrolled_at(self) -> dict[str, datetime]:
        rows = self._db.execute("SELECT kid, valid_from FROM gateway_keys").fetchall()
        return {r[0]: parse_utc(r[1]) for r in rows}

    # --- certificates ----------------------------------------------------------------------
    def add_certificate(self, stored: StoredCertificate, *, role: str) -> StoredCertificate:
        """Append a certificate version; what it supersedes must exist, nothing is replaced."""
        cert = stored.certificate
        with self._tx():
            if self.device(cert.device_id) is None:
                raise RegistryConflict(
                    f"device {cert.device_id} is not registered; register it before its "
                    "certificate (POST /api/v1/registry/devices)"
                )
            exists = self._db.execute(
                "SELECT 1 FROM certificates WHERE certificate_id = ? AND version = ?",
                (cert.certificate_id, cert.version),
            ).fetchone()
            if exists:
                raise RegistryConflict(
                    f"certificate {cert.certificate_id} v{cert.version} exists; certificates "
                    f"are never edited: add v{cert.version + 1} with supersedes"
                )
            old = cert.supersedes
            if old is not None:
                row = self._db.execute(
                    "SELECT device FROM certificates WHERE certificate_id = ? AND version = ?",
                    (old.certificate_id, old.version),
                ).fetchone()
                if row is None:
                    raise RegistryConflict(
                        f"supersedes {old.certificate_id} v{old.version}, which is not recorded"
                    )
            ts = to_wire(stored.recorded_at)
            self._db.execute(
                "INSERT INTO certificates (certificate_id, version, device, body, recorded_at, "
                "recorded_by) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    cert.certificate_id,
                    cert.version,
                    cert.device_id,
                    stored.model_dump_json(),
                    ts,
                    stored.recorded_by,
                ),
            )
            self._audit(
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
        sql = "SELECT body FROM certificates"
        args: list[Any] = []
        if device:
            sql += " WHERE device = ?"
            args.append(device)
        sql += " ORDER BY recorded_at, certificate_id, version"
        return [
            StoredCertificate.model_validate_json(r[0])
            for r in self._db.execute(sql, args).fetchall()
        ]

    def generation(self) -> int:
        """Changes with every registry write (each is audited), in this process or another."""
        row = self._db.execute("SELECT coalesce(max(id), 0) FROM audit_log").fetchone()
        return int(row[0])

    # --- audit ---------------------------------------------------------------------------
    def audit(self, *, entity_id: str | None = None, limit: int = 1000) -> list[AuditEntry]:
        sql = "SELECT id, at, actor, role, action, entity, entity_id, before, after FROM audit_log"
        args: list[Any] = []
        if entity_id:
            sql += " WHERE entity_id = ?"
            args.append(entity_id)
        sql += " ORDER BY id LIMIT ?"
        args.append(limit)
        return [
            AuditEntry(
                id=r[0],
                at=parse_utc(r[1]),
                actor=r[2],
                role=r[3],
                action=r[4],
                entity=r[5],
                entity_id=r[6],
                before=json.loads(r[7]) if r[7] else None,
                after=json.loads(r[8]) if r[8] else None,
            )
            for r in self._db.execute(sql, args).fetchall()
        ]

    def close(self) -> None:
        self._db.close()


class _Tx:
    def __init__(self, db: sqlite3.Connection, lock: threading.Lock) -> None:
        self.db, self.lock = db, lock

    def __enter__(self) -> None:
        self.lock.acquire()
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_: object) -> None:
        try:
            self.db.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self.lock.release()
