"""The agent side of ``sealagent storage attach|detach|redeclare --worker``
(``lotus-worker storage attach|detach|redeclare``).

The directory is on the agent's host.  ``attach``: the running agent opens it (creating
its ``sectorstore.json`` with ``--init``), lists it in its ``storage.json`` and reports it
with its next heartbeat, so the manager's index learns it from the agent.  ``detach``:
the manager drops the path from its index (refused while it holds the only indexed copy
of a sector's file, unless ``--force``), then the agent stops using and serving it; its
files stay.  ``redeclare``: the agent lists every sector file in its paths and the
manager's index then holds exactly those.
"""

from __future__ import annotations

import argparse

from sealagent.cli.info import add_agent_arguments, call_agent


def add_arguments(parser: argparse.ArgumentParser, help_text: str) -> None:
    """``--worker`` (``help_text`` says what it does) and how to find the agent."""
    parser.add_argument("--worker", action="store_true", help=help_text)
    add_agent_arguments(parser)


def attach(args: argparse.Namespace) -> int:
    """Attach ``args.dir`` to the agent."""
    meta = call_agent(args, "StorageAttach", str(args.dir.absolute()), args.init, args.seal,
                      args.store, args.weight, args.max_storage, args.groups, args.allow_to)
    use = " ".join(n for n, on in (("Seal", meta["CanSeal"]), ("Store", meta["CanStore"]))
                   if on) or "ReadOnly"
    print(f"Attached {args.dir.absolute()} ({meta['ID']}) to the agent; use: {use}")
    return 0


def detach(args: argparse.Namespace) -> int:
    """Detach ``args.dir`` from the agent."""
    answer = call_agent(args, "StorageDetach", str(args.dir.absolute()), args.force)
    print(f"Detached {answer['path']} ({answer['id']}) from the agent")
    return 0


def redeclare(args: argparse.Namespace) -> int:
    """Re-scan the agent's paths into the manager's index."""
    changed = call_agent(args, "StorageRedeclare")["changed"]
    print(f"Redeclared the agent's paths; sectors whose files changed: "
          f"{', '.join(map(str, changed)) if changed else 'none'}")
    return 0
