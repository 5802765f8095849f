"""Footprints from batches: a real database (SQLite, then PostgreSQL), readings through the real
ingest path.

The plant (hours from T = 2026-03-10, counters rising at constant rates, so figures are exact):

    line L1: B1 1–3 h (100 kg), B3 5–6 h (50 kg)       line L2: B2 2–4 h (300 kg)
    e-a   dedicated L1, 10 kWh/h, idle -> overhead: B1 20, B3 10 kWh
    e-s   shared L1+L2 by produced quantity, 12 kWh/h, idle -> overhead: B1 15, B2 21, B3 12
    st-2  steam, dedicated L2, 0.5 t/h, idle spread: B2 4 t

Product P-L1 (B1, B3): 57 kWh for 150 kg; P-L2 (B2): 21 kWh and 4 t steam for 300 kg.
"""

from __future__ import annotations

import json
import ssl
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from uuid import uuid5

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient

from collector.allocation.conversions import CN_GUIDELINE_WATER_20C, steam_energy_gj
from collector.batches.energy_out import BatchEnergyOut, PeriodOut
from collector.batches.energy_service import PeriodEnergy
from collector.batches.model import Batch
from collector.batches.store import BatchStore
from collector.factors.model import FactorRegistry
from collector.footprints import PactSettings
from collector.footprints.app import pact_app
from collector.footprints.batch_source import (
    NAMESPACE,
    BatchEnergies,
    BatchFootprintSource,
    period_of,
)
from collector.footprints.footprint_settings import FootprintSettings
from collector.footprints.tokens import secret_hash
from collector.ledger.counter_readings import CounterStore
from collector.metrology.registry_store import RegistryStore
from tests.batch_helpers import Plant, batch, hdr, plant, register_meters, steady
from tests.helpers import free_port, metertrace, port_open, stop, tail, wait_for
from tests.integration.test_pact_api import self_signed

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
APRIL = datetime(2026, 4, 5, tzinfo=UTC)  # March is closed and settled (48 h)
TOPOLOGY = """
idle_policy: overhead
meters:
  e-a: {resolution: 0.01}
  e-s: {resolution: 0.01}
  st-2: {resolution: 0.001}
assignments:
  - {meter_id: e-a, rule: dedicated, lines: [L1], valid_from: 2026-01-01T00:00:00Z}
  - {meter_id: e-s, rule: shared, lines: [L1, L2], key: produced_quantity,
     valid_from: 2026-01-01T00:00:00Z}
  - {meter_id: st-2, rule: dedicated, lines: [L2], idle_policy: spread_by_production,
     valid_from: 2026-01-01T00:00:00Z}
"""
SETTINGS = FootprintSettings.model_validate(
    {
        "company_name": "Test Cell Works",
        "company_ids": ["urn:pact:cells.example.com:company-id:1"],
        "product_id_template": "urn:pact:cells.example.com:product-id:{product_id}",
        "product_category_cpc": "46420",
        "geography_country": "CN",
        "refresh_s": 0,
        "steam": {"pressure_mpa": 0.8, "temperature_c": 175.0},
    }
)
GRID = FactorRegistry().current("cn-grid-average-2023").value
HEAT_KG_PER_GJ = 110.0


def build(db_url: str) -> Plant:
    p = plant(db_url)
    c = p.client
    register_meters(p)
    p.ingest("e-a", steady(10.0))
    p.ingest("e-s", steady(12.0, start=5000.0))
    p.ingest("st-2", steady(0.5, start=20.0), quantity="mass.steam", unit="t")
    r = c.put(
        "/api/v1/topology",
        content=TOPOLOGY,
        headers={**hdr("li"), "Content-Type": "application/yaml"},
    )
    assert r.status_code == 201, r.text
    batches = [
        batch("B1", "L1", 1, 3, 100),
        batch("B2", "L2", 2, 4, 300),
        batch("B3", "L1", 5, 6, 50),
    ]
    assert c.post("/api/v1/batches", json=batches, headers=hdr("li")).status_code == 201
    return p


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def source(p: Plant, clock: Clock) -> BatchFootprintSource:
    return BatchFootprintSource(
        BatchStore(p.db), RegistryStore(p.db), CounterStore(p.db), SETTINGS, clock=clock
    )


