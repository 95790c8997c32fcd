"""``sealagent info``: what a running agent says about itself (``lotus-worker info``).

The agent is found through ``$WORKER_API_INFO`` or its repo (``--worker-repo``,
``$SEALAGENT_WORKER_PATH``), whose ``api`` and ``token`` files the running agent writes.
"""

from __future__ import annotations

import argparse
from typing import Any

from sealagent import __version__
from sealagent.cli.commands import COMMANDS
from sealagent.cli.formatting import add_json_argument, plain_text, print_json
from sealagent.rpc.client import call_sync
from sealagent.units import size_str
from sealagent.vocab.tasks import TASK_TYPES_BY_ORDER
from sealagent.worker.repo import REPO_ENV, agent_api_info


def add_agent_arguments(parser: argparse.ArgumentParser) -> None:
    """``--worker-repo``: how the worker commands find the agent."""
    parser.add_argument("--worker-repo", metavar="DIR",
                        help=f"agent repo (default ${REPO_ENV} or ~/.sealagent-worker); "
                             "$WORKER_API_INFO takes precedence")


def call_agent(args: argparse.Namespace, method: str, *params: Any) -> Any:
    """Call ``Worker.<method>`` on the agent the arguments name."""
    return call_sync(agent_api_info(args.worker_repo), f"Worker.{method}", list(params),
                     peer="agent")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``info``."""
    parser = subparsers.add_parser("info", help=COMMANDS["info"], description=plain_text(__doc__))
    add_agent_arguments(parser)
    add_json_argument(parser)
    parser.set_defaults(handler=handle)


def short_names(task_types: list[str]) -> str:
    """Task types as their short names, most urgent first (``FIN C1 PC2 PC1 AP``)."""
    order = {t.value: i for i, t in enumerate(TASK_TYPES_BY_ORDER)}
    shorts = {t.value: t.short for t in TASK_TYPES_BY_ORDER}
    return " ".join(shorts.get(t, t) for t in sorted(task_types, key=lambda t: order.get(t, 99)))


def format_status(status: dict[str, Any]) -> str:
    """The status as ``lotus-worker info`` prints it."""
    res = status["resources"]
    gpus = ", ".join(g["name"] for g in res["gpus"])
    backends = " ".join(f"{short_names([t])}={b}" for t, b in sorted(status["plugins"].items()))
    lines = [
        f"CLI version: sealagent {__version__}",
        "",
        f"Name: {status['name']}",
        f"URL: {status['url']}",
        f"Worker: {status['worker_id']}",
        f"Session: {status['session']}",
        f"Enabled: {str(status['enabled']).lower()}",
        f"CPUs: {res['cpus']}; GPUs: [{gpus}]",
        f"RAM: {size_str(res['mem_used'])}/{size_str(res['mem_physical'])}; "
        f"Swap: {size_str(res['mem_swap_used'])}/{size_str(res['mem_swap'])}",
        f"Task types: {short_names(status['tasks'])}",
        f"Backends: {backends}",
    ]
    for name, reason in status.get("skipped_plugins", {}).items():
        lines.append(f"  (plugin {name} unavailable: {reason})")
    for path in status["paths"]:
        meta, stat = path["meta"], path["stat"]
        use = [u for u, on in (("Seal", meta["CanSeal"]), ("Store", meta["CanStore"])) if on]
        lines += ["", f"{meta['ID']}:",
                  f"\tWeight: {meta['Weight']}; Use: {' '.join(use) or 'ReadOnly'}"]
        if stat is not None:
            lines.append(f"\tSpace: {size_str(stat['available'])} available of "
                         f"{size_str(stat['capacity'])}")
        if path["error"]:
            lines.append(f"\tError: {path['error']}")
    if status["held"]:
        lines += ["", "Tasks:"]
        for task in status["held"]:
            fetch = status["fetching"].get(task["task_id"])
            progress = ""
            if fetch is not None and fetch["total"]:
                percent = 100 * fetch["done"] // fetch["total"]
                progress = f" fetching {fetch['file_type']} {percent}%"
            lines.append(f"\t{task['task_id']} (attempt {task['attempt']}) "
                         f"{short_names([task['task_type']])} sector {task['sector']}: "
                         f"{task['stage']}{progress}")
    return "\n".join(lines)


def handle(args: argparse.Namespace) -> int:
    """Print the agent's status."""
    status = call_agent(args, "Info")
    if args.json:
        print_json(status)
    else:
        print(format_status(status))
    return 0
