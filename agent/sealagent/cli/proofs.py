"""``sealagent proofs``: PoRep utilities that need no running service (``commp``)."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path
from typing import Any

from sealagent.cli.miner import add_command_group
from sealagent.errors import ConfigError
from sealagent.proofs import PieceInfo, generate_piece_commitment, to_padded_size
from sealagent.proofs.fr32 import UNPADDED_BLOCK
from sealagent.units import size_str


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``proofs`` subcommand group."""
    sub = add_command_group(subparsers, "proofs", help="PoRep utilities (commP)",
                            description="PoRep utilities that work on local files.")
    commp = sub.add_parser(
        "commp",
        help="piece CID (commP) and padded size of a file",
        description="Print the piece CID (commP) and the padded piece size of FILE, like "
                    "'lotus client commP'.  As Lotus does, the file is zero-extended to "
                    "the next 127·2^k bytes (at least 127) before Fr32 padding, so the "
                    "padded size is the next power of two ≥ 128 holding it.  Unlike Lotus, "
                    "FILE need not be a CAR file.",
    )
    commp.add_argument("file", type=Path, metavar="FILE")
    commp.add_argument("--json", action="store_true", help="print JSON")
    commp.set_defaults(handler=run_commp)


def unpadded_piece_size(payload: int) -> int:
    """The piece size (``127·2^k``, at least 127) Lotus zero-extends ``payload`` bytes to."""
    size = UNPADDED_BLOCK
    while size < payload:
        size *= 2
    return size


class _ZeroExtended(io.RawIOBase):
    """A binary stream: the bytes of ``file``, then zeros up to ``size`` bytes."""

    def __init__(self, file: io.BufferedIOBase, size: int) -> None:
        """Read ``file`` to its end, then yield zeros until ``size`` bytes were read."""
        self._file = file
        self._left = size
        self._file_done = False

    def readable(self) -> bool:
        """Always readable."""
        return True

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` from the file, then with zeros."""
        view = memoryview(buffer).cast("B")
        want = min(len(view), self._left)
        got = 0 if self._file_done else self._file.readinto(view[:want])
        if not got:
            self._file_done = True
            view[:want] = bytes(want)
            got = want
        self._left -= got
        return int(got)


def run_commp(args: argparse.Namespace) -> int:
    """Compute and print the piece CID and size of ``args.file``."""
    path: Path = args.file
    try:
        payload = path.stat().st_size
        file = path.open("rb")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    size = unpadded_piece_size(payload)
    with file, io.BufferedReader(_ZeroExtended(file, size)) as stream:
        piece: PieceInfo = generate_piece_commitment(stream, size)
    if args.json:
        print(json.dumps({"cid": piece.cid, "size": piece.size, "unpadded_size": size,
                          "payload_size": payload}))
    else:
        print(f"CID:  {piece.cid}")
        print(f"Piece size:  {size_str(piece.size)} ( {piece.size} B )")
        print(f"Payload:  {payload} B, zero-extended to {size} B "
              f"(padded {to_padded_size(size)} B)")
    return 0
