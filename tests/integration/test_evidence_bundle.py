"""The evidence bundle round trip: GET /api/v1/batches/{id}/evidence over a real database
(SQLite, then PostgreSQL) with Ed25519-signed messages through the real ingest path, then
`metertrace verify` on it; one altered byte anywhere is detected and named, including in the
manifest, which the collector signs: verified against the collector's public key given as the
trust anchor.

The plant is that of test_batch_energy_api (e-a dedicated to L1 with a counter wrap reported by
the gateway, e-s shared by L1 and L2 with a certificate, st-2 steam on L2)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from collector.evidence.signature import PUBLIC_KEY, SIGNATURE, key_sha256, sign_manifest
from collector.evidence.verify import Report, verify_bundle
from collector.ingest.rules import Accepted, AcceptedEvent, GatewayKey, Trust, judge
from edge_agent.counter_quality import CounterNotice
from edge_agent.counters import CounterEvent, EventKind
from edge_agent.messages import MessageSigner
from metertrace.cli import main
from metertrace.signing import Ed25519Signer
from metertrace.wire import GENESIS
from tests.batch_helpers import (
    GATEWAY,
    Plant,
    at,
    batch,
    hdr,
    plant,
    register_meters,
    steady,
)
from tests.databases import ENGINES, Databases

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
TOPOLOGY = """
idle_policy: next_batch
meters:
  e-a: {resolution: 0.01}
  e-s: {resolution: 0.01}
  st-2: {resolution: 0.001}
assignments:
  - {meter_id: e-a, rule: dedicated, lines: [L1], valid_from: 2026-01-01T00:00:00Z}
  - {meter_id: e-s, rule: shared, lines: [L1, L2], key: produced_quantity,
     idle_policy: overhead, valid_from: 2026-01-01T00:00:00Z}
  - {meter_id: st-2, rule: dedicated, lines: [L2], idle_policy: spread_by_production,
     valid_from: 2026-01-01T00:00:00Z}
