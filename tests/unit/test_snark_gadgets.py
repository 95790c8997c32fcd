"""R1CS gadgets: constraint counts asserted upstream, and witnesses checked against the
reference implementations (hashlib, the Poseidon and Merkle code of ``sealagent.proofs``)."""

from __future__ import annotations

import hashlib
import random

import pytest

from sealagent.errors import InvalidInputError
from sealagent.proofs.field import R
from sealagent.proofs.poseidon import poseidon_constant_length, poseidon_hash_ints
from sealagent.snark.bits import (
    alloc_bit,
    bool_value,
    compute_multipacking,
    inputize,
    num_to_bits_le,
    pack_into_inputs,
    xor,
)
from sealagent.snark.cs import ONE, ConstraintSystem
from sealagent.snark.merkle import PathLevel, blank_path, enforce_inclusion
from sealagent.snark.poseidon import poseidon_constant_length as poseidon_cl_gadget
from sealagent.snark.poseidon import poseidon_merkle
from sealagent.snark.sha256 import compression, sha256, sha256_iv


def _bits_be(data: bytes) -> list[int]:
    return [(byte >> (7 - i)) & 1 for byte in data for i in range(8)]


def _alloc_message(cs: ConstraintSystem, data: bytes | None, nbits: int) -> list[int]:
    values = _bits_be(data) if data is not None else [None] * nbits
    return [alloc_bit(cs, v) for v in values]


def test_one_sha256_compression_over_given_bits_is_25840_constraints() -> None:
    for witness in (False, True):
        cs = ConstraintSystem(witness=witness)
        data = bytes(random.Random(1).randrange(256) for _ in range(64)) if witness else None
        bits = _alloc_message(cs, data, 512)
        compression(cs, bits, sha256_iv())
        assert cs.num_constraints - 512 == 25_840
        if witness:
            assert cs.first_unsatisfied() is None


@pytest.mark.parametrize("length", [5, 64])
def test_sha256_gadget_matches_hashlib(length: int) -> None:
    data = bytes(random.Random(length).randrange(256) for _ in range(length))
    cs = ConstraintSystem(witness=True)
    digest = sha256(cs, _alloc_message(cs, data, 8 * length))
    got = bytes(sum(bool_value(cs, b) << (7 - i) for i, b in enumerate(digest[j : j + 8]))
                for j in range(0, 256, 8))
    assert got == hashlib.sha256(data).digest()
    assert cs.first_unsatisfied() is None
    if length == 64:  # bellperson's test_full_hash count: two compressions over 512 bits
        assert cs.num_constraints - 512 == 44_874


def test_an_unsatisfied_constraint_is_found() -> None:
    cs = ConstraintSystem(witness=True)
    compression(cs, _alloc_message(cs, b"abcd" * 16, 512), sha256_iv())
    assert cs.first_unsatisfied() is None
    cs.c[3000] = (cs.c[3000] + 1) % R
    assert cs.first_unsatisfied() == 3000


@pytest.mark.parametrize(("arity", "count"), [(2, 311), (4, 377), (8, 505), (11, 598)])
def test_poseidon_gadget_counts_and_values(arity: int, count: int) -> None:
    rng = random.Random(arity)
    values = [rng.randrange(R) for _ in range(arity)]
    shape = ConstraintSystem(witness=False)
    poseidon_merkle(shape, [shape.alloc(None) for _ in range(arity)])
    assert shape.num_constraints == count
    cs = ConstraintSystem(witness=True)
    out = poseidon_merkle(cs, [cs.alloc(v) for v in values])
    assert cs.num_constraints == count
    assert cs.first_unsatisfied() is None
    assert cs.value(out) == poseidon_hash_ints(values, arity=arity)


def test_poseidon_constant_length_gadget() -> None:
    cs = ConstraintSystem(witness=True)
    out = poseidon_cl_gadget(cs, [cs.alloc(v) for v in (5, 6, 7)], 8)
    assert cs.value(out) == poseidon_constant_length([5, 6, 7], 8)
    assert cs.first_unsatisfied() is None
    with pytest.raises(InvalidInputError):
        poseidon_cl_gadget(cs, [cs.alloc(1)] * 9, 8)


