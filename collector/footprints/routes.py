"""PACT v2.3 HTTP actions: Authenticate, ListFootprints, GetFootprint, Events.

Thin: parse, call the domain (filter, events), map errors to the spec's error responses.
(No `from __future__ import annotations` here: FastAPI must resolve the local `Client` alias.)
"""

import json
import logging
import secrets
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from collector.footprints import events as ev
from collector.footprints.dispatch import CallbackDispatcher
from collector.footprints.errors import PactError, PactRoute, oauth_error
from collector.footprints.filter import FilterError, matches, parse_filter
from collector.footprints.model import ProductFootprint
from collector.footprints.settings import PactClient, PactSettings, normalize_source
from collector.footprints.source import FootprintSource
from collector.footprints.tokens import TokenError, TokenIssuer, authenticate, parse_basic
from metertrace.timeutil import utcnow

log = logging.getLogger(__name__)

EVENT_TYPES = ("application/cloudevents+json", "application/json")
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _count(name: str, text: str | None, minimum: int) -> int | None:
    if text is None:
        return None
    if not text.isdigit() or int(text) < minimum:
        raise PactError("BadRequest", f"{name}={text!r}: expected an integer >= {minimum}")
    return int(text)


def _may_see(client: PactClient, pf: ProductFootprint) -> bool:
    return client.product_ids is None or bool(set(client.product_ids) & set(pf.product_ids))


def pact_router(
    source: FootprintSource,
    settings: PactSettings,
    *,
    dispatcher: CallbackDispatcher | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> APIRouter:
    """The PACT actions at /auth/token, /2/footprints, /2/footprints/{id} and /2/events."""
    key = secrets.token_bytes(32)
    if settings.token_key_file is not None:
        key = settings.token_key_file.read_bytes()
        if len(key) < 32:
            raise ValueError(
                f"pact.token_key_file {settings.token_key_file}: {len(key)} bytes, needs at "
                "least 32; make one with: head -c 32 /dev/urandom > FILE"
            )
    issuer = TokenIssuer(key, settings.token_ttl_s, clock)
    clients = {c.client_id: c for c in settings.clients}
    sender = dispatcher or CallbackDispatcher(
        first_retry_s=settings.callback_first_retry_s, give_up_s=settings.callback_give_up_s
    )
    router = APIRouter(tags=["PACT v2.3"], route_class=PactRoute)

    def https_only(request: Request) -> bool:
        return not settings.require_https or request.url.scheme == "https"

    def authenticated(request: Request) -> PactClient:
        if not https_only(request):
            raise PactError("BadRequest", "PACT actions are served over https only")
        header = request.headers.get("authorization", "")
        if header[:7].lower() != "bearer ":
            raise PactError(
                "BadRequest", "send 'Authorization: Bearer <access token from POST /auth/token>'"
            )
        try:
            client_id = issuer.verify(header[7:].strip())
        except TokenError as exc:
            raise PactError(exc.code, str(exc)) from None
        client = clients.get(client_id)
        if client is None:
            raise PactError("BadRequest", f"client {client_id!r} is no longer registered")
        return client

    Client = Annotated[PactClient, Depends(authenticated)]

    @router.post("/auth/token", summary="Action Authenticate (OAuth2 client credentials)")
    async def auth_token(request: Request) -> Response:
        if not https_only(request):
            return oauth_error(400, "invalid_request", "PACT actions are served over https only")
        creds = parse_basic(request.headers.get("authorization"))
        if creds is None:
            return oauth_error(401, "invalid_client", "send client id and secret as HTTP Basic")
        client = authenticate(settings.clients, *creds)
        if client is None:
            return oauth_error(401, "invalid_client", "unknown client id or wrong secret")
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            return oauth_error(
                400, "invalid_request", "send grant_type=client_credentials form-encoded"
            )
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        grant = form.get("grant_type", [])
        if grant != ["client_credentials"]:
            error = "unsupported_grant_type" if grant else "invalid_request"
            return oauth_error(400, error, "grant_type must be client_credentials")
        body = {
            "access_token": issuer.issue(client.client_id),
            "token_type": "Bearer",
            "expires_in": settings.token_ttl_s,
        }
        return JSONResponse(body, headers=NO_STORE)

    @router.get("/2/footprints", summary="Action ListFootprints")
    def list_footprints(
        request: Request,
        client: Client,
        limit: str | None = None,
        offset: str | None = None,
        filter_: Annotated[str | None, Query(alias="$filter")] = None,
    ) -> JSONResponse:
        size = min(_count("limit", limit, 1) or settings.page_size, settings.page_size)
        start = _count("offset", offset, 0) or 0
        try:
            expr = parse_filter(filter_ or "")
        except FilterError as exc:
            raise PactError(exc.code, str(exc)) from None
        found = [pf for pf in source.footprints() if _may_see(client, pf) and matches(expr, pf)]
        headers = {}
        if start + size < len(found):
            # absolute, on the Host the client used, keeping $filter (spec 6.6.1)
            nxt = request.url.include_query_params(limit=size, offset=start + size)
            headers["Link"] = f'<{nxt}>; rel="next"'
        data = [pf.to_json() for pf in found[start : start + size]]
        return JSONResponse({"data": data}, headers=headers)

    @router.get("/2/footprints/{pf_id}", summary="Action GetFootprint")
    def get_footprint(pf_id: str, client: Client) -> JSONResponse:
        try:
            wanted = uuid.UUID(pf_id)
        except ValueError:
            raise PactError("BadRequest", f"{pf_id!r} is not a footprint id (a UUID)") from None
        pf = source.footprint(wanted)
        if pf is None:
            raise PactError("NoSuchFootprint", f"footprint {pf_id} does not exist")
        if not _may_see(client, pf):
            raise PactError("AccessDenied", f"client {client.client_id} may not see {pf_id}")
        return JSONResponse({"data": pf.to_json()})

    @router.post("/2/events", summary="Action Events (CloudEvents, structured mode)")
    async def post_event(request: Request, client: Client) -> Response:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in EVENT_TYPES:
            raise PactError("BadRequest", f"content-type {ctype!r}: send {EVENT_TYPES[0]}")
        try:
            event = ev.parse_event(json.loads(await request.body()))
            if event.type == ev.PUBLISHED:
                ids = ev.published_ids(event)
                log.info("PACT: %s published footprints %s", event.source, [str(i) for i in ids])
                return Response(status_code=200)
            if event.type != ev.CREATED:
                raise PactError(
                    "NotImplemented", "this host sends no footprint requests; it takes no answers"
                )
            req = ev.footprint_request(event)
        except ValueError as exc:  # EventError and json.JSONDecodeError are ValueErrors
            raise PactError("BadRequest", str(exc)) from None
        target = client.callback
        if target is None:
            raise PactError(
                "BadRequest",
                f"client {client.client_id} has no callback registered, so this host cannot "
                "answer its requests; ask the operator to set pact.clients[].callback",
            )
        if normalize_source(req.source) != target.source:
            raise PactError(
                "BadRequest",
                f"event source {req.source!r} is not the one registered for client "
                f"{client.client_id} ({target.source})",
            )
        visible: Sequence[ProductFootprint] = await run_in_threadpool(source.footprints)
        answer = ev.answer(
            req,
            [pf for pf in visible if _may_see(client, pf)],
            source=settings.event_source or str(request.base_url).rstrip("/"),
            now=clock(),
        )
        sender.submit(target, answer)
        return Response(status_code=200)

    return router
