"""Phase child start-up: what a phase's child process pays before its backend runs.

Every phase runs in a fresh Python process that imports the child-process protocol and
the backends (:mod:`sealagent.plugins.child`).  This measures, in fresh interpreters,
the import cost of those modules as ``python -X importtime`` reports it (the sum of the
top-level cumulative times) and the wall time of the whole interpreter run.

    python bench/child_startup.py --repeat 15 --json results/child-startup-<date>.json

``--imports`` names the modules (default: the child protocol and the ``cpu`` backend).
Prints a table and, as its last line, ``median_import_s=<number>``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
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


def measure(imports: tuple[str, ...]) -> tuple[float, float, bool]:
    """One fresh interpreter: (import seconds, wall seconds, numpy loaded)."""
    code = "".join(f"import {m}\n" for m in imports) + (
        "import sys\nprint('numpy' in sys.modules)\n")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", code], check=True,
                          capture_output=True, text=True)
    wall = time.perf_counter() - start
    return import_seconds(done.stderr), wall, done.stdout.strip() == "True"


def main(argv: list[str] | None = None) -> int:
    """Run the measurement, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--imports", nargs="+", default=list(DEFAULT_IMPORTS))
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    imports = tuple(args.imports)
    measure(imports)  # warm the file cache and the bytecode
    runs = [measure(imports) for _ in range(args.repeat)]
    import_s = statistics.median(r[0] for r in runs)
    wall_s = statistics.median(r[1] for r in runs)
    numpy = any(r[2] for r in runs)
    print(f"{'imports':40} {'import s (median)':>18} {'min':>7} {'wall s':>8} numpy")
    print(f"{' '.join(imports):40} {import_s:18.3f} {min(r[0] for r in runs):7.3f} "
          f"{wall_s:8.3f} {'yes' if numpy else 'no'}")
    if args.json:
        result: dict[str, Any] = {
            "imports": list(imports), "repeat": args.repeat,
            "median_import_s": import_s, "min_import_s": min(r[0] for r in runs),
            "median_wall_s": wall_s, "numpy_loaded": numpy,
            "python": platform.python_version(), "machine": platform.machine(),
            "date": dt.date.today().isoformat(),
        }
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"median_import_s={import_s:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
