"""Known answers for Poseidon (neptune, filecoin-hashers): every ``poseidon_*`` vector."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from sealagent.proofs import merkle, poseidon
from sealagent.proofs.field import R

Vectors = dict[str, dict[str, Any]]

MERKLETREE_VECTORS = [
    "poseidon_merkletree_arity2_inputs_0_to_1",
    "poseidon_merkletree_arity4_inputs_0_to_3",
    "poseidon_merkletree_arity8_inputs_0_to_7",
    "poseidon_merkletree_arity11_inputs_0_to_10",
    "poseidon_merkletree_arity16_inputs_0_to_15",
    "poseidon_merkletree_arity24_inputs_0_to_23",
    "poseidon_merkletree_arity36_inputs_0_to_35",
]


def _le(value: int) -> str:
    """Hex of the 32-byte little-endian encoding."""
    return value.to_bytes(32, "little").hex()


def _limbs(hex_le: str) -> list[str]:
    """The four u64 limbs (least significant first) of a 32-byte LE value, as 0x-hex."""
    raw = bytes.fromhex(hex_le)
    return [f"0x{int.from_bytes(raw[i:i + 8], 'little'):016x}" for i in range(0, 32, 8)]


def test_every_poseidon_vector_is_covered(vectors: Vectors) -> None:
    names = {n for n in vectors if n.startswith("poseidon_")}
    covered = set(MERKLETREE_VECTORS) | {
        "poseidon_constantlength4_arity4", "poseidon_constantlength4_arity8",
        "poseidon_constantlength4_arity11", "poseidon_binary_tree_leaves_1_0_0_1",
        "poseidon_hash_md_71_ones_arity36", "poseidon_round_constants_t3",
        "poseidon_round_constants_t9", "poseidon_round_constants_t12", "poseidon_domain_tags",
    }
    assert names == covered


@pytest.mark.parametrize("name", MERKLETREE_VECTORS)
def test_merkletree_hash(vectors: Vectors, name: str) -> None:
    vec = vectors[name]
    inputs, expected = vec["inputs"], vec["expected"]
    arity = inputs["arity"]
    assert inputs["hash_type"] == "MerkleTree"
    assert inputs["width"] == arity + 1
    assert poseidon.merkle_tree_tag(arity) == inputs["domain_tag"]
    assert poseidon.round_numbers(arity) == (inputs["R_F"], inputs["R_P"])
    consts = poseidon.constants(arity)
    state = [inputs["domain_tag"], *inputs["preimage"]]
    want = expected["digest_le_hex"]
    assert _le(poseidon.poseidon_hash_ints(inputs["preimage"])) == want
    assert _le(poseidon.permute(state, consts)[1]) == want
    assert _le(poseidon.permute_reference(state, consts)[1]) == want
    assert _limbs(want) == expected["digest_u64_limbs_le"]
    encoded = [x.to_bytes(32, "little") for x in inputs["preimage"]]
    assert poseidon.poseidon_hash(encoded).hex() == want


@pytest.mark.parametrize("arity", [4, 8, 11])
def test_constant_length(vectors: Vectors, arity: int) -> None:
    vec = vectors[f"poseidon_constantlength4_arity{arity}"]
    inputs = vec["inputs"]
    assert inputs["arity"] == arity and inputs["hash_type"] == "ConstantLength(4)"
    assert poseidon.constant_length_tag(len(inputs["preimage"])) == inputs["domain_tag_int"]
    digest = poseidon.poseidon_constant_length(inputs["preimage"], arity)
    assert _le(digest) == vec["expected"]["digest_le_hex"]
    assert _limbs(_le(digest)) == vec["expected"]["digest_u64_limbs_le"]
    padded = [*inputs["preimage"], *[0] * (arity - len(inputs["preimage"]))]
    reference = poseidon.permute_reference([inputs["domain_tag_int"], *padded],
                                           poseidon.constants(arity))
    assert _le(reference[1]) == vec["expected"]["digest_le_hex"]


def test_binary_tree_of_1_0_0_1(vectors: Vectors) -> None:
    vec = vectors["poseidon_binary_tree_leaves_1_0_0_1"]
    leaves = [bytes.fromhex(h) for h in vec["inputs"]["leaves_le_hex"]]
    expected = vec["expected"]
    assert poseidon.poseidon_hash(leaves[:2]).hex() == expected["node_hash_1_0"]
    assert poseidon.poseidon_hash(leaves[2:]).hex() == expected["node_hash_0_1"]
    array = np.frombuffer(b"".join(leaves), dtype=np.uint8).reshape(4, 32)
    rows = merkle.tree_rows(array, 2, merkle.POSEIDON_HASHER)
    assert [n.hex() for n in (rows[1][0].tobytes(), rows[1][1].tobytes())] == [
        expected["node_hash_1_0"], expected["node_hash_0_1"]]
    assert rows[2].tobytes().hex() == expected["root"]
    root = merkle.merkle_root(array, merkle.TreeShape(2), merkle.POSEIDON_HASHER)
    assert root.hex() == expected["root"]


def test_hash_md_of_71_ones(vectors: Vectors) -> None:
    vec = vectors["poseidon_hash_md_71_ones_arity36"]
    assert vec["inputs"]["arity"] == poseidon.MD_ARITY
    assert _le(poseidon.poseidon_hash_md([1] * 71)) == vec["expected"]["digest_le_hex"]
    # The documented method, spelled out: two full chunks of 35 after the first element.
    acc = 1
    for _ in range(2):
        acc = poseidon.poseidon_hash_ints([acc, *[1] * 35])
    assert _le(acc) == vec["expected"]["digest_le_hex"]


@pytest.mark.parametrize(("width", "arity"), [(3, 2), (9, 8), (12, 11)])
def test_round_constants_and_mds(vectors: Vectors, width: int, arity: int) -> None:
    vec = vectors[f"poseidon_round_constants_t{width}"]
    inputs, expected = vec["inputs"], vec["expected"]
    assert (inputs["t"], inputs["R_F"], inputs["R_P"]) == (width, *poseidon.round_numbers(arity))
    consts = poseidon.constants(arity)
    assert len(consts.round_constants) == expected["count"]
    assert [f"0x{c:064x}" for c in consts.round_constants[:9]] == expected["first_9_hex_be"]
    assert f"0x{consts.round_constants[-1]:064x}" == expected["last_hex_be"]
    assert all(0 <= c < R for c in consts.round_constants)
    assert [_le(m) for m in consts.mds[0]] == expected["mds_row0_le_hex"]
    fresh = poseidon.grain_round_constants(width, inputs["R_F"], inputs["R_P"])
    assert fresh == list(consts.round_constants)


def test_domain_tags(vectors: Vectors) -> None:
    expected = vectors["poseidon_domain_tags"]["expected"]
    examples = re.findall(r"(\d+) -> (\d+)", expected["merkle_tree_arity_a"])
    assert len(examples) == 3
    for arity, tag in examples:
        assert poseidon.merkle_tree_tag(int(arity)) == int(tag)
    assert _limbs(_le(poseidon.merkle_tree_tag(8))) == [
        f"0x{int(x, 16):016x}" for x in expected["merkle_arity8_standard_limbs"]]
    assert expected["constant_length_L"].startswith("L * 2^64 (limbs [0, L, 0, 0])")
    assert _limbs(_le(poseidon.constant_length_tag(7))) == [
        f"0x{x:016x}" for x in (0, 7, 0, 0)]