def by_product(src: BatchFootprintSource) -> dict[str, dict]:
    return {pf.product_ids[0].rsplit(":", 1)[1]: pf.to_json() for pf in src.footprints()}


def test_one_footprint_per_product_and_month_from_the_measured_energy(db_url):
    got = by_product(source(build(db_url), Clock(APRIL)))
    assert set(got) == {"P-L1", "P-L2"}
    l1, l2 = got["P-L1"], got["P-L2"]
    march = ("2026-03-01T00:00:00.000000Z", "2026-04-01T00:00:00.000000Z")
    assert (l1["pcf"]["referencePeriodStart"], l1["pcf"]["referencePeriodEnd"]) == march
    assert l1["id"] == str(uuid5(NAMESPACE, f"P-L1|{march[0]}|{march[1]}|kilogram"))
    assert l1["version"] == 1 and l1["status"] == "Active" and "precedingPfIds" not in l1
    # 57 kWh over 150 kg at the 2023 grid factor
    want = Decimal(repr(57 * GRID / 150)).quantize(Decimal("0.000001"))
    assert Decimal(l1["pcf"]["pCfExcludingBiogenic"]) == want
    assert l1["pcf"]["declaredUnit"] == "kilogram" and l1["pcf"]["unitaryProductAmount"] == "1"
    steam_gj = steam_energy_gj(4.0, 0.8, 175.0 + 273.15, CN_GUIDELINE_WATER_20C).value
    kg = 21 * GRID + steam_gj * HEAT_KG_PER_GJ
    assert float(l2["pcf"]["pCfExcludingBiogenic"]) == pytest.approx(kg / 300, abs=1e-6)
    assert "ending 2026-03-01 – 2026-03-31 (UTC)" in l1["comment"]
    assert "measured energy only" in l1["pcf"]["boundaryProcessesDescription"]
    assert "ISO 14044:2006, 4.3.4.2" in l1["pcf"]["allocationRulesDescription"]
    assert "meter e-a is dedicated to line L1" in l1["pcf"]["allocationRulesDescription"]
    assert "k = 2" in l1["pcf"]["uncertaintyAssessmentDescription"]
    # full coverage, all measured; e-a has only an accuracy class -> reliability 2
    assert l1["pcf"]["primaryDataShare"] == 100.0
    assert l1["pcf"]["dqi"]["coveragePercent"] == 100.0
    assert l1["pcf"]["dqi"]["reliabilityDQR"] == 2.0
    assert l1["pcf"]["dqi"]["geographicalDQR"] == 1.0  # CN factors for a CN footprint


def test_ids_are_stable_and_unchanged_inputs_publish_nothing(db_url):
    p = build(db_url)
    first = source(p, Clock(APRIL))
    ids = {pf.id: pf.version for pf in first.footprints()}
    again = source(p, Clock(datetime(2026, 4, 9, tzinfo=UTC)))  # a restart, later
    assert again.refresh() == []
    assert {pf.id: pf.version for pf in again.footprints()} == ids


def test_an_open_or_unsettled_month_is_not_published(db_url):
    p = build(db_url)
    assert source(p, Clock(datetime(2026, 3, 31, tzinfo=UTC))).footprints() == []
    assert source(p, Clock(datetime(2026, 4, 1, 12, tzinfo=UTC))).footprints() == []


