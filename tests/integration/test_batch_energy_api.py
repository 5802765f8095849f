"""GET /api/v1/batches/{id}/energy over a real database (SQLite, then PostgreSQL), readings
through the real ingest path.

The plant (hours from T, every counter rising at a constant rate, so every expected figure is
exact by hand):

    line L1: B1 1–3 h (100 kg), B3 5–6 h (50 kg)       line L2: B2 2–4 h (300 kg)
    e-a   dedicated L1, 10 kWh/h, idle policy = the topology's (parametrised)
    e-s   shared L1+L2 by produced quantity, 12 kWh/h, idle -> overhead, calibrated
    st-2  steam, dedicated L2, 0.5 t/h, idle spread by production

Readings run from T to T+8 h; the period is March 2026 (the calendar month of the batches).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.batch_helpers import Plant, batch, hdr, iso, plant, register_meters, steady

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"

TOPOLOGY = """
idle_policy: {policy}
meters:
  e-a: {{resolution: 0.01}}
  e-s: {{resolution: 0.01}}
  st-2: {{resolution: 0.001}}
assignments:
  - {{meter_id: e-a, rule: dedicated, lines: [L1], valid_from: 2026-01-01T00:00:00Z}}
  - meter_id: e-s
    rule: shared
    lines: [L1, L2]
    key: produced_quantity
    idle_policy: overhead
    valid_from: 2026-01-01T00:00:00Z
  - {{meter_id: st-2, rule: dedicated, lines: [L2], idle_policy: spread_by_production,
      valid_from: 2026-01-01T00:00:00Z}}
