"""``sealagent pieces``: the deal pieces in sectors, and getting their bytes back.

``pieces get CID -o FILE`` finds the sector holding the piece, has it unsealed when no
unsealed copy is stored (``sectors unseal``), reads the piece's original bytes from the
manager a chunk at a time into a scratch file beside FILE, checks its piece commitment
(CommP) against CID and only then renames it to FILE.  Bytes that fail the check are
deleted, never handed out.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import sys
from pathlib import Path
from typing import Any

from sealagent.cli.commands import COMMANDS
from sealagent.cli.formatting import add_json_argument, format_table, print_json
from sealagent.cli.miner import add_command_group, add_manager_command, manager_call
from sealagent.cli.sectors import wait_unsealed
from sealagent.errors import CommitmentMismatchError, ConfigError, ManagerError

READ_CHUNK = 1 << 20
"""Piece bytes asked for in one ``Pieces.Read`` call (the manager's limit)."""


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``pieces list|get``."""
    sub = add_command_group(subparsers, "pieces", help=COMMANDS["pieces"],
                            description="The deal pieces in the manager's sectors.")
    add_json_argument(add_manager_command(
        sub, "list", run_list, help="list the deal pieces",
        description="Every deal piece: its CID, sector, place in the sector, size and "
                    "whether an unsealed copy of its sector is stored."))
    get = add_manager_command(
        sub, "get", run_get, help="write a piece's original bytes to FILE",
        description="Find the sector holding the deal piece CID, unseal it when no "
                    "unsealed copy is stored (waiting for the Unseal task), read the "
                    "piece's bytes back and write them to FILE once their piece "
                    "commitment matches CID.  FILE is never left holding bytes that did "
                    "not pass the check.")
    get.add_argument("cid", help="the piece CID (CommP)")
    get.add_argument("-o", "--output", type=Path, required=True, metavar="FILE",
                     help="where to write the piece's bytes (replaced if it exists)")
    get.add_argument("--no-unseal", action="store_true",
                     help="fail instead of unsealing when no unsealed copy is stored")
    add_json_argument(get)


def run_list(args: argparse.Namespace) -> int:
    """Print every deal piece."""
    pieces = manager_call(args, "Pieces.List")
    if args.json:
        print_json(pieces)
        return 0
    rows = [[p["cid"], str(p["sector"]), str(p["offset"]), str(p["size"]), p["state"],
             "yes" if p["unsealed"] else "no"] for p in pieces]
    print(format_table(["CID", "SECTOR", "OFFSET", "SIZE", "STATE", "UNSEALED"], rows))
    return 0


def run_get(args: argparse.Namespace) -> int:
    """Write a deal piece's original, CommP-checked bytes to FILE."""
    output: Path = args.output
    if output.is_dir():
        raise ConfigError(f"{output} is a directory; name the file to write")
    piece = manager_call(args, "Pieces.Locate", [args.cid])
    number = piece["sector"]
    unsealed = bool(piece["unsealing"]["unsealed"])
    if not unsealed:
        if args.no_unseal:
            raise ManagerError(f"sector {number} holding {args.cid} has no unsealed copy "
                               "(and --no-unseal was given)")
        print(f"sector {number} has no unsealed copy: unsealing it", file=sys.stderr,
              flush=True)
        wait_unsealed(args, number, quiet=args.json)
    path_ids = _receive(args, piece, output)
    if args.json:
        print_json({"cid": args.cid, "sector": number, "size": piece["size"],
                    "file": str(output), "unsealed_now": not unsealed,
                    "paths": sorted(path_ids)})
    else:
        how = "unsealed now" if not unsealed else "from the stored unsealed copy"
        print(f"wrote {output}: {piece['size']} bytes of {args.cid} (sector {number}, "
              f"{how}), CommP checked")
    return 0


def _receive(args: argparse.Namespace, piece: dict[str, Any], output: Path) -> set[str]:
    """Read the piece into a scratch file beside ``output``, check CommP, rename it to
    ``output``; returns the paths the bytes came from."""
    from sealagent.proofs.pieces import generate_piece_commitment

    size, cid = int(piece["size"]), str(piece["cid"])
    scratch = output.with_name(f".{output.name}.part")
    path_ids: set[str] = set()
    try:
        with open(scratch, "wb") as out:
            for offset in range(0, size, READ_CHUNK):
                length = min(READ_CHUNK, size - offset)
                answer = manager_call(args, "Pieces.Read", [cid, offset, length])
                data = base64.b64decode(answer["data"])
                if len(data) != length:
                    raise ManagerError(f"the manager answered {len(data)} of {length} "
                                       f"bytes at {offset}")
                out.write(data)
                path_ids.add(str(answer["path_id"]))
            out.flush()
            os.fsync(out.fileno())
        with open(scratch, "rb") as data_file:
            found = generate_piece_commitment(data_file, size)
        if found.cid != cid:
            raise CommitmentMismatchError(
                f"CommP check failed: the unsealed copy of sector {piece['sector']} (in "
                f"{', '.join(sorted(path_ids))}) gives {found.cid}, not {cid}; {output} was "
                f"not written.  Drop the copy (sealagent sectors drop-unsealed "
                f"{piece['sector']}) and get the piece again to unseal it afresh")
        os.replace(scratch, output)
    except OSError as exc:
        raise ConfigError(f"{output}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            scratch.unlink()
    return path_ids
