"""What `metertrace batches|topology|factors ...` talk to: a collector over HTTP, or its database
here.

Both clients offer the same operations, so the commands behave the same either way: over
HTTP (--url, --token) they go through the API with its roles; with -c collector.yaml they write
the collector's database directly (on the collector host, like `metertrace gateway enrol`).
"""

from __future__ import annotations

import csv
import io
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from collector.batches.energy_service import BatchEnergyService, EnergyUnavailable, NotFound
from collector.batches.model import Batch
from collector.batches.period import PeriodError
from collector.batches.store import BatchConflict, BatchStore, Conflict, RecordResult
from collector.batches.topology_file import TopologyError, parse_topology
from collector.config import CollectorConfig
from collector.db import open_database
from collector.factors.model import FactorError
from collector.factors.store import FactorStore, NewFactor, parse_input
from collector.ledger.counter_readings import CounterStore
from collector.metrology.registry_store import RegistryStore
from metertrace.config import load_config
from metertrace.timeutil import parse_utc, utcnow


class ClientError(Exception):
    """The collector refused or could not be reached; the message says why."""


class BatchClient(Protocol):
    def record(self, batches: Sequence[Batch], *, supersede: bool, source: str) -> RecordResult: ...

    def energy(self, batch_id: str, params: dict[str, str]) -> dict[str, Any]: ...

    def set_topology(self, text: str, *, source: str) -> dict[str, Any]: ...

    def factors(self, name: str | None) -> list[dict[str, Any]]: ...

    def add_factor(self, body: dict[str, Any]) -> dict[str, Any]: ...

    def close(self) -> None: ...


class HttpClient:
    def __init__(self, url: str, token: str | None, timeout_s: float = 300.0) -> None:
        self.base, self.token, self.timeout_s = url.rstrip("/"), token, timeout_s

    def _call(
        self, method: str, path: str, params: dict[str, str], body: bytes | None, ctype: str
    ) -> tuple[int, Any]:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        req = urllib.request.Request(f"{self.base}{path}{query}", data=body, method=method)
        req.add_header("Accept", "application/json")
        if body is not None:
            req.add_header("Content-Type", ctype)
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return int(resp.status), json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            text = exc.read().decode("utf-8", "replace")
            try:
                return exc.code, json.loads(text)
            except json.JSONDecodeError:
                return exc.code, {"detail": text}
        except (urllib.error.URLError, OSError) as exc:
            raise ClientError(f"cannot reach the collector at {self.base}: {exc}") from None

    @staticmethod
    def _fail(status: int, data: Any) -> ClientError:
        detail = data.get("detail") if isinstance(data, dict) else data
        return ClientError(f"the collector answered {status}: {detail}")

    def record(self, batches: Sequence[Batch], *, supersede: bool, source: str) -> RecordResult:
        body = json.dumps([b.model_dump(mode="json") for b in batches]).encode()
        params = {"supersede": str(supersede).lower(), "source": source}
        status, data = self._call("POST", "/api/v1/batches", params, body, "application/json")
        if status == 409 and isinstance(data.get("detail"), dict):
            raise BatchConflict([Conflict(**c) for c in data["detail"]["conflicts"]])
        if status not in (200, 201):
            raise self._fail(status, data)
        return RecordResult.model_validate(data)

    def energy(self, batch_id: str, params: dict[str, str]) -> dict[str, Any]:
        path = f"/api/v1/batches/{urllib.parse.quote(batch_id, safe='')}/energy"
        status, data = self._call("GET", path, params, None, "")
        if status != 200:
            raise self._fail(status, data)
        return dict(data)

    def set_topology(self, text: str, *, source: str) -> dict[str, Any]:
        status, data = self._call(
            "PUT", "/api/v1/topology", {"source": source}, text.encode(), "application/yaml"
        )
        if status == 422:
            raise TopologyError(str(data.get("detail")))
        if status not in (200, 201):
            raise self._fail(status, data)
        return dict(data)

    def factors(self, name: str | None) -> list[dict[str, Any]]:
        path = "/api/v1/factors" + (f"/{urllib.parse.quote(name, safe='')}" if name else "")
        status, data = self._call("GET", path, {}, None, "")
        if status != 200:
            raise self._fail(status, data)
        return list(data)

    def add_factor(self, body: dict[str, Any]) -> dict[str, Any]:
        payload = json.dumps(body).encode()
        status, data = self._call("POST", "/api/v1/factors", {}, payload, "application/json")
        detail = data.get("detail") if isinstance(data, dict) else None
        if status == 422 and isinstance(detail, list):  # pydantic's: one per field
            raise FactorError("; ".join(
                f"{'.'.join(map(str, e['loc'][1:]))}: {e['msg']}" for e in detail
            ))  # fmt: skip
        if status != 201:
            raise self._fail(status, data)
        return dict(data)

    def close(self) -> None:
        pass


