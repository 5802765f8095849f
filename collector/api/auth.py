"""Callers and their roles. API keys are bearer tokens; the config holds only their SHA-256.

With no keys configured the API is open (development): every caller may do everything, and the
audit log names them "anonymous". The collector refuses to start open on a non-loopback address.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from collector.config import ApiKey
from collector.roles import Action, Role, allowed


@dataclass(frozen=True)
class Caller:
    name: str
    role: Role | None  # None: open mode, every action allowed

    def may(self, action: Action) -> bool:
        return self.role is None or allowed(self.role, action)

    @property
    def role_name(self) -> str:
        return self.role.value if self.role else "open"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> tuple[str, str]:
    """A fresh API token and the hash to put in collector.yaml."""
    token = "mt_" + secrets.token_urlsafe(32)
    return token, token_hash(token)


class Authenticator:
    def __init__(self, keys: list[ApiKey]) -> None:
        self.keys = keys

    def caller(self, authorization: str | None) -> Caller:
        if not self.keys:
            return Caller("anonymous", None)
        if not authorization or not authorization.lower().startswith("bearer "):
            raise HTTPException(
                401, "send 'Authorization: Bearer <api key>'", {"WWW-Authenticate": "Bearer"}
            )
        digest = token_hash(authorization[7:].strip())
        for k in self.keys:
            if hmac.compare_digest(k.token_sha256, digest):
                return Caller(k.name, k.role)
        raise HTTPException(401, "unknown API key", {"WWW-Authenticate": "Bearer"})


def get_caller(request: Request) -> Caller:
    auth: Authenticator = request.app.state.auth
    return auth.caller(request.headers.get("authorization"))


def require(action: Action) -> object:
    def check(caller: Annotated[Caller, Depends(get_caller)]) -> Caller:
        if not caller.may(action):
            raise HTTPException(
                403,
                f"role {caller.role_name} may not {action.value.replace('_', ' ')}; "
                f"ask for a key with a role that may",
            )
        return caller

    return Depends(check)


CanRead = Annotated[Caller, require(Action.READ)]
CanManageDevices = Annotated[Caller, require(Action.MANAGE_DEVICES)]
CanManageCalibration = Annotated[Caller, require(Action.MANAGE_CALIBRATION)]
