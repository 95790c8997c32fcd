"""The gpu-cupy kernels compiled as host C, against the reference field and Poseidon.

The ``.cu`` source builds both with NVRTC and with the host C compiler, so these tests run
the arithmetic, the permutation and the PC2 pipeline of the GPU backend on the CPU.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sealagent.errors import CorruptDataError, InvalidInputError
from sealagent.proofs.field import R
from sealagent.proofs.merkle import (
    POSEIDON_HASHER,
    TreeLayout,
    TreeShape,
    default_rows_to_discard,
)
from sealagent.proofs.poseidon import poseidon_hash_level
from sealagent.vocab.registry import RegisteredSealProof
from sealagent_gpu_cupy.chunks import ChunkJob, JobKind
from sealagent_gpu_cupy.host import HostEngine, host_compiler, host_kernels
from sealagent_gpu_cupy.schedule import porep_arities, to_montgomery_limbs
from sealagent_gpu_cupy.trees import build_tree, subtree_levels

pytestmark = pytest.mark.skipif(host_compiler() is None,
                                reason="no C compiler ($CC or cc) to build the host kernels")

MONT = 1 << 256
RNG_SEED = 20261206


def field_values(count: int, rng: random.Random) -> list[int]:
    """Random field elements plus the edges 0, 1, r − 1, r − 2."""
    return [0, 1, R - 1, R - 2, *(rng.randrange(R) for _ in range(count - 4))]


def limbs(values: list[int]) -> np.ndarray:
    """Integers (any, below 2^256) as ``(n, 8)`` u32 limbs."""
    raw = b"".join(v.to_bytes(32, "little") for v in values)
    return np.frombuffer(raw, dtype="<u4").astype(np.uint32).reshape(-1, 8)


def ints(array: np.ndarray) -> list[int]:
    """``(n, 8)`` u32 limbs or ``(n, 32)`` bytes back to integers."""
    raw = np.ascontiguousarray(array).tobytes()
    return [int.from_bytes(raw[i : i + 32], "little") for i in range(0, len(raw), 32)]


def nodes(values: list[int]) -> np.ndarray:
    """Integers as ``(n, 32)`` uint8 nodes."""
    return limbs(values).view(np.uint8).reshape(-1, 32)


def random_nodes(count: int, rng: random.Random) -> np.ndarray:
    """``count`` random canonical nodes."""
    return nodes([rng.randrange(R) for _ in range(count)])


# --------------------------------------------------------------------------------------
# Field arithmetic


def test_field_operations_match_python_integers() -> None:
    rng = random.Random(RNG_SEED)
    a, b = field_values(300, rng), field_values(300, rng)
    rng.shuffle(b)
    kernels = host_kernels(2)
    inverse = pow(MONT, -1, R)
    expected = {
        "mul": [x * y * inverse % R for x, y in zip(a, b, strict=True)],
        "add": [(x + y) % R for x, y in zip(a, b, strict=True)],
        "sub": [(x - y) % R for x, y in zip(a, b, strict=True)],
        "to_mont": [x * MONT % R for x in a],
        "from_mont": [x * inverse % R for x in a],
        "pow5": [pow(x, 5, R) * pow(inverse, 4, R) % R for x in a],
    }
    for op, want in expected.items():
        assert ints(kernels.fr_batch(op, limbs(a), limbs(b))) == want, op


def test_montgomery_round_trip_and_constants_encoding() -> None:
    rng = random.Random(RNG_SEED + 1)
    values = field_values(100, rng)
    kernels = host_kernels(2)
    mont = kernels.fr_batch("to_mont", limbs(values), limbs(values))
    assert (mont == to_montgomery_limbs(values)).all()
    assert ints(kernels.fr_batch("from_mont", mont, mont)) == values


def test_canonical_check_rejects_r_and_above() -> None:
    values = [0, R - 1, R, R + 1, (1 << 256) - 1, 1 << 255]
    out = host_kernels(2).fr_batch("canonical", limbs(values), limbs(values))
    assert out[:, 0].tolist() == [1, 1, 0, 0, 0, 0]


# --------------------------------------------------------------------------------------
# Poseidon


@pytest.mark.parametrize("arity", sorted({2, 4, 8, 11, *porep_arities()}))
def test_poseidon_rows_match_reference(arity: int) -> None:
    rng = random.Random(RNG_SEED + arity)
    count = 40
    row = nodes(field_values(count * arity, rng))
    bad = np.zeros(1, dtype=np.uint32)
    got = host_kernels(arity).hash(row, arity, 1, count, bad)
    assert bad[0] == 0
    assert got.tobytes() == poseidon_hash_level(row, arity).tobytes()


@pytest.mark.parametrize("arity", [2, 4, 8, 11, 16, 24, 36])
def test_poseidon_known_answers(vectors: dict[str, dict[str, Any]], arity: int) -> None:
    vec = vectors[f"poseidon_merkletree_arity{arity}_inputs_0_to_{arity - 1}"]
    bad = np.zeros(1, dtype=np.uint32)
    digest = host_kernels(arity).hash(nodes(vec["inputs"]["preimage"]), arity, 1, 1, bad)
    assert digest.tobytes().hex() == vec["expected"]["digest_le_hex"]


@pytest.mark.parametrize("layers", sorted({p.layers for p in RegisteredSealProof}))
def test_column_hashes_read_layers_one_after_another(layers: int) -> None:
    rng = random.Random(RNG_SEED + 100 + layers)
    n = 24
    parts = tuple(random_nodes(n, rng) for _ in range(layers))
    job = ChunkJob(JobKind.COLUMNS, parts, 8, 0)
    out = HostEngine().submit(job).result()
    expected = poseidon_hash_level(np.stack(parts, axis=1).reshape(-1, 32), layers)
    assert out.leaves is not None and out.leaves.tobytes() == expected.tobytes()
    assert out.rows == {}


def test_encode_hash_fuses_the_replica_and_its_first_row() -> None:
    rng = random.Random(RNG_SEED + 7)
    key, data = field_values(64, rng), field_values(64, rng)
    job = ChunkJob(JobKind.ENCODE, (nodes(key), nodes(data)), 8, 2)
    out = HostEngine().submit(job).result()
    replica = nodes([(k + d) % R for k, d in zip(key, data, strict=True)])
    assert out.leaves is not None and out.leaves.tobytes() == replica.tobytes()
    first = poseidon_hash_level(replica, 8)
    assert out.rows[1].tobytes() == first.tobytes()
    assert out.rows[2].tobytes() == poseidon_hash_level(first, 8).tobytes()


def test_rows_below_keep_from_do_not_come_back() -> None:
    rng = random.Random(RNG_SEED + 8)
    job = ChunkJob(JobKind.TREE, (random_nodes(512, rng),), 8, 3, keep_from=3)
    assert set(HostEngine().submit(job).result().rows) == {3}


@pytest.mark.parametrize("kind", [JobKind.TREE, JobKind.COLUMNS, JobKind.ENCODE])
def test_a_node_above_r_is_corrupt_data(kind: JobKind) -> None:
    rng = random.Random(RNG_SEED + 9)
    good = random_nodes(16, rng)
    bad = good.copy()
    bad[5] = nodes([R + 3])[0]
    inputs = {JobKind.TREE: (bad,), JobKind.COLUMNS: (good, bad),
              JobKind.ENCODE: (good, bad)}[kind]
    with pytest.raises(CorruptDataError, match="not a field element"):
        HostEngine().submit(ChunkJob(kind, inputs, 8, 1 if kind is not JobKind.COLUMNS else 0))


def test_chunk_jobs_reject_inconsistent_inputs() -> None:
    rng = random.Random(RNG_SEED + 10)
    with pytest.raises(InvalidInputError, match="cannot be reduced"):
        ChunkJob(JobKind.TREE, (random_nodes(12, rng),), 8, 1)
    with pytest.raises(InvalidInputError, match="inputs"):
        ChunkJob(JobKind.ENCODE, (random_nodes(8, rng),), 8, 1)
    with pytest.raises(InvalidInputError, match="one length"):
        ChunkJob(JobKind.COLUMNS, (random_nodes(8, rng), random_nodes(16, rng)), 8, 0)


# --------------------------------------------------------------------------------------
# Tree files, chunk by chunk


def test_subtree_levels_take_the_biggest_subtree_that_fits() -> None:
    assert subtree_levels(8, 8, 1 << 24) == (8, 1 << 24)
    assert subtree_levels(8, 8, 1 << 22) == (7, 1 << 21)
    assert subtree_levels(3, 8, 1 << 24) == (3, 512)
    assert subtree_levels(3, 8, 2) == (1, 8)
    with pytest.raises(InvalidInputError):
        subtree_levels(3, 8, 0)


@pytest.mark.parametrize(("shape", "leaves", "level_cache"), [
    (TreeShape(8), 512, False),
    (TreeShape(8), 4096, True),
    (TreeShape(8, 2), 2 * 64, False),
    (TreeShape(8, 8, 2), 16 * 8, True),
])
@pytest.mark.parametrize("chunk_nodes", [8, 64, 1 << 20])
def test_tree_files_equal_the_reference(tmp_path: Path, shape: TreeShape, leaves: int,
                                        level_cache: bool, chunk_nodes: int) -> None:
    rng = random.Random(RNG_SEED + leaves + chunk_nodes)
    leaf_nodes = random_nodes(leaves, rng)
    per_tree = leaves // shape.base_tree_count
    discard = default_rows_to_discard(per_tree, shape.base) if level_cache else 0

    def layout(directory: Path) -> TreeLayout:
        return TreeLayout(directory, "tree", leaves, shape, POSEIDON_HASHER,
                          level_cache=level_cache, rows_to_discard=discard)

    expected = layout(tmp_path / "reference")
    want = expected.build(leaf_nodes)
    actual = layout(tmp_path / "engine")
    progress: list[int] = []
    got = build_tree(
        actual,
        lambda start, stop, levels, keep: ChunkJob(JobKind.TREE, (leaf_nodes[start:stop],),
                                                   shape.base, levels, keep),
        HostEngine(), chunk_nodes, progress=lambda done, total: progress.append(done))
    assert got == want
    assert progress[-1] == leaves
    for ref, ours in zip(expected.paths(), actual.paths(), strict=True):
        assert ours.read_bytes() == ref.read_bytes()
