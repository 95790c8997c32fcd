"""The kernel seams: phases run the kernels they are given and keep their files and checks."""

from __future__ import annotations

import dataclasses
import io
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from sealagent.errors import InvalidInputError
from sealagent.proofs import (
    SHA256_HASHER,
    TreeHasher,
    add_piece,
    clear_cache,
    seal_pre_commit_phase1,
    seal_pre_commit_phase2,
    unseal_range,
)
from sealagent.proofs.kernels import (
    REFERENCE_KERNELS,
    Progress,
    SealKernels,
    build_replica_tree,
    build_tree,
    hash_columns,
    replica_tree_builder_with,
    tree_builder_with,
)
from sealagent.proofs.labels import LabelsArray, ProgressCallback, label_layer
from sealagent.proofs.merkle import Nodes, TreeLayout
from sealagent.proofs.poseidon import ARITIES, poseidon_hash_level

PROOF = "StackedDrg2KiBV1_1"
PROVER_ID, TICKET = bytes(range(32)), bytes(range(1, 33))


def _counting_kernels(calls: Counter[str]) -> SealKernels:
    """The reference kernels, each counting its calls."""

    def labeler(replica_id: bytes, layer: int, parents: np.ndarray, out: memoryview,
                prev: LabelsArray | None, progress: ProgressCallback | None = None) -> None:
        calls["labeler"] += 1
        label_layer(replica_id, layer, parents, out, prev, progress)

    def columns(layers: Sequence[Nodes], out: Nodes, progress: Progress | None = None) -> None:
        calls["columns"] += 1
        hash_columns(layers, out, progress)

    def tree_c(layout: TreeLayout, leaves: Nodes) -> bytes:
        calls["tree_c"] += 1
        return build_tree(layout, leaves)

    def tree_r(layout: TreeLayout, key: Nodes, data: Nodes, replica: Nodes,
               progress: Progress | None = None) -> bytes:
        calls["tree_r"] += 1
        return build_replica_tree(layout, key, data, replica, progress)

    return SealKernels(labeler, columns, tree_c, tree_r, name="counting")


def _seal(root: Path, kernels: SealKernels) -> tuple[bytes, dict[str, bytes]]:
    """Seal a 2 KiB sector under ``root``; return comm_r and every file's bytes."""
    root.mkdir()
    (root / "cache").mkdir()
    data = bytes(i * 7 % 256 for i in range(1016))
    piece = add_piece(PROOF, data, root / "unsealed", len(data)).piece
    pieces = [piece]
    pc1 = seal_pre_commit_phase1(PROOF, root / "cache", root / "unsealed", root / "sealed",
                                 prover_id=PROVER_ID, sector_id=3, ticket=TICKET,
                                 pieces=pieces, kernels=kernels)
    pc2 = seal_pre_commit_phase2(pc1, root / "cache", root / "sealed", kernels=kernels)
    # t_aux names the cache directory: callers give roots of the same length.
    files = {str(p.relative_to(root)): p.read_bytes().replace(str(root).encode(), b"<root>")
             for p in root.rglob("*") if p.is_file()}
    clear_cache(2048, root / "cache")
    out = io.BytesIO()
    unseal_range(PROOF, root / "cache", root / "sealed", out, prover_id=PROVER_ID, sector_id=3,
                 comm_d=pc2.comm_d, ticket=TICKET, offset=0, num_bytes=1016, kernels=kernels)
    assert out.getvalue() == data
    return pc2.comm_r, files


def test_phases_run_the_given_kernels_and_keep_their_files(tmp_path: Path) -> None:
    calls: Counter[str] = Counter()
    comm_r, files = _seal(tmp_path / "one", _counting_kernels(calls))
    # Two layers in PC1, two again for Unseal once the cache is cleared; one call per tree.
    assert calls == {"labeler": 4, "columns": 1, "tree_c": 1, "tree_r": 1}
    assert (comm_r, files) == _seal(tmp_path / "two", REFERENCE_KERNELS)


def test_builders_with_another_hasher_write_the_reference_files(tmp_path: Path) -> None:
    calls: Counter[int] = Counter()

    def level(row: Nodes, arity: int) -> Nodes:
        calls[arity] += 1
        return poseidon_hash_level(row, arity)

    hasher = TreeHasher("counting-poseidon", ARITIES, level)
    kernels = dataclasses.replace(REFERENCE_KERNELS, tree_c_builder=tree_builder_with(hasher),
                                  tree_r_last_builder=replica_tree_builder_with(hasher))
    assert _seal(tmp_path / "one", kernels) == _seal(tmp_path / "two", REFERENCE_KERNELS)
    assert calls[8] > 0


def test_a_builder_hasher_must_support_the_arity(tmp_path: Path) -> None:
    kernels = dataclasses.replace(REFERENCE_KERNELS,
                                  tree_c_builder=tree_builder_with(SHA256_HASHER))
    with pytest.raises(InvalidInputError, match="arities"):
        _seal(tmp_path / "sha", kernels)