"""

# e-a's energy per batch and its overhead (10 kWh/h; idle 0-1 h, 3-5 h, 6-8 h = 10 + 20 + 20)
E_A = {
    "next_batch": ({"B1": 30.0, "B3": 30.0}, 20.0),
    "previous_batch": ({"B1": 40.0, "B3": 30.0}, 10.0),
    "overhead": ({"B1": 20.0, "B3": 10.0}, 50.0),
    "spread_by_production": ({"B1": 20.0 + 50 * 100 / 150, "B3": 10.0 + 50 * 50 / 150}, 0.0),
}
# e-s: 1-2 h B1 alone (12), 2-3 h B1 and B2 by q·overlap/duration (50:150 -> 3 and 9),
# 3-4 h B2 alone (12), 5-6 h B3 (12); idle 0-1, 4-5, 6-8 h = 48 -> overhead
E_S = ({"B1": 15.0, "B2": 21.0, "B3": 12.0}, 48.0)


def build(db_url: str, policy: str = "next_batch", wrap_e_a: bool = False) -> Plant:
    p = plant(db_url)
    c = p.client
    register_meters(p)
    if wrap_e_a:  # a 2-digit counter: 70 + 10 kWh/h passes 100 at 3 h; the gateway reports it
        p.ingest("e-a", [(h, (70.0 + 10.0 * h) % 100.0) for h, _ in steady(10.0)])
        p.wrap_event("e-a", 1, 2.5 + 1 / 3, 3.0, 70.0 + 10.0 * (2.5 + 1 / 3), 0.0, 100.0)
    else:
        p.ingest("e-a", steady(10.0))
    p.ingest("e-s", steady(12.0, start=5000.0))
    p.ingest("st-2", steady(0.5, start=20.0), quantity="mass.steam", unit="t")
    r = c.put(
        "/api/v1/topology",
        content=TOPOLOGY.format(policy=policy),
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


def energy(p: Plant, batch_id: str, **params: str) -> dict:
    r = p.client.get(f"/api/v1/batches/{batch_id}/energy", params=params, headers=hdr("engine"))
    assert r.status_code == 200, r.text
    return r.json()


def medium(e: dict, name: str) -> dict:
    (m,) = [m for m in e["media"] if m["medium"] == name]
    return m


def share(m: dict, meter: str) -> dict:
    (c,) = [c for c in m["contributions"] if c["meter_id"] == meter]
    return c


@pytest.mark.parametrize("policy", list(E_A))
def test_idle_energy_follows_the_policy_and_shares_sum_to_each_meter(db_url, policy):
    p = build(db_url, policy)
    per_batch, overhead = E_A[policy]
    got = {b: energy(p, b) for b in ("B1", "B2", "B3")}
    for b, expected in per_batch.items():
        assert share(medium(got[b], "electricity"), "e-a")["quantity"] == pytest.approx(expected)
        assert share(medium(got[b], "electricity"), "e-s")["quantity"] == pytest.approx(E_S[0][b])
        total = expected + E_S[0][b]
        assert medium(got[b], "electricity")["quantity"] == pytest.approx(total)
    assert share(medium(got["B2"], "electricity"), "e-s")["quantity"] == pytest.approx(21.0)
    assert [m["medium"] for m in got["B1"]["media"]] == ["electricity"]  # no steam on L1
    # every meter's shares over all batches plus its overhead is its metered total, exactly
    for meter, batches, want_overhead in (
        ("e-a", ("B1", "B3"), overhead),
        ("e-s", ("B1", "B2", "B3"), E_S[1]),
    ):
        (closure,) = [c for c in got["B1"]["closures"] if c["meter_id"] == meter]
        shares = [share(medium(got[b], "electricity"), meter)["quantity"] for b in batches]
        assert closure["closed"] and closure["residual"] == 0.0
        assert math.fsum([*shares, closure["overhead"]]) == closure["total"]
        assert closure["overhead"] == pytest.approx(want_overhead)
        assert closure["total"] == pytest.approx({"e-a": 80.0, "e-s": 96.0}[meter])


def test_one_batch_in_full(db_url):
    e = energy(build(db_url), "B1")
    assert e["period"] == {
        "start": "2026-03-01T00:00:00Z",
        "end": "2026-04-01T00:00:00Z",
        "basis": "calendar month(s) containing the batch, UTC",
    }
    assert e["complete"] and e["batches_in_period"] == 3 and e["topology_version"] == 1
    el = medium(e, "electricity")
    assert el["unit"] == "kWh" and el["quantity"] == pytest.approx(45.0)
    assert el["coverage"] == 1.0 and el["primary_data_share"] == 1.0
    assert el["per_declared_unit"]["declared_unit"] == "kilogram"
    assert el["per_declared_unit"]["quantity"] == pytest.approx(0.45)
    # GUM by hand: a resolution term per meter (√2·r/√12), e-a's class 1 (a/√3) on its 30 kWh,
    # e-s's certificate (worst point U = 0.2 %, k = 2) on its 15 kWh
    u_res = math.sqrt(2) * 0.01 / math.sqrt(12)
    u_c = math.sqrt(2 * u_res**2 + (30 * 0.01 / math.sqrt(3)) ** 2 + (15 * 0.002 / 2) ** 2)
    assert el["coverage_factor"] == 2.0
    assert el["expanded_uncertainty"] == pytest.approx(2 * u_c, rel=1e-9)
    assert el["per_declared_unit"]["expanded_uncertainty"] == pytest.approx(2 * u_c / 100)
    # calibration: e-a has only its accuracy class, e-s a certificate in force
    assert el["calibration_status"] == "uncalibrated"
    a, s = share(el, "e-a"), share(el, "e-s")
    assert (a["rule"], a["key"], a["idle_policy"]) == ("dedicated", None, "next_batch")
    assert (s["rule"], s["key"], s["idle_policy"]) == ("shared", "produced_quantity", "overhead")
    assert a["calibration"][0]["status"] == "uncalibrated"
    assert "accuracy class 1 %" in a["calibration"][0]["basis"]
    assert s["calibration"][0] | {"basis": ""} == {
        "meter_id": "e-s", "status": "valid", "certificate_id": "SAMPLE-EKL-2026-0142 v1",
        "basis": "",
    }  # fmt: skip
    assert a["share_of_meter"] == pytest.approx(30 / 80) and a["idle_quantity"] == pytest.approx(10)
    text = el["method_text"]
    assert "ISO 14044:2006, 4.3.4.2" in text and "Allocation avoided (subdivision)" in text
    assert "meter e-a is dedicated to line L1" in text and "produced quantity" in text


def test_steam_spread_over_its_line_and_other_media_alongside(db_url):
    e = energy(build(db_url), "B2")
    steam = medium(e, "steam")
    assert steam["unit"] == "t" and steam["quantity"] == pytest.approx(4.0)  # all 8 h of 0.5 t/h
    assert share(steam, "st-2")["idle_quantity"] == pytest.approx(3.0)
    assert "accuracy class 2.5 %" in share(steam, "st-2")["calibration"][0]["basis"]
    assert medium(e, "electricity")["quantity"] == pytest.approx(21.0)


def test_a_wrapped_counter_gives_the_same_energy(db_url):
    e = energy(build(db_url, wrap_e_a=True), "B1")  # the wrap falls in B1's run, at 3 h
    assert share(medium(e, "electricity"), "e-a")["quantity"] == pytest.approx(30.0)
    assert medium(e, "electricity")["coverage"] == 1.0
    (closure,) = [c for c in e["closures"] if c["meter_id"] == "e-a"]
    assert closure["total"] == pytest.approx(80.0) and closure["anomalies"] == []


def test_a_requested_period_cuts_batches_at_its_edges(db_url):
    p = build(db_url)
    e = energy(p, "B1", period_start=iso(0), period_end=iso(2))
    assert e["period"]["basis"] == "requested" and not e["complete"]
    el = medium(e, "electricity")
    assert el["per_declared_unit"] is None  # only part of the batch lies in the period
    # e-a: idle 0-1 h (next batch B1) + 1-2 h; e-s: 1-2 h, B1 alone
    assert share(el, "e-a")["quantity"] == pytest.approx(20.0)
    assert share(el, "e-s")["quantity"] == pytest.approx(12.0)
    r = p.client.get(
        "/api/v1/batches/B1/energy", params={"period_start": iso(0)}, headers=hdr("li")
    )
    assert r.status_code == 422 and "both period_start and period_end" in r.json()["detail"]
    outside = {"period_start": iso(10), "period_end": iso(12)}
    r = p.client.get("/api/v1/batches/B1/energy", params=outside, headers=hdr("li"))
    assert r.status_code == 422 and "outside the period" in r.json()["detail"]


def test_what_is_missing_is_named(db_url):
    p = plant(db_url)
    c = p.client
    c.post("/api/v1/batches", json=batch("B1", "L1", 1, 3, 100), headers=hdr("li"))
    r = c.get("/api/v1/batches/B1/energy", headers=hdr("engine"))
    assert r.status_code == 409 and "metertrace topology set" in r.json()["detail"]
    assert c.get("/api/v1/batches/B9/energy", headers=hdr("engine")).status_code == 404
    yaml = (
        "idle_policy: overhead\nassignments:\n  - {meter_id: ghost, rule: dedicated, "
        "lines: [L1], valid_from: 2026-01-01T00:00:00Z}\n"
    )
    c.put("/api/v1/topology", content=yaml, headers=hdr("li"))
    r = c.get("/api/v1/batches/B1/energy", headers=hdr("engine"))
    assert r.status_code == 409
    assert "meter ghost is not registered" in r.json()["detail"]
    assert "meters.ghost.quantity" in r.json()["detail"]


# --- GET /api/v1/energy: the period allocated once, every batch and every meter's closure ---

MARCH = ("2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z")


def period_energy(p: Plant, start: str, end: str, **params: str) -> dict:
    r = p.client.get(
        "/api/v1/energy",
        params={"period_start": start, "period_end": end, **params},
        headers=hdr("engine"),
    )
    assert r.status_code == 200, r.text
    return r.json()


def assert_as_each_batch_alone(p: Plant, got: dict, start: str, end: str) -> None:
    """Each batch of the period's answer is what /batches/{id}/energy says for that period."""
    for figures in got["batches"]:
        alone = energy(p, figures["batch"]["id"], period_start=start, period_end=end)
        assert figures == {k: alone[k] for k in ("batch", "batch_version", "complete", "media")}
        assert got["period"] == alone["period"]
        assert got["topology_version"] == alone["topology_version"]
        assert got["batches_in_period"] == alone["batches_in_period"]
        assert [c for c in got["closures"] if c in alone["closures"]] == alone["closures"]


