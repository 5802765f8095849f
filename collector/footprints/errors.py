"""PACT error responses (`{"code", "message"}` with the spec's status) and the route class
that turns errors raised anywhere in a PACT route, its dependencies included, into them."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, Literal

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

Code = Literal["AccessDenied", "BadRequest", "NoSuchFootprint", "NotImplemented", "TokenExpired"]
STATUS: dict[str, int] = {
    "AccessDenied": 403,
    "BadRequest": 400,
    "NoSuchFootprint": 404,
    "NotImplemented": 400,
    "TokenExpired": 401,
}


class PactError(Exception):
    def __init__(self, code: Code, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def response(self) -> JSONResponse:
        headers = {}
        if self.code in ("TokenExpired", "BadRequest"):
            # RFC 6750 3: tell bearer-token clients what went wrong
            headers["WWW-Authenticate"] = 'Bearer realm="pact"'
        return JSONResponse(
            {"code": self.code, "message": self.message}, STATUS[self.code], headers=headers
        )


def oauth_error(status: int, error: str, description: str) -> JSONResponse:
    """RFC 6749 5.2 error body for the token endpoint."""
    headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="pact"'
    return JSONResponse({"error": error, "error_description": description}, status, headers=headers)


def _describe(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()))
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


class PactRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def pact_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except PactError as exc:
                return exc.response()
            except RequestValidationError as exc:
                return PactError("BadRequest", _describe(exc)).response()

        return pact_handler
