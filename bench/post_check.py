"""What ``sectors check --slow`` costs per sector: fresh challenges answered and verified.

For each sector size, a stored sector is made up without sealing: a random replica (as
field elements), its tree-r-last files built as PreCommit2 builds them, ``p_aux`` and
``t_aux``.  Then, ``--repeat`` times with fresh randomness, the 10 Window PoSt challenges
are drawn, answered from the files (:func:`sealagent.proofs.post.generate_sector_proof`,
what the host holding the files runs) and verified against CommR
(:func:`~sealagent.proofs.post.verify_sector_proof`, what the manager runs).  From 8 MiB
up each challenge rebuilds a segment of 512 sealed nodes, as for 32 GiB.

    python bench/post_check.py --sizes 2KiB 8MiB --repeat 9

Prints a table (medians) and writes ``bench/results/post-check-<date>.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from sealagent.cli.formatting import format_table
from sealagent.proofs.cache_files import PersistentAux, StoreConfig, TemporaryAux
from sealagent.proofs.merkle import tree_r_last_layout
from sealagent.proofs.poseidon import poseidon_hash
from sealagent.proofs.post import (
    fallback_challenges,
    fresh_randomness,
    generate_sector_proof,
    verify_sector_proof,
)
from sealagent.proofs.seal import map_nodes
from sealagent.vocab.registry import default_proof, parse_sector_size


def make_sector(root: Path, size: int) -> tuple[Path, Path, bytes, float]:
    """Sealed file and cache of a made-up sector of ``size`` bytes under ``root``;
    returns them, its CommR and the seconds tree-r-last took to build."""
    proof = default_proof(size)
    rng = np.random.default_rng(size)
    replica = rng.integers(0, 256, size=(proof.nodes, 32), dtype=np.uint8)
    replica[:, 31] &= 0x3F  # below 2^254: field elements
    sealed, cache = root / "sealed", root / "cache"
    cache.mkdir()
    sealed.write_bytes(replica.tobytes())
    tree = tree_r_last_layout(cache, proof.shape)
    start = time.perf_counter()
    comm_r_last = tree.build(map_nodes(sealed, proof.nodes))
    built = time.perf_counter() - start
    comm_c = bytes(rng.integers(0, 256, 31, dtype=np.uint8)) + b"\x01"
    PersistentAux(comm_c, comm_r_last).write(cache)
    unused = StoreConfig(str(cache), "unused", None, 0)
    TemporaryAux((), unused, StoreConfig(str(cache), tree.store_id, proof.nodes,
                                         tree.rows_to_discard), unused).write(cache)
    return sealed, cache, poseidon_hash([comm_c, comm_r_last]), built


def measure(size: int, repeat: int) -> dict[str, Any]:
    """Median seconds to answer and to verify 10 fresh challenges of one sector."""
    proof = default_proof(size)
    with tempfile.TemporaryDirectory() as tmp:
        sealed, cache, comm_r, built = make_sector(Path(tmp), size)
        answer_s, verify_s = [], []
        for _ in range(repeat):
            challenges = fallback_challenges(proof, fresh_randomness(), 1)
            start = time.perf_counter()
            answer = generate_sector_proof(proof, cache, sealed, challenges)
            middle = time.perf_counter()
            verify_sector_proof(answer, registered_proof=proof, comm_r=comm_r,
                                challenges=challenges)
            answer_s.append(middle - start)
            verify_s.append(time.perf_counter() - middle)
        tree = tree_r_last_layout(cache, proof.shape)
        return {"sector_size": size, "proof": proof.name, "challenges": len(challenges),
                "rows_to_discard": tree.rows_to_discard,
                "segment_nodes": proof.shape.base_arity ** tree.first_stored_row,
                "tree_build_s": built, "answer_s": statistics.median(answer_s),
                "verify_s": statistics.median(verify_s), "repeat": repeat}


def main(argv: list[str] | None = None) -> int:
    """Measure every size, print the table, write the JSON."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", nargs="*", default=["2KiB", "8MiB"])
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args(argv)
    rows = [measure(parse_sector_size(s), args.repeat) for s in args.sizes]
    print(format_table(
        ["sector", "rows_to_discard", "segment", "answer (10 challenges)", "verify"],
        [[r["proof"], str(r["rows_to_discard"]), str(r["segment_nodes"]),
          f"{r['answer_s'] * 1000:.1f} ms", f"{r['verify_s'] * 1000:.1f} ms"] for r in rows]))
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"post-check-{dt.date.today().isoformat()}.json"
    out.write_text(json.dumps({"machine": platform.machine(), "python": platform.python_version(),
                               "results": rows}, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