@pytest.mark.parametrize(
    ("start", "end", "ids", "complete"),
    [
        (*MARCH, ["B1", "B2", "B3"], [True, True, True]),
        (iso(0), iso(2.5), ["B1", "B2"], [False, False]),  # cuts B1 and B2 at its end
    ],
)
def test_a_period_gives_every_batch_as_alone_and_every_meter_closes(
    db_url, start, end, ids, complete
):
    p = build(db_url)
    got = period_energy(p, start, end)
    assert got["period"] == {"start": start, "end": end, "basis": "requested"}
    assert got["topology_version"] == 1 and got["batches_in_period"] == len(ids)
    assert [b["batch"]["id"] for b in got["batches"]] == ids
    assert [b["complete"] for b in got["batches"]] == complete
    assert "period" not in got["batches"][0] and "closures" not in got["batches"][0]
    assert_as_each_batch_alone(p, got, start, end)
    # every meter of the topology, whether or not a batch used it, closes exactly, and what it
    # allocated is what the batches received
    assert sorted(c["meter_id"] for c in got["closures"]) == ["e-a", "e-s", "st-2"]
    for c in got["closures"]:
        assert c["closed"] and c["residual"] == 0.0
        assert c["allocated"] + c["overhead"] == c["total"]
        received = [
            share(m, c["meter_id"])["quantity"]
            for b in got["batches"]
            for m in b["media"]
            if c["meter_id"] in {x["meter_id"] for x in m["contributions"]}
        ]
        assert math.fsum(received) == c["allocated"]
    if (start, end) == MARCH:  # the hand figures of the plant (next_batch idle policy)
        totals = {c["meter_id"]: (c["total"], c["overhead"]) for c in got["closures"]}
        assert totals["e-a"] == pytest.approx((80.0, 20.0))
        assert totals["e-s"] == pytest.approx((96.0, E_S[1]))


