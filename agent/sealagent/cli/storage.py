"""``sealagent storage``: the manager's storage paths and the index."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sealagent.cli import worker_storage
from sealagent.cli.commands import COMMANDS
from sealagent.cli.formatting import add_json_argument, bar, print_json
from sealagent.cli.miner import add_command_group, add_manager_command, manager_call
from sealagent.errors import ConfigError
from sealagent.units import parse_size, size_str


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``storage attach|detach|redeclare|list|find``."""
    sub = add_command_group(subparsers, "storage", help=COMMANDS["storage"],
                            description="Attach and list storage paths.")
    attach = add_manager_command(
        sub, "attach", run_attach, help="attach a directory of the manager's host",
        description="Attach DIR as a storage path of the manager; with --init, first make "
                    "it one (sectorstore.json).")
    attach.add_argument("dir", type=Path,
                        help="the directory (on the manager's host, or the agent's with "
                             "--worker)")
    attach.add_argument("--init", action="store_true", help="initialise the directory")
    attach.add_argument("--seal", action="store_true", help="use it for sealing (with --init)")
    attach.add_argument("--store", action="store_true",
                        help="use it for long-term storage (with --init)")
    attach.add_argument("--weight", type=int, default=10,
                        help="path weight (with --init; default 10): among paths with room, "
                             "new files go to the highest Available × Weight")
    attach.add_argument("--max-storage", type=size_arg, default=0, metavar="SIZE",
                        help="use at most SIZE of the file system (with --init; e.g. 2TiB; "
                             "default: no limit)")
    attach.add_argument("--groups", type=list_arg, default=[], metavar="NAMES",
                        help="comma-separated groups this path belongs to (with --init)")
    attach.add_argument("--allow-to", type=list_arg, default=[], metavar="GROUPS",
                        help="comma-separated groups the sectors in this path may be fetched "
                             "to (with --init; default: anywhere)")
    worker_storage.add_arguments(attach, "attach the directory to a running agent instead "
                                         "of the manager (the path is on the agent's host)")
    detach = add_manager_command(
        sub, "detach", run_detach, help="stop using a storage path of the manager's host",
        description="Stop serving and indexing DIR (its files stay on disk).  Refused while "
                    "DIR holds the only copy of a sector's file, unless --force.  With "
                    "--worker, DIR is a path of the agent that --worker-repo (or "
                    "$WORKER_API_INFO) names: the manager drops it from its index, then "
                    "the agent stops using it.")
    detach.add_argument("dir", type=Path,
                        help="the storage path's directory (on the agent's host with --worker)")
    detach.add_argument("--force", action="store_true",
                        help="detach even if sectors lose their only indexed copy")
    worker_storage.add_arguments(detach, "detach a path of a running agent instead of the "
                                         "manager's")
    redeclare = add_manager_command(
        sub, "redeclare", run_redeclare, help="re-scan the manager's paths into the index",
        description="Make the storage index hold exactly the sector files now in the "
                    "manager's storage paths, or with --worker in the agent's (agents also "
                    "do this for theirs when they connect).")
    worker_storage.add_arguments(redeclare, "re-scan a running agent's paths instead of the "
                                            "manager's")
    add_json_argument(add_manager_command(sub, "list", run_list,
                                          help="every path the manager knows, on every host"))
    find = add_manager_command(sub, "find", run_find,
                               help="where a sector's files are: paths, hosts, file types")
    find.add_argument("number", type=int, help="the sector number")


def size_arg(text: str) -> int:
    """An argparse type: a size in bytes (``2TiB``)."""
    try:
        return parse_size(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def list_arg(text: str) -> list[str]:
    """An argparse type: comma-separated names, blanks left out."""
    return [name.strip() for name in text.split(",") if name.strip()]


def run_attach(args: argparse.Namespace) -> int:
    """Attach a path."""
    if not args.init and (args.max_storage or args.groups or args.allow_to
                          or args.weight != 10):
        raise ConfigError("--weight, --max-storage, --groups and --allow-to describe a new "
                          "path: pass --init too (an existing path keeps its "
                          "sectorstore.json)")
    if args.worker:
        return worker_storage.attach(args)
    answer = manager_call(args, "Storage.Attach", {
        "path": str(args.dir.resolve()), "seal": args.seal, "store": args.store,
        "init": args.init, "weight": args.weight, "max_storage": args.max_storage,
        "groups": args.groups, "allow_to": args.allow_to})
    print(f"Attached {answer['path']} ({answer['id']})")
    return 0


def run_detach(args: argparse.Namespace) -> int:
    """Detach a path of the manager's host, or with ``--worker`` of an agent's."""
    if args.worker:
        return worker_storage.detach(args)
    answer = manager_call(args, "Storage.Detach", {"path": str(args.dir.resolve()),
                                                   "force": args.force})
    print(f"Detached {answer['path']} ({answer['id']})")
    return 0


def run_redeclare(args: argparse.Namespace) -> int:
    """Re-scan the manager's paths, or with ``--worker`` an agent's."""
    if args.worker:
        return worker_storage.redeclare(args)
    changed = manager_call(args, "Storage.Redeclare")["changed"]
    print(f"Redeclared; sectors whose files changed: "
          f"{', '.join(map(str, changed)) if changed else 'none'}")
    return 0


def format_path(p: dict[str, Any]) -> list[str]:
    """One path as ``lotus-miner storage list`` prints it."""
    lines = [f"{p['id']}:"]
    stat = p.get("stat")
    if stat:
        capacity, available = stat["capacity"], stat["available"]
        used = max(0, capacity - available)
        percent = used * 100 // capacity if capacity else 0
        lines.append(f"\t[{bar(capacity, 0, used)}] {size_str(used)}/{size_str(capacity)} "
                     f"{percent}%")
    use = " ".join(name for name, on in (("Seal", p["can_seal"]), ("Store", p["can_store"]))
                   if on) or "ReadOnly"
    health = "ok" if p["healthy"] else f"unhealthy ({p.get('error') or 'no heartbeat'})"
    lines.append(f"\tSectors: {p['sectors']}; Health: {health}")
    lines.append(f"\tWeight: {p['weight']}; Use: {use}")
    if p.get("local"):
        lines.append(f"\tLocal: {p['local']}")
    lines.extend(f"\tURL: {url}" for url in p["urls"])
    return lines


def run_list(args: argparse.Namespace) -> int:
    """List every path."""
    paths = manager_call(args, "Storage.List")
    if args.json:
        print_json(paths)
        return 0
    for p in paths:
        print("\n".join(format_path(p)))
    if not paths:
        print("no storage paths")
    return 0


def run_find(args: argparse.Namespace) -> int:
    """Print the paths holding a sector's files, grouped as ``lotus-miner storage find``."""
    found = manager_call(args, "Storage.Find", [args.number])
    for loc in found:
        use = " ".join(name for name, on in (("Seal", loc["can_seal"]),
                                             ("Store", loc["can_store"])) if on) or "ReadOnly"
        print(f"In {loc['path_id']} ({', '.join(loc['file_types'])}):")
        print(f"\tHost: {loc['host'] or 'unknown'}; Use: {use}; Weight: {loc['weight']}; "
              f"Health: {'ok' if loc['healthy'] else 'unhealthy'}")
        if loc["local"]:
            print(f"\tLocal: {loc['local']}")
        print("\n".join(f"\tURL: {url}" for url in loc["urls"]))
    if not found:
        print(f"no stored files of sector {args.number}")
    return 0
