"""The evidence bundle of a batch's energy figures (collector/evidence/bundle.py)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response

from collector.api.auth import CanRead
from collector.api.deps import app_state
from collector.api.routes.batches import (
    PeriodEnd,
    PeriodStart,
    TopologyVersion,
    Tz,
    _batches,
    _time,
    energy_errors,
)
from collector.evidence.bundle import EvidenceError, build_bundle
from metertrace.signing import Ed25519Signer

router = APIRouter(prefix="/api/v1", tags=["batches"])


@router.get(
    "/batches/{batch_id}/evidence",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}}},
)
def batch_evidence(
    batch_id: str,
    request: Request,
    _: CanRead,
    period_start: PeriodStart = None,
    period_end: PeriodEnd = None,
    tz: Tz = "UTC",
    topology_version: TopologyVersion = None,
) -> Response:
    """A zip with the signed messages, events, gateway keys, certificates, device, topology and
    batch records, factors and the energy computation, a manifest of their SHA-256 and the
    collector's Ed25519 signature of it; check it offline with `metertrace verify bundle.zip
    --collector-key collector-ed25519.pub.pem`."""
    signer = app_state(request, "signer", Ed25519Signer, "signing key")
    try:
        with energy_errors():
            data = build_bundle(
                batch_id, batches=_batches(request), registry=request.app.state.registry,
                signer=signer,
                period_start=_time(period_start, "period_start"),
                period_end=_time(period_end, "period_end"), tz=tz,
                topology_version=topology_version,
            )  # fmt: skip
    except EvidenceError as exc:
        raise HTTPException(409, str(exc)) from None
    name = f"evidence-{batch_id}.zip"
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
