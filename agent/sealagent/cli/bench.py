"""``sealagent bench``: seal one sector in-process and print what each step cost."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from sealagent.benchmark import BenchReport, run_bench
from sealagent.cli.commands import COMMANDS
from sealagent.cli.formatting import format_table
from sealagent.envvars import check_tmpdir

SECTOR_SIZES = ("2KiB", "8MiB", "512MiB")
"""Sizes a pure-Python seal finishes in seconds to minutes."""


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``bench`` subcommand."""
    parser = subparsers.add_parser(
        "bench",
        help=COMMANDS["bench"],
        description="Seal one sector in a temporary directory: AddPiece, PreCommit1, "
                    "PreCommit2, Commit1, vanilla verification, Commit2 and its verification "
                    "(skipped, with the reason, while the circuit's Groth16 parameters are "
                    "missing: 'sealagent params generate'), Finalize, and Unseal compared "
                    "with the data. "
                    "Prints wall seconds, CPU seconds and peak RSS per step; progress goes "
                    "to stderr (each step's own reports: parent cache, layers, trees; a "
                    "'still running' line after 15 s without one).  Peak RSS is the "
                    "process' highest resident set during the step (with --isolate: the "
                    "phase's own child process).",
    )
    parser.add_argument("--sector-size", required=True, choices=SECTOR_SIZES,
                        metavar="SIZE", help="2KiB, 8MiB or 512MiB")
    parser.add_argument("--plugin", action="append", default=[], metavar="NAME",
                        help="backend to prefer (repeatable, in order); cpu runs the rest")
    parser.add_argument("--cc", action="store_true",
                        help="seal zeros (committed capacity) instead of random data")
    parser.add_argument("--isolate", action="store_true",
                        help="run each phase in its own child process (exact per-phase "
                             "peak RSS; adds process start-up to the run)")
    parser.add_argument("--json", type=Path, metavar="FILE", dest="json_file",
                        help="also write the numbers as JSON to FILE")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="seal in DIR (new or empty) and keep the sector files")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark; exit status 1 if verification or the unseal check failed."""
    check_tmpdir(os.environ)
    report = run_bench(args.sector_size, args.plugin, cc=args.cc, keep=args.keep,
                       isolate=args.isolate,
                       progress=lambda line: print(f"bench: {line}", file=sys.stderr,
                                                   flush=True))
    print(render_report(report))
    if args.json_file is not None:
        args.json_file.write_text(json.dumps(report.to_json(), indent=2) + "\n")
    return 0 if report.ok else 1


def render_report(report: BenchReport) -> str:
    """The human-readable report: one row per step, then the commitments and checks."""
    rows = []
    for step in report.steps:
        if step.skipped is not None:
            rows.append([step.name, "-", "-", "-", "-", f"skipped: {step.skipped}"])
            continue
        rows.append([step.name, step.backend or "-", f"{step.wall_s:.3f}",
                     f"{step.cpu_s:.3f}", _mib(step.peak_rss_bytes), ""])
    table = format_table(["STEP", "BACKEND", "WALL S", "CPU S", "PEAK RSS", "NOTE"], rows)
    per_label = report.pc1_us_per_label
    data = "committed capacity" if report.committed_capacity else "random data"
    lines = [
        f"sector: {report.proof} ({data})",
        table,
        f"comm_d: {report.comm_d}",
        f"comm_r: {report.comm_r}",
        f"PC1: {per_label:.1f} µs/label" if per_label is not None else "PC1: -",
        f"verified: {'yes' if report.verified else 'NO'}",
        f"unseal matches data: {'yes' if report.unseal_ok else 'NO'}",
    ]
    return "\n".join(lines)


def _mib(value: int | None) -> str:
    """Bytes as MiB with one decimal."""
    return "-" if value is None else f"{value / (1 << 20):.1f} MiB"
