"""PACT Technical Specifications v2.3 host: the footprint exchange API for data recipients.

Mount `collector.footprints.routes.pact_router(source, settings)` into a FastAPI app, or run
`collector.footprints.app.pact_app(...)` on its own (HTTPS) port. Footprints come from a
`FootprintSource`; `sample_source()` has sample data. This package's top level imports no
web framework, so collector.yaml's `pact:` block loads without FastAPI.
"""

from collector.footprints.dispatch import CallbackDispatcher
from collector.footprints.sample import sample_source
from collector.footprints.settings import CallbackTarget, PactClient, PactSettings, PactTls
from collector.footprints.source import FootprintSource, InMemoryFootprintSource
from collector.footprints.tokens import new_client_secret

__all__ = [
    "CallbackDispatcher",
    "CallbackTarget",
    "FootprintSource",
    "InMemoryFootprintSource",
    "PactClient",
    "PactSettings",
    "PactTls",
    "new_client_secret",
    "sample_source",
]
