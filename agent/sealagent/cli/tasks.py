"""``sealagent tasks enable|disable TYPE``: switch task types on a running agent.

Like ``lotus-worker tasks``: the change takes effect at the agent's next heartbeat; tasks
already given to the agent are unaffected.  ``TYPE`` is a short name (``AP``, ``PC1``,
``PC2``, ``C2``, ``UNS``) or a Lotus task type; ``--all`` switches every one of them.
Commit1, Finalize and the move to long-term storage (GET) cannot be switched off.
"""

from __future__ import annotations

import argparse

from sealagent.cli.commands import COMMANDS
from sealagent.cli.formatting import plain_text
from sealagent.cli.info import add_agent_arguments, call_agent, short_names
from sealagent.errors import ConfigError
from sealagent.vocab.tasks import TASK_TYPES_BY_ORDER
from sealagent.worker.config import OPTIONAL_TASKS


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``tasks enable`` and ``tasks disable``."""
    parser = subparsers.add_parser("tasks", help=COMMANDS["tasks"], description=plain_text(__doc__),
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for verb in ("enable", "disable"):
        sub = verbs.add_parser(verb, help=f"{verb} a task type")
        add_agent_arguments(sub)
        sub.add_argument("task_type", nargs="?", metavar="TYPE",
                         help="AP, PC1, PC2, C2 or UNS (or a Lotus task type)")
        sub.add_argument("--all", action="store_true", help=f"{verb} every switchable type")
        sub.set_defaults(handler=handle, enable=verb == "enable")


def handle(args: argparse.Namespace) -> int:
    """Send the switch(es) and print the task types the agent now takes."""
    if args.all == bool(args.task_type):
        raise ConfigError("give exactly one of TYPE or --all")
    names = ([t.value for t in TASK_TYPES_BY_ORDER if t in OPTIONAL_TASKS] if args.all
             else [args.task_type])
    method = "TaskEnable" if args.enable else "TaskDisable"
    accepted: list[str] = []
    for name in names:
        accepted = call_agent(args, method, name)
    print(f"Task types: {short_names(accepted)}")
    return 0