def test_boolean_xor_folds_constants_and_negations() -> None:
    cs = ConstraintSystem(witness=True)
    a, b = alloc_bit(cs, 1), alloc_bit(cs, 0)
    before = cs.num_constraints
    assert xor(cs, a, 0) == a and xor(cs, 1, b) == b ^ 1
    assert cs.num_constraints == before
    for x, y in ((a, b), (a ^ 1, b), (a ^ 1, b ^ 1)):
        assert bool_value(cs, xor(cs, x, y)) == bool_value(cs, x) ^ bool_value(cs, y)
    assert cs.num_constraints == before + 3 and cs.first_unsatisfied() is None


def test_number_decomposition_and_input_packing() -> None:
    cs = ConstraintSystem(witness=True)
    value = R - 12345
    var = cs.alloc(value)
    bits = num_to_bits_le(cs, var)
    assert cs.num_constraints == 256
    assert sum(bool_value(cs, b) << i for i, b in enumerate(bits)) == value
    pack_into_inputs(cs, bits[:300] if len(bits) > 254 else bits)
    assert cs.input_values[1:] == compute_multipacking([bool_value(cs, b) for b in bits])
    assert cs.first_unsatisfied() is None
    cs.enforce({var: 1}, {ONE: 1}, {var: 1})
    inputize(cs, var)
    assert cs.input_values[-1] == value and cs.first_unsatisfied() is None


def _count_por(hasher: str, arities: list[int]) -> tuple[int, int]:
    cs = ConstraintSystem(witness=False)
    leaf, root = cs.alloc(None), cs.alloc(None)
    enforce_inclusion(cs, hasher, leaf, blank_path(arities), root)  # type: ignore[arg-type]
    inputize(cs, root)  # storage-proofs-core's por_circuit tests use a public root
    return cs.num_constraints, cs.num_inputs


@pytest.mark.parametrize(("arities", "count"), [
    ([2] * 6, 1_887), ([4] * 3, 1_164), ([8] * 2, 1_063), ([8, 8, 2], 1_377),
    ([8, 8, 4, 2], 1_764), ([8, 8, 8, 2], 1_907),
])
def test_poseidon_inclusion_counts(arities: list[int], count: int) -> None:
    assert _count_por("poseidon", arities) == (count, 3)


@pytest.mark.slow
@pytest.mark.parametrize(("arities", "count"), [
    ([2] * 6, 272_295), ([4] * 3, 216_258), ([8] * 2, 250_987),
])
def test_sha256_inclusion_counts(arities: list[int], count: int) -> None:
    assert _count_por("sha256", arities) == (count, 3)


def _oct_tree(leaves: list[int]) -> list[list[int]]:
    rows = [leaves]
    while len(rows[-1]) > 1:
        row = rows[-1]
        rows.append([poseidon_hash_ints(row[i : i + 8], arity=8) for i in range(0, len(row), 8)])
    return rows


def _path(rows: list[list[int]], index: int) -> list[PathLevel]:
    levels = []
    for row in rows[:-1]:
        group, pos = index // 8, index % 8
        siblings = row[group * 8 : group * 8 + 8]
        levels.append(PathLevel(8, tuple(siblings[:pos] + siblings[pos + 1 :]), pos))
        index = group
    return levels


@pytest.mark.parametrize("index", [0, 45])
def test_inclusion_witness_is_satisfied_only_by_the_true_path(index: int) -> None:
    rng = random.Random(index)
    rows = _oct_tree([rng.randrange(R) for _ in range(64)])
    for wrong in (False, True):
        cs = ConstraintSystem(witness=True)
        leaf = cs.alloc(rows[0][index] + (1 if wrong else 0))
        root = cs.alloc(rows[-1][0])
        enforce_inclusion(cs, "poseidon", leaf, _path(rows, index), root)
        assert cs.input_values[1:] == [index]  # the packed position bits
        assert (cs.first_unsatisfied() is None) is not wrong
