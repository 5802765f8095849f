"""`metertrace calibration ...`: metrology staff manage certificates through the collector's API.

The API key comes from --token or METERTRACE_TOKEN (a key with the metrology role)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any


class ApiError(Exception):
    pass


def _request(
    args: argparse.Namespace,
    method: str,
    path: str,
    *,
    body: bytes | None = None,
    content_type: str = "application/json",
    query: list[tuple[str, str]] | None = None,
) -> Any:
    url = args.url.rstrip("/") + path
    if query:
        url += "?" + urllib.parse.urlencode(query)
    headers = {"Content-Type": content_type}
    token = args.token or os.environ.get("METERTRACE_TOKEN")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        with contextlib.suppress(ValueError):
            detail = json.loads(detail).get("detail", detail)
        raise ApiError(f"{method} {path}: HTTP {exc.code}: {detail}") from None
    except urllib.error.URLError as exc:
        raise ApiError(f"cannot reach the collector at {args.url}: {exc.reason}") from None


def _pairs(values: list[str], what: str) -> list[tuple[str, str]]:
    out = []
    for v in values:
        key, sep, val = v.partition("=")
        if not sep:
            raise ApiError(
                f"--{what} {v!r}: write {what.upper()}=VALUE, e.g. energy.active.import=gain_offset"
            )
        out.append((key, val))
    return out


def cmd_add(args: argparse.Namespace) -> None:
    data = json.loads(Path(args.file).read_text())
    if "certificate" not in data:  # a bare certificate: the corrections come from the flags
        if not args.correction:
            raise ApiError(
                "a bare certificate needs --correction QUANTITY=MODEL (one per quantity)"
            )
        data = {"certificate": data, "corrections": dict(_pairs(args.correction, "correction"))}
    stored = _request(
        args, "POST", "/api/v1/calibration/certificates", body=json.dumps(data).encode()
    )
    _print_stored(stored)


def cmd_import(args: argparse.Namespace) -> None:
    query = [
        ("device_id", args.device),
        ("valid_until", args.valid_until),
        ("timezone", args.timezone),
    ]
    query += [("result", f"{k}={v}") for k, v in _pairs(args.result, "result")]
    query += [("correction", f"{k}={v}") for k, v in _pairs(args.correction, "correction")]
    if args.issue_date:
        query.append(("issue_date", args.issue_date))
    stored = _request(
        args,
        "POST",
        "/api/v1/calibration/certificates/dcc",
        body=Path(args.file).read_bytes(),
        content_type="application/xml",
        query=query,
    )
    _print_stored(stored)


def _print_stored(stored: dict[str, Any]) -> None:
    c = stored["certificate"]
    print(
        f"registered {c['certificate_id']} v{c['version']} for {c['device_id']} "
        f"(valid until {c['valid_until']})"
    )
    for corr in stored["corrections"]:
        print(
            f"  {corr['quantity']:24} {corr['kind']:16} gain {corr['gain']:.6f} "
            f"offset {corr['offset']:.6g} {corr['unit']}"
        )


def cmd_list(args: argparse.Namespace) -> None:
    query = [("device", args.device)] if args.device else None
    rows = _request(args, "GET", "/api/v1/calibration/certificates", query=query)
    for s in rows:
        c = s["certificate"]
        sup = s["certificate"].get("supersedes")
        note = f" supersedes v{sup['version']}" if sup else ""
        print(
            f"{c['certificate_id']:24} v{c['version']:<3} {c['device_id']:16} "
            f"valid until {c['valid_until']}  {c['laboratory']['name']}{note}"
        )
    if not rows:
        print("no certificates", file=sys.stderr)


def cmd_due(args: argparse.Namespace) -> None:
    rows = _request(args, "GET", "/api/v1/calibration/due", query=[("days", str(args.days))])
    for c in rows:
        print(f"{c['valid_until']}  {c['device_id']:16} {c['certificate_id']} v{c['version']}")
    if not rows:
        print(f"nothing falls due within {args.days} days", file=sys.stderr)


def add_parser(sub: Any) -> None:
    cal = sub.add_parser("calibration", help="calibration certificates (metrology role)")
    cal.add_argument("--url", default="http://127.0.0.1:8080", help="the collector's API")
    cal.add_argument("--token", help="API key (default: $METERTRACE_TOKEN)")
    acts = cal.add_subparsers(dest="action", required=True, metavar="ACTION")
    a = acts.add_parser("add", help="register a certificate (JSON) and its corrections")
    a.add_argument("file", help='{"certificate": ..., "corrections": ...} or a bare certificate')
    a.add_argument(
        "--correction",
        action="append",
        default=[],
        help="QUANTITY=none|gain_offset|piecewise_linear (bare certificates)",
    )
    a.set_defaults(func=cmd_add)
    i = acts.add_parser("import", help="import a PTB Digital Calibration Certificate (XML)")
    i.add_argument("file")
    i.add_argument("--device", required=True)
    i.add_argument("--valid-until", required=True, help="from the site's calibration programme")
    i.add_argument(
        "--result",
        action="append",
        required=True,
        help="DCC result id or refType = quantity, e.g. r1=energy.active.import",
    )
    i.add_argument("--correction", action="append", required=True, help="QUANTITY=MODEL")
    i.add_argument("--issue-date")
    i.add_argument("--timezone", default="UTC", help="the zone the certificate's dates are in")
    i.set_defaults(func=cmd_import)
    ls = acts.add_parser("list", help="list certificates, every version")
    ls.add_argument("--device")
    ls.set_defaults(func=cmd_list)
    d = acts.add_parser("due", help="certificates falling due (overdue included)")
    d.add_argument("--days", type=float, default=30)
    d.set_defaults(func=cmd_due)
