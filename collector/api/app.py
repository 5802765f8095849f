"""The FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from collector.api.auth import Authenticator
from collector.api.deps import Services
from collector.api.routes import (
    batches,
    calibration,
    chain,
    devices,
    evidence,
    factors,
    health,
    readings,
)
from collector.api.routes import registry as registry_routes
from collector.metrology.registry_store import RegistryStore
from metertrace import __version__


def create_app(
    services: Services,
    *,
    registry: RegistryStore,
    auth: Authenticator,
    on_calibration_change: Callable[[str], None] | None = None,
    on_start: Callable[[], None] | None = None,
    on_stop: Callable[[], None] | None = None,
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if on_start:
            on_start()
        yield
        if on_stop:
            on_stop()

    app = FastAPI(
        title="MeterTrace collector",
        version=__version__,
        description="Metered, signed energy readings for product carbon footprints.",
        lifespan=lifespan,
    )
    app.state.services = services
    app.state.registry = registry
    app.state.auth = auth
    app.state.on_calibration_change = on_calibration_change
    for r in (
        devices.router,
        readings.router,
        health.router,
        registry_routes.router,
        calibration.router,
        chain.router,
        batches.router,
        evidence.router,
        factors.router,
    ):
        app.include_router(r)
    return app
