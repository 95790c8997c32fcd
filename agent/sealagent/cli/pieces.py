"""``sealagent pieces``: the deal pieces in sectors, and getting their bytes back.

``pieces get CID -o FILE`` finds the sector holding the piece, has it unsealed when no
unsealed copy is stored (``sectors unseal``), streams the piece's original bytes from the
manager (``GET /piece/<cid>``, :mod:`sealagent.manager.piece_route`) into a scratch file
beside FILE, checks its piece commitment (CommP) against CID and only then renames it to
FILE.  Bytes that fail the check are deleted, never handed out.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path
from typing import Any

from sealagent.cli.commands import COMMANDS
from sealagent.cli.formatting import add_json_argument, format_table, print_json
from sealagent.cli.miner import (
    add_command_group,
    add_manager_command,
    manager_api_info,
    manager_call,
)
from sealagent.cli.sectors import wait_unsealed
from sealagent.errors import (
    CommitmentMismatchError,
    ConfigError,
    ManagerError,
    SealAgentError,
)


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
    """Stream the piece into a scratch file beside ``output``, check CommP, rename it to
    ``output``; returns the paths the bytes came from."""
    import trio

    from sealagent.manager.piece_route import PIECE_ROUTE
    from sealagent.proofs.pieces import generate_piece_commitment
    from sealagent.storage.fetch import RemoteClient

    size, cid = int(piece["size"]), str(piece["cid"])
    info = manager_api_info(args)
    url = f"{info.url}{PIECE_ROUTE}/{cid}"
    scratch = output.with_name(f".{output.name}.part")

    async def download() -> tuple[int, str]:
        async with RemoteClient(info.token) as client:
            received, headers = await client.save(url, scratch)
        return received, headers.get("x-sealagent-path", "?")

    try:
        received, path_id = trio.run(download)
        if received != size:
            raise ManagerError(f"the manager sent {received} of the piece's {size} bytes")
        with open(scratch, "rb") as data_file:
            found = generate_piece_commitment(data_file, size)
        if found.cid != cid:
            raise CommitmentMismatchError(
                f"CommP check failed: the unsealed copy of sector {piece['sector']} (in "
                f"{path_id}) gives {found.cid}, not {cid}; {output} was not written.  Drop "
                f"the copy (sealagent sectors drop-unsealed {piece['sector']}) and get the "
                "piece again to unseal it afresh")
        os.replace(scratch, output)
    except OSError as exc:
        if isinstance(exc, SealAgentError):
            raise
        raise ConfigError(f"{output}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            scratch.unlink()
    return {path_id}
