"""The PACT v2.3 host over HTTP: spec-shaped answers, paging, filters, auth errors, events.

In-process (TestClient) for the request/response rules; a real uvicorn over TLS and a real
recipient on a socket for HTTPS-only serving and the asynchronous answers to requests.
"""

import base64
import ipaddress
import json
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fastapi import FastAPI
from fastapi.testclient import TestClient

from collector.footprints import PactSettings, sample_source
from collector.footprints.app import pact_app, uvicorn_options
from collector.footprints.events import CREATED, FULFILLED, PUBLISHED, REJECTED
from collector.footprints.routes import pact_router
from collector.footprints.sample import CELL_105, CELL_280, product_urn
from collector.footprints.tokens import secret_hash
from tests.helpers import free_port, wait_for

pytestmark = pytest.mark.integration

ALL_IDS = {str(pf.id) for pf in sample_source().footprints()}
T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
CT_EVENTS = "application/cloudevents+json; charset=UTF-8"
OUR_BASIC = "Basic " + base64.b64encode(b"us:our-secret").decode()  # our account at the recipient


def settings(**changes: Any) -> PactSettings:
    block: dict[str, Any] = {
        "page_size": 2,
        "token_ttl_s": 600,
        "clients": [
            {"client_id": "acme", "secret_sha256": secret_hash("acme-secret")},
            {
                "client_id": "limited",
                "secret_sha256": secret_hash("limited-secret"),
                "product_ids": [product_urn(CELL_280)],
            },
        ],
    }
    return PactSettings.model_validate({**block, **changes})


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def api(clock: Clock) -> TestClient:
    app = FastAPI()
    app.include_router(pact_router(sample_source(), settings(), clock=clock))
    return TestClient(app, base_url="https://pact.test")


def bearer(api: TestClient, who: str = "acme") -> dict[str, str]:
    r = api.post(
        "/auth/token",
        auth=(who, f"{who}-secret"),
        data={"grant_type": "client_credentials"},
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


# --- Action Authenticate --------------------------------------------------------------------
def test_token_for_valid_client_credentials(api):
    r = api.post(
        "/auth/token", auth=("acme", "acme-secret"), data={"grant_type": "client_credentials"}
    )
    body = r.json()
    assert r.status_code == 200 and body["token_type"] == "Bearer" and body["expires_in"] == 600
    assert body["access_token"] and r.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("auth", "data", "status", "error"),
    [
        (("acme", "wrong"), {"grant_type": "client_credentials"}, 401, "invalid_client"),
        (("nobody", "acme-secret"), {"grant_type": "client_credentials"}, 401, "invalid_client"),
        (None, {"grant_type": "client_credentials"}, 401, "invalid_client"),
        (("acme", "acme-secret"), {"grant_type": "password"}, 400, "unsupported_grant_type"),
        (("acme", "acme-secret"), {}, 400, "invalid_request"),
    ],
)
def test_token_errors_are_oauth_errors(api, auth, data, status, error):
    r = api.post("/auth/token", auth=auth, data=data)
    assert r.status_code == status
    assert r.json()["error"] == error and r.json()["error_description"]
    assert "access_token" not in r.json()


