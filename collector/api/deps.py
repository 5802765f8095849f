"""Dependencies shared by the routers, as Annotated aliases."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import Depends, HTTPException, Request

from collector.ledger.port import Store


@dataclass
class Services:
    store: Store
    mqtt_connected: object  # a zero-argument callable returning bool


T = TypeVar("T")


def app_state(request: Request, name: str, kind: type[T], what: str) -> T:
    """What bootstrap() put on app.state under `name`; a 503 naming it when this app has none
    (an app assembled without that part, as some tests and tools do)."""
    value = getattr(request.app.state, name, None)
    if value is None:
        raise HTTPException(503, f"this collector has no {what} (app.state.{name} unset)")
    if not isinstance(value, kind):
        raise TypeError(f"app.state.{name} is a {type(value).__name__}, not a {kind.__name__}")
    return value


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def get_store(request: Request) -> Store:
    return get_services(request).store


StoreDep = Annotated[Store, Depends(get_store)]
ServicesDep = Annotated[Services, Depends(get_services)]
