"""``multicore`` against ``cpu``, measured in one run on one machine.

Three parts (each can be skipped):

``kernels``   CPU time of the compiled kernels alone, in this process, after warming:
              µs per label of the SDR labeler (layer 1 and a later layer of one sector)
              and µs per Poseidon hash for arities 2, 8 and 11, each next to the
              reference's on the same inputs (the reference Poseidon on a sample).
``pair``      two PreCommit1 label runs of two sectors: one after the other, then side by
              side on two threads of one process (the compiled labeler releases the GIL);
              throughput in labels per wall second and CPU µs per label.
``parents``   building the parent cache file of each ``--parents-size`` (default 8MiB)
              in an empty directory with the reference (numpy) builder and with the
              compiled one on 1 and on 2 threads: wall and CPU seconds, and whether the
              file has rust-fil-proofs' digest.
``addpiece``  AddPiece of one random piece of each ``--addpiece-size`` (padded; default
              128MiB) into a 512 MiB sector, CommP hashed by hashlib (``cpu``) and by
              the compiled pair hasher on 1 thread: wall and CPU seconds.
``seal``      ``sealagent bench`` (every phase in its own child process) with ``cpu`` and
              with ``multicore`` for each ``--seal-size`` (``--seal-multicore-only`` for
              sizes where ``cpu`` would take hours).

    python bench/multicore.py --json bench/results/multicore-<date>.json
    python bench/multicore.py --skip kernels pair --seal-size 512MiB --seal-multicore-only
    python bench/multicore.py --skip kernels pair seal --parents-size 8MiB 512MiB
    python bench/multicore.py --skip kernels pair parents seal --addpiece-size 512MiB

On a shared machine wall times are noisy: compare CPU times and same-run ratios.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import os
import platform
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from sealagent.benchmark import BenchReport, run_bench
from sealagent.cli.formatting import format_table
from sealagent.proofs.fr32 import to_unpadded_size
from sealagent.proofs.labels import create_label_layers, label_layer
from sealagent.proofs.parent_cache import (
    PARENT_CACHE_ENV,
    PARENT_CACHE_MANIFEST,
    ParentsBuilder,
    load_parents,
    parent_cache_file,
    reference_parents,
)
from sealagent.proofs.pieces import add_piece
from sealagent.proofs.poseidon import poseidon_hash_level
from sealagent.proofs.sha_tree import hash_pairs
from sealagent.units import parse_size
from sealagent.vocab.registry import default_proof, parse_sector_size, resolve_proof, size_name

PROOF_8MIB = "StackedDrg8MiBV1_1"
REFERENCE_SAMPLE_GROUPS = 1024
"""Groups the reference Poseidon is timed on (it is slow)."""


def _cpu(fn: Callable[[], object]) -> float:
    """CPU seconds of this process spent in ``fn()``."""
    start = time.process_time()
    fn()
    return time.process_time() - start


def bench_kernels() -> dict[str, Any]:
    """µs of CPU per label and per hash, compiled vs reference."""
    import sealagent_multicore
    from sealagent_multicore import field_ifma
    from sealagent_multicore.labeler import label_layer as compiled_label_layer
    from sealagent_multicore.poseidon import PoseidonRows

    sealagent_multicore.labeling_kernels(1)
    parents = load_parents(PROOF_8MIB)
    nodes = parents.shape[0]
    replica = bytes(range(32))
    layer1, layer2 = bytearray(nodes * 32), bytearray(nodes * 32)
    out: dict[str, Any] = {"sector": PROOF_8MIB, "nodes": nodes}
    out["label_layer1_us"] = _cpu(lambda: compiled_label_layer(
        replica, 1, parents, memoryview(layer1), None)) / nodes * 1e6
    prev = np.frombuffer(bytes(layer1), dtype=np.uint8).reshape(nodes, 32)
    out["label_layer2_us"] = _cpu(lambda: compiled_label_layer(
        replica, 2, parents, memoryview(layer2), prev)) / nodes * 1e6
    ref = bytearray(nodes * 32)
    out["reference_label_layer1_us"] = _cpu(lambda: label_layer(
        replica, 1, parents, memoryview(ref), None)) / nodes * 1e6
    out["labels_identical"] = ref == layer1
    kernels = {"scalar": PoseidonRows(1, ifma=False)}
    if field_ifma.available():
        kernels["ifma"] = PoseidonRows(1, ifma=True)
    out["poseidon_kernels"] = list(kernels)
    rng = np.random.default_rng(0)
    for arity in (2, 8, 11):
        groups = 1 << 14
        row = rng.integers(0, 256, size=(groups * arity, 32), dtype=np.uint8)
        row[:, 31] &= 0x3F
        few = row[: REFERENCE_SAMPLE_GROUPS * arity]
        expected = poseidon_hash_level(few, arity)
        for name, rows in kernels.items():
            rows.warm()
            out[f"poseidon{arity}_{name}_us"] = _cpu(
                functools.partial(rows.hash_level, row, arity)) / groups * 1e6
            out[f"poseidon{arity}_{name}_identical"] = bool(np.array_equal(
                rows.hash_level(few, arity), expected))
        out[f"reference_poseidon{arity}_us"] = _cpu(
            functools.partial(poseidon_hash_level, few, arity)) / REFERENCE_SAMPLE_GROUPS * 1e6
    return out


def bench_pair() -> dict[str, Any]:
    """Two sectors' labels one after the other, then side by side on two threads."""
    import sealagent_multicore
    from sealagent_multicore.labeler import label_layer as compiled_label_layer

    sealagent_multicore.labeling_kernels(1)
    proof = resolve_proof(PROOF_8MIB)
    labels = 2 * proof.nodes * proof.layers
    with tempfile.TemporaryDirectory(prefix="bench-pair-") as tmp:
        dirs = [Path(tmp) / name for name in ("a", "b")]
        for d in dirs:
            d.mkdir()

        def label(index: int) -> None:
            create_label_layers(proof, bytes([index + 1]) * 31 + b"\0", dirs[index],
                                labeler=compiled_label_layer)

        def timed(run: Callable[[], None]) -> tuple[float, float]:
            wall, cpu = time.perf_counter(), time.process_time()
            run()
            return time.perf_counter() - wall, time.process_time() - cpu

        def sequential() -> None:
            label(0)
            label(1)

        def side_by_side() -> None:
            threads = [threading.Thread(target=label, args=(i,)) for i in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()

        seq_wall, seq_cpu = timed(sequential)
        par_wall, par_cpu = timed(side_by_side)
    return {
        "sector": PROOF_8MIB, "labels": labels,
        "sequential": {"wall_s": seq_wall, "cpu_s": seq_cpu,
                       "labels_per_s": labels / seq_wall, "cpu_us_per_label":
                       seq_cpu / labels * 1e6},
        "side_by_side": {"wall_s": par_wall, "cpu_s": par_cpu,
                         "labels_per_s": labels / par_wall, "cpu_us_per_label":
                         par_cpu / labels * 1e6},
        "throughput_ratio": seq_wall / par_wall,
    }


def bench_seal(size: str, backends: list[str]) -> dict[str, Any]:
    """``sealagent bench --isolate`` for each backend, in this order."""
    reports: dict[str, BenchReport] = {}
    for backend in backends:
        plugins = [] if backend == "cpu" else [backend]
        reports[backend] = run_bench(size, plugins, isolate=True,
                                     progress=lambda line, b=backend: print(
                                         f"[{size} {b}] {line}", file=sys.stderr,
                                         flush=True))
    return {b: r.to_json() for b, r in reports.items()}


def _build_parents(proof: str, builder: ParentsBuilder) -> dict[str, Any]:
    """Build ``proof``'s parent cache file in an empty directory; time and check it."""
    with tempfile.TemporaryDirectory(prefix="parents-") as directory:
        before = os.environ.get(PARENT_CACHE_ENV)
        os.environ[PARENT_CACHE_ENV] = directory
        try:
            wall0, cpu0 = time.perf_counter(), time.process_time()
            path = parent_cache_file(proof, builder=builder)
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        finally:
            if before is None:
                del os.environ[PARENT_CACHE_ENV]
            else:
                os.environ[PARENT_CACHE_ENV] = before
        listed = path.name.removesuffix(".cache") in PARENT_CACHE_MANIFEST
        return {"wall_s": wall, "cpu_s": cpu, "bytes": path.stat().st_size,
                "manifest_digest_checked": listed}


def bench_parents(sizes: list[str]) -> dict[str, Any]:
    """Parent cache builds per size: reference, compiled on 1 and on 2 threads."""
    import sealagent_multicore

    out: dict[str, Any] = {}
    for size in sizes:
        proof = default_proof(parse_sector_size(size)).name
        runs = {"reference": _build_parents(proof, reference_parents)}
        for threads in (1, 2):
            runs[f"compiled_{threads}t"] = _build_parents(
                proof, sealagent_multicore.parents_builder(threads))
        out[size_name(parse_sector_size(size))] = {"proof": proof, **runs}
    return out


def _print_parents(result: dict[str, Any]) -> None:
    """One row per size and builder, with the wall and CPU ratios to the reference."""
    rows = []
    for size, runs in result.items():
        ref = runs["reference"]
        for name in ("reference", "compiled_1t", "compiled_2t"):
            run = runs[name]
            rows.append([size, name, f"{run['wall_s']:.2f}", f"{run['cpu_s']:.2f}",
                         f"{ref['wall_s'] / run['wall_s']:.1f}×",
                         f"{ref['cpu_s'] / run['cpu_s']:.1f}×",
                         "yes" if run["manifest_digest_checked"] else "not listed"])
    print("\nparent cache file build (write, fsync and SHA-256 included)")
    print(format_table(["SIZE", "BUILDER", "WALL S", "CPU S", "WALL RATIO", "CPU RATIO",
                        "DIGEST CHECKED"], rows))


def bench_addpiece(sizes: list[str]) -> dict[str, Any]:
    """AddPiece of a random piece per padded size: hashlib vs compiled CommP hashing."""
    import sealagent_multicore

    compiled = sealagent_multicore.sha256_pairs(1).hash_pairs
    out: dict[str, Any] = {}
    for size in sizes:
        padded = parse_size(size)
        unpadded = to_unpadded_size(padded)
        with tempfile.TemporaryDirectory(prefix="addpiece-") as directory:
            piece = Path(directory) / "piece"
            with piece.open("wb") as f:
                for _ in range(0, unpadded, 1 << 20):
                    f.write(os.urandom(min(1 << 20, unpadded - f.tell())))
            runs: dict[str, Any] = {}
            for name, hasher in (("hashlib", hash_pairs), ("compiled_1t", compiled)):
                target = Path(directory) / name
                with piece.open("rb") as source:
                    wall0, cpu0 = time.perf_counter(), time.process_time()
                    result = add_piece("StackedDrg512MiBV1_1", source, target, unpadded,
                                       pair_hasher=hasher)
                    runs[name] = {"wall_s": time.perf_counter() - wall0,
                                  "cpu_s": time.process_time() - cpu0,
                                  "comm_p": result.piece.cid}
                target.unlink()
            runs["same_comm_p"] = runs["hashlib"]["comm_p"] == runs["compiled_1t"]["comm_p"]
            out[size] = runs
    return out


def _print_addpiece(result: dict[str, Any]) -> None:
    """One row per size: hashlib and compiled, with the ratios."""
    rows = []
    for size, runs in result.items():
        ref, fast = runs["hashlib"], runs["compiled_1t"]
        rows.append([size, f"{ref['wall_s']:.2f}", f"{ref['cpu_s']:.2f}",
                     f"{fast['wall_s']:.2f}", f"{fast['cpu_s']:.2f}",
                     f"{ref['cpu_s'] / fast['cpu_s']:.1f}×",
                     "yes" if runs["same_comm_p"] else "NO"])
    print("\nAddPiece into a 512 MiB sector (fr32, CommP, file writes)")
    print(format_table(["PIECE", "HASHLIB WALL S", "HASHLIB CPU S", "COMPILED WALL S",
                        "COMPILED CPU S", "CPU RATIO", "SAME CommP"], rows))


def _print_seal(size: str, result: dict[str, Any]) -> None:
    """One row per phase: wall, CPU and peak RSS per backend, and the CPU ratio."""
    backends = list(result)
    names = [p["name"] for p in result[backends[0]]["phases"]]
    rows = []
    for name in names:
        row = [name]
        cpu_times = []
        for b in backends:
            step = next(p for p in result[b]["phases"] if p["name"] == name)
            if step["wall_s"] is None:
                row += ["-", "-", "-"]
                cpu_times.append(None)
                continue
            row += [f"{step['wall_s']:.2f}", f"{step['cpu_s']:.2f}",
                    f"{step['peak_rss_bytes'] / 2**20:.0f}"]
            cpu_times.append(step["cpu_s"])
        ratio = (f"{cpu_times[0] / cpu_times[-1]:.1f}×" if len(backends) > 1
                 and cpu_times[0] and cpu_times[-1] else "")
        rows.append([*row, ratio])
    header = ["STEP"]
    for b in backends:
        header += [f"{b} WALL S", f"{b} CPU S", f"{b} RSS MiB"]
    print(f"\nsealing {size} (each phase in its own process)")
    print(format_table([*header, "CPU RATIO"], rows))
    for b in backends:
        r = result[b]
        print(f"{b}: comm_r {r['comm_r']} verified={r['verified']} unseal_ok={r['unseal_ok']}")


def main(argv: list[str] | None = None) -> int:
    """Run the chosen parts, print tables, write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skip", nargs="*", default=[],
                        choices=["kernels", "pair", "parents", "addpiece", "seal"])
    parser.add_argument("--addpiece-size", nargs="+", default=["128MiB"],
                        help="padded piece sizes AddPiece is timed for (default 128MiB)")
    parser.add_argument("--parents-size", nargs="+", default=["8MiB"],
                        help="sizes whose parent cache is built (default 8MiB)")
    parser.add_argument("--seal-size", action="append", default=None,
                        help="sizes to seal (default 8MiB)")
    parser.add_argument("--seal-multicore-only", action="store_true",
                        help="seal with multicore only (for sizes cpu needs hours for)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    result: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(),
                    "load_average_at_start": os.getloadavg()},
    }
    if "kernels" not in args.skip:
        k = result["kernels"] = bench_kernels()
        print(format_table(["KERNEL", "COMPILED µs CPU", "REFERENCE µs CPU", "RATIO"], [
            ["label, layer 1", f"{k['label_layer1_us']:.3f}",
             f"{k['reference_label_layer1_us']:.3f}",
             f"{k['reference_label_layer1_us'] / k['label_layer1_us']:.1f}×"],
            ["label, layer 2", f"{k['label_layer2_us']:.3f}", "", ""],
            *[[f"Poseidon arity {a}, {name}", f"{k[f'poseidon{a}_{name}_us']:.2f}",
               f"{k[f'reference_poseidon{a}_us']:.1f}",
               f"{k[f'reference_poseidon{a}_us'] / k[f'poseidon{a}_{name}_us']:.1f}×"]
              for a in (2, 8, 11) for name in k["poseidon_kernels"]],
        ]))
        if "ifma" in k["poseidon_kernels"]:
            print("Poseidon, ifma (8 lanes, AVX-512 IFMA) against scalar (one group at a "
                  "time): " + ", ".join(
                      f"arity {a} {k[f'poseidon{a}_scalar_us'] / k[f'poseidon{a}_ifma_us']:.1f}×"
                      for a in (2, 8, 11)))
        same = all(v for key, v in k.items() if key.endswith("_identical"))
        print(f"labels and digests identical to the reference: {same}")
    if "pair" not in args.skip:
        p = result["pair"] = bench_pair()
        print(f"\ntwo PC1s of {p['sector']} ({p['labels']} labels in all)")
        print(format_table(["HOW", "WALL S", "CPU S", "LABELS/S", "CPU µs/LABEL"], [
            [how, f"{p[how]['wall_s']:.2f}", f"{p[how]['cpu_s']:.2f}",
             f"{p[how]['labels_per_s']:,.0f}", f"{p[how]['cpu_us_per_label']:.3f}"]
            for how in ("sequential", "side_by_side")]))
        print(f"side-by-side throughput: {p['throughput_ratio']:.2f}× one at a time")
    if "parents" not in args.skip:
        result["parents"] = bench_parents(args.parents_size)
        _print_parents(result["parents"])
    if "addpiece" not in args.skip:
        result["addpiece"] = bench_addpiece(args.addpiece_size)
        _print_addpiece(result["addpiece"])
    if "seal" not in args.skip:
        backends = ["multicore"] if args.seal_multicore_only else ["cpu", "multicore"]
        result["seal"] = {}
        for size in args.seal_size or ["8MiB"]:
            result["seal"][size] = bench_seal(size, backends)
            _print_seal(size, result["seal"][size])
    result["machine"]["load_average_at_end"] = os.getloadavg()
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
