"""``sealagent plugins``: the installed backends, their versions, availability and phases;
``--warm`` compiles their kernels."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from sealagent.cli.commands import COMMANDS
from sealagent.cli.formatting import format_table
from sealagent.errors import PluginError
from sealagent.plugins import default_plugins


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``plugins`` subcommand."""
    parser = subparsers.add_parser(
        "plugins",
        help=COMMANDS["plugins"],
        description="List the installed sealing backends: version, whether they can run "
                    "on this host (and why not), and the phases each implements.  "
                    "Phases without a chosen backend run on 'cpu'.",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--warm", nargs="*", metavar="NAME",
                        help="compile (or load) the kernels of the named plugins, or of every "
                             "available one, into their kernel caches, with progress")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Print the plugin table (or JSON), or warm plugins with ``--warm``."""
    if args.warm is not None:
        return warm(args.warm)
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
    caches = [f"{r.name}: compiled kernels in {r.info.kernel_cache}"
              for r in records if r.info.kernel_cache]
    if caches:
        print("\n" + "\n".join(caches))
    return 0


def warm(names: Sequence[str]) -> int:
    """Warm the named plugins (default: every available one); 1 if one fails."""
    plugins = default_plugins()
    chosen = list(names) or [r.name for r in plugins.records() if r.available]
    status = 0
    for name in chosen:
        start = time.perf_counter()
        def progress(line: str, name: str = name) -> None:
            print(f"{name}: {line}", flush=True)

        try:
            warmed = plugins.warm(name, progress)
        except PluginError as exc:
            print(f"{name}: {exc}", file=sys.stderr)
            status = 1
            continue
        took = time.perf_counter() - start
        print(f"{name}: {'warm' if warmed else 'nothing to compile'} ({took:.1f} s)",
              flush=True)
    return status