def test_token_needs_a_form_body(api):
    r = api.post(
        "/auth/token", auth=("acme", "acme-secret"), json={"grant_type": "client_credentials"}
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"


def test_nothing_is_served_over_plain_http(clock):
    app = FastAPI()
    app.include_router(pact_router(sample_source(), settings(), clock=clock))
    plain = TestClient(app, base_url="http://pact.test")
    r = plain.post(
        "/auth/token", auth=("acme", "acme-secret"), data={"grant_type": "client_credentials"}
    )
    assert r.status_code == 400 and "access_token" not in r.json()
    tls = TestClient(app, base_url="https://pact.test")
    r = plain.get("/2/footprints", headers=bearer(tls))
    assert r.status_code == 400 and r.json()["code"] == "BadRequest" and "data" not in r.json()


# --- Action ListFootprints / GetFootprint ----------------------------------------------------
def test_list_pages_with_absolute_next_links_on_the_callers_host(api):
    headers = bearer(api)
    url, seen, pages = "/2/footprints?limit=1", [], 0
    while url:
        r = api.get(url, headers=headers)
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        data = r.json()["data"]
        assert len(data) == 1
        seen += [pf["id"] for pf in data]
        pages += 1
        link = r.headers.get("link")
        url = ""
        if link:
            assert link.startswith("<https://pact.test/2/footprints?") and link.endswith(
                '>; rel="next"'
            )
            url = link[1 : link.index(">")]
    assert pages == 3 and len(seen) == 3 and set(seen) == ALL_IDS


def test_a_page_is_never_larger_than_the_host_page_size(api):
    r = api.get("/2/footprints?limit=50", headers=bearer(api))
    assert len(r.json()["data"]) == 2 and 'rel="next"' in r.headers["link"]
    assert "limit=2" in r.headers["link"] and "offset=2" in r.headers["link"]
    last = api.get(r.headers["link"][1:].split(">")[0], headers=bearer(api))
    assert len(last.json()["data"]) == 1 and "link" not in last.headers


def test_the_next_link_keeps_the_filter(api):
    headers = bearer(api)
    flt = "pcf/geographyCountry eq 'CN'"
    r = api.get("/2/footprints", params={"$filter": flt, "limit": 2}, headers=headers)
    nxt = r.headers["link"][1:].split(">")[0]
    assert "24filter" in nxt or "$filter" in nxt
    assert len(api.get(nxt, headers=headers).json()["data"]) == 1


def test_filter_by_created(api):
    r = api.get(
        "/2/footprints",
        params={"$filter": "created ge '2026-01-19T08:00:00Z'"},
        headers=bearer(api),
    )
    created = [pf["created"] for pf in r.json()["data"]]
    assert r.status_code == 200 and len(created) == 2
    assert all(c >= "2026-01-19T08:00:00" for c in created)


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"$filter": "companyName eq 'x'"}, "NotImplemented"),
        ({"$filter": "created ge 'soon'"}, "BadRequest"),
        ({"limit": "0"}, "BadRequest"),
        ({"limit": "ten"}, "BadRequest"),
        ({"offset": "-1"}, "BadRequest"),
    ],
)
def test_bad_list_requests(api, params, code):
    r = api.get("/2/footprints", params=params, headers=bearer(api))
    assert r.status_code == 400 and r.json()["code"] == code and r.json()["message"]


def test_get_footprint(api):
    pf_id = sorted(ALL_IDS)[0]
    r = api.get(f"/2/footprints/{pf_id}", headers=bearer(api))
    assert r.status_code == 200 and r.json()["data"]["id"] == pf_id
    assert r.json()["data"]["pcf"]["pCfExcludingBiogenic"]


def test_get_unknown_or_malformed_footprint(api):
    r = api.get("/2/footprints/00000000-0000-0000-0000-000000000000", headers=bearer(api))
    assert r.status_code == 404 and r.json()["code"] == "NoSuchFootprint"
    r = api.get("/2/footprints/not-an-id", headers=bearer(api))
    assert r.status_code == 400 and r.json()["code"] == "BadRequest"


def test_a_client_sees_only_the_products_it_was_granted(api):
    headers = bearer(api, "limited")
    data = api.get("/2/footprints", headers=headers).json()["data"]
    assert [pf["productIds"] for pf in data] == [[product_urn(CELL_280)]]
    other = next(
        pf.id for pf in sample_source().footprints() if product_urn(CELL_105) in pf.product_ids
    )
    r = api.get(f"/2/footprints/{other}", headers=headers)
    assert r.status_code == 403 and r.json()["code"] == "AccessDenied"


# --- bearer tokens -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer very-invalid-access-token"}, {"Authorization": "Basic YTpi"}],
)
def test_missing_or_invalid_tokens_are_bad_requests(api, headers):
    for path in ("/2/footprints", f"/2/footprints/{sorted(ALL_IDS)[0]}"):
        r = api.get(path, headers=headers)
        assert r.status_code == 400 and r.json()["code"] == "BadRequest" and "data" not in r.json()
    r = api.post("/2/events", headers={**headers, "Content-Type": CT_EVENTS}, json={})
    assert r.status_code == 400 and r.json()["code"] == "BadRequest"


