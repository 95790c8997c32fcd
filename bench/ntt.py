"""Commit2's H polynomial (seven NTTs over Fr): the reference against ``multicore``'s kernel.

For each size, the same random evaluations go through
:func:`sealagent.snark.ntt.quotient_coefficients` (numpy object arrays) and through
:class:`sealagent_multicore.ntt.CompiledNtt` on 1 thread and on ``--threads`` threads
(after warming); the results must be identical.  Wall and CPU seconds, and the same-run
ratio.  ``--compiled-only`` sizes (e.g. the 2 KiB circuit's 2²²) run the compiled kernel
alone: the reference takes many minutes there.

    python bench/ntt.py --sizes 12 14 16 --compiled-only 20 22

Prints a table and writes ``bench/results/ntt-<date>.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from sealagent.cli.formatting import format_table
from sealagent.proofs.field import R
from sealagent.snark.ntt import Vec, quotient_coefficients


def _timed(fn: Callable[[], Vec]) -> tuple[Vec, float, float]:
    """``fn()``'s result, wall seconds and this process's CPU seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def _random(size: int, rng: random.Random) -> Vec:
    out = np.empty(size, dtype=object)
    out[:] = [rng.randrange(R) for _ in range(size)]
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the sizes, print the table, write the JSON."""
    from sealagent_multicore import prover_kernels
    from sealagent_multicore.ntt import CompiledNtt

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[12, 14, 16],
                    help="log2 sizes to run with both kernels")
    ap.add_argument("--compiled-only", type=int, nargs="*", default=[20],
                    help="log2 sizes to run with the compiled kernel alone")
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args(argv)
    prover_kernels(args.threads)  # compile or load the kernels
    kernels = {1: CompiledNtt(1), args.threads: CompiledNtt(args.threads)}
    rng = random.Random(0)
    rows: list[dict[str, Any]] = []
    for log, with_reference in [*((s, True) for s in args.sizes),
                                *((s, False) for s in args.compiled_only)]:
        a, b, c = (_random(1 << log, rng) for _ in range(3))
        row: dict[str, Any] = {"size": f"2^{log}"}
        expected = None
        if with_reference:
            expected, row["reference_wall_s"], row["reference_cpu_s"] = _timed(
                lambda a=a, b=b, c=c: quotient_coefficients(a, b, c))
        for threads, kernel in kernels.items():
            got, wall, cpu = _timed(lambda k=kernel, a=a, b=b, c=c: k.quotient(a, b, c))
            row[f"compiled_{threads}t_wall_s"], row[f"compiled_{threads}t_cpu_s"] = wall, cpu
            if expected is not None:
                row["identical"] = bool(row.get("identical", True)
                                        and got.tolist() == expected.tolist())
                row[f"ratio_{threads}t_wall"] = row["reference_wall_s"] / wall
        rows.append(row)
        print(f"2^{log} done", file=sys.stderr, flush=True)
    keys = list(dict.fromkeys(k for r in rows for k in r))
    print(format_table([k.upper() for k in keys],
                       [[(f"{r[k]:.3g}" if isinstance(r.get(k), float) else str(r.get(k, "-")))
                         for k in keys] for r in rows]))
    result = {"date": dt.date.today().isoformat(), "python": platform.python_version(),
              "cpus": os.cpu_count(), "load_average_at_start": os.getloadavg(),
              "threads": args.threads, "what": "quotient_coefficients: 7 NTTs + pointwise",
              "rows": rows}
    path = args.out / f"ntt-{result['date']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
    return 0 if all(r.get("identical", True) for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
