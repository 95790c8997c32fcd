"""PreCommit2 of one backend against another: same inputs, same files, and both timings.

Seals a deterministic sector (:class:`sealagent.testing.SectorInputs`) up to PreCommit1
with ``--prep`` (default ``cpu``), then runs PreCommit2 twice from the same files, once
with ``--candidate`` and once with ``--reference``, and compares every file under the
sector's storage root byte for byte (tree_c, tree_r_last, the sealed replica, p_aux,
t_aux ...) and both results.

    python bench/pc2_identity.py --sector-size 8MiB --candidate gpu-cupy --reference cpu
    python bench/pc2_identity.py --sector-size 512MiB --candidate gpu-cupy \\
        --reference multicore --prep multicore --json results/pc2-identity-512MiB.json

Prints a table and ``identical=<true|false>`` as the last line; exits 1 when the files or
results differ.  Wall seconds are measured in this process around each PreCommit2.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sealagent.phases import Phase
from sealagent.plugins import PluginSet
from sealagent.proofs import default_proof, parse_sector_size
from sealagent.testing import SealState, SectorInputs, compare_trees, run_requests


def _timed_pc2(plugins: PluginSet, name: str, inputs: SectorInputs, root: Path,
               state: SealState) -> tuple[float, list[dict[str, Any]], set[str]]:
    """Run PreCommit2 on backend ``name``: wall seconds, results, backends that ran."""
    selection = plugins.select([name])
    start = time.perf_counter()
    _, results, backends = run_requests(Phase.PRECOMMIT2, inputs, root, state, selection)
    return time.perf_counter() - start, [r.to_json() for r in results], backends


def compare(size: str, candidate: str, reference: str, prep: str, work: Path) -> dict[str, Any]:
    """Seal up to PC1, run PC2 with both backends, compare; the report as a dict."""
    plugins = PluginSet.load()
    proof = default_proof(parse_sector_size(size))
    inputs = SectorInputs.create(work / "inputs", proof=proof.name)
    root, before = work / "sector", work / "before"
    state, prep_selection = SealState(), plugins.select([prep])
    for phase in (Phase.ADD_PIECE, Phase.PRECOMMIT1):
        state = run_requests(phase, inputs, root, state, prep_selection)[0]
    shutil.copytree(root, before, symlinks=True)
    cand_s, cand_results, cand_backends = _timed_pc2(plugins, candidate, inputs, root, state)
    root.rename(work / "candidate")
    shutil.copytree(before, root, symlinks=True)
    ref_s, ref_results, ref_backends = _timed_pc2(plugins, reference, inputs, root, state)
    problems = compare_trees(root, work / "candidate")
    if cand_results != ref_results:
        problems.append(f"results differ: {cand_results} vs {ref_results}")
    if cand_backends != {candidate}:
        problems.append(f"PreCommit2 ran on {sorted(cand_backends)}, not {candidate}")
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "sector_size": size,
        "proof": proof.name,
        "candidate": candidate,
        "candidate_description": plugins.info(candidate).description,
        "reference": sorted(ref_backends),
        "prep": prep,
        "candidate_pc2_s": cand_s,
        "reference_pc2_s": ref_s,
        "speedup": ref_s / cand_s if cand_s > 0 else None,
        "comm_r": cand_results[0].get("comm_r") if cand_results else None,
        "identical": not problems,
        "problems": problems,
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sector-size", required=True, help="2KiB, 8MiB or 512MiB")
    parser.add_argument("--candidate", required=True, help="backend under test")
    parser.add_argument("--reference", default="cpu", help="backend to compare with")
    parser.add_argument("--prep", default="cpu", help="backend for AddPiece and PreCommit1")
    parser.add_argument("--json", type=Path, help="also write the report to this file")
    parser.add_argument("--workdir", type=Path, help="scratch directory (default: temporary)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pc2-identity-", dir=args.workdir) as tmp:
        report = compare(args.sector_size, args.candidate, args.reference, args.prep, Path(tmp))
    for key in ("sector_size", "candidate_description", "reference", "candidate_pc2_s",
                "reference_pc2_s", "speedup", "comm_r", "problems"):
        print(f"{key:22} {report[key]}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"identical={str(report['identical']).lower()}")
    return 0 if report["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
