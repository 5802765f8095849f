"""The `metertrace` command. Subcommands import their package lazily, so a gateway with only
the agent extra installed can run `metertrace agent ...` without the collector's dependencies."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from . import __version__, cli_batches, cli_calibration, cli_db, cli_factors

_EXTRA_OF = {
    "pymodbus": "agent",
    "serial": "agent",
    "paho": "agent",
    "apscheduler": "agent",
    "fastapi": "collector",
    "uvicorn": "collector",
    "numpy": "collector",
    "influxdb_client": "collector",
    "sqlalchemy": "collector",
    "alembic": "collector",
    "psycopg": "collector",
}


class CliError(Exception):
    pass


def _need(module: str, extra: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing in _EXTRA_OF:
            raise CliError(
                f"this command needs the '{extra}' extra ({missing} is not installed): "
                f"pip install 'metertrace[{extra}]'"
            ) from None
        raise


def _run_until_signal(main: Callable[[asyncio.Event], Any]) -> None:
    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    asyncio.run(runner())


# --- agent -------------------------------------------------------------------------------
def cmd_agent_run(args: argparse.Namespace) -> None:
    from metertrace.config import load_config

    runner = _need("edge_agent.runner", "agent")
    config_mod = _need("edge_agent.config", "agent")
    config = load_config(args.config, config_mod.AgentConfig)
    agent = runner.Agent(config, cycles=args.cycles)
    _run_until_signal(agent.run)


def cmd_agent_check(args: argparse.Namespace) -> None:
    from metertrace.config import load_config

    check = _need("edge_agent.check", "agent")
    config_mod = _need("edge_agent.config", "agent")
    config = load_config(args.config, config_mod.AgentConfig)
    if not asyncio.run(check.check(config, sys.stdout)):
        raise SystemExit(1)


# --- collector ---------------------------------------------------------------------------
def cmd_collector_serve(args: argparse.Namespace) -> None:
    from metertrace.config import load_config

    config_mod = _need("collector.config", "collector")
    bootstrap = _need("collector.bootstrap", "collector")
    uvicorn = _need("uvicorn", "collector")
    config = load_config(args.config, config_mod.CollectorConfig)
    collector = bootstrap.bootstrap(config)
    level = args.log_level.lower()
    if config.pact is None:
        uvicorn.run(collector.app, host=config.api.host, port=config.api.port, log_level=level)
        return
    # The PACT host on a port of its own (HTTPS when configured), next to the collector API.
    pact_app = _need("collector.footprints.app", "collector")
    db = _need("collector.db", "collector").open_database(config.database.resolved_url)
    source = _need("collector.footprints.batch_source", "collector").open_batch_source(
        db, config.pact.footprints
    )
    app = pact_app.pact_app(source, config.pact)
    api = uvicorn.Config(collector.app, host=config.api.host, port=config.api.port, log_level=level)
    pact = uvicorn.Config(app, log_level=level, **pact_app.uvicorn_options(config.pact))
    servers = [uvicorn.Server(api), uvicorn.Server(pact)]

    async def serve_both() -> None:
        # Each server handles the signal it catches; when one stops, the other follows.
        tasks = [asyncio.ensure_future(s.serve()) for s in servers]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for s in servers:
            s.should_exit = True
        await asyncio.gather(*tasks)

    asyncio.run(serve_both())


# --- simulators --------------------------------------------------------------------------
def cmd_sim_run(args: argparse.Namespace) -> None:
    scenario_mod = _need("simulators.scenario", "sim")
    runner = _need("simulators.runner", "sim")
    scenario = scenario_mod.load_scenario(args.config)
    _run_until_signal(lambda stop: runner.run(scenario, stop, args.ready_file))


def cmd_sim_batches(args: argparse.Namespace) -> None:
    scenario_mod = _need("simulators.scenario", "sim")
    scenario = scenario_mod.load_scenario(args.config)
    plant = scenario_mod.build_plant(scenario, scenario.resolved_epoch())
    if plant is None:
        raise CliError(f"{args.config}: the scenario has no plant section, so it has no batches")
    text = plant.batches_csv()
    if args.output is None:
        print(text, end="")
    else:
        args.output.write_text(text)
        print(f"wrote {len(plant.batches)} batches to {args.output}", file=sys.stderr)


# --- profiles and keys -------------------------------------------------------------------
def cmd_profiles_list(args: argparse.Namespace) -> None:
    from device_profiles import load_catalogue

    for p in load_catalogue(args.profile_dir).values():
        flag = "" if p.verified else "  [synthetic/unverified map]"
        print(f"{p.id:34} {p.protocol:7} {p.medium:12} {p.manufacturer} {p.model}{flag}")


def cmd_profiles_show(args: argparse.Namespace) -> None:
    from device_profiles import find_profile
    from device_profiles.catalogue_doc import render_profile

    print(render_profile(find_profile(args.name, args.profile_dir)), end="")


def cmd_profiles_validate(args: argparse.Namespace) -> None:
    from device_profiles import ProfileError, load_profile

    failed = 0
    for f in args.files:
        try:
            p = load_profile(f)
        except ProfileError as exc:
            failed += 1
            print(f"{f}: error: {exc.message}", file=sys.stderr)
            continue
        print(f"{f}: ok ({p.id}, {len(p.registers)} registers)")
    if failed:
        raise SystemExit(f"metertrace: {failed} of {len(args.files)} profiles are invalid")


def cmd_profiles_doc(args: argparse.Namespace) -> None:
    from device_profiles import load_catalogue
    from device_profiles.catalogue_doc import render_catalogue

    print(render_catalogue(load_catalogue(args.profile_dir)), end="")


def cmd_keygen(args: argparse.Namespace) -> None:
    from .keys import create_key

    create_key(Path(args.path))
    print(
        f"wrote a new 32-byte gateway key to {args.path} (mode 600); give the same file "
        "to the collector's gateways[].key_file"
    )


def cmd_collector_pubkey(args: argparse.Namespace) -> None:
    from .config import load_config
    from .signing import load_or_create_ed25519, public_key_path

    config_mod = _need("collector.config", "collector")
    config = load_config(args.config, config_mod.CollectorConfig)
    signer, _ = load_or_create_ed25519("collector", config.signing.key_file)
    pub = public_key_path(config.signing.key_file)
    pub.write_text(signer.public_pem())
    print(signer.public_pem(), end="")
    print(
        f"# written to {pub}; gateways name it in calibration.collector_public_key_file",
        file=sys.stderr,
    )


def cmd_gateway_keygen(args: argparse.Namespace) -> None:
    from .signing import create_gateway_key, public_key_path

    signer = create_gateway_key(args.gateway, Path(args.path))
    print(
        f"wrote {args.path} (private, mode 600) and {public_key_path(Path(args.path))} "
        f"(public) for {signer.kid}"
    )


def cmd_gateway_enrol(args: argparse.Namespace) -> None:
    """Enrol directly in the collector's database (on the collector host)."""
    from .config import load_config
    from .signing import load_public_pem
    from .timeutil import utcnow

    config_mod = _need("collector.config", "collector")
    reg_mod = _need("collector.metrology.registry_store", "collector")
    db_mod = _need("collector.db", "collector")
    config = load_config(args.config, config_mod.CollectorConfig)
    registry = reg_mod.RegistryStore(db_mod.open_database(config.database.resolved_url))
    try:
        key = registry.enrol_key(
            args.gateway,
            load_public_pem(Path(args.public_key).read_text()),
            actor=args.actor,
            role="plant_engineer",
            at=utcnow(),
        )
    except ValueError as exc:
        raise CliError(str(exc)) from None
    print(
        f"enrolled {key.kid} for gateway {args.gateway}; a running collector picks it up "
        "with the first message signed by it"
    )