def test_changed_inputs_are_a_new_version_and_a_new_unit_a_new_footprint(db_url):
    p = build(db_url)
    clock = Clock(APRIL)
    src = source(p, clock)
    before = by_product(src)["P-L1"]
    # B3 produced 100 kg, not 50: the same footprint's next version
    r = p.client.post("/api/v1/batches", params={"supersede": "true"},
                      json=batch("B3", "L1", 5, 6, 100), headers=hdr("li"))  # fmt: skip
    assert r.status_code in (200, 201), r.text
    clock.now = datetime(2026, 4, 6, tzinfo=UTC)
    v2 = by_product(src)["P-L1"]
    assert (v2["id"], v2["version"]) == (before["id"], 2)
    assert v2["created"] == before["created"] and v2["updated"] == "2026-04-06T00:00:00.000000Z"
    assert Decimal(v2["pcf"]["pCfExcludingBiogenic"]) < Decimal(
        before["pcf"]["pCfExcludingBiogenic"]
    )
    # now counted in litres, L1 first: the shared meter's key cannot weigh litres against
    # kilograms, so nothing is republished and the reason is kept; the served figures stay
    runs = (("B1", "L1", 1, 3, 100), ("B3", "L1", 5, 6, 100), ("B2", "L2", 2, 4, 300))
    litres = [batch(*run, declared_unit="liter") for run in runs]
    r = p.client.post("/api/v1/batches", params={"supersede": "true"}, json=litres[:2],
                      headers=hdr("li"))  # fmt: skip
    assert r.status_code in (200, 201), r.text
    clock.now = datetime(2026, 4, 7, tzinfo=UTC)
    assert by_product(src)["P-L1"] == v2
    assert any("different declared units" in why for why in src.problems.values())
    # then L2 too: a change of scope -> a new footprint, the old one deprecated
    r = p.client.post("/api/v1/batches", params={"supersede": "true"}, json=litres[2:],
                      headers=hdr("li"))  # fmt: skip
    assert r.status_code in (200, 201), r.text
    clock.now = datetime(2026, 4, 8, tzinfo=UTC)
    l1 = [pf.to_json() for pf in src.footprints() if pf.product_ids[0].endswith("P-L1")]
    assert src.problems == {}
    old, = [pf for pf in l1 if pf["id"] == before["id"]]  # fmt: skip
    fresh, = [pf for pf in l1 if pf["id"] != before["id"]]  # fmt: skip
    assert old["status"] == "Deprecated" and old["version"] == 3
    assert old["pcf"] == v2["pcf"]  # a deprecated version changes only its status
    assert fresh["precedingPfIds"] == [before["id"]] and fresh["pcf"]["declaredUnit"] == "liter"
    assert fresh["version"] == 1 and "updated" not in fresh


def test_a_users_factor_override_publishes_a_new_version_scaled_by_its_ratio(db_url):
    """The override goes through the collector's API; the source, on its own connection, reads
    the factor store at its next refresh."""
    p = build(db_url)
    clock = Clock(APRIL)
    src = source(p, clock)
    before = by_product(src)
    override = {"name": "cn-grid-average-2023", "value": GRID * 1.25, "note": "supplier mix",
                "source": "Supplier X, 2023 electricity disclosure"}  # fmt: skip
    r = p.client.post("/api/v1/factors", json=override, headers=hdr("li"))
    assert r.status_code == 201, r.text
    clock.now = datetime(2026, 4, 6, tzinfo=UTC)
    after = by_product(src)
    l1, l2 = after["P-L1"], after["P-L2"]
    assert (l1["id"], l1["version"]) == (before["P-L1"]["id"], 2)
    assert (l2["id"], l2["version"]) == (before["P-L2"]["id"], 2)
    # P-L1 is electricity only: the footprint scales by the factors' ratio
    pcf = Decimal(l1["pcf"]["pCfExcludingBiogenic"])
    assert pcf == Decimal(repr(57 * GRID * 1.25 / 150)).quantize(Decimal("0.000001"))
    assert float(pcf) / float(before["P-L1"]["pcf"]["pCfExcludingBiogenic"]) == pytest.approx(
        1.25, abs=1e-5
    )
    # P-L2's steam keeps its factor: only the electricity part grows by a quarter
    grown = float(l2["pcf"]["pCfExcludingBiogenic"]) - float(
        before["P-L2"]["pcf"]["pCfExcludingBiogenic"]
    )
    assert grown == pytest.approx(21 * GRID * 0.25 / 300, abs=2e-6)
    cited = [f["name"] for f in l1["pcf"]["secondaryEmissionFactorSources"]]
    assert cited == [f"{override['source']} (cn-grid-average-2023@2, kgCO2/kWh)"]
    assert src.refresh(datetime(2026, 4, 7, tzinfo=UTC)) == []  # nothing changed since