class LocalClient:
    def __init__(self, config_path: Path, actor: str) -> None:
        config = load_config(config_path, CollectorConfig)
        self.actor = actor
        db = open_database(config.database.resolved_url)
        self.batches = BatchStore(db)
        self.registry = RegistryStore(db)
        self.counters = CounterStore(db)
        self.factor_store = FactorStore(db)

    def record(self, batches: Sequence[Batch], *, supersede: bool, source: str) -> RecordResult:
        return self.batches.record(
            batches, actor=self.actor, at=utcnow(), source=source, supersede=supersede
        )

    def energy(self, batch_id: str, params: dict[str, str]) -> dict[str, Any]:
        try:
            start, end = (
                parse_utc(params[k], field=k) if k in params else None
                for k in ("period_start", "period_end")
            )
        except ValueError as exc:
            raise PeriodError(str(exc)) from None
        service = BatchEnergyService(self.batches, self.registry, self.counters)
        out = service.energy(
            batch_id, period_start=start, period_end=end, tz=params.get("tz", "UTC")
        )
        return out.model_dump(mode="json")

    def set_topology(self, text: str, *, source: str) -> dict[str, Any]:
        doc = parse_topology(text, source=source)
        record, stored = self.batches.set_topology(
            doc, source_text=text, source=source, actor=self.actor, at=utcnow()
        )
        return {"stored": stored, "record": record.model_dump(mode="json")}

    def factors(self, name: str | None) -> list[dict[str, Any]]:
        records = self.factor_store.records(name)
        if name and not records:
            raise ClientError(f"no factor named {name!r}: metertrace factors list shows them")
        return [r.model_dump(mode="json") for r in records]

    def add_factor(self, body: dict[str, Any]) -> dict[str, Any]:
        new = parse_input(body)
        if isinstance(new, NewFactor):
            out = self.factor_store.add(new, actor=self.actor, at=utcnow())
        else:
            out = self.factor_store.override(new, actor=self.actor, at=utcnow())
        return out.model_dump(mode="json")

    def close(self) -> None:
        pass  # the stores share the process's Database, which outlives the client


EXPORT_COLUMNS = (
    "batch_id", "batch_version", "product_id", "product_name", "line", "start", "end",
    "produced_quantity", "declared_unit", "period_start", "period_end", "complete",
    "topology_version", "medium", "unit", "quantity", "expanded_uncertainty", "coverage_factor",
    "coverage", "primary_data_share", "estimated_quantity", "calibration_status",
    "per_declared_unit", "expanded_uncertainty_per_declared_unit", "meters", "method_text",
)  # fmt: skip


def energy_csv(data: dict[str, Any]) -> str:
    """One row per medium; `meters` lists each contributing meter as id:rule:share_of_meter."""
    b, period = data["batch"], data["period"]
    out = io.StringIO()
    w = csv.DictWriter(out, EXPORT_COLUMNS, lineterminator="\n")
    w.writeheader()
    for m in data["media"]:
        per = m["per_declared_unit"] or {}
        w.writerow({
            "batch_id": b["id"], "batch_version": data["batch_version"],
            "product_id": b["product_id"], "product_name": b["product_name"], "line": b["line"],
            "start": b["start"], "end": b["end"], "produced_quantity": b["produced_quantity"],
            "declared_unit": b["declared_unit"], "period_start": period["start"],
            "period_end": period["end"], "complete": data["complete"],
            "topology_version": data["topology_version"], "medium": m["medium"],
            "unit": m["unit"], "quantity": m["quantity"],
            "expanded_uncertainty": m["expanded_uncertainty"],
            "coverage_factor": m["coverage_factor"], "coverage": m["coverage"],
            "primary_data_share": m["primary_data_share"],
            "estimated_quantity": m["estimated_quantity"],
            "calibration_status": m["calibration_status"],
            "per_declared_unit": per.get("quantity", ""),
            "expanded_uncertainty_per_declared_unit": per.get("expanded_uncertainty", ""),
            "meters": "; ".join(
                f"{c['meter_id']}:{c['rule']}:{c['share_of_meter']:.6g}" for c in m["contributions"]
            ),
            "method_text": m["method_text"],
        })  # fmt: skip
    return out.getvalue()


# what a user can fix: the CLI prints these as one error line, not a traceback
USER_ERRORS: tuple[type[Exception], ...] = (
    ClientError,
    TopologyError,
    NotFound,
    EnergyUnavailable,
    PeriodError,
    BatchConflict,
    FactorError,  # FactorConflict and FactorInputError too
)
