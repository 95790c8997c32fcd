"""``sealagent sectors``: pledge, add a piece, list, status, check, remove, unseal."""

from __future__ import annotations

import argparse
import io
import stat
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sealagent.cli.commands import COMMANDS
from sealagent.cli.formatting import add_json_argument, format_table, print_json
from sealagent.cli.miner import add_command_group, add_manager_command, manager_call
from sealagent.errors import ConfigError, ManagerError

if TYPE_CHECKING:
    from sealagent.proofs.pieces import PieceInfo

ADD_PIECE_TIMEOUT = 600.0
"""Default ``--timeout`` of ``add-piece``: the manager copies and hashes the piece."""
UNSEAL_POLL = 1.0
"""Seconds between two looks at an Unseal that ``sectors unseal`` waits for."""
UNSEAL_RUNNING = frozenset({"queued", "assigned", "prepared", "running", "ret-wait"})
"""The states of an open Unseal task."""

CHECK_TIMEOUT = 300.0
"""Default ``--timeout`` of ``check`` (per sector): ``--slow`` reads and hashes files."""


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``sectors pledge|add-piece|list|status|check|remove|unseal|drop-unsealed``."""
    sub = add_command_group(subparsers, "sectors", help=COMMANDS["sectors"],
                            description="Create, inspect and remove sectors.")
    add_manager_command(sub, "pledge", run_pledge, help="start a committed-capacity sector")
    add = add_manager_command(
        sub, "add-piece", run_add_piece, timeout=ADD_PIECE_TIMEOUT,
        help="start a deal sector holding FILE",
        description="Compute FILE's piece commitment (CommP, zero-padded to the next "
                    "127·2^k bytes) and start a sector with it.  FILE must be readable by "
                    "the manager (same host); the manager copies it, checks the CommP "
                    "again, and the sector's AddPiece result is checked against it too.")
    add.add_argument("file", type=Path, help="the piece's data")
    add_json_argument(add_manager_command(sub, "list", run_list, help="list sectors"))
    status = add_manager_command(
        sub, "status", run_status, help="show one sector",
        description="Show one sector: its state, commitments, retries, the task it waits "
                    "on, each task it ran (phase times) and where its files are.")
    status.add_argument("number", type=int, help="the sector number")
    add_json_argument(status)
    status.add_argument("--log", action="store_true", help="print the sector's event log")
    check = add_manager_command(
        sub, "check", run_check, timeout=CHECK_TIMEOUT, help="check a sector's stored files",
        description="Look at every stored copy of the sectors' files where it is (as "
                    "lotus-miner proving check does): each must be there with the right "
                    "size.  With --slow, also draw 10 fresh Window PoSt challenges per "
                    "sector from new randomness; every host holding the sealed file and "
                    "the cache answers them from those files (the sealed node, and its "
                    "path in tree-r-last with the rows the cache does not keep rebuilt "
                    "from the sealed file), and the manager checks each path against the "
                    "sector's CommR (docs/porep.md, section 12).  Without NUMBER, every "
                    "sector in Proving is checked.  Exits with status 1 when a sector "
                    "cannot be proven from its files.")
    check.add_argument("numbers", type=int, nargs="*", metavar="NUMBER",
                       help="the sector numbers (default: every sector in Proving)")
    check.add_argument("--slow", action="store_true",
                       help="also answer fresh challenges from the stored files and verify "
                            "them against CommR (reads the sealed file and tree-r-last)")
    add_json_argument(check)
    remove = add_manager_command(sub, "remove", run_remove,
                                 help="remove a sector and its files")
    remove.add_argument("number", type=int, help="the sector number")
    remove.add_argument("--really-do-it", action="store_true",
                        help="confirm: the sector's files are deleted everywhere")
    unseal = add_manager_command(
        sub, "unseal", run_unseal, help="unseal a sealed sector's data",
        description="Make an unsealed copy of a sector in Proving (as lotus-miner's "
                    "SectorsUnsealPiece does): the manager schedules an Unseal task on an "
                    "agent that can reach the sealed replica and its cache (fetching them "
                    "as needed; agents run it with --unseal, the manager's own with "
                    "[Storage] AllowUnseal).  Nothing is done when an unsealed copy is "
                    "stored.  Waits until the copy is there, saying what it waits for "
                    "(Ctrl-C stops waiting; the task stays queued).  A failed Unseal is "
                    "not retried by itself: run the command again.")
    unseal.add_argument("number", type=int, help="the sector number")
    unseal.add_argument("--no-wait", action="store_true",
                        help="return once the Unseal task is queued")
    add_json_argument(unseal)
    drop = add_manager_command(
        sub, "drop-unsealed", run_drop_unsealed, help="delete a sealed sector's unsealed copies",
        description="Delete every unsealed copy of a sector in Proving, freeing its space; "
                    "`pieces get` unseals it again when asked for one of its pieces.")
    drop.add_argument("number", type=int, help="the sector number")


def run_pledge(args: argparse.Namespace) -> int:
    """Start a CC sector."""
    answer = manager_call(args, "Sectors.Pledge")
    print(f"Created CC sector: {answer['number']}")
    return 0


class _ZeroPadded(io.RawIOBase):
    """A file followed by zeros, ``size`` bytes in all."""

    def __init__(self, file: io.BufferedReader, size: int) -> None:
        self._file, self._left = file, size

    def readable(self) -> bool:
        """Always readable."""
        return True

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` from the file, then with zeros."""
        view = memoryview(buffer).cast("B")
        want = min(len(view), self._left)
        got = self._file.readinto(view[:want]) or 0
        if got < want:
            view[got:want] = bytes(want - got)
        self._left -= want
        return want


