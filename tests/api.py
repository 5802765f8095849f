"""An in-process collector API over a real database, with API keys for given roles."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI

from collector.api.app import create_app
from collector.api.auth import Authenticator, token_hash
from collector.api.deps import Services
from collector.config import ApiKey
from collector.db.engine import Database
from collector.factors.store import FactorStore
from collector.ledger.store import LedgerStore
from collector.metrology.registry_store import RegistryStore
from collector.roles import Role
from metertrace.signing import Ed25519Signer


def api_app(
    db: Database,
    tokens: dict[str, tuple[str, str]],
    store: LedgerStore | None = None,
    signer: Ed25519Signer | None = None,
) -> FastAPI:
    """tokens: holder name -> (role, token). No MQTT: the app's lifespan is not run.
    signer: the collector's key (app.state.signer, as bootstrap() sets it); a new one if None."""
    keys = [
        ApiKey(name=n, role=Role(r), token_sha256=token_hash(t)) for n, (r, t) in tokens.items()
    ]
    app = create_app(
        Services(store=store or LedgerStore(db), mqtt_connected=lambda: False),
        registry=RegistryStore(db),
        auth=Authenticator(keys),
    )
    app.state.signer = signer or Ed25519Signer("collector", Ed25519PrivateKey.generate())
    app.state.factors = FactorStore(db)  # as bootstrap() does
    return app
