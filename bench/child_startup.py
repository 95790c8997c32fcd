"""Start-up cost of a fresh interpreter: a phase's child process, or a ``sealagent`` call.

Every phase runs in a fresh Python process that imports the child-process protocol and
the backends (:mod:`sealagent.plugins.child`).  This measures, in fresh interpreters,
the import cost of those modules as ``python -X importtime`` reports it (the sum of the
top-level cumulative times) and the wall time of the whole interpreter run.

    python bench/child_startup.py --repeat 15 --json results/child-startup-<date>.json

``--imports`` names the modules (default: the child protocol and the ``cpu`` backend).
``--command ARGS`` measures a whole ``sealagent ARGS`` call instead (``python -m
sealagent``, e.g. ``--command "sectors list --help"``): import time and wall time.
``--baseline DIR`` also measures another checkout (its ``agent/`` and ``plugins/`` first on
``PYTHONPATH``), importing ``--baseline-imports``, interleaved run by run with this one so
that both see the same machine load, and prints the ratio.  Prints a table and, as its last
line, ``median_import_s=<number>`` (this checkout).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

DEFAULT_IMPORTS = ("sealagent.plugins.child", "sealagent_cpu")


def import_seconds(stderr: str) -> float:
    """Total import time from ``-X importtime`` output: top-level cumulative times."""
    total_us = 0
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line.split("|")
        if not name.startswith("  "):  # nested imports are indented by two spaces
            total_us += int(cumulative)
    return total_us / 1e6


Run = tuple[float, float, bool]
"""One fresh interpreter: import seconds, wall seconds, whether numpy got loaded."""


def measure(imports: tuple[str, ...], tree: Path | None = None,
            command: list[str] | None = None) -> Run:
    """Import ``imports`` in a fresh interpreter (from checkout ``tree`` if given), or run
    ``sealagent COMMAND`` there (numpy then reads as not loaded: it is not reported)."""
    code = "".join(f"import {m}\n" for m in imports) + (
        "import sys\nprint('numpy' in sys.modules)\n")
    run = ["-c", code] if command is None else ["-m", "sealagent", *command]
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(tree / "agent"), str(tree / "plugins"),
                                             env.get("PYTHONPATH", "")])
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-X", "importtime", *run], check=True,
                          capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    return import_seconds(done.stderr), wall, done.stdout.strip() == "True"


def summary(label: str, imports: tuple[str, ...], runs: list[Run]) -> dict[str, Any]:
    """Medians and minimum of ``runs``, printed as a table row."""
    row = {"label": label, "imports": list(imports),
           "median_import_s": statistics.median(r[0] for r in runs),
           "min_import_s": min(r[0] for r in runs),
           "median_wall_s": statistics.median(r[1] for r in runs),
           "numpy_loaded": any(r[2] for r in runs)}
    print(f"{label:10} {' '.join(imports):40} {row['median_import_s']:18.3f} "
          f"{row['min_import_s']:7.3f} {row['median_wall_s']:8.3f} "
          f"{'yes' if row['numpy_loaded'] else 'no'}")
    return row


def main(argv: list[str] | None = None) -> int:
    """Run the measurement, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--imports", nargs="+", default=list(DEFAULT_IMPORTS))
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--baseline", type=Path, metavar="DIR",
                        help="another checkout to measure alongside this one")
    parser.add_argument("--baseline-imports", nargs="+", default=list(DEFAULT_IMPORTS))
    parser.add_argument("--command", metavar="ARGS",
                        help="measure `sealagent ARGS` instead of importing modules")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    command = None if args.command is None else args.command.split()
    imports, base_imports = tuple(args.imports), tuple(args.baseline_imports)
    if command is not None:
        imports = base_imports = ("sealagent", *command)
    measure(imports, command=command)  # warm the file cache and the bytecode
    if args.baseline:
        measure(base_imports, args.baseline, command)
    runs: list[Run] = []
    base_runs: list[Run] = []
    for _ in range(args.repeat):
        runs.append(measure(imports, command=command))
        if args.baseline:
            base_runs.append(measure(base_imports, args.baseline, command))
    print(f"{'checkout':10} {'imports':40} {'import s (median)':>18} {'min':>7} {'wall s':>8} "
          "numpy")
    rows = [summary("this", imports, runs)]
    if args.baseline:
        rows.append(summary("baseline", base_imports, base_runs))
        print(f"baseline / this (median import): "
              f"{rows[1]['median_import_s'] / rows[0]['median_import_s']:.1f}x; "
              f"(median wall): {rows[1]['median_wall_s'] / rows[0]['median_wall_s']:.1f}x")
    if args.json:
        result: dict[str, Any] = {
            "repeat": args.repeat, "results": rows,
            "python": platform.python_version(), "machine": platform.machine(),
            "cpus": os.cpu_count(), "load_average": os.getloadavg(),
            "date": dt.date.today().isoformat(),
        }
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"median_import_s={rows[0]['median_import_s']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