def cmd_apikey_new(args: argparse.Namespace) -> None:
    auth = _need("collector.api.auth", "collector")
    token, digest = auth.new_token()
    print(f"API key for {args.name} ({args.role}); give it to them, it is not stored anywhere:")
    print(f"  {token}")
    print("add to collector.yaml under api.keys:")
    print(f"  - {{name: {args.name}, role: {args.role}, token_sha256: {digest}}}")


def cmd_wire_schema(args: argparse.Namespace) -> None:
    import json

    from .wire import json_schema

    print(json.dumps(json_schema(), indent=2, ensure_ascii=False))


def cmd_verify(args: argparse.Namespace) -> None:
    verifier = _need("collector.evidence.verify", "collector")
    report = verifier.verify_bundle(
        Path(args.bundle), collector_key=args.collector_key, allow_unsigned=args.allow_unsigned
    )
    print(verifier.render(report))
    if not report.ok:
        raise SystemExit(1)


def cmd_demo(args: argparse.Namespace) -> None:
    demo = _need("metertrace.demo", "all")
    demo.run_demo(Path(args.workdir), api_port=args.api_port, broker=args.broker)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="metertrace",
        description="Metered, traceable energy data: meters -> signed readings -> collector.",
    )
    p.add_argument("--version", action="version", version=f"metertrace {__version__}")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    agent = sub.add_parser("agent", help="the edge agent on a gateway").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    a = agent.add_parser("run", help="poll meters and publish signed readings")
    a.add_argument("-c", "--config", required=True, type=Path, help="gateway.yaml")
    a.add_argument(
        "--cycles",
        type=int,
        default=None,
        help="stop after this many polls per device, once all are acknowledged",
    )
    a.set_defaults(func=cmd_agent_run)
    a = agent.add_parser("check", help="validate the config, poll each device once, print")
    a.add_argument("-c", "--config", required=True, type=Path, help="gateway.yaml")
    a.set_defaults(func=cmd_agent_check)

    col = sub.add_parser("collector", help="the central collector").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    c = col.add_parser("serve", help="ingest from MQTT and serve the HTTP API")
    c.add_argument("-c", "--config", required=True, type=Path, help="collector.yaml")
    c.set_defaults(func=cmd_collector_serve)
    cp = col.add_parser("pubkey", help="print the collector's public key (for the gateways)")
    cp.add_argument("-c", "--config", required=True, type=Path, help="collector.yaml")
    cp.set_defaults(func=cmd_collector_pubkey)
    cli_db.add_parser(col)

    sim = sub.add_parser("sim", help="simulated meters").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    s = sim.add_parser("run", help="serve the meters of a scenario until Ctrl-C")
    s.add_argument("-c", "--config", required=True, type=Path, help="scenario.yaml")
    s.add_argument("--ready-file", help="write 'name port' lines here once listening")
    s.set_defaults(func=cmd_sim_run)
    s = sim.add_parser(
        "batches", help="the plant's batch schedule as CSV, for metertrace batches import"
    )
    s.add_argument("-c", "--config", required=True, type=Path, help="scenario.yaml with a plant")
    s.add_argument("-o", "--output", type=Path, help="write the CSV here (default: stdout)")
    s.set_defaults(func=cmd_sim_batches)

    prof = sub.add_parser("profiles", help="the meter catalogue").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    for name, func, hlp in (
        ("list", cmd_profiles_list, "list known profiles"),
        ("show", cmd_profiles_show, "show one profile's registers"),
        ("doc", cmd_profiles_doc, "print the device catalogue (docs/device-catalogue.md)"),
    ):
        pp = prof.add_parser(name, help=hlp)
        if name == "show":
            pp.add_argument("name", help="profile id or path to a YAML file")
        pp.add_argument("--profile-dir", action="append", default=[], type=Path)
        pp.set_defaults(func=func)
    pv = prof.add_parser("validate", help="validate profile YAML files")
    pv.add_argument("files", nargs="+", type=Path)
    pv.set_defaults(func=cmd_profiles_validate)

    k = sub.add_parser("keygen", help="create a shared HMAC key file (signing.alg hmac-sha256)")
    k.add_argument("path")
    k.set_defaults(func=cmd_keygen)

    gwp = sub.add_parser("gateway", help="gateway signing keys").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    gk = gwp.add_parser("keygen", help="create a gateway's Ed25519 key pair")
    gk.add_argument("--gateway", required=True)
    gk.add_argument("path", help="private key file; the public key goes beside it (.pub.pem)")
    gk.set_defaults(func=cmd_gateway_keygen)
    ge = gwp.add_parser("enrol", help="enrol a gateway's public key at the collector")
    ge.add_argument("-c", "--config", required=True, type=Path, help="collector.yaml")
    ge.add_argument("--gateway", required=True)
    ge.add_argument("--public-key", required=True, help="the gateway's .pub.pem")
    ge.add_argument("--actor", default="cli", help="who enrols it (for the audit log)")
    ge.set_defaults(func=cmd_gateway_enrol)

    ak = sub.add_parser("apikey", help="API keys for the collector").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    akn = ak.add_parser("new", help="create an API key for a role; prints the config line")
    akn.add_argument(
        "--role",
        required=True,
        choices=["metrology", "plant_engineer", "footprint_engine", "admin"],
    )
    akn.add_argument("--name", required=True, help="who holds it (for the audit log)")
    akn.set_defaults(func=cmd_apikey_new)

    cli_calibration.add_parser(sub)
    cli_batches.add_parser(sub)
    cli_factors.add_parser(sub)

    w = sub.add_parser("wire-schema", help="print the JSON Schema of a gateway message")
    w.set_defaults(func=cmd_wire_schema)

    v = sub.add_parser("verify", help="check a batch's evidence bundle offline, recompute it")
    v.add_argument("bundle", type=Path, help="the zip from GET /api/v1/batches/{id}/evidence")
    v.add_argument(
        "--collector-key",
        type=Path,
        metavar="PEM",
        help="the collector's public key, from a source you trust (metertrace collector pubkey); "
        "the manifest must be signed by it. Without it, the key in the bundle is used, unchecked",
    )
    v.add_argument(
        "--allow-unsigned",
        action="store_true",
        help="accept a bundle whose manifest is not signed (made before signed manifests)",
    )
    v.set_defaults(func=cmd_verify)

    d = sub.add_parser("demo", help="run simulators, broker, agent and collector together")
    d.add_argument("--workdir", default=".demo", help="configs, keys, databases and logs")
    d.add_argument("--api-port", type=int, default=8080)
    d.add_argument(
        "--broker",
        choices=["auto", "mosquitto", "amqtt"],
        default="auto",
        help="auto: Mosquitto when installed, else the embedded amqtt",
    )
    d.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    from device_profiles import ProfileError

    from .config import ConfigError
    from .keys import KeyFileError

    try:
        args.func(args)
    except (
        CliError,
        ConfigError,
        ProfileError,
        KeyFileError,
        cli_calibration.ApiError,
        cli_batches.BatchCommandError,
        cli_db.DbCommandError,
    ) as exc:
        print(f"metertrace: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except Exception as exc:
        if not _is_schema_error(exc):
            raise
        print(f"metertrace: error: {exc}", file=sys.stderr)  # e.g. `collector serve` on 0.1.0's
        raise SystemExit(2) from None


def _is_schema_error(exc: Exception) -> bool:
    """collector.db's SchemaError (a database at another schema than this release's), known
    without importing the collector where only the agent is installed."""
    migrate = sys.modules.get("collector.db.migrate")
    return migrate is not None and isinstance(exc, migrate.SchemaError)


if __name__ == "__main__":
    main()
