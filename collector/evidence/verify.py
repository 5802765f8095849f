"""Checking an evidence bundle offline (`metertrace verify bundle.zip`).

The manifest against the collector's Ed25519 signature (collector/evidence/signature.py: by
the key given with --collector-key, or else, with a warning, by the key the bundle carries);
every file against the manifest's SHA-256; every message and event against its gateway's
Ed25519 signature; every device's hash chain (collector/ledger/chain.py); the batch and
topology records against their digests; and the figures, recomputed from the bundle alone: the
messages, events, device records, certificates, batches and topology are replayed into a
scratch SQLite database and the collector's own computation
(collector/batches/energy_service.py) runs on
it, so the verifier cannot drift from what the collector does. Each finding names the file, the
place in it (line, device and seq, field) and the check that failed.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import SQLAlchemyError

from collector.batches.energy_service import BatchEnergyService
from collector.batches.store import BatchRecord, BatchStore, TopologyRecord, batch_digest
from collector.db import open_database
from collector.db.engine import close_database, sqlite_url
from collector.evidence.signature import (
    MANIFEST,
    SIGNATURE,
    TrustedKey,
    check_manifest_signature,
    load_trusted,
)
from collector.ingest.rules import Accepted, AcceptedEvent
from collector.ledger.chain import Link, verify_chain
from collector.ledger.counter_readings import CounterStore
from collector.ledger.store import LedgerStore
from collector.metrology.certificates import StoredCertificate
from collector.metrology.registry import DeviceRecord
from collector.metrology.registry_store import RegistryStore
from metertrace.signing import EnrolledKey, SigningKeyError, load_public_pem, verify
from metertrace.timeutil import parse_utc
from metertrace.wire import EventMessage, Message, message_hash, signing_bytes

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SHOWN_DIFFS = 20


@dataclass(frozen=True)
class Finding:
    check: str  # manifest signature, manifest, signature, chain, record, recomputation, bundle
    file: str
    where: str
    detail: str

    def __str__(self) -> str:
        at = f" {self.where}" if self.where else ""
        return f"{self.check} FAILED: {self.file}{at}: {self.detail}"


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    warnings: list[str] = field(default_factory=list)  # shown, but the bundle still holds
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def fail(self, check: str, file: str, where: str, detail: str) -> None:
        self.findings.append(Finding(check, file, where, detail))


def verify_bundle(
    path: Path, *, collector_key: Path | None = None, allow_unsigned: bool = False
) -> Report:
    """collector_key: the collector's public key PEM from a trusted source; the manifest must
    be signed by it. allow_unsigned: accept a bundle without manifest.sig, with a warning."""
    report = Report()
    trusted: TrustedKey | None = None
    if collector_key is not None:
        try:
            trusted = load_trusted(collector_key)
        except SigningKeyError as exc:
            report.fail("manifest signature", "--collector-key", "", str(exc))
            return report
    try:
        with zipfile.ZipFile(path) as z:
            files = {n: z.read(n) for n in z.namelist() if not n.endswith("/")}
    except (OSError, zipfile.BadZipFile) as exc:
        report.fail("bundle", str(path), "", f"not a readable zip: {exc}")
        return report
    _signature(files, trusted, allow_unsigned, report)
    _manifest(files, report)
    keys = _keys(files, report)
    events, losses = _events(files, keys, report)
    messages = _messages(files, keys, losses, report)
    _recompute(files, messages, events, report)
    return report


def _signature(
    files: dict[str, bytes], trusted: TrustedKey | None, allow_unsigned: bool, report: Report
) -> None:
    result = check_manifest_signature(files, trusted=trusted, allow_unsigned=allow_unsigned)
    for p in result.problems:
        report.fail("manifest signature", p.file, "", p.detail)
    report.warnings.extend(result.warnings)
    report.notes.extend(result.notes)
    if SIGNATURE in files:
        report.counts["manifest signatures"] += 1


def _manifest(files: dict[str, bytes], report: Report) -> None:
    try:
        listed = json.loads(files[MANIFEST])["files"]
    except (KeyError, ValueError, TypeError) as exc:
        report.fail("manifest", MANIFEST, "", f"missing or unreadable ({exc!r})")
        return
    if not isinstance(listed, dict):
        report.fail("manifest", MANIFEST, "files", "is not a mapping of file name to SHA-256")
        return
    for name, data in sorted(files.items()):
        if name in (MANIFEST, SIGNATURE):  # the signature signs the manifest, so is not in it
            continue
        got = hashlib.sha256(data).hexdigest()
        if name not in listed:
            report.fail("manifest", name, "", "the file is not listed in the manifest")
        elif listed[name] != got:
            report.fail("manifest", name, "", f"SHA-256 is {got}, the manifest says {listed[name]}")
        report.counts["files"] += 1
    for name in sorted(set(listed) - set(files)):
        report.fail("manifest", name, "", "listed in the manifest but missing from the bundle")


def _load(files: dict[str, bytes], name: str, report: Report) -> Any:
    try:
        return json.loads(files[name])
    except KeyError:
        report.fail("bundle", name, "", "missing")
    except ValueError as exc:
        report.fail("bundle", name, "", f"not valid JSON: {exc}")
    return None


def _keys(files: dict[str, bytes], report: Report) -> dict[str, EnrolledKey]:
    out: dict[str, EnrolledKey] = {}
    for i, k in enumerate(_load(files, "keys.json", report) or []):
        try:
            retired = k["retired_at"]
            out[k["kid"]] = EnrolledKey(
                k["gateway"], k["kid"], k["alg"], load_public_pem(k["public_key"]), _EPOCH,
                None if retired is None else parse_utc(retired),
            )  # fmt: skip
        except (KeyError, TypeError, ValueError, SigningKeyError) as exc:
            report.fail("bundle", "keys.json", f"key [{i}]", f"unusable: {exc}")
    return out


def _signed(
    name: str, line: int, raw: dict[str, Any], keys: dict[str, EnrolledKey], report: Report
) -> None:
    what = f"line {line} ({raw['device']} " + (
        f"seq {raw['seq']})" if "seq" in raw else f"event {raw['id']})"
    )
    sig = raw["sig"]
    key = keys.get(sig["kid"])
    report.counts["signatures"] += 1
    if sig["alg"] != "Ed25519":
        report.fail("signature", name, what, f"signed with {sig['alg']} (a shared secret): only "
                    "Ed25519 signatures can be checked by a third party")  # fmt: skip
    elif key is None:
        report.fail("signature", name, what, f"key {sig['kid']} is not in keys.json")
    elif key.gateway != raw["gateway"] or not verify(
        key, signing_bytes(raw), sig["value"], parse_utc(str(raw["ts"]))
    ):
        report.fail("signature", name, what, f"does not verify with key {key.kid}")


def _parsed_lines(
    files: dict[str, bytes], prefix: str, model: type[BaseModel], report: Report
) -> list[tuple[str, int, dict[str, Any], bytes]]:
    out = []
    for name in sorted(n for n in files if n.startswith(prefix)):
        for i, payload in enumerate(files[name].splitlines(), start=1):
            try:
                raw = json.loads(payload)
                model.model_validate(raw)
            except (ValueError, ValidationError) as exc:
                report.fail("bundle", name, f"line {i}", f"not a valid message: {exc}")
                continue
            out.append((name, i, raw, payload))
    return out


def _events(
    files: dict[str, bytes], keys: dict[str, EnrolledKey], report: Report
) -> tuple[list[AcceptedEvent], dict[str, list[tuple[int, int]]]]:
    events, losses = [], defaultdict(list)
    for name, i, raw, payload in _parsed_lines(files, "events/", EventMessage, report):
        _signed(name, i, raw, keys, report)
        e = EventMessage.model_validate(raw)
        loss = e.data_loss
        if loss is not None and loss.first_seq is not None and loss.last_seq is not None:
            losses[e.device].append((loss.first_seq, loss.last_seq))
        events.append(AcceptedEvent(e, message_hash(raw), payload))
        report.counts["events"] += 1
    return events, losses


def _messages(
    files: dict[str, bytes],
    keys: dict[str, EnrolledKey],
    losses: dict[str, list[tuple[int, int]]],
    report: Report,
) -> list[Accepted]:
    out, links, where = [], defaultdict(list), {}
    for name, i, raw, payload in _parsed_lines(files, "messages/", Message, report):
        _signed(name, i, raw, keys, report)
        m = Message.model_validate(raw)
        links[m.device].append(Link(m.seq, message_hash(raw), m.prev, m.ts))
        where[m.device] = name
        out.append(Accepted(m, message_hash(raw), payload))
        report.counts["messages"] += 1
    for device, chain in sorted(links.items()):
        r = verify_chain(device, chain, losses=losses.get(device, ()))
        # the bundle starts where the computation's readings start: what precedes is not in it
        r.gaps = [g for g in r.gaps if not (g.first == 1 and g.last == (r.first_seq or 1) - 1)]
        report.counts["chains"] += 1
        if not r.intact:
            report.fail("chain", where[device], "", r.summary())
    return out


def _recompute(
    files: dict[str, bytes], messages: list[Accepted], events: list[AcceptedEvent],
    report: Report,
) -> None:  # fmt: skip
    data = {n: _load(files, n, report) for n in
            ("computation.json", "topology.json", "batches.json", "devices.json")}  # fmt: skip
    if any(v is None for v in data.values()):
        report.fail("recomputation", "computation.json", "", "not possible: files are missing")
        return
    try:
        claimed = data["computation.json"]
        topo = TopologyRecord.model_validate(data["topology.json"])
        records = [BatchRecord.model_validate(b) for b in data["batches.json"]]
        devices = [DeviceRecord.model_validate(d) for d in data["devices.json"].values() if d]
        certs = sorted(
            (StoredCertificate.model_validate_json(files[n]) for n in files
             if n.startswith("certificates/")),
            key=lambda c: (c.recorded_at, c.certificate.certificate_id, c.certificate.version),
        )  # fmt: skip
        batch_id = claimed["batch"]["id"]
        period = claimed["period"]
    except (ValidationError, KeyError, TypeError, AttributeError) as exc:
        report.fail("recomputation", "bundle", "", f"records unreadable: {exc}")
        return
    _digests(topo, records, claimed, report)
    with tempfile.TemporaryDirectory(prefix="metertrace-verify-") as tmp:
        db = Path(tmp) / "replay.db"
        replay = open_database(sqlite_url(db))
        store, registry, batches = LedgerStore(replay), RegistryStore(replay), BatchStore(replay)
        counters = CounterStore(replay)
        try:
            store.ingest(messages)
            store.ingest_events(events)
            for d in devices:
                registry.record_device(d.spec, actor=d.recorded_by, role="evidence",
                                       at=d.recorded_at)  # fmt: skip
            for c in certs:
                registry.add_certificate(c, role="evidence")
            batches.record([r.batch for r in records], actor="evidence", at=_EPOCH,
                           source="bundle")  # fmt: skip
            batches.set_topology(topo.topology, source_text=topo.source_text, source="bundle",
                                 actor="evidence", at=_EPOCH)  # fmt: skip
            got = BatchEnergyService(batches, registry, counters).energy(
                batch_id, period_start=parse_utc(period["start"]),
                period_end=parse_utc(period["end"]),
            ).model_dump(mode="json")  # fmt: skip
        # ValueError and LookupError include the energy service's errors
        except (ValueError, LookupError, SQLAlchemyError) as exc:
            report.fail("recomputation", "computation.json", "", f"failed: {exc}")
            return
        finally:
            close_database(replay.url)  # before its directory goes
    # bookkeeping the replay renumbers; checked against the records by _digests
    got |= {k: claimed.get(k) for k in ("period", "topology_version", "batch_version")}
    diffs = list(_diff(claimed, got, ""))
    for path, want, have in diffs[:_SHOWN_DIFFS]:
        report.fail("recomputation", "computation.json", path,
                    f"the bundle says {want!r}, recomputed {have!r}")  # fmt: skip
    if len(diffs) > _SHOWN_DIFFS:
        report.fail("recomputation", "computation.json", "",
                    f"and {len(diffs) - _SHOWN_DIFFS} more differences")  # fmt: skip
    report.counts["recomputed batches"] += 1


def _digests(
    topo: TopologyRecord, records: list[BatchRecord], claimed: dict[str, Any], report: Report
) -> None:
    if topo.topology.digest() != topo.digest:
        report.fail("record", "topology.json", "digest", "does not match the topology")
    if claimed.get("topology_version") != topo.version:
        report.fail("record", "computation.json", "topology_version",
                    f"is not topology.json's version {topo.version}")  # fmt: skip
    for i, r in enumerate(records):
        if batch_digest(r.batch) != r.digest:
            report.fail("record", "batches.json", f"[{i}] {r.batch.id}",
                        "digest does not match the batch")  # fmt: skip
        if r.batch.id == claimed["batch"]["id"] and r.version != claimed.get("batch_version"):
            report.fail("record", "computation.json", "batch_version",
                        f"is not batches.json's version {r.version}")  # fmt: skip


def _diff(want: Any, have: Any, path: str) -> Any:
    if isinstance(want, dict) and isinstance(have, dict):
        for k in sorted(set(want) | set(have)):
            yield from _diff(want.get(k), have.get(k), f"{path}.{k}" if path else k)
    elif isinstance(want, list) and isinstance(have, list) and len(want) == len(have):
        for i, (a, b) in enumerate(zip(want, have, strict=True)):
            yield from _diff(a, b, f"{path}[{i}]")
    elif want != have:
        yield path, want, have


def render(report: Report) -> str:
    counts = ", ".join(f"{v} {k}" for k, v in report.counts.items())
    lines = [str(f) for f in report.findings]
    lines += [f"WARNING: {w}" for w in report.warnings] + report.notes
    verdict = "OK" if report.ok else f"FAILED ({len(report.findings)} findings)"
    return "\n".join([*lines, f"checked {counts}: {verdict}"])