def test_an_expired_token_is_token_expired(api, clock):
    headers = bearer(api)
    clock.now = T0 + timedelta(seconds=601)
    r = api.get("/2/footprints", headers=headers)
    assert r.status_code == 401 and r.json()["code"] == "TokenExpired"


# --- Action Events (synchronous part) ----------------------------------------------------------
def cloud_event(kind: str, data: dict[str, Any], source: str = "https://buyer.example") -> str:
    return json.dumps(
        {
            "specversion": "1.0",
            "id": "e-1",
            "source": source,
            "time": "2026-11-23T12:00:00Z",
            "type": kind,
            "data": data,
        }
    )


def test_published_event_is_accepted_with_an_empty_body(api):
    body = cloud_event(PUBLISHED, {"pfIds": ["3a6c14a7-4deb-498a-b5ea-16ce2535b576"]})
    r = api.post("/2/events", content=body, headers={**bearer(api), "Content-Type": CT_EVENTS})
    assert r.status_code == 200 and r.content == b""


@pytest.mark.parametrize(
    ("body", "ctype", "code"),
    [
        (cloud_event(PUBLISHED, {"pfIds": ["urn:gtin:4712345060507"]}), CT_EVENTS, "BadRequest"),
        (
            cloud_event(PUBLISHED, {"pfIds": ["3a6c14a7-4deb-498a-b5ea-16ce2535b576"]}),
            "text/plain",
            "BadRequest",
        ),
        ("{not json", CT_EVENTS, "BadRequest"),
        (cloud_event(CREATED, {"pf": {"productIds": ["urn:x:1"]}}), CT_EVENTS, "BadRequest"),
        (cloud_event(FULFILLED, {"requestEventId": "x", "pfs": []}), CT_EVENTS, "NotImplemented"),
    ],
)
def test_events_this_host_does_not_accept(api, body, ctype, code):
    r = api.post("/2/events", content=body, headers={**bearer(api), "Content-Type": ctype})
    assert r.status_code == 400 and r.json()["code"] == code and r.json()["message"]


def test_a_request_from_a_client_without_a_registered_callback_is_refused(api):
    body = cloud_event(CREATED, {"pf": {"productIds": [product_urn(CELL_105)]}})
    r = api.post("/2/events", content=body, headers={**bearer(api), "Content-Type": CT_EVENTS})
    assert r.status_code == 400 and "no callback registered" in r.json()["message"]


# --- real sockets: TLS, and answers delivered to the recipient ---------------------------------
def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


class Recipient:
    """A data recipient's host: a token endpoint and an events endpoint that records."""

    def __init__(self, fail_first: int = 0) -> None:
        self.events: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.fail_first = fail_first
        self.attempts = 0
        recipient = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                if self.path == "/auth/token":
                    ok = self.headers.get("authorization") == OUR_BASIC
                    self.answer(
                        200 if ok else 401,
                        {"access_token": "rcv-token"} if ok else {"error": "invalid_client"},
                    )
                elif self.path == "/2/events":
                    recipient.attempts += 1
                    if recipient.attempts <= recipient.fail_first:
                        self.answer(503, {})
                        return
                    recipient.events.append((dict(self.headers), json.loads(body)))
                    self.answer(200, None)
                else:
                    self.answer(404, {})

            def answer(self, status: int, body: object) -> None:
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recipients() -> Iterator[Callable[[int], Recipient]]:
    started: list[Recipient] = []

    def start(fail_first: int = 0) -> Recipient:
        started.append(Recipient(fail_first))
        return started[-1]

    yield start
    for r in started:
        r.close()


@contextmanager
def serve(app: FastAPI, pact: PactSettings) -> Iterator[str]:
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", **uvicorn_options(pact)))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, timeout=10, what="the PACT host")
        yield f"https://127.0.0.1:{pact.port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    return self_signed(tmp_path)


def host_settings(
    tmp_path: Path, tls_files: tuple[Path, Path], recipient: Recipient
) -> PactSettings:
    (tmp_path / "recipient.secret").write_text("our-secret\n")
    s = settings(
        port=free_port(),
        tls={"certfile": str(tls_files[0]), "keyfile": str(tls_files[1])},
        callback_first_retry_s=0.05,
    )
    clients = [c.model_dump() for c in s.clients]
    clients[0]["callback"] = {
        "source": recipient.base,
        "client_id": "us",
        "client_secret_file": str(tmp_path / "recipient.secret"),
    }
    return PactSettings.model_validate({**s.model_dump(), "clients": clients})


