"""The agent side of ``sealagent storage attach --worker`` (``lotus-worker storage attach``).

The directory is on the agent's host; the running agent opens it (creating its
``sectorstore.json`` with ``--init``), lists it in its ``storage.json`` and reports it
with its next heartbeat, so the manager's index learns it from the agent.
"""

from __future__ import annotations

import argparse

from sealagent.cli.info import add_agent_arguments, call_agent


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--worker`` and how to find the agent."""
    parser.add_argument("--worker", action="store_true",
                        help="attach the directory to a running agent instead of the "
                             "manager (the path is on the agent's host)")
    add_agent_arguments(parser)


def attach(args: argparse.Namespace) -> int:
    """Attach ``args.dir`` to the agent."""
    meta = call_agent(args, "StorageAttach", str(args.dir.absolute()), args.init, args.seal,
                      args.store, args.weight, args.max_storage, args.groups, args.allow_to)
    use = " ".join(n for n, on in (("Seal", meta["CanSeal"]), ("Store", meta["CanStore"]))
                   if on) or "ReadOnly"
    print(f"Attached {args.dir.absolute()} ({meta['ID']}) to the agent; use: {use}")
    return 0