"""
DEVICES = frozenset({"e-a", "e-s", "st-2"})
COLLECTOR = Ed25519Signer("collector", Ed25519PrivateKey.generate())


class Gateway:
    """An Ed25519 gateway whose messages are judged and stored as the consumer would."""

    def __init__(self, p: Plant) -> None:
        self.p = p
        self.key = Ed25519Signer(GATEWAY, Ed25519PrivateKey.generate())
        r = p.client.post(
            f"/api/v1/registry/gateways/{GATEWAY}/keys",
            json={"public_key_pem": self.key.public_pem()},
            headers=hdr("li"),
        )
        assert r.status_code == 201, r.text
        enrolled = p.client.app.state.registry.gateway_keys()
        self.trust = Trust.of({GATEWAY: GatewayKey(None, DEVICES)}, enrolled)
        self.signer = MessageSigner(GATEWAY, self.key)

    def ingest(self, dev: str, points: list[tuple[float, float]], quantity: str, unit: str) -> None:
        prev, accepted = GENESIS, []
        for seq, (h, value) in enumerate(points, start=1):
            reading = {"quantity": quantity, "value": value, "unit": unit, "quality": "good"}
            topic, payload, prev = self.signer.reading(dev, at(h), [reading], seq, prev)
            judged = judge(topic, payload, self.trust)
            assert isinstance(judged, Accepted)
            accepted.append(judged)
        self.p.store.register_device(dev, GATEWAY, "eastron-sdm630")
        self.p.store.ingest(accepted)

    def wrap(self, dev: str, h_before: float, h: float, before: float, wrap: float) -> None:
        event = CounterEvent(EventKind.WRAP, dev, "energy.active.import", at(h), before, 0.0,
                             at(h_before), at(h), wrap=wrap)  # fmt: skip
        topic, payload = self.signer.counter(1, CounterNotice(event, "kWh", wrap - before))
        judged = judge(topic, payload, self.trust)
        assert isinstance(judged, AcceptedEvent)
        self.p.store.ingest_events([judged])


@pytest.fixture(scope="module", params=ENGINES)
def bundle(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[bytes, dict]]:
    """(the zip of B1, the energy endpoint's JSON of B1), built once per engine."""
    databases = Databases(request.param, tmp_path_factory.mktemp("plant"), "bundle")
    try:
        yield _bundle(plant(databases.new()))
    finally:
        databases.cleanup()


def _bundle(p: Plant) -> tuple[bytes, dict]:
    c = p.client
    c.app.state.signer = COLLECTOR  # the key the tests hold as the trusted one
    register_meters(p)
    gw = Gateway(p)
    gw.ingest("e-a", [(h, (70.0 + 10.0 * h) % 100.0) for h, _ in steady(10.0)],
              "energy.active.import", "kWh")  # fmt: skip
    gw.wrap("e-a", 2.5 + 1 / 3, 3.0, 70.0 + 10.0 * (2.5 + 1 / 3), 100.0)
    gw.ingest("e-s", steady(12.0, start=5000.0), "energy.active.import", "kWh")
    gw.ingest("st-2", steady(0.5, start=20.0), "mass.steam", "t")
    r = c.put("/api/v1/topology", content=TOPOLOGY,
              headers={**hdr("li"), "Content-Type": "application/yaml"})  # fmt: skip
    assert r.status_code == 201, r.text
    batches = [batch("B1", "L1", 1, 3, 100), batch("B2", "L2", 2, 4, 300),
               batch("B3", "L1", 5, 6, 50)]  # fmt: skip
    assert c.post("/api/v1/batches", json=batches, headers=hdr("li")).status_code == 201
    r = c.get("/api/v1/batches/B1/evidence", headers=hdr("engine"))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    energy = c.get("/api/v1/batches/B1/energy", headers=hdr("engine"))
    assert energy.status_code == 200, energy.text
    return r.content, energy.json()


def check(tmp_path: Path, data: bytes, trusted: Ed25519Signer | None = None) -> Report:
    path = tmp_path / "bundle.zip"
    path.write_bytes(data)
    return verify_bundle(path, collector_key=None if trusted is None else pem(tmp_path, trusted))


def pem(tmp_path: Path, key: Ed25519Signer) -> Path:
    path = tmp_path / f"{key.kid.replace(':', '-')}.pub.pem"
    path.write_text(key.public_pem())
    return path


def members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {n: z.read(n) for n in z.namelist()}


def altered(
    data: bytes, name: str, change: Callable[[bytes], bytes], *, fix_manifest: bool = False
) -> bytes:
    files = members(data)
    files[name] = change(files[name])
    assert files[name] != members(data)[name]
    if fix_manifest:
        manifest = json.loads(files["manifest.json"])
        manifest["files"][name] = hashlib.sha256(files[name]).hexdigest()
        files["manifest.json"] = json.dumps(manifest).encode()
    return zipped(files)


def zipped(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for n, d in files.items():
            z.writestr(n, d)
    return buf.getvalue()


def flip_digit_after(marker: bytes, line: int | None = None) -> Callable[[bytes], bytes]:
    """One byte changed: the last digit of the first number after `marker` (on the given
    line), 0 -> 1 ... 9 -> 0, so the text stays valid JSON."""

    def change(text: bytes) -> bytes:
        lines = text.split(b"\n")
        target = lines[line - 1] if line else text
        m = re.compile(re.escape(marker) + rb"\D*\d*(\d)").search(target)
        assert m is not None, marker
        i = m.start(1)
        new = target[:i] + bytes([ord("0") + (target[i] - ord("0") + 1) % 10]) + target[i + 1 :]
        if line:
            lines[line - 1] = new
            return b"\n".join(lines)
        return new

    return change


def test_the_bundle_holds_the_evidence_and_verifies(tmp_path, bundle):
    data, energy = bundle
    files = members(data)
    assert json.loads(files["computation.json"]) == energy
    assert {"manifest.json", "topology.json", "batches.json", "devices.json", "keys.json",
            "factors.json", "messages/e-a.jsonl", "messages/e-s.jsonl", "messages/st-2.jsonl",
            "events/e-a.jsonl"} <= set(files)  # fmt: skip
    assert any(n.startswith("certificates/SAMPLE-EKL-2026-0142") for n in files)
    assert len(files["messages/e-a.jsonl"].splitlines()) == 49  # every 10 min over 8 h
    (key,) = json.loads(files["keys.json"])
    assert key["alg"] == "Ed25519" and "PUBLIC KEY" in key["public_key"]
    report = check(tmp_path, data)
    assert report.ok, [str(f) for f in report.findings]
    assert report.counts["messages"] == 3 * 49 and report.counts["events"] == 1
    assert report.counts["chains"] == 3 and report.counts["recomputed batches"] == 1


def test_the_cli_says_ok_or_names_the_failure(tmp_path, bundle, capsys):
    data, _ = bundle
    good, bad = tmp_path / "good.zip", tmp_path / "bad.zip"
    good.write_bytes(data)
    bad.write_bytes(altered(data, "batches.json", flip_digit_after(b'"produced_quantity"')))
    main(["verify", str(good)])
    assert capsys.readouterr().out.strip().endswith(": OK")
    with pytest.raises(SystemExit) as exit_:
        main(["verify", str(bad)])
    assert exit_.value.code == 1
    out = capsys.readouterr().out
    assert "manifest FAILED: batches.json" in out and "FAILED (" in out


def test_the_manifest_is_signed_by_the_collector_over_its_exact_bytes(bundle):
    data, _ = bundle
    files = members(data)
    sig = json.loads(files[SIGNATURE])
    raw = COLLECTOR.public_raw
    assert sig["kid"] == COLLECTOR.kid and sig["public_key_sha256"] == key_sha256(raw)
    assert files[PUBLIC_KEY].decode() == COLLECTOR.public_pem()
    assert (
        json.loads(files["manifest.json"])["files"][PUBLIC_KEY]
        == hashlib.sha256(files[PUBLIC_KEY]).hexdigest()
    )
    signature = base64.urlsafe_b64decode(sig["signature"] + "=" * (-len(sig["signature"]) % 4))
    Ed25519PublicKey.from_public_bytes(raw).verify(signature, files["manifest.json"])  # raises


def test_the_cli_checks_the_signature_against_the_trusted_collector_key(tmp_path, bundle, capsys):
    data, _ = bundle
    good = tmp_path / "good.zip"
    good.write_bytes(data)
    main(["verify", str(good), "--collector-key", str(pem(tmp_path, COLLECTOR))])
    out = capsys.readouterr().out
    assert out.strip().endswith(": OK") and "WARNING" not in out, out
    assert f"manifest signed by the trusted collector key {pem(tmp_path, COLLECTOR)}" in out
    assert "1 manifest signatures" in out
    main(["verify", str(good)])  # no trust anchor: holds, but says the key is unchecked
    out = capsys.readouterr().out
    assert out.strip().endswith(": OK"), out
    (warning,) = [line for line in out.splitlines() if line.startswith("WARNING:")]
    assert "NOT checked against a trusted one" in warning
    assert key_sha256(COLLECTOR.public_raw) in warning and "--collector-key" in warning


def test_a_wrong_trusted_key_fails_naming_both_fingerprints(tmp_path, bundle, capsys):
    data, _ = bundle
    other = Ed25519Signer("collector", Ed25519PrivateKey.generate())
    good = tmp_path / "good.zip"
    good.write_bytes(data)
    with pytest.raises(SystemExit) as exit_:
        main(["verify", str(good), "--collector-key", str(pem(tmp_path, other))])
    assert exit_.value.code == 1
    out = capsys.readouterr().out
    (line,) = [x for x in out.splitlines() if x.startswith("manifest signature FAILED")]
    assert line.startswith("manifest signature FAILED: manifest.json: signed by the key")
    assert key_sha256(COLLECTOR.public_raw) in line and key_sha256(other.public_raw) in line


def test_a_bundle_re_signed_by_another_key_fails_only_against_the_trusted_key(tmp_path, bundle):
    data, _ = bundle
    forger = Ed25519Signer("collector", Ed25519PrivateKey.generate())
    files = members(altered(data, "batches.json", flip_digit_after(b'"produced_quantity"'),
                            fix_manifest=True))  # fmt: skip
    files[PUBLIC_KEY] = forger.public_pem().encode()
    manifest = json.loads(files["manifest.json"])
    manifest["files"][PUBLIC_KEY] = hashlib.sha256(files[PUBLIC_KEY]).hexdigest()
    files["manifest.json"] = json.dumps(manifest).encode()
    files[SIGNATURE] = sign_manifest(files["manifest.json"], forger)
    forged = zipped(files)
    # self-consistent: only the batch's digest and the recomputation tell, and a warning
    untrusted = check(tmp_path, forged)
    assert {f.check for f in untrusted.findings} == {"record", "recomputation"}
    assert any(key_sha256(forger.public_raw) in w for w in untrusted.warnings)
    trusted = check(tmp_path, forged, trusted=COLLECTOR)
    sig = [f for f in trusted.findings if f.check == "manifest signature"]
    assert [f.file for f in sig] == ["manifest.json"], [str(f) for f in trusted.findings]
    assert key_sha256(forger.public_raw) in sig[0].detail
    assert key_sha256(COLLECTOR.public_raw) in sig[0].detail


def test_one_altered_manifest_byte_fails_the_manifest_signature(tmp_path, bundle):
    data, _ = bundle
    forged = altered(data, "manifest.json", flip_digit_after(b'"created_at"'))
    for trusted in (None, COLLECTOR):
        report = check(tmp_path, forged, trusted=trusted)
        assert [(f.check, f.file) for f in report.findings] == [
            ("manifest signature", "manifest.json")
        ], [str(f) for f in report.findings]
        assert "does not verify over manifest.json's bytes" in report.findings[0].detail


def test_a_rewritten_manifest_fails_the_manifest_signature(tmp_path, bundle):
    data, _ = bundle
    forged = altered(data, "batches.json", flip_digit_after(b'"produced_quantity"'),
                     fix_manifest=True)  # fmt: skip
    report = check(tmp_path, forged, trusted=COLLECTOR)
    found = {(f.check, f.file) for f in report.findings}
    assert ("manifest", "batches.json") not in found  # the hash was rewritten to match
    sig = [f for f in report.findings if f.check == "manifest signature"]
    assert [f.file for f in sig] == ["manifest.json"] and "does not verify" in sig[0].detail
    assert str(sig[0]).startswith("manifest signature FAILED: manifest.json: the Ed25519")


def test_an_unsigned_bundle_fails_unless_allowed(tmp_path, bundle, capsys):
    data, _ = bundle
    files = members(data)
    del files[SIGNATURE]  # as a collector before signed manifests made it
    old = tmp_path / "old.zip"
    old.write_bytes(zipped(files))
    with pytest.raises(SystemExit) as exit_:
        main(["verify", str(old)])
    assert exit_.value.code == 1
    out = capsys.readouterr().out
    assert "manifest signature FAILED: manifest.json: manifest not signed" in out
    assert "--allow-unsigned" in out and "FAILED (1 findings)" in out
    main(["verify", str(old), "--allow-unsigned"])
    out = capsys.readouterr().out
    assert out.strip().endswith(": OK") and "WARNING: manifest not signed" in out, out


def test_an_unreadable_trusted_key_is_named(tmp_path, bundle):
    data, _ = bundle
    path = tmp_path / "bundle.zip"
    path.write_bytes(data)
    not_a_key = tmp_path / "collector.yaml"
    not_a_key.write_text("signing: {}\n")
    report = verify_bundle(path, collector_key=not_a_key)
    (f,) = report.findings
    assert f.check == "manifest signature" and f.file == "--collector-key"
    assert f.detail.startswith(f"{not_a_key}: not a PEM public key")


def test_an_altered_message_is_named_by_manifest_and_signature(tmp_path, bundle):
    data, _ = bundle
    report = check(tmp_path, altered(data, "messages/e-s.jsonl", flip_digit_after(b'"value"', 7)))
    text = [str(f) for f in report.findings]
    assert "manifest FAILED: messages/e-s.jsonl" in text[0]
    assert any(
        f.check == "signature" and f.file == "messages/e-s.jsonl"
        and f.where == "line 7 (e-s seq 7)" for f in report.findings
    ), text  # fmt: skip


def test_an_altered_certificate_is_named(tmp_path, bundle):
    data, _ = bundle
    (name,) = [n for n in members(data) if n.startswith("certificates/")]
    report = check(tmp_path, altered(data, name, flip_digit_after(b'"valid_until"')))
    assert any(f.check == "manifest" and f.file == name for f in report.findings)


def test_an_altered_computation_is_named_and_recomputed(tmp_path, bundle):
    data, _ = bundle
    flip = flip_digit_after(b'"quantity": ')
    for fix in (False, True):
        report = check(tmp_path, altered(data, "computation.json", flip, fix_manifest=fix))
        found = {(f.check, f.file, f.where) for f in report.findings}
        assert (("manifest", "computation.json", "") in found) is not fix
        recomputed = [f for f in report.findings if f.check == "recomputation"]
        assert [f.where for f in recomputed] == ["media[0].contributions[0].quantity"], found


def test_a_message_altered_with_its_manifest_hash_fixed_fails_its_signature(tmp_path, bundle):
    data, _ = bundle
    forged = altered(data, "messages/e-a.jsonl", flip_digit_after(b'"value"', 13),
                     fix_manifest=True)  # fmt: skip
    report = check(tmp_path, forged)
    checks = {f.check for f in report.findings}
    assert "manifest" not in checks
    sig = [f for f in report.findings if f.check == "signature"]
    assert [(f.file, f.where) for f in sig] == [("messages/e-a.jsonl", "line 13 (e-a seq 13)")]
    chain = [f for f in report.findings if f.check == "chain"]
    assert chain and "broken link at seq 14" in chain[0].detail


def test_messages_signed_with_a_shared_hmac_key_are_reported_unverifiable(tmp_path, db_url):
    from tests.integration.test_batch_energy_api import build

    r = build(db_url).client.get("/api/v1/batches/B1/evidence", headers=hdr("engine"))
    assert r.status_code == 200, r.text
    report = check(tmp_path, r.content)
    assert json.loads(members(r.content)["keys.json"]) == []  # no HMAC secret is ever bundled
    sig = [f for f in report.findings if f.check == "signature"]
    assert sig and all("HMAC-SHA256" in f.detail for f in sig)
    assert {f.check for f in report.findings} == {"signature"}  # the rest holds


def test_factors_json_holds_the_stored_records_too_and_the_bundle_still_verifies(tmp_path, db_url):
    from tests.integration.test_batch_energy_api import build

    p = build(db_url)
    override = {"name": "cn-grid-average-2023", "value": 0.5712, "note": "the plant's province",
                "source": "Provincial grid factor, Jiangsu 2023"}  # fmt: skip
    r = p.client.post("/api/v1/factors", json=override, headers=hdr("li"))
    assert r.status_code == 201, r.text
    r = p.client.get("/api/v1/batches/B1/evidence", headers=hdr("engine"))
    assert r.status_code == 200, r.text
    factors = {f["id"]: f for f in json.loads(members(r.content)["factors.json"])}
    stored = factors["cn-grid-average-2023@2"]
    assert (stored["value"], stored["source"], stored["created_by"]) == (
        0.5712, override["source"], "li",
    )  # fmt: skip
    assert stored["supersedes"] == "cn-grid-average-2023@1" in factors  # the built-ins stay
    report = check(tmp_path, r.content)
    assert {f.check for f in report.findings} == {"signature"}  # HMAC only; the rest holds
    assert report.counts["recomputed batches"] == 1