def test_batches_under_different_certificates_keep_their_own_uncertainty(db_url):
    """e-a's certificate comes into force at 04:00 UTC (midnight of its UTC-4 zone): B1 ran
    before it (class limit, not_yet_valid), B3 after (certificate, valid). One allocation of the
    period still gives each batch the calibration of its own run."""
    p = build(db_url)
    cert = json.loads((EXAMPLES / "certificate.json").read_text()) | {
        "certificate_id": "E-A-2026-1",
        "device_id": "e-a",
        "calibration_date": "2026-03-10",
        "issue_date": "2026-03-10",
        "valid_until": "2027-03-09",
        "timezone": "Etc/GMT+4",
    }
    r = p.client.post(
        "/api/v1/calibration/certificates",
        json={"certificate": cert, "corrections": {"energy.active.import": "none"}},
        headers=hdr("wang"),
    )
    assert r.status_code == 201, r.text
    got = period_energy(p, *MARCH)
    status = {
        b["batch"]["id"]: share(medium(b, "electricity"), "e-a")["calibration"][0]["status"]
        for b in got["batches"]
        if b["batch"]["line"] == "L1"
    }
    assert status == {"B1": "not_yet_valid", "B3": "valid"}
    assert_as_each_batch_alone(p, got, *MARCH)


def test_a_period_needs_both_bounds_and_names_what_is_missing(db_url):
    c = plant(db_url).client
    bounds = {"period_start": MARCH[0], "period_end": MARCH[1]}

    def get(params: dict[str, str]) -> tuple[int, str]:
        r = c.get("/api/v1/energy", params=params, headers=hdr("engine"))
        return r.status_code, str(r.json()["detail"])

    for missing in bounds:
        status, detail = get({k: v for k, v in bounds.items() if k != missing})
        assert status == 422 and f"{missing} is required" in detail
    reversed_ = {"period_start": MARCH[1], "period_end": MARCH[0]}
    assert get(reversed_) == (422, "period_end must be after period_start")
    status, detail = get({**bounds, "period_start": "March"})
    assert status == 422 and "period_start" in detail and "ISO 8601" in detail
    assert c.get("/api/v1/energy", params=bounds).status_code == 401  # a key is needed
    status, detail = get(bounds)
    assert status == 409 and "metertrace topology set" in detail
    r = c.put(
        "/api/v1/topology",
        content=TOPOLOGY.format(policy="overhead"),
        headers={**hdr("li"), "Content-Type": "application/yaml"},
    )
    assert r.status_code == 201, r.text
    assert get({**bounds, "topology_version": "9"}) == (404, "topology version 9 does not exist")
