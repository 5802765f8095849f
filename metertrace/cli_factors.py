"""`metertrace factors ...`: emission factor records, built-in and users', never edited.

Through the collector's API (--url, --token or $METERTRACE_TOKEN; a plant_engineer or admin key
to add) or, with -c collector.yaml, in the collector's database directly, like `metertrace
batches`. A record is added as the next version of its name (a YAML file holding the whole
record) or as an override of a name's current record (--override NAME --value --source --note).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from pydantic import RootModel

from .cli_batches import BatchCommandError, add_target_args, run_with_client
from .config import load_config


class _Mapping(RootModel[dict[str, Any]]):
    """A record file as it is: the collector validates it (the same way over HTTP and -c)."""


def cmd_list(args: argparse.Namespace) -> None:
    def work(client: Any) -> None:
        records = client.factors(args.name)
        if args.json:
            print(json.dumps(records, indent=2, ensure_ascii=False))
            return
        for r in records:
            mark = "*" if r["current"] else " "
            who = "built-in" if r["builtin"] else f"{r['created_by']} {r['recorded_at']}"
            print(f"{mark} {r['id']:<44} {r['value']:<10.6g} {r['unit']:<11} {who}")
            print(f"    source: {r['source']}" + (f"; note: {r['note']}" if r["note"] else ""))
        print("(* current: the version footprints use)")

    run_with_client(args, work)


def _body(args: argparse.Namespace) -> dict[str, Any]:
    override = args.override is not None
    if (args.file is None) == (not override):
        raise BatchCommandError("give a record file, or --override NAME with --value, --source "
                                "and --note, not both")  # fmt: skip
    if override:
        missing = [f"--{n}" for n in ("value", "source", "note") if getattr(args, n) is None]
        if missing:
            raise BatchCommandError(f"--override needs {', '.join(missing)}")
        body = {"name": args.override, "value": args.value, "source": args.source,
                "note": args.note}  # fmt: skip
        if args.uncertainty_rel is not None:
            body["uncertainty_rel"] = args.uncertainty_rel
        return body
    data = load_config(Path(args.file), _Mapping).root  # its errors name the file
    # YAML reads `published: 2025-06-01` as a date; the record holds it as text
    return dict(json.loads(json.dumps(data, default=str)))


def cmd_add(args: argparse.Namespace) -> None:
    body = _body(args)

    def work(client: Any) -> None:
        r = client.add_factor(body)
        replaces = f", superseding {r['supersedes']}" if r["supersedes"] else ""
        print(f"stored {r['id']}: {r['value']:g} {r['unit']}{replaces}")

    run_with_client(args, work)


def add_parser(sub: Any) -> None:
    fac = sub.add_parser("factors", help="emission factor records (versioned, cited)")
    acts = fac.add_subparsers(dest="action", required=True, metavar="ACTION")
    ls = acts.add_parser("list", help="every record, or every version of one name")
    ls.add_argument("--name", help="one name's versions")
    ls.add_argument("--json", action="store_true", help="the whole records as JSON")
    add_target_args(ls)
    ls.set_defaults(func=cmd_list)
    add = acts.add_parser(
        "add", help="store a record (YAML file) or override a name's current record"
    )
    add.add_argument("file", nargs="?", help="YAML: one whole record (name, version, value, ...)")
    add.add_argument("--override", metavar="NAME", help="a new version of NAME's current record")
    add.add_argument("--value", type=float, help="with --override: in the record's unit")
    add.add_argument("--source", help="with --override: the citation (issuing body, document)")
    add.add_argument("--note", help="with --override: why this value")
    add.add_argument(
        "--uncertainty-rel", type=float, help="with --override: relative standard uncertainty"
    )
    add_target_args(add)
    add.set_defaults(func=cmd_add)