def piece_size_for(length: int) -> int:
    """The smallest unpadded piece size ``127·2^k`` that holds ``length`` bytes."""
    size = 127
    while size < length:
        size *= 2
    return size


def commp_of_file(path: Path) -> tuple[PieceInfo, int]:
    """CommP of the file zero-padded to a piece size, and that (unpadded) size.

    Only a non-empty regular file is a piece (ConfigError otherwise).
    """
    from sealagent.proofs.pieces import generate_piece_commitment

    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"{path} is not a regular file; a piece is a file's bytes")
        length = info.st_size
        if length == 0:
            raise ConfigError(f"{path} is empty; a deal sector needs data")
        size = piece_size_for(length)
        with open(path, "rb") as file:
            padded = io.BufferedReader(_ZeroPadded(file, size))
            return generate_piece_commitment(padded, size), size
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror or exc}") from None


def run_add_piece(args: argparse.Namespace) -> int:
    """Compute CommP and start a deal sector."""
    piece, size = commp_of_file(args.file)
    print(f"Piece {piece.cid} ({size} bytes, padded {piece.size})")
    answer = manager_call(args, "Sectors.AddPiece",
                          [str(args.file.resolve()), piece.cid, size])
    print(f"Created deal sector: {answer['number']}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    """Print every sector."""
    sectors = manager_call(args, "Sectors.List")
    if args.json:
        print_json(sectors)
        return 0
    rows = []
    for s in sectors:
        task = s.get("task")
        rows.append([str(s["number"]), s["state"], "deal" if s["deal"] else "cc",
                     f"{task['short']} {task['state']}" if task else "-",
                     s.get("waiting") or ""])
    print(format_table(["ID", "STATE", "KIND", "TASK", "WAITING"], rows))
    return 0


def run_status(args: argparse.Namespace) -> int:
    """Print one sector."""
    s = manager_call(args, "Sectors.Status", [args.number, args.log])
    if args.json:
        print_json(s)
        return 0
    lines = [("SectorID", s["number"]), ("Status", s["state"]), ("Proof", s["proof_name"]),
             ("Pieces", ", ".join(f"{p['cid']} ({p['size']})" for p in s["pieces"])),
             ("Ticket", s.get("ticket")), ("TicketH", s.get("ticket_epoch")),
             ("CommD", s.get("comm_d")), ("CommR", s.get("comm_r")),
             ("PreCommitH", s.get("precommit_epoch")), ("Seed", s.get("seed")),
             ("SeedH", s.get("seed_epoch")),
             ("Proof check", "SNARK" if s["snark"] else "vanilla proofs (Snark = false)"),
             ("Retries", f"PC1 {s['precommit1_fails']}, PC2 {s['precommit2_fails']}, "
                         f"proof {s['compute_proof_fails']}, AP {s['add_piece_fails']}, "
                         f"temporary errors in a row {s['soft_errors']}")]
    task = s.get("task")
    if task:
        lines.append(("Task", f"{task['task_id']} {task['short']} {task['state']}"))
    if s.get("waiting"):
        lines.append(("Waiting", s["waiting"]))
    if s.get("last_error"):
        lines.append(("Last error", s["last_error"]))
    for phase in s["phases"]:
        took = "" if phase["seconds"] is None else f" {phase['seconds']:.2f}s"
        where = f" on {phase['hostname']}" if phase["hostname"] else ""
        lines.append(("Phase", f"{phase['short']} {phase['state']}{took}{where}"))
    for place in s["files"]:
        lines.append(("Files", f"{' '.join(place['file_types'])} in {place['path_id']}"
                               f"{' (store)' if place['can_store'] else ''}"))
    for key, value in lines:
        print(f"{key}:\t{'' if value is None else value}")
    if args.log:
        print("\nEvent Log:")
        for i, entry in enumerate(s["log"]):
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry["at"]))
            print(f"{i}.\t{stamp}:\t[{entry['kind']}]\t{entry['message']}")
    return 0


def run_check(args: argparse.Namespace) -> int:
    """Check sectors' stored files; 1 when one cannot be proven from them."""
    numbers = args.numbers or [s["number"] for s in manager_call(args, "Sectors.List")
                               if s["state"] == "Proving"]
    if not numbers and not args.json:
        print("no sector in Proving to check")
    answers = []
    for number in numbers:
        answers.append(manager_call(args, "Sectors.Check", [number, args.slow]))
        if not args.json:
            _print_check(answers[-1])  # as each sector is done: --slow takes a while
    failed = sum(not answer["ok"] for answer in answers)
    if args.json:
        print_json(answers)
    elif len(numbers) > 1:
        print(f"{len(numbers) - failed} of {len(numbers)} sectors ok")
    return 1 if failed else 0


def _print_check(answer: dict[str, Any]) -> None:
    """One sector's check: its copies, with --slow each host's answer, then the verdict."""
    number = answer["number"]
    rows = [[c["file_type"], c["path_id"], "" if c["size"] is None else str(c["size"]),
             "ok" if c["ok"] else c["problem"]] for c in answer["copies"]]
    if rows:
        print(format_table(["File", "Path", "Size", "Check"], rows))
    if "proofs" in answer:
        print(f"sector {number}: challenges {', '.join(map(str, answer['challenges']))}")
        print(format_table(["Host", "Paths", "Fresh challenges"], [
            [p["url"] or "-", ", ".join(p["path_ids"]) or "-", "ok" if p["ok"] else p["problem"]]
            for p in answer["proofs"]]))
    for problem in answer["problems"]:
        print(f"sector {number}: {problem}")
    if answer["ok"]:
        print(f"sector {number}: ok")


def run_remove(args: argparse.Namespace) -> int:
    """Remove a sector (needs --really-do-it)."""
    if not args.really_do_it:
        raise ConfigError("pass --really-do-it to confirm removing the sector and its files")
    manager_call(args, "Sectors.Remove", [args.number])
    print(f"Removing sector {args.number}")
    return 0


def wait_unsealed(args: argparse.Namespace, number: int, *, quiet: bool = False
                  ) -> dict[str, Any]:
    """Ask for sector ``number`` to be unsealed and wait until an unsealed copy is stored;
    each change of what it waits for is printed (to stderr) unless ``quiet``.

    :raises ManagerError: the Unseal task failed (its error is named).
    """
    status = manager_call(args, "Sectors.Unseal", [number])
    said = None
    while status["status"] in UNSEAL_RUNNING:
        line = _unseal_line(status)
        if line != said and not quiet:
            print(line, file=sys.stderr, flush=True)
        said = line
        time.sleep(UNSEAL_POLL)
        status = manager_call(args, "Sectors.UnsealStatus", [number])
    if status["status"] != "unsealed":
        task = status.get("task") or {}
        why = task.get("error") or (f"Unseal task {task.get('task_id')} ended "
                                    f"({task.get('state')}) but no unsealed copy is stored")
        raise ManagerError(f"sector {number} was not unsealed: {why}")
    return dict(status)


def _unseal_line(status: dict[str, Any]) -> str:
    """What an open Unseal is doing, in words."""
    task = status.get("task") or {}
    where = f" on {task['hostname']}" if task.get("worker_id") else ""
    line = f"sector {status['number']}: Unseal task {task.get('task_id')} {status['status']}"
    if status.get("waiting"):
        return f"{line}, waiting for {status['waiting']}"
    return line + where


def run_unseal(args: argparse.Namespace) -> int:
    """Unseal a sector (waits unless --no-wait)."""
    if args.no_wait:
        status = manager_call(args, "Sectors.Unseal", [args.number])
    else:
        status = wait_unsealed(args, args.number, quiet=args.json)
    if args.json:
        print_json(status)
    elif status["status"] == "unsealed":
        print(f"sector {args.number}: unsealed copy in {', '.join(status['unsealed'])}")
    else:
        print(_unseal_line(status))
    return 0


def run_drop_unsealed(args: argparse.Namespace) -> int:
    """Delete a sealed sector's unsealed copies."""
    answer = manager_call(args, "Sectors.DropUnsealed", [args.number])
    where = ", ".join(answer["paths"]) or "no path (there was none)"
    print(f"sector {args.number}: unsealed copy dropped from {where}")
    return 0
