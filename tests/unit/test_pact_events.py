"""PACT v2.3 CloudEvents: what this host accepts, and the answers it writes."""

from datetime import UTC, datetime

import pytest

from collector.footprints import events as ev
from collector.footprints.sample import CELL_105, product_urn, sample_footprints

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def event(kind: str = ev.CREATED, **changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "specversion": "1.0",
        "id": "run-1/12",
        "source": "https://buyer.example",
        "time": "2026-11-23T11:59:00Z",
        "type": kind,
        "data": {"pf": {"productIds": [product_urn(CELL_105)]}, "comment": "please"},
    }
    body.update(changes)
    return body


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "JSON object"),
        (event(specversion="0.3"), "specversion"),
        (event(type="com.example.Other"), "not a PACT v2 event"),
        (event(id=""), "event id"),
        (event(time="yesterday"), "ISO 8601"),
        (event(time="2026-11-23T11:59:00"), "timezone"),
        (event(data=None), "event data"),
        (event(source=None), "event source"),
    ],
)
def test_malformed_envelopes_are_refused(body, message):
    with pytest.raises(ev.EventError, match=message):
        ev.parse_event(body)


def test_published_needs_footprint_uuids():
    ok = ev.parse_event(
        event(ev.PUBLISHED, data={"pfIds": ["3a6c14a7-4deb-498a-b5ea-16ce2535b576"]})
    )
    assert [str(i) for i in ev.published_ids(ok)] == ["3a6c14a7-4deb-498a-b5ea-16ce2535b576"]
    for bad in (
        ["urn:gtin:4712345060507"],
        [],
        None,
        [42],
        ["urn:uuid:3a6c14a7-4deb-498a-b5ea-16ce2535b576"],
    ):
        with pytest.raises(ev.EventError, match="pfIds"):
            ev.published_ids(ev.parse_event(event(ev.PUBLISHED, data={"pfIds": bad})))


def test_a_request_is_fulfilled_with_every_footprint_of_the_product():
    req = ev.footprint_request(ev.parse_event(event()))
    out = ev.answer(req, sample_footprints(), source="https://us.example", now=NOW)
    assert out["type"] == ev.FULFILLED and out["source"] == "https://us.example"
    assert out["specversion"] == "1.0" and out["time"].startswith("2026-11-23T12:00:00")
    assert out["data"]["requestEventId"] == "run-1/12"
    assert {pf["id"] for pf in out["data"]["pfs"]} == {
        str(pf.id) for pf in sample_footprints() if product_urn(CELL_105) in pf.product_ids
    }
    assert len(out["data"]["pfs"]) == 2


def test_a_request_for_an_unknown_product_is_rejected_not_found():
    body = event(data={"pf": {"productIds": ["urn:pact:null"]}})
    out = ev.answer(
        ev.footprint_request(ev.parse_event(body)),
        sample_footprints(),
        source="https://us.example",
        now=NOW,
    )
    assert out["type"] == ev.REJECTED
    assert out["data"]["requestEventId"] == "run-1/12"
    assert out["data"]["error"]["code"] == "NotFound" and out["data"]["error"]["message"]


def test_a_request_without_product_ids_is_rejected_as_bad_request():
    body = event(data={"pf": {"companyIds": ["urn:x:y"]}})
    out = ev.answer(
        ev.footprint_request(ev.parse_event(body)),
        sample_footprints(),
        source="https://us.example",
        now=NOW,
    )
    assert out["type"] == ev.REJECTED and out["data"]["error"]["code"] == "BadRequest"


@pytest.mark.parametrize("data", [{}, {"pf": "x"}, {"pf": {"productIds": "urn:x:1"}}])
def test_a_request_needs_a_fragment(data):
    with pytest.raises(ev.EventError, match=r"data\.pf"):
        ev.footprint_request(ev.parse_event(event(data=data)))