class PerBatch(BatchEnergies):
    """How each batch was computed before: one allocation of its own period per batch."""

    def of(self, batch: Batch) -> BatchEnergyOut:
        return self.service.energy(batch.id, tz=self.tz)


def test_each_period_is_allocated_once_and_the_figures_are_the_per_batch_ones(db_url, monkeypatch):
    """March's batches, B4 running from March into April (its own period: both months) and
    April's B5: three accounting periods for six batches, each allocated once per refresh, and
    every footprint the same as from one allocation per batch."""
    p = plant(db_url)
    c = p.client
    register_meters(p)
    hours = 24 * 23.0  # 10 March to 2 April 00:00, read hourly
    p.ingest("e-a", steady(10.0, hours=hours, step_h=1.0))
    p.ingest("e-s", steady(12.0, start=5000.0, hours=hours, step_h=1.0))
    p.ingest("st-2", steady(0.5, start=20.0, hours=hours, step_h=1.0), quantity="mass.steam",
             unit="t")  # fmt: skip
    r = c.put("/api/v1/topology", content=TOPOLOGY,
              headers={**hdr("li"), "Content-Type": "application/yaml"})  # fmt: skip
    assert r.status_code == 201, r.text
    month_end = 22 * 24.0  # 1 April 00:00, in hours from T (10 March)
    runs = [
        batch("B1", "L1", 1, 3, 100),
        batch("B2", "L2", 2, 4, 300),
        batch("B3", "L1", 5, 6, 50),
        batch("B6", "L2", 24, 26, 200),
        batch("B4", "L1", month_end - 2, month_end + 2, 100),
        batch("B5", "L2", month_end + 3, month_end + 5, 150),
    ]
    assert c.post("/api/v1/batches", json=runs, headers=hdr("li")).status_code == 201
    src = source(p, Clock(datetime(2026, 5, 5, tzinfo=UTC)))
    allocated: list[tuple[datetime, datetime]] = []
    real = src.service.allocate_period

    def counted(period: PeriodOut, *, topology_version: int | None = None) -> PeriodEnergy:
        allocated.append((period.start, period.end))
        return real(period, topology_version=topology_version)

    monkeypatch.setattr(src.service, "allocate_period", counted)
    published = {pf.id: pf for pf in src.footprints()}
    march, april, may = (datetime(2026, m, 1, tzinfo=UTC) for m in (3, 4, 5))
    assert src.problems == {}
    assert sorted(allocated) == [(march, april), (march, may), (april, may)]
    assert len(published) == 4  # two products, two months
    # the same footprints, batch by batch, as before
    months: dict[tuple[str, datetime, datetime], list[Batch]] = defaultdict(list)
    for record in src.batches.batches():
        months[(record.batch.product_id, *period_of(record.batch, src.zone))].append(record.batch)
    per_month = BatchEnergies(src.service, "UTC")
    for (product, start, end), members in months.items():
        for b in members:
            assert per_month.of(b) == src.service.energy(b.id)
        per_batch = src.footprint_of(product, start, end, members, src.clock(),
                                     energies=PerBatch(src.service, "UTC"))  # fmt: skip
        assert published[per_batch.id].pcf == per_batch.pcf
    # B4 over its two months: e-a's 4 h at 10 kWh/h and, L2 idle meanwhile, e-s's 4 h at 12
    b4 = src.service.energy("B4")
    assert (b4.period.start, b4.period.end, b4.complete) == (march, may, True)
    assert [(m.medium, m.quantity) for m in b4.media] == [("electricity", pytest.approx(88.0))]


