"""``sealagent params``: the Groth16 parameters of the PoRep circuit (``generate``, ``info``).

Filecoin's published parameters come from a multi-party ceremony and are not fetched
here: ``params generate`` makes parameters for sealagent's own circuit from local
randomness, once per sector size, in ``FIL_PROOFS_PARAMETER_CACHE``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from sealagent.cli.commands import COMMANDS
from sealagent.cli.miner import add_command_group


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``params`` subcommand group."""
    sub = add_command_group(subparsers, "params", help=COMMANDS["params"],
                            description="Groth16 parameters of the PoRep circuit in "
                                        "FIL_PROOFS_PARAMETER_CACHE.")
    gen = sub.add_parser(
        "generate",
        help="create the circuit's parameters and verifying key once",
        description="Create the proving parameters and the verifying key of the PoRep "
                    "circuit of a sector size from local randomness (the one-time setup; "
                    "minutes for 2 KiB).  Nothing is done when a complete set exists.  The "
                    "files are written under temporary names and renamed when complete.",
    )
    gen.add_argument("--sector-size", required=True, help="e.g. 2KiB")
    gen.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                     help="processes for the fixed-base multiplications (default: all CPUs)")
    gen.set_defaults(handler=run_generate)
    info = sub.add_parser("info", help="where the parameters of a sector size are, and their state",
                          description="Print the parameter files of a sector size's circuit "
                                      "and whether they are present.")
    info.add_argument("--sector-size", required=True, help="e.g. 2KiB")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(handler=run_info)


class _Progress:
    """Progress lines on stderr: each stage at most every two seconds, and when done."""

    def __init__(self) -> None:
        self._last = 0.0
        self._start = time.monotonic()

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self._last < 2:
            return
        self._last = now
        pct = 100 * done // max(total, 1)
        print(f"params: {stage:<10} {done:>9}/{total:<9} {pct:3d}%  "
              f"{now - self._start:7.1f}s", file=sys.stderr, flush=True)


def run_generate(args: argparse.Namespace) -> int:
    """Generate the parameters of a sector size's circuit unless they exist."""
    from sealagent.snark.parameters import generate
    from sealagent.vocab.registry import default_proof, parse_sector_size

    proof = default_proof(parse_sector_size(args.sector_size))
    files, created = generate(proof, progress=_Progress(), workers=max(1, args.workers))
    state = "created" if created else "already present"
    print(f"{proof.name}: parameters {state}")
    for path in (files.params, files.vk, files.meta):
        print(f"  {path}")
    return 0


def run_info(args: argparse.Namespace) -> int:
    """Print the parameter files of a sector size's circuit."""
    from sealagent.snark.parameters import circuit_files
    from sealagent.vocab.registry import default_proof, parse_sector_size

    proof = default_proof(parse_sector_size(args.sector_size))
    files = circuit_files(proof)
    present = files.meta.exists()
    if args.json:
        print(json.dumps({"proof": proof.name, "circuit_digest": files.digest,
                          "present": present, "params": str(files.params),
                          "vk": str(files.vk), "meta": str(files.meta)}))
    else:
        print(f"{proof.name}: {'present' if present else 'missing'} "
              f"(circuit digest {files.digest[:16]})")
        for path in (files.params, files.vk, files.meta):
            print(f"  {path}")
    return 0
