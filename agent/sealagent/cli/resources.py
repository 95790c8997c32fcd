"""``sealagent resources``: the resource-table override variables (``lotus-worker resources``).

Without flags it prints the override variables set in this environment; ``--default``
prints every variable with its default value; ``--all`` prints the defaults with the set
values merged in.  One ``KEY=VALUE`` per line, sorted, so the output can be pasted into
an environment file.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from sealagent.cli.commands import COMMANDS
from sealagent.sched.resources import EnvListing, resource_env_lines


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``resources`` subcommand."""
    parser = subparsers.add_parser(
        "resources",
        help=COMMANDS["resources"],
        description="Print the resource-table override variables "
                    "(<TASK>_<SIZE>_<FIELD> and <TASK>_<FIELD>, e.g. PC1_32G_MAX_CONCURRENT). "
                    "Without flags: the ones set in this environment (validated).",
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--all", action="store_true",
                       help="print every variable: defaults merged with the set values")
    which.add_argument("--default", action="store_true",
                       help="print every variable with its default value")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Print the ``KEY=VALUE`` lines."""
    listing = (EnvListing.DEFAULT if args.default else
               EnvListing.ALL if args.all else EnvListing.SET)
    for line in resource_env_lines(os.environ, listing):
        print(line)
    return 0
