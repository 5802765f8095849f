"""`metertrace batches ...` and `metertrace topology ...`: production batches, the plant topology
and the energy per batch, through the collector's API (--url, --token or $METERTRACE_TOKEN; a
plant_engineer key to write) or, with -c collector.yaml, in the collector's database directly."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any


class BatchCommandError(Exception):
    pass


def _collector(module: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise BatchCommandError(
            f"this command needs the 'collector' extra ({exc.name} is not installed): "
            "pip install 'metertrace[collector]'"
        ) from None


def _client(args: argparse.Namespace) -> Any:
    mod = _collector("collector.batches.client")
    if args.config is not None:
        if args.url is not None:
            raise BatchCommandError("give --url (a collector's API) or -c (its database), not both")
        return mod.LocalClient(args.config, actor=args.actor)
    token = args.token or os.environ.get("METERTRACE_TOKEN")
    return mod.HttpClient(args.url or "http://127.0.0.1:8080", token)


def run_with_client(args: argparse.Namespace, work: Any) -> None:
    """Run work(client) and turn what the user can fix into one error line."""
    mod = _collector("collector.batches.client")
    imp = _collector("collector.batches.importer")
    client = _client(args)
    try:
        work(client)
    except (*mod.USER_ERRORS, imp.ImportFailed) as exc:
        raise BatchCommandError(str(exc)) from None
    finally:
        client.close()


def cmd_import(args: argparse.Namespace) -> None:
    imp = _collector("collector.batches.importer")

    def work(client: Any) -> None:
        summary = imp.run_import(
            Path(args.file), client, supersede=args.supersede, skip_bad_rows=args.skip_bad_rows
        )
        print(summary)

    run_with_client(args, work)


def cmd_export(args: argparse.Namespace) -> None:
    mod = _collector("collector.batches.client")
    params = {"tz": args.tz}
    for name in ("period_start", "period_end"):
        if getattr(args, name):
            params[name] = getattr(args, name)

    def work(client: Any) -> None:
        data = client.energy(args.id, params)
        text = mod.energy_csv(data) if args.format == "csv" else json.dumps(data, indent=2) + "\n"
        if args.output:
            Path(args.output).write_text(text, encoding="utf-8")
            print(f"wrote {args.output}", file=sys.stderr)
        else:
            sys.stdout.write(text)

    run_with_client(args, work)


def cmd_topology_set(args: argparse.Namespace) -> None:
    path = Path(args.file)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BatchCommandError(f"{path}: cannot read: {exc.strerror}") from None

    def work(client: Any) -> None:
        out = client.set_topology(text, source=path.name)
        rec = out["record"]
        state = "stored as" if out["stored"] else "unchanged, still"
        print(f"{path}: {state} topology version {rec['version']} (sha256 {rec['digest'][:12]})")

    run_with_client(args, work)


def add_target_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", help="the collector's API (default http://127.0.0.1:8080)")
    p.add_argument("--token", help="API key (default: $METERTRACE_TOKEN)")
    p.add_argument("-c", "--config", type=Path, help="collector.yaml: use its database directly")
    p.add_argument("--actor", default="cli", help="with -c: who records it")


def add_parser(sub: Any) -> None:
    bat = sub.add_parser("batches", help="production batches and their energy")
    acts = bat.add_subparsers(dest="action", required=True, metavar="ACTION")
    i = acts.add_parser("import", help="import batches from CSV (every row checked first)")
    i.add_argument("file", help="CSV: id,product_id,product_name,line,start,end,...")
    i.add_argument("--supersede", action="store_true", help="record changed batches as versions")
    i.add_argument(
        "--skip-bad-rows", action="store_true", help="import the good rows of a file with errors"
    )
    add_target_args(i)
    i.set_defaults(func=cmd_import)
    e = acts.add_parser("export", help="a batch's energy per medium (CSV or JSON)")
    e.add_argument("id", help="batch id")
    e.add_argument("--format", choices=["csv", "json"], default="json")
    e.add_argument("-o", "--output", help="file (default: stdout)")
    e.add_argument("--period-start", help="ISO 8601 (default: the batch's calendar month(s))")
    e.add_argument("--period-end", help="ISO 8601, exclusive")
    e.add_argument("--tz", default="UTC", help="time zone of the calendar months")
    add_target_args(e)
    e.set_defaults(func=cmd_export)

    top = sub.add_parser("topology", help="which meter serves which line, by which rule")
    tacts = top.add_subparsers(dest="action", required=True, metavar="ACTION")
    s = tacts.add_parser("set", help="validate a topology YAML and store it as a new version")
    s.add_argument("file", help="plant-topology.yaml")
    add_target_args(s)
    s.set_defaults(func=cmd_topology_set)
