"""Merkle trees: roots, on-disk layouts, compound shapes, inclusion proofs and their JSON."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sealagent.errors import CorruptDataError, InvalidInputError
from sealagent.proofs import merkle, poseidon
from sealagent.proofs.field import R, sha256_trunc254
from sealagent.proofs.merkle import (
    POSEIDON_HASHER,
    SHA256_HASHER,
    MerkleProof,
    PathElement,
    TreeHasher,
    TreeLayout,
    TreeShape,
)
from sealagent.vocab.registry import resolve_proof

HashFn = Callable[[Sequence[bytes]], bytes]


def _poseidon(children: Sequence[bytes]) -> bytes:
    return poseidon.poseidon_hash(children)


def _sha(children: Sequence[bytes]) -> bytes:
    return sha256_trunc254(b"".join(children))


def naive_root(leaves: Sequence[bytes], arity: int, hash_fn: HashFn) -> bytes:
    """Top-down recursion: the root is the hash of the roots of the ``arity`` sub-ranges."""
    if len(leaves) == 1:
        return leaves[0]
    part = len(leaves) // arity
    return hash_fn([naive_root(leaves[i * part:(i + 1) * part], arity, hash_fn)
                    for i in range(arity)])


def make_leaves(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    leaves = rng.integers(0, 256, size=(n, 32), dtype=np.uint8)
    leaves[:, 31] &= 0x3F  # valid field elements
    return leaves


def as_list(leaves: np.ndarray) -> list[bytes]:
    return [row.tobytes() for row in leaves]


def flipped(value: bytes) -> bytes:
    return bytes((value[0] ^ 1,)) + value[1:]


@pytest.mark.parametrize(("hasher", "hash_fn", "arity", "n"), [
    (POSEIDON_HASHER, _poseidon, 2, 16),
    (POSEIDON_HASHER, _poseidon, 4, 16),
    (POSEIDON_HASHER, _poseidon, 8, 64),
    (SHA256_HASHER, _sha, 2, 64),
])
def test_root_matches_naive_recursion(hasher: TreeHasher, hash_fn: HashFn, arity: int,
                                      n: int) -> None:
    leaves = make_leaves(n, seed=arity)
    expected = naive_root(as_list(leaves), arity, hash_fn)
    rows = merkle.tree_rows(leaves, arity, hasher)
    assert [r.shape[0] for r in rows] == [n // arity**k for k in range(len(rows))]
    assert rows[-1].tobytes() == expected
    for chunk in (1, arity, arity**2, 1 << 20):
        assert merkle.merkle_root(leaves, TreeShape(arity), hasher, chunk) == expected


def test_rows_do_not_depend_on_chunking(tmp_path: Path) -> None:
    leaves = make_leaves(64, seed=3)
    big = TreeLayout(tmp_path / "a", "t", 64, TreeShape(2), POSEIDON_HASHER)
    small = TreeLayout(tmp_path / "b", "t", 64, TreeShape(2), POSEIDON_HASHER)
    assert big.build(leaves) == small.build(leaves, chunk_leaves=4)
    assert big.paths()[0].read_bytes() == small.paths()[0].read_bytes()


def test_bad_leaf_counts_are_rejected() -> None:
    with pytest.raises(InvalidInputError):
        merkle.tree_rows(make_leaves(12), 2, POSEIDON_HASHER)
    with pytest.raises(InvalidInputError):
        merkle.tree_rows(make_leaves(1), 2, POSEIDON_HASHER)
    with pytest.raises(InvalidInputError):
        merkle.tree_rows(make_leaves(16).astype(np.int16), 2, POSEIDON_HASHER)
    with pytest.raises(InvalidInputError, match="arities"):
        merkle.tree_rows(make_leaves(64), 8, SHA256_HASHER)
    with pytest.raises(InvalidInputError, match="binary"):
        SHA256_HASHER.hash_level(make_leaves(64), 8)
    with pytest.raises(InvalidInputError):
        merkle.merkle_root(make_leaves(32), TreeShape(8, 8), POSEIDON_HASHER)


def test_shapes() -> None:
    assert str(TreeShape(8, 8, 2)) == "8-8-2" and TreeShape(8, 8, 2).base_tree_count == 16
    for proof, shape, files in (("StackedDrg2KiBV1_1", "8-0-0", 1),
                                ("StackedDrg32GiBV1_1", "8-8-0", 8),
                                ("StackedDrg64GiBV1_1", "8-8-2", 16)):
        tree_shape = TreeShape.of(resolve_proof(proof).shape)
        assert (str(tree_shape), tree_shape.base_tree_count) == (shape, files)
    for bad in ((3, 0, 0), (1, 0, 0), (0, 8, 0), (8, 0, 2), (8, 6, 0)):
        with pytest.raises(InvalidInputError):
            TreeShape(*bad)


def test_default_rows_to_discard() -> None:
    assert merkle.default_rows_to_discard(8, 8) == 0
    assert merkle.default_rows_to_discard(64, 8) == 1
    assert merkle.default_rows_to_discard(512, 8) == 2
    assert merkle.default_rows_to_discard(1 << 18, 8) == 2
    assert merkle.default_rows_to_discard(1 << 27, 8) == 2
    assert merkle.default_rows_to_discard(1 << 30, 2) == 7
    assert merkle.default_rows_to_discard(1 << 4, 2) == 3


def _merkletree_len(leaves: int, arity: int) -> int:
    """merkletree ``get_merkle_tree_len``."""
    total, cur = leaves, leaves
    while cur > 1:
        cur //= arity
        total += cur
    return total


def _merkletree_cache_size(leaves: int, arity: int, rows_to_discard: int) -> int:
    """merkletree ``get_merkle_tree_cache_size``: drop the leaves and ``rows_to_discard`` rows."""
    size, cur = _merkletree_len(leaves, arity), leaves
    for _ in range(rows_to_discard + 1):
        size -= cur
        cur //= arity
    return size


def test_disk_store_file_holds_every_row(tmp_path: Path) -> None:
    leaves = make_leaves(64, seed=5)
    layout = TreeLayout(tmp_path, "tree-c", 64, TreeShape(8), POSEIDON_HASHER)
    root = layout.build(leaves)
    rows = merkle.tree_rows(leaves, 8, POSEIDON_HASHER)
    (path,) = layout.paths()
    assert path.name == "sc-02-data-tree-c.dat"
    assert path.stat().st_size == _merkletree_len(64, 8) * 32 == layout.file_nodes() * 32
    assert path.read_bytes() == b"".join(r.tobytes() for r in rows)
    assert root == layout.root() == rows[-1].tobytes()


@pytest.mark.parametrize("rows_to_discard", [0, 1, 2, 3])
def test_level_cache_file_holds_upper_rows(tmp_path: Path, rows_to_discard: int) -> None:
    leaves = make_leaves(32, seed=rows_to_discard)
    layout = TreeLayout(tmp_path, "tree-r-last", 32, TreeShape(2), POSEIDON_HASHER,
                        level_cache=True, rows_to_discard=rows_to_discard)
    root = layout.build(leaves)
    rows = merkle.tree_rows(leaves, 2, POSEIDON_HASHER)
    data = layout.paths()[0].read_bytes()
    assert len(data) == _merkletree_cache_size(32, 2, rows_to_discard) * 32
    assert data == b"".join(r.tobytes() for r in rows[rows_to_discard + 1:])
    assert root == layout.root() == rows[-1].tobytes()
    for index in range(rows_to_discard, 32, 5):
        proof = layout.prove(index, leaves)
        assert proof.verify() and proof.proves_index(index)
        assert proof.leaf == leaves[index].tobytes() and proof.root == root


def test_level_cache_limits(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="discard"):
        TreeLayout(tmp_path, "t", 32, TreeShape(2), POSEIDON_HASHER, True, 5)
    with pytest.raises(InvalidInputError):
        TreeLayout(tmp_path, "t", 32, TreeShape(2), POSEIDON_HASHER, False, 1)
    with pytest.raises(InvalidInputError):
        TreeLayout(tmp_path, "t", 48, TreeShape(2), POSEIDON_HASHER)
    with pytest.raises(InvalidInputError):
        TreeLayout(tmp_path, "t", 64, TreeShape(8), SHA256_HASHER)


def test_every_proof_of_a_disk_tree(tmp_path: Path) -> None:
    leaves = make_leaves(64, seed=9)
    layout = TreeLayout(tmp_path, "tree-d", 64, merkle.BINARY, SHA256_HASHER)
    root = layout.build(leaves)
    assert root == naive_root(as_list(leaves), 2, _sha)
    for index in range(64):
        proof = layout.prove(index)
        assert proof.kind == "Single" and proof.arities == (2,) * 6
        assert proof.verify() and proof.proves_index(index)
        assert not proof.proves_index((index + 1) % 64)
        assert proof.leaf == leaves[index].tobytes()


def _tampered(proof: MerkleProof) -> list[MerkleProof]:
    """Every single-field change of ``proof``: each hash, each index, the leaf, the root."""
    variants = [MerkleProof(proof.hasher, flipped(proof.root), proof.leaf, proof.base_path,
                            proof.sub_path, proof.top_path),
                MerkleProof(proof.hasher, proof.root, flipped(proof.leaf), proof.base_path,
                            proof.sub_path, proof.top_path)]
    levels = [proof.base_path, proof.sub_path or (), proof.top_path or ()]
    for which, path in enumerate(levels):
        for k, el in enumerate(path):
            changes = [PathElement(el.hashes, (el.index + 1) % el.arity)]
            changes += [PathElement((*el.hashes[:h], flipped(el.hashes[h]), *el.hashes[h + 1:]),
                                    el.index) for h in range(len(el.hashes))]
            for change in changes:
                new_levels = [list(p) for p in levels]
                new_levels[which][k] = change
                base, sub, top = (tuple(p) for p in new_levels)
                variants.append(MerkleProof(proof.hasher, proof.root, proof.leaf, base,
                                            sub if proof.sub_path is not None else None,
                                            top if proof.top_path is not None else None))
    return variants


@pytest.mark.parametrize(("shape", "per_tree", "kind"), [
    (TreeShape(8), 64, "Single"),
    (TreeShape(2, 2), 4, "Sub"),
    (TreeShape(8, 8, 2), 8, "Top"),
])
def test_tampered_proofs_are_rejected(tmp_path: Path, shape: TreeShape, per_tree: int,
                                      kind: str) -> None:
    n = per_tree * shape.base_tree_count
    layout = TreeLayout(tmp_path, "tree-c", n, shape, POSEIDON_HASHER)
    layout.build(make_leaves(n, seed=11))
    proof = layout.prove(n - 3)
    assert proof.kind == kind and proof.verify()
    variants = _tampered(proof)
    assert len(variants) > 2 + len(proof.path)
    for variant in variants:
        assert not variant.verify() or not variant.proves_index(n - 3)
        assert not variant.verify()


def _compound_naive(leaves: np.ndarray, shape: TreeShape) -> bytes:
    parts = np.split(leaves, shape.base_tree_count)
    roots = [naive_root(as_list(p), shape.base, _poseidon) for p in parts]
    if shape.sub:
        roots = [_poseidon(roots[i:i + shape.sub]) for i in range(0, len(roots), shape.sub)]
    if shape.top:
        roots = [_poseidon(roots)]
    assert len(roots) == 1
    return roots[0]


@pytest.mark.parametrize("shape", [TreeShape(8, 2), TreeShape(8, 8), TreeShape(8, 8, 2)])
def test_compound_trees(tmp_path: Path, shape: TreeShape) -> None:
    n = 8 * shape.base_tree_count
    leaves = make_leaves(n, seed=shape.base_tree_count)
    expected = _compound_naive(leaves, shape)
    assert merkle.merkle_root(leaves, shape, POSEIDON_HASHER) == expected
    layout = TreeLayout(tmp_path, "tree-c", n, shape, POSEIDON_HASHER)
    assert layout.build(leaves) == expected == layout.root()
    names = [p.name for p in layout.paths()]
    assert names == [f"sc-02-data-tree-c-{i}.dat" for i in range(shape.base_tree_count)]
    for index in (0, 9, n // 2 + 1, n - 1):
        proof = layout.prove(index)
        assert proof.kind == ("Top" if shape.top else "Sub")
        assert proof.verify() and proof.proves_index(index) and proof.root == expected
        assert proof.arities == (8, shape.sub) + ((shape.top,) if shape.top else ())
        parsed = MerkleProof.from_json(json.loads(json.dumps(proof.to_json())), POSEIDON_HASHER)
        assert parsed == proof


def test_compound_level_cache(tmp_path: Path) -> None:
    shape = TreeShape(2, 2, 2)
    leaves = make_leaves(32, seed=21)
    layout = TreeLayout(tmp_path, "tree-r-last", 32, shape, POSEIDON_HASHER, True, 1)
    root = layout.build(leaves)
    assert root == _compound_naive(leaves, shape)
    for index in range(0, 32, 3):
        proof = layout.prove(index, leaves)
        assert proof.verify() and proof.proves_index(index)


def test_single_proof_json_form(tmp_path: Path) -> None:
    leaves = make_leaves(16, seed=2)
    layout = TreeLayout(tmp_path, "tree-d", 16, merkle.BINARY, SHA256_HASHER)
    layout.build(leaves)
    proof = layout.prove(6)
    obj = proof.to_json()
    assert list(obj) == ["data"] and list(obj["data"]) == ["Single"]
    body = obj["data"]["Single"]
    assert list(body) == ["root", "leaf", "path"]
    assert body["leaf"] == list(leaves[6].tobytes())
    assert list(body["path"]) == ["path"] and len(body["path"]["path"]) == 4
    assert [el["index"] for el in body["path"]["path"]] == [0, 1, 1, 0]  # 6 = 0b0110
    assert all(len(el["hashes"]) == 1 and len(el["hashes"][0]) == 32
               for el in body["path"]["path"])
    text = json.dumps(obj)
    assert MerkleProof.from_json(json.loads(text), SHA256_HASHER) == proof


def test_compound_proof_json_keys(tmp_path: Path) -> None:
    layout = TreeLayout(tmp_path, "t", 64, TreeShape(2, 2, 2), POSEIDON_HASHER)
    layout.build(make_leaves(64, seed=4))
    obj: dict[str, Any] = layout.prove(33).to_json()
    assert list(obj["data"]["Top"]) == ["base_proof", "sub_proof", "top_proof", "root", "leaf"]
    assert len(obj["data"]["Top"]["sub_proof"]["path"]) == 1


@pytest.mark.parametrize("mangle", [
    lambda o: {"data": {}},
    lambda o: {"data": {"Middle": o["data"]["Single"]}},
    lambda o: {"data": {"Single": {**o["data"]["Single"], "root": [1] * 31}}},
    lambda o: {"data": {"Single": {**o["data"]["Single"], "leaf": [256] + [0] * 31}}},
    lambda o: {"data": {"Single": {"root": o["data"]["Single"]["root"]}}},
    lambda o: {"data": {"Single": {**o["data"]["Single"], "path": {"path": [{"index": 0}]}}}},
    lambda o: {"data": {"Single": {**o["data"]["Single"],
                                   "path": {"path": [{"hashes": [], "index": -1}]}}}},
    lambda o: [],
])
def test_malformed_json_is_rejected(tmp_path: Path, mangle: Callable[[Any], Any]) -> None:
    layout = TreeLayout(tmp_path, "t", 4, merkle.BINARY, SHA256_HASHER)
    layout.build(make_leaves(4))
    obj = layout.prove(1).to_json()
    with pytest.raises(InvalidInputError):
        MerkleProof.from_json(mangle(obj), SHA256_HASHER)


def test_non_canonical_poseidon_proof_does_not_verify() -> None:
    element = PathElement((R.to_bytes(32, "little"),), 0)
    proof = MerkleProof(POSEIDON_HASHER, bytes(32), bytes(32), (element,))
    assert not proof.verify()
    with pytest.raises(InvalidInputError):
        MerkleProof(POSEIDON_HASHER, bytes(31), bytes(32), (element,))


def test_damaged_files_are_detected(tmp_path: Path) -> None:
    leaves = make_leaves(16, seed=8)
    layout = TreeLayout(tmp_path, "tree-r-last", 16, TreeShape(2), POSEIDON_HASHER, True, 1)
    layout.build(leaves)
    with pytest.raises(InvalidInputError, match="needs its leaves"):
        layout.prove(3)
    with pytest.raises(InvalidInputError):
        layout.prove(16, leaves)
    other = leaves.copy()
    other[3, 0] ^= 1
    with pytest.raises(CorruptDataError, match="do not hash"):
        layout.prove(3, other)
    assert layout.prove(12, other).verify()  # a segment the change does not touch
    (path,) = layout.paths()
    path.write_bytes(path.read_bytes()[:-32])
    with pytest.raises(CorruptDataError, match="bytes"):
        layout.root()
    path.unlink()
    with pytest.raises(CorruptDataError, match="missing"):
        layout.prove(0, leaves)


def test_stored_rows_prove_their_nodes_and_show_damage(tmp_path: Path) -> None:
    leaves = make_leaves(512, seed=9)
    layout = TreeLayout(tmp_path, "tree-r-last", 512, TreeShape(8), POSEIDON_HASHER, True, 1)
    root = layout.build(leaves)
    stored = layout.prove_stored(2, 5)
    assert stored.verify() and stored.root == root and stored.arities == (8,)
    assert layout.prove_stored(3, 0).leaf == root and layout.prove_stored(3, 0).verify()
    with pytest.raises(InvalidInputError, match="not stored"):
        layout.prove_stored(1, 0)
    with pytest.raises(InvalidInputError, match="no node 8"):
        layout.prove_stored(2, 8)
    (path,) = layout.paths()
    raw = bytearray(path.read_bytes())
    raw[3 * 32] ^= 1  # row 2, node 3 (the file starts with row 2)
    path.write_bytes(bytes(raw))
    assert not layout.prove_stored(2, 5).verify()  # node 3 is a sibling on its path
    assert not layout.prove_stored(2, 3).verify()
    assert not layout.prove(5 * 64 + 1, leaves).verify()
    with pytest.raises(CorruptDataError, match=r"leaves 192\.\.255 do not hash to node 3 of row 2"):
        layout.prove(3 * 64 + 7, leaves)


def test_memmapped_leaves(tmp_path: Path) -> None:
    leaves = make_leaves(64, seed=12)
    source = tmp_path / "sealed"
    source.write_bytes(leaves.tobytes())
    mapped = np.memmap(source, dtype=np.uint8, mode="r", shape=(64, 32))
    layout = TreeLayout(tmp_path, "tree-r-last", 64, TreeShape(8), POSEIDON_HASHER, True, 1)
    assert layout.build(mapped, chunk_leaves=8) == naive_root(as_list(leaves), 8, _poseidon)
    assert layout.prove(40, mapped).verify()
    del mapped


def test_sector_layouts_reproduce_the_2kib_seal(tmp_path: Path,
                                                vectors: dict[str, dict[str, Any]]) -> None:
    vec = vectors["derived_end_to_end_2KiB_v1_1_pattern"]
    expected = vec["expected"]
    sector = resolve_proof("StackedDrg2KiBV1_1").shape

    def nodes(hex_text: str) -> np.ndarray:
        return np.frombuffer(bytes.fromhex(hex_text), dtype=np.uint8).reshape(-1, 32)

    columns = nodes("".join(expected["column_hashes"]))
    tree_c = merkle.tree_c_layout(tmp_path, sector)
    assert tree_c.build(columns).hex() == expected["comm_c"]
    assert tree_c.paths()[0].stat().st_size == 73 * 32
    rows = merkle.tree_rows(columns, 8, POSEIDON_HASHER)
    assert [r.tobytes().hex() for r in rows[1]] == expected["tree_c_level1"]

    replica = nodes(expected["replica_hex"])
    tree_r = merkle.tree_r_last_layout(tmp_path, sector)
    assert tree_r.rows_to_discard == 1 and tree_r.level_cache
    assert tree_r.build(replica).hex() == expected["comm_r_last"]
    assert tree_r.paths()[0].read_bytes().hex() == expected["comm_r_last"]
    rows = merkle.tree_rows(replica, 8, POSEIDON_HASHER)
    assert [r.tobytes().hex() for r in rows[1]] == expected["tree_r_last_level1"]
    comm_r = poseidon.poseidon_hash([bytes.fromhex(expected["comm_c"]),
                                     bytes.fromhex(expected["comm_r_last"])])
    assert comm_r.hex() == expected["comm_r"]

    tree_d = merkle.tree_d_layout(tmp_path, 2048)
    assert tree_d.build(nodes(vec["inputs"]["staged_sector_hex"])).hex() == expected["comm_d"]
    assert tree_d.paths()[0].stat().st_size == 127 * 32

    for challenge in expected["interactive_challenges_partition0"]:
        for proof in (tree_d.prove(challenge), tree_c.prove(challenge),
                      tree_r.prove(challenge, replica)):
            assert proof.verify() and proof.proves_index(challenge)
        assert tree_r.prove(challenge, replica).leaf == replica[challenge].tobytes()


def test_big_sector_layouts_without_building(tmp_path: Path) -> None:
    sector = resolve_proof("StackedDrg32GiBV1_1").shape
    tree_r = merkle.tree_r_last_layout(tmp_path, sector)
    assert tree_r.rows_to_discard == 2 and len(tree_r.paths()) == 8
    assert tree_r.file_nodes() == _merkletree_cache_size(1 << 27, 8, 2)
    tree_c = merkle.tree_c_layout(tmp_path, resolve_proof("StackedDrg64GiBV1_1").shape)
    assert tree_c.paths()[15].name == "sc-02-data-tree-c-15.dat"
    assert tree_c.file_nodes() == _merkletree_len(1 << 27, 8)
    assert merkle.tree_d_layout(tmp_path, 1 << 35).file_nodes() == (1 << 31) - 1
