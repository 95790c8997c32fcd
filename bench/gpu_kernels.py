"""Poseidon kernel throughput on the GPU, kernels alone (no transfers, no files).

For each arity, hashes ``--groups`` random groups already on the GPU ``--repeat`` times
between two CUDA events, after one warm-up launch (which also compiles or loads the
kernels), and checks the first 64 digests against the reference Poseidon.  Prints a table,
a projection of the kernel time of PreCommit2 (column hashes plus tree_c and tree_r_last)
per sector size from the per-hash times, and writes JSON.

    python bench/gpu_kernels.py --json results/gpu-kernels-<gpu>-<date>.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any, Final

import numpy as np

from sealagent.proofs import default_proof, parse_sector_size
from sealagent.proofs.poseidon import poseidon_hash_level
from sealagent_gpu_cupy.device import BLOCKS_PER_SM, CupyOps, device_name, shared_modules

CHECKED: Final = 64
"""Digests compared with the reference per arity."""

SIZES: Final = ("8MiB", "512MiB", "32GiB")


def random_nodes(count: int, seed: int) -> np.ndarray:
    """``count`` random canonical nodes (values below 2^254 < r)."""
    limbs = np.random.default_rng(seed).integers(0, 2**32, size=(count, 8), dtype=np.uint32)
    limbs[:, 7] &= 0x3FFFFFFF
    return limbs.view(np.uint8).reshape(-1, 32)


def measure(cupy: Any, arity: int, groups: int, repeat: int) -> dict[str, Any]:
    """Time ``repeat`` launches of ``groups`` hashes of ``arity``; check against the reference."""
    sms = int(cupy.cuda.runtime.getDeviceProperties(0)["multiProcessorCount"])
    nodes = random_nodes(groups * arity, arity)
    device_nodes = cupy.asarray(nodes)
    bad = cupy.zeros(1, dtype=cupy.uint32)
    ops = CupyOps(cupy, shared_modules(cupy), bad, sms * BLOCKS_PER_SM)
    out = ops.hash(arity, device_nodes, arity, 1, groups)
    start, end = cupy.cuda.Event(), cupy.cuda.Event()
    start.record()
    for _ in range(repeat):
        out = ops.hash(arity, device_nodes, arity, 1, groups)
    end.record()
    end.synchronize()
    ms = float(cupy.cuda.get_elapsed_time(start, end)) / repeat
    checked = min(CHECKED, groups)
    expected = poseidon_hash_level(nodes[: checked * arity], arity)
    return {
        "arity": arity, "groups": groups, "repeat": repeat, "ms_per_launch": ms,
        "ns_per_hash": ms * 1e6 / groups, "hashes_per_s": groups / (ms / 1000),
        "matches_reference": bool(out[:checked].get().tobytes() == expected.tobytes()
                                  and int(bad.get()[0]) == 0),
    }


def projected_pc2_seconds(ns_per_hash: dict[int, float], size: str) -> float | None:
    """Kernel seconds of one PreCommit2 of ``size`` from the per-hash times, if all known."""
    proof = default_proof(parse_sector_size(size))
    base = proof.shape.base_arity
    if proof.layers not in ns_per_hash or base not in ns_per_hash:
        return None
    tree_hashes = (proof.nodes - 1) // (base - 1)
    return (proof.nodes * ns_per_hash[proof.layers] + 2 * tree_hashes * ns_per_hash[base]) / 1e9


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; exits 1 when a digest differs from the reference."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arity", type=int, action="append",
                        help="arities to measure (default 2, 8 and 11)")
    parser.add_argument("--groups", type=int, default=1 << 20, help="hashes per launch")
    parser.add_argument("--repeat", type=int, default=5, help="timed launches per arity")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)
    import cupy

    rows = [measure(cupy, arity, args.groups, args.repeat) for arity in args.arity or (2, 8, 11)]
    per_hash = {row["arity"]: row["ns_per_hash"] for row in rows}
    report = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "device": device_name(cupy, 0), "kernels": rows,
        "projected_pc2_kernel_s": {size: projected_pc2_seconds(per_hash, size)
                                   for size in SIZES},
    }
    print(f"device: {report['device']}")
    print(f"{'arity':>5} {'ns/hash':>10} {'Mhash/s':>10} {'matches':>8}")
    for row in rows:
        print(f"{row['arity']:>5} {row['ns_per_hash']:>10.1f} "
              f"{row['hashes_per_s'] / 1e6:>10.2f} {row['matches_reference']!s:>8}")
    for size, seconds in report["projected_pc2_kernel_s"].items():
        if seconds is not None:
            print(f"PreCommit2 {size}: {seconds:.3f} s of kernels (projected)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if all(row["matches_reference"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