def test_served_by_the_pact_host(db_url):
    p = build(db_url)
    settings = PactSettings.model_validate(
        {"clients": [{"client_id": "acme", "secret_sha256": secret_hash("acme-secret")}]}
    )
    api = TestClient(pact_app(source(p, Clock(APRIL)), settings), base_url="https://pact.test")
    r = api.post("/auth/token", auth=("acme", "acme-secret"),
                 data={"grant_type": "client_credentials"})  # fmt: skip
    token = {"Authorization": f"Bearer {r.json()['access_token']}"}
    listed = api.get("/2/footprints", headers=token).json()["data"]
    assert len(listed) == 2
    one = api.get(f"/2/footprints/{listed[0]['id']}", headers=token)
    assert one.status_code == 200 and one.json()["data"] == listed[0]


def test_collector_serve_runs_the_pact_host_on_its_own_https_port(tmp_path, db_url, broker, uid):
    """`metertrace collector serve` with a pact: block: a second server, over TLS, real socket."""
    build(db_url)  # the plant's data (March 2026: closed by now)
    cert, key = self_signed(tmp_path)
    api_port, pact_port = free_port(), free_port()
    config = {
        "database": {"url": db_url},
        "mqtt": {"host": "127.0.0.1", "port": broker.port, "client_id": f"col-{uid}"},
        "api": {"port": api_port},
        "pact": {
            "port": pact_port,
            "tls": {"certfile": str(cert), "keyfile": str(key)},
            "clients": [{"client_id": "acme", "secret_sha256": secret_hash("acme-secret")}],
            "footprints": json.loads(SETTINGS.model_dump_json()),
        },
    }
    (tmp_path / "collector.yaml").write_text(yaml.safe_dump(config))
    log = tmp_path / "collector.log"
    proc = metertrace(["collector", "serve", "-c", str(tmp_path / "collector.yaml")], log)
    try:
        wait_for(
            lambda: (port_open(api_port) and port_open(pact_port)) or proc.poll() is not None,
            timeout=30,
            what="collector API and PACT host listening",
        )
        assert proc.poll() is None, tail(log)
        with httpx.Client(
            base_url=f"https://127.0.0.1:{pact_port}",
            verify=ssl.create_default_context(cafile=cert),
        ) as c:
            r = c.post("/auth/token", auth=("acme", "acme-secret"),
                       data={"grant_type": "client_credentials"})  # fmt: skip
            assert r.status_code == 200, r.text
            token = {"Authorization": f"Bearer {r.json()['access_token']}"}
            r = c.get("/2/footprints", headers=token)
            assert r.status_code == 200, r.text
        products = sorted(pf["productIds"][0] for pf in r.json()["data"])
        assert products == [f"urn:pact:cells.example.com:product-id:P-L{i}" for i in (1, 2)]
        with pytest.raises(httpx.HTTPError):  # the TLS port speaks no plain HTTP
            httpx.get(f"http://127.0.0.1:{pact_port}/2/footprints", timeout=5)
    finally:
        stop(proc)
    assert not port_open(api_port) and not port_open(pact_port), tail(log)


def test_the_comment_names_the_month_as_its_time_zone_shows_it(db_url):
    shanghai = SETTINGS.model_copy(update={"time_zone": "Asia/Shanghai"})
    p = build(db_url)
    src = BatchFootprintSource(
        BatchStore(p.db), RegistryStore(p.db), CounterStore(p.db), shanghai, clock=Clock(APRIL)
    )
    (pf, *_) = src.footprints()
    doc = pf.to_json()
    # March in Shanghai starts at 16:00 UTC on the last day of February
    assert doc["pcf"]["referencePeriodStart"] == "2026-02-28T16:00:00.000000Z"
    assert "ending 2026-03-01 – 2026-03-31 (Asia/Shanghai)" in doc["comment"]
