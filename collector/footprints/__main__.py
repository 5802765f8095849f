"""`python -m collector.footprints -c pact.yaml`: the PACT host alone, with sample footprints.

The YAML holds a `pact:` block as in collector.yaml. Used by scripts/pact-conformance.
"""

from __future__ import annotations

import argparse
import logging

import uvicorn

from collector.footprints.app import pact_app, uvicorn_options
from collector.footprints.sample import sample_source
from collector.footprints.settings import PactSettings
from metertrace.config import StrictModel, load_config


class PactFile(StrictModel):
    pact: PactSettings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m collector.footprints", description=__doc__)
    parser.add_argument("-c", "--config", required=True, help="YAML file with a pact: block")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    settings = load_config(args.config, PactFile).pact
    app = pact_app(sample_source(), settings)
    uvicorn.run(app, log_level=args.log_level.lower(), **uvicorn_options(settings))


if __name__ == "__main__":
    main()
