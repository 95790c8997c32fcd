"""``sealagent proofs``: PoRep utilities that need no running service (``commp``,
``circuit-info``)."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path
from typing import Any

from sealagent.cli.commands import COMMANDS
from sealagent.cli.miner import add_command_group
from sealagent.errors import ConfigError
from sealagent.proofs import PieceInfo, generate_piece_commitment, to_padded_size
from sealagent.proofs.fr32 import UNPADDED_BLOCK
from sealagent.units import size_str


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``proofs`` subcommand group."""
    sub = add_command_group(subparsers, "proofs", help=COMMANDS["proofs"],
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
    commp.add_argument("file", type=Path, metavar="FILE", help="the piece's data")
    commp.add_argument("--json", action="store_true", help="print JSON")
    commp.set_defaults(handler=run_commp)
    info = sub.add_parser(
        "circuit-info",
        help="constraint and public-input counts of the PoRep circuit",
        description="Print the number of constraints and public inputs (ONE included) of "
                    "one partition of the stacked-DRG PoRep circuit, as rust-fil-proofs' "
                    "circuitinfo does: either for a sector size (--sector-size) or for a "
                    "test shape (--nodes, --layers, --challenges, --tree).  Every "
                    "challenge's part of the circuit is identical, so one is built and "
                    "counted; a 32 GiB count takes about a minute.",
    )
    info.add_argument("--sector-size", help="e.g. 2KiB, 32GiB")
    info.add_argument("--proof", default=None,
                      help="registered proof name (default: the size's V1_1 proof)")
    info.add_argument("--nodes", type=int, help="graph nodes (a power of two)")
    info.add_argument("--layers", type=int, default=2,
                      help="SDR layers of the circuit (default %(default)s)")
    info.add_argument("--challenges", type=int, default=1,
                      help="porep challenges of the circuit (default %(default)s)")
    info.add_argument("--tree", default="8-0-0", help="BASE-SUB-TOP arities, e.g. 8-0-0, 2-0-0")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(handler=run_circuit_info)


def _tree_arities(text: str) -> tuple[int, int, int]:
    """``BASE-SUB-TOP`` as three ints."""
    parts = text.split("-")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ConfigError(f"--tree must look like 8-0-0, not {text!r}")
    return int(parts[0]), int(parts[1]), int(parts[2])


def run_circuit_info(args: argparse.Namespace) -> int:
    """Count and print the PoRep circuit of a sector size or a test shape."""
    from sealagent.errors import InvalidInputError
    from sealagent.proofs.poseidon import ARITIES
    from sealagent.snark.porep import StackedCircuitParams, circuit_info
    from sealagent.snark.stacked import circuit_params
    from sealagent.vocab.registry import default_proof, parse_sector_size, resolve_proof

    if (args.sector_size is None) == (args.nodes is None):
        raise ConfigError("give either --sector-size or --nodes")
    partitions = 1
    if args.sector_size is not None:
        proof = (resolve_proof(args.proof) if args.proof
                 else default_proof(parse_sector_size(args.sector_size)))
        if proof.sector_size != parse_sector_size(args.sector_size):
            raise ConfigError(f"{proof.name} is not a {args.sector_size} proof")
        params = circuit_params(proof)
        name, partitions = proof.name, proof.partitions
    else:
        base, sub, top = _tree_arities(args.tree)
        if args.layers not in ARITIES:
            raise ConfigError(f"--layers must be a Poseidon arity (the column hash's): "
                              f"{', '.join(map(str, ARITIES))}")
        try:
            params = StackedCircuitParams(args.nodes, args.layers, args.challenges, base, sub,
                                          top)
        except InvalidInputError as exc:
            raise ConfigError(str(exc)) from None
        name = (f"nodes={args.nodes} layers={args.layers} challenges={args.challenges} "
                f"tree={args.tree}")
    info = circuit_info(params)
    if args.json:
        print(json.dumps({"circuit": name, "constraints": info.constraints,
                          "public_inputs": info.public_inputs, "partitions": partitions,
                          "challenges_per_partition": params.challenges}))
    else:
        print(f"{name}: constraints: {info.constraints}, public inputs: "
              f"{info.public_inputs}, partitions: {partitions}")
    return 0


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
