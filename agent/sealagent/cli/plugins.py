"""``sealagent plugins``: the installed backends, their versions, availability and phases."""

from __future__ import annotations

import argparse
import json
from typing import Any

from sealagent.cli.formatting import format_table
from sealagent.plugins import default_plugins


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``plugins`` subcommand."""
    parser = subparsers.add_parser(
        "plugins",
        help="list installed backends",
        description="List the installed sealing backends: version, whether they can run "
                    "on this host (and why not), and the phases each implements.  "
                    "Phases without a chosen backend run on 'cpu'.",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Print the plugin table (or JSON)."""
    records = default_plugins().records()
    if args.json:
        print(json.dumps([r.to_json() for r in records], indent=2))
        return 0
    rows = [
        [r.name, r.version, "yes" if r.available else f"no: {r.reason}",
         " ".join(p.short for p in r.phases) or "-", r.source, r.info.description]
        for r in records
    ]
    print(format_table(["NAME", "VERSION", "AVAILABLE", "PHASES", "SOURCE", "DESCRIPTION"],
                       rows))
    return 0

