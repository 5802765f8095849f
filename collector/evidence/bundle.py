"""The evidence bundle of one batch's energy figures: a zip a third party can check offline.

What the computation used, as stored: every signed gateway message of each meter over the
readings the allocation read (the exact payload bytes, one per line), the meters' events
(counter discontinuities, data losses), the gateways' Ed25519 public keys, the certificates and
device records, the topology and batch records, the emission factor records (built-in and those
users stored), and the computation itself (the JSON of GET /api/v1/batches/{id}/energy).
manifest.json holds the SHA-256 of every other file; manifest.sig is the collector's Ed25519
signature over manifest.json's exact bytes, and collector-ed25519.pub.pem its public key
(collector/evidence/signature.py). `metertrace verify bundle.zip` (collector/evidence/verify.py)
checks it all and recomputes the figures.

Only Ed25519 signatures can be checked by someone else: messages signed with a shared HMAC key
are bundled but the verifier reports them as unverifiable.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from collector.batches.energy_out import BatchEnergyOut
from collector.batches.energy_service import BatchEnergyService
from collector.batches.store import BatchStore
from collector.batches.topology_file import COUNTER_OF_MEDIUM
from collector.evidence.signature import MANIFEST, PUBLIC_KEY, SIGNATURE, sign_manifest
from collector.factors.store import FactorStore
from collector.ledger.counter_readings import CounterStore
from collector.metrology.registry_store import RegistryStore
from metertrace import __version__
from metertrace.ed25519_pem import public_pem
from metertrace.signing import ED25519, Ed25519Signer
from metertrace.timeutil import to_wire, utcnow

FORMAT = "metertrace-evidence/1"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


class EvidenceError(ValueError):
    """The stored data cannot be put into a bundle as it is; the message says why."""


def safe_name(text: str) -> str:
    return _UNSAFE.sub("_", text)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _json(value: Any) -> bytes:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False).encode() + b"\n"


def _lines(payloads: Iterable[bytes], what: str) -> bytes:
    out = []
    for p in payloads:
        if b"\n" in p or b"\r" in p:
            raise EvidenceError(f"{what}: a stored payload contains a line break")
        out.append(p + b"\n")
    return b"".join(out)


def build_bundle(
    batch_id: str,
    *,
    batches: BatchStore,
    registry: RegistryStore,
    signer: Ed25519Signer,
    period_start: datetime | None = None,
    period_end: datetime | None = None,
    tz: str = "UTC",
    topology_version: int | None = None,
) -> bytes:
    """The zip, as bytes, its manifest signed by `signer` (the collector's key). Raises
    the energy service's NotFound/PeriodError/EnergyUnavailable."""
    # One snapshot for the computation and all it is bundled with: the stores' reads join it.
    counters = CounterStore(batches.db)
    with batches.db.read():
        energy = BatchEnergyService(batches, registry, counters).energy(
            batch_id, period_start=period_start, period_end=period_end, tz=tz,
            topology_version=topology_version,
        )  # fmt: skip
        files = _files(counters, energy, batches, registry)
    files[PUBLIC_KEY] = signer.public_pem().encode()
    manifest = {
        "format": FORMAT,
        "batch_id": batch_id,
        "created_at": to_wire(utcnow()),
        "created_by": f"metertrace {__version__}",
        "files": {name: sha256(data) for name, data in sorted(files.items())},
    }
    manifest_bytes = _json(manifest)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(MANIFEST, manifest_bytes)
        z.writestr(SIGNATURE, sign_manifest(manifest_bytes, signer))
        for name, data in sorted(files.items()):
            z.writestr(name, data)
    return buf.getvalue()


def _files(
    counters: CounterStore, energy: BatchEnergyOut, batches: BatchStore, registry: RegistryStore
) -> dict[str, bytes]:
    start, end = energy.period.start, energy.period.end
    topo = batches.topology(energy.topology_version)
    assert topo is not None  # the computation just used it
    files: dict[str, bytes] = {
        "computation.json": _json(energy.model_dump(mode="json")),
        "topology.json": _json(topo.model_dump(mode="json")),
        "batches.json": _json(
            [r.model_dump(mode="json") for r in batches.batches(start=start, end=end)]
        ),
        # the records footprints use: built-in and stored (collector/factors/store.py)
        "factors.json": _json([f.to_json() for f in FactorStore(batches.db).registry().records()]),
        "keys.json": _json(
            [
                {
                    "gateway": k.gateway,
                    "kid": k.kid,
                    "alg": k.alg,
                    "public_key": public_pem(k.material),
                    "retired_at": None if k.retired_at is None else to_wire(k.retired_at),
                }
                for k in registry.gateway_keys()
                if k.alg == ED25519
            ]
        ),
    }
    doc = topo.topology
    meters = sorted(
        {m for a, _, _ in doc.topology.active(start, end) for m in (a.meter_id, *a.sub_meters)}
    )
    devices: dict[str, Any] = {}
    for m in meters:
        record = registry.device(m)
        devices[m] = None if record is None else record.model_dump(mode="json")
        for c in registry.certificates(m):
            cert = c.certificate
            name = f"certificates/{safe_name(cert.certificate_id)}-v{cert.version}.json"
            files[name] = _json(c.model_dump(mode="json"))
        qty = doc.settings(m).quantity
        if qty is None and record is not None:
            qty = COUNTER_OF_MEDIUM[record.spec.medium]
        if qty is None:
            continue  # the computation would have refused such a meter
        sent, raised = counters.evidence(m, qty, start, end)
        files[f"messages/{safe_name(m)}.jsonl"] = _lines(sent, f"messages of {m}")
        files[f"events/{safe_name(m)}.jsonl"] = _lines(raised, f"events of {m}")
    files["devices.json"] = _json(devices)
    return files
