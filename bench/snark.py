"""Commit2 benchmark: the Groth16 SNARK of one real sector, end to end.

Seals a sector with the reference proofs library (AddPiece, PC1, PC2, C1), makes the
circuit's parameters if the parameter cache lacks them (timed: the one-time setup), then
times Commit2 (witness, NTTs, MSMs; the proof is checked inside Commit2 as
filecoin-proofs does) and ``verify_seal`` (best of ``--verify-repeat``).  Peak RSS is
reported for this process and, separately, for the setup's worker processes.

    python bench/snark.py --sector-size 2KiB --param-cache /var/tmp/sealagent-params

``--plugin multicore`` proves with that backend's prover kernels (the compiled NTT on
``$SEALAGENT_THREADS`` or all usable CPUs) and writes ``snark-<size>-multicore-<date>.json``.

``--sha256-blocks N`` measures the same Groth16 pipeline (setup, prove, verify) on a
small circuit instead: N SHA-256 compressions of private blocks with the digests packed
into public inputs; the PoRep circuit is 98 % SHA-256, so its per-constraint figures carry
over.  Prints a table and writes ``bench/results/snark-<size or shaN>-<date>.json``; the
last line is ``prove_s=<number>``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import platform
import resource
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from sealagent.proofs import (
    RegisteredSealProof,
    add_piece,
    seal_commit_phase1,
    seal_pre_commit_phase1,
    seal_pre_commit_phase2,
)
from sealagent.snark.bits import alloc_bit, pack_into_inputs
from sealagent.snark.cs import ConstraintSystem
from sealagent.snark.groth16 import Parameters, generate_parameters, prove, verify
from sealagent.snark.kernels import REFERENCE_PROVER_KERNELS, ProverKernels
from sealagent.snark.parameters import generate, parameters_exist
from sealagent.snark.porep import circuit_info
from sealagent.snark.seal import seal_commit_phase2, verify_seal
from sealagent.snark.sha256 import compression, sha256_iv
from sealagent.snark.stacked import circuit_params
from sealagent.vocab.registry import default_proof, parse_sector_size

PROVER_ID = bytes(range(32))
TICKET = bytes([3] * 32)
SEED = bytes([5] * 32)


def _peak_mib(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


def _seal(proof: RegisteredSealProof, root: Path) -> tuple[object, float]:
    (root / "cache").mkdir()
    size = proof.sector_size // 128 * 127
    payload = bytes((7 * i + 1) % 256 for i in range(size))
    start = time.perf_counter()
    piece = add_piece(proof, payload, root / "unsealed", size, []).piece
    pc1 = seal_pre_commit_phase1(proof, root / "cache", root / "unsealed", root / "sealed",
                                 prover_id=PROVER_ID, sector_id=1, ticket=TICKET,
                                 pieces=[piece])
    seal_pre_commit_phase2(pc1, root / "cache", root / "sealed")
    c1 = seal_commit_phase1(proof, root / "cache", root / "sealed", prover_id=PROVER_ID,
                            sector_id=1, ticket=TICKET, seed=SEED, pieces=[piece])
    return c1, time.perf_counter() - start


def _progress(stage: str, done: int, total: int) -> None:
    print(f"  {stage}: {done}/{total}", file=sys.stderr, flush=True)


def _sha_circuit(cs: ConstraintSystem, blocks: list[bytes] | None, count: int) -> None:
    """``count`` compressions of private 512-bit blocks; the digests become public inputs."""
    for k in range(count):
        data = blocks[k] if blocks else None
        bits = [alloc_bit(cs, None if data is None else (data[i // 8] >> (7 - i % 8)) & 1)
                for i in range(512)]
        state = compression(cs, bits, sha256_iv())
        pack_into_inputs(cs, [b for word in state for b in word.bits_be()])


def bench_sha(count: int, workers: int) -> dict[str, object]:
    """Setup, prove and verify the SHA-256 circuit of ``count`` compressions."""
    shape_cs = ConstraintSystem(witness=False, shape=True)
    _sha_circuit(shape_cs, None, count)
    shape = shape_cs.shape()
    buf = io.BytesIO()
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers) as pool:
        generate_parameters(shape, buf, pool=pool if workers > 1 else None)
    setup_s = time.perf_counter() - start
    params = Parameters(buf.getvalue())
    blocks = [os.urandom(64) for _ in range(count)]
    start = time.perf_counter()
    cs = ConstraintSystem(witness=True)
    _sha_circuit(cs, blocks, count)
    witness_s = time.perf_counter() - start
    proof = prove(params, cs)
    prove_s = time.perf_counter() - start
    times = []
    for _ in range(5):
        start = time.perf_counter()
        assert verify(params.vk, proof, cs.input_values[1:])
        times.append(time.perf_counter() - start)
    return {"circuit": f"{count} SHA-256 compression(s)", "constraints": shape.num_constraints,
            "public_inputs": shape.num_inputs, "private_variables": shape.num_aux,
            "setup_s": round(setup_s, 2), "setup_workers": workers,
            "witness_s": round(witness_s, 2), "prove_s": round(prove_s, 2),
            "verify_ms": round(min(times) * 1000, 2), "params_bytes": len(buf.getvalue())}


def main() -> int:
    """Run the benchmark."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sector-size", default="2KiB")
    ap.add_argument("--param-cache", type=Path, default=None,
                    help="FIL_PROOFS_PARAMETER_CACHE to use (default: the environment's)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                    help="processes for the one-time setup")
    ap.add_argument("--verify-repeat", type=int, default=5)
    ap.add_argument("--setup-only", action="store_true")
    ap.add_argument("--sha256-blocks", type=int, default=0,
                    help="measure a circuit of this many SHA-256 compressions instead")
    ap.add_argument("--plugin", choices=("cpu", "multicore"), default="cpu",
                    help="whose prover kernels Commit2 uses")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args()
    if args.sha256_blocks:
        small: dict[str, object] = {
            "date": dt.date.today().isoformat(), "python": platform.python_version(),
            "cpus": os.cpu_count(), **bench_sha(args.sha256_blocks, args.workers)}
        small["peak_rss_mib"] = round(_peak_mib(resource.RUSAGE_SELF))
        return _report(small, args.out / f"snark-sha{args.sha256_blocks}-{small['date']}.json")
    if args.param_cache:
        os.environ["FIL_PROOFS_PARAMETER_CACHE"] = str(args.param_cache)
    proof = default_proof(parse_sector_size(args.sector_size))
    result: dict[str, object] = {
        "sector_size": args.sector_size, "registered_proof": proof.name,
        "date": dt.date.today().isoformat(), "python": platform.python_version(),
        "cpus": os.cpu_count(), "machine": platform.machine(), "plugin": args.plugin,
    }
    kernels = _prover_kernels(args.plugin)
    result["prover_kernels"] = kernels.name
    info = circuit_info(circuit_params(proof))
    result.update(constraints_per_partition=info.constraints,
                  public_inputs_per_partition=info.public_inputs, partitions=proof.partitions)
    if parameters_exist(proof):
        result["setup_s"] = None
    else:
        start = time.perf_counter()
        generate(proof, progress=_progress, workers=args.workers)
        result["setup_s"] = round(time.perf_counter() - start, 1)
        result["setup_workers"] = args.workers
        result["setup_children_peak_rss_mib"] = round(_peak_mib(resource.RUSAGE_CHILDREN))
    if not args.setup_only:
        with tempfile.TemporaryDirectory() as tmp:
            c1, seal_s = _seal(proof, Path(tmp))
        result["seal_to_c1_s"] = round(seal_s, 2)
        start = time.perf_counter()
        seal_proof = seal_commit_phase2(c1, PROVER_ID, 1, progress=_progress,  # type: ignore[arg-type]
                                        kernels=kernels)
        result["prove_s"] = round(time.perf_counter() - start, 1)
        times = []
        for _ in range(args.verify_repeat):
            start = time.perf_counter()
            ok = verify_seal(proof, c1.comm_r, c1.comm_d, PROVER_ID, 1, TICKET, SEED,  # type: ignore[attr-defined]
                             seal_proof)
            times.append(time.perf_counter() - start)
            assert ok
        result["verify_ms"] = round(min(times) * 1000, 1)
        result["proof_bytes"] = len(seal_proof)
    result["peak_rss_mib"] = round(_peak_mib(resource.RUSAGE_SELF))
    suffix = "" if args.plugin == "cpu" else f"-{args.plugin}"
    return _report(result,
                   args.out / f"snark-{args.sector_size}{suffix}-{result['date']}.json")


def _prover_kernels(plugin: str) -> ProverKernels:
    """The reference's prover kernels, or ``multicore``'s on the granted threads."""
    if plugin == "cpu":
        return REFERENCE_PROVER_KERNELS
    from sealagent_multicore import prover_kernels
    from sealagent_multicore.environment import granted_threads

    return prover_kernels(granted_threads())


def _report(result: dict[str, object], path: Path) -> int:
    """Print the table, write the JSON, print the last line."""
    width = max(map(len, result))
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"prove_s={result.get('prove_s')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
