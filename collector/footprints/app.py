"""The PACT host as an application of its own, for a separate (HTTPS) port."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from collector.footprints.dispatch import CallbackDispatcher
from collector.footprints.routes import pact_router
from collector.footprints.settings import PactSettings
from collector.footprints.source import FootprintSource
from metertrace import __version__


def pact_app(
    source: FootprintSource, settings: PactSettings, *, dispatcher: CallbackDispatcher | None = None
) -> FastAPI:
    app = FastAPI(
        title="MeterTrace PACT host",
        version=__version__,
        description="PACT Technical Specifications v2.3: product footprints from metered energy.",
    )
    app.include_router(pact_router(source, settings, dispatcher=dispatcher))
    return app


def uvicorn_options(settings: PactSettings) -> dict[str, Any]:
    """host, port and, when configured, the TLS certificate and key for uvicorn.run()."""
    options: dict[str, Any] = {"host": settings.host, "port": settings.port}
    if settings.tls is not None:
        options["ssl_certfile"] = str(settings.tls.certfile)
        options["ssl_keyfile"] = str(settings.tls.keyfile)
    return options
