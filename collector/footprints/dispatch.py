"""Sending our answers to a data recipient's Action Events endpoint, with retries.

PACT v2.3: the answer goes to the `source` of the request (validated: only the source
registered for the requesting client), and failed deliveries are retried with exponential
backoff for at most 3 days. Pending deliveries live in memory: a restart drops them.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import random
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import quote_plus, urlencode

from collector.footprints.settings import CallbackTarget

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/cloudevents+json; charset=UTF-8"
# A recipient answering one of these may accept the same event later; other 4xx will not.
RETRYABLE_4XX = frozenset({401, 408, 425, 429})


class DeliveryError(Exception):
    def __init__(self, message: str, *, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


def _context(verify: bool) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _open(req: urllib.request.Request, ctx: ssl.SSLContext, timeout: float) -> bytes:
    url = req.full_url
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=ctx) as r:
            body: bytes = r.read()
            return body
    except urllib.error.HTTPError as exc:
        retry = exc.code >= 500 or exc.code in RETRYABLE_4XX
        raise DeliveryError(f"{url} answered HTTP {exc.code}", retry=retry) from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryError(f"{url}: {reason}", retry=True) from exc


def _access_token(target: CallbackTarget, ctx: ssl.SSLContext, timeout: float) -> str:
    assert target.client_id is not None and target.client_secret_file is not None
    secret = target.client_secret_file.read_text(encoding="utf-8").strip()
    basic = base64.b64encode(f"{quote_plus(target.client_id)}:{quote_plus(secret)}".encode())
    req = urllib.request.Request(
        target.auth_url,
        data=urlencode({"grant_type": "client_credentials"}).encode(),
        headers={
            "Authorization": f"Basic {basic.decode()}",
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        },
        method="POST",
    )
    try:
        token = json.loads(_open(req, ctx, timeout))["access_token"]
    except (ValueError, KeyError, TypeError) as exc:
        raise DeliveryError(
            f"{target.auth_url}: no access_token in the answer", retry=True
        ) from exc
    return str(token)


def post_event(target: CallbackTarget, event: dict[str, Any], *, timeout: float = 10.0) -> None:
    """POST one event to the target's /2/events; raises DeliveryError."""
    ctx = _context(target.verify_tls)
    headers = {"Content-Type": CONTENT_TYPE}
    if target.client_id is not None:
        headers["Authorization"] = f"Bearer {_access_token(target, ctx, timeout)}"
    body = json.dumps(event).encode()
    _open(urllib.request.Request(target.events_url, body, headers, method="POST"), ctx, timeout)


class CallbackDispatcher:
    def __init__(
        self,
        *,
        first_retry_s: float = 1.0,
        give_up_s: float = 3 * 86400,
        max_retry_s: float = 3600.0,
        post: Callable[[CallbackTarget, dict[str, Any]], None] = post_event,
    ) -> None:
        self.first_retry_s = first_retry_s
        self.give_up_s = give_up_s
        self.max_retry_s = max_retry_s
        self._post = post
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, target: CallbackTarget, event: dict[str, Any]) -> None:
        """Deliver in the background of the running event loop."""
        task = asyncio.get_running_loop().create_task(self._deliver(target, event))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def drain(self) -> None:
        """Wait for every delivery under way (tests, orderly shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _deliver(self, target: CallbackTarget, event: dict[str, Any]) -> None:
        what = (
            f"{event.get('type', '?').rsplit('.', 2)[-2]} {event.get('id')} to {target.events_url}"
        )
        start = time.monotonic()
        delay = self.first_retry_s
        attempt = 1
        while True:
            try:
                await asyncio.to_thread(self._post, target, event)
                log.info("PACT event %s delivered (attempt %d)", what, attempt)
                return
            except DeliveryError as exc:
                if not exc.retry or time.monotonic() - start + delay > self.give_up_s:
                    log.error("PACT event %s not delivered, giving up: %s", what, exc)
                    return
                log.warning("PACT event %s: %s; retrying in %.0f s", what, exc, delay)
            await asyncio.sleep(delay * (1 + random.random() / 4))
            delay = min(delay * 2, self.max_retry_s)
            attempt += 1