def https_client(cert: Path) -> httpx.Client:
    return httpx.Client(verify=ssl.create_default_context(cafile=str(cert)), timeout=5)


def get_token(http: httpx.Client, base: str) -> str:
    form = {"grant_type": "client_credentials"}
    r = http.post(f"{base}/auth/token", auth=("acme", "acme-secret"), data=form)
    return str(r.json()["access_token"])


def test_served_over_tls_only(tmp_path, tls_files, recipients):
    pact = host_settings(tmp_path, tls_files, recipients(0))
    with serve(pact_app(sample_source(), pact), pact) as base, https_client(tls_files[0]) as http:
        token = get_token(http, base)
        r = http.get(f"{base}/2/footprints", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200 and len(r.json()["data"]) == 2
        plain = base.replace("https:", "http:")
        with pytest.raises(httpx.TransportError):
            httpx.post(
                f"{plain}/auth/token",
                auth=("acme", "acme-secret"),
                data={"grant_type": "client_credentials"},
                timeout=5,
            )


def test_requests_are_answered_at_the_registered_recipient(tmp_path, tls_files, recipients):
    recipient = recipients(0)
    pact = host_settings(tmp_path, tls_files, recipient)
    with serve(pact_app(sample_source(), pact), pact) as base, https_client(tls_files[0]) as http:
        token = get_token(http, base)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": CT_EVENTS}
        for pids in ([product_urn(CELL_105)], ["urn:pact:null"]):
            body = cloud_event(CREATED, {"pf": {"productIds": pids}}, source=recipient.base)
            r = http.post(f"{base}/2/events", content=body, headers=headers)
            assert r.status_code == 200 and r.content == b""
        wrong = cloud_event(CREATED, {"pf": {"productIds": pids}}, source="https://evil.example")
        r = http.post(f"{base}/2/events", content=wrong, headers=headers)
        assert r.status_code == 400 and "not the one registered" in r.json()["message"]
        wait_for(lambda: len(recipient.events) == 2, timeout=10, what="two answers")
    by_type = {e["type"]: (h, e) for h, e in recipient.events}
    h, fulfilled = by_type[FULFILLED]
    assert h["Authorization"] == "Bearer rcv-token" and h["Content-Type"] == CT_EVENTS
    assert fulfilled["data"]["requestEventId"] == "e-1" and fulfilled["source"] == base
    assert all(product_urn(CELL_105) in pf["productIds"] for pf in fulfilled["data"]["pfs"])
    assert len(fulfilled["data"]["pfs"]) == 2
    _, rejected = by_type[REJECTED]
    assert rejected["data"]["error"]["code"] == "NotFound"


def test_a_failed_delivery_is_retried(tmp_path, tls_files, recipients):
    recipient = recipients(2)
    pact = host_settings(tmp_path, tls_files, recipient)
    with serve(pact_app(sample_source(), pact), pact) as base, https_client(tls_files[0]) as http:
        token = get_token(http, base)
        body = cloud_event(
            CREATED, {"pf": {"productIds": [product_urn(CELL_280)]}}, source=recipient.base
        )
        r = http.post(
            f"{base}/2/events",
            content=body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": CT_EVENTS},
        )
        assert r.status_code == 200
        wait_for(lambda: recipient.events, timeout=10, what="the answer after two 503s")
    assert recipient.attempts == 3 and recipient.events[0][1]["type"] == FULFILLED


def test_hosts_sharing_a_token_key_accept_each_others_tokens(tmp_path):
    key = tmp_path / "token.key"
    key.write_bytes(bytes(range(32)))
    first, second = (
        TestClient(
            pact_app(sample_source(), settings(token_key_file=str(key))), base_url="https://h"
        )
        for _ in range(2)
    )
    r = second.get("/2/footprints", headers=bearer(first))
    assert r.status_code == 200 and len(r.json()["data"]) == 2
    key.write_bytes(b"short")
    with pytest.raises(ValueError, match="at least 32"):
        pact_router(sample_source(), settings(token_key_file=str(key)))
