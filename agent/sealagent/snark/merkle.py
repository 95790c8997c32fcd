"""Merkle inclusion gadgets (storage-proofs-core ``gadgets::por`` and ``insertion``).

Per level the position bits are allocated (log2 arity of them), the siblings are
allocated, the current node is inserted among them at the position the bits say (a
``pick`` per choice: one constraint each) and the level is hashed: Poseidon with the
MerkleTree tag for tree_c and tree_r_last, SHA-256 over the nodes' little-endian bytes
(truncated to 254 bits) for tree_d.  All position bits of a path are packed into public
inputs, and the computed root is constrained equal to the given root.  A path is a list of
levels, each ``(arity, siblings, index)`` with ``None`` values in shape mode, so base, sub
and top levels of compound trees are just levels of another arity.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sealagent.errors import InvalidInputError
from sealagent.proofs.field import R
from sealagent.snark.bits import (
    CAPACITY,
    FALSE,
    alloc_bit,
    and_,
    bool_lc,
    bool_value,
    enforce_equal_nums,
    num_to_bits_le,
    pack_bits,
    pack_into_inputs,
)
from sealagent.snark.cs import ConstraintSystem, lc_add
from sealagent.snark.poseidon import poseidon_merkle
from sealagent.snark.sha256 import sha256

Hasher = Literal["poseidon", "sha256"]


@dataclass(frozen=True)
class PathLevel:
    """One level of an inclusion path: its arity, the siblings and the node's position."""

    arity: int
    siblings: tuple[int | None, ...]
    index: int | None


def blank_path(arities: Sequence[int]) -> list[PathLevel]:
    """A path without values, for shape mode."""
    return [PathLevel(a, (None,) * (a - 1), None) for a in arities]


def pick(cs: ConstraintSystem, cond: int, a: int, b: int) -> int:
    """``cond ? a : b`` as a new number: ``(b − a)·cond = b − c``."""
    value = None
    if cs.witness:
        value = cs.value(a) if bool_value(cs, cond) else cs.value(b)
    c = cs.alloc(value)
    cs.enforce(lc_add({b: 1}, {a: 1}, R - 1), bool_lc(cond), {b: 1, c: R - 1})
    return c


def _select(cs: ConstraintSystem, choices: Sequence[int], bits: Sequence[int]) -> int:
    state = list(choices)
    half = len(state) // 2
    for bit in reversed(bits):
        state = [pick(cs, bit, state[half + j], state[j]) for j in range(half)]
        half //= 2
    return state[0]


def _insert_2(cs: ConstraintSystem, x: int, bits: Sequence[int], el: Sequence[int]) -> list[int]:
    return [pick(cs, bits[0], el[0], x), pick(cs, bits[0], x, el[0])]


def _insert_4(cs: ConstraintSystem, x: int, bits: Sequence[int], el: Sequence[int]) -> list[int]:
    b0, b1 = bits
    b, c, d = el
    p0 = pick(cs, b1, b, pick(cs, b0, b, x))
    p1 = pick(cs, b1, c, pick(cs, b0, x, b))
    p2 = pick(cs, b1, pick(cs, b0, d, x), c)
    p3 = pick(cs, b1, pick(cs, b0, x, d), d)
    return [p0, p1, p2, p3]


def _insert_8(cs: ConstraintSystem, x: int, bits: Sequence[int], el: Sequence[int]) -> list[int]:
    b0, b1, b2 = bits
    b, c, d, e, f, g, h = el
    nor01 = and_(cs, b0 ^ 1, b1 ^ 1)
    and01 = and_(cs, b0, b1)
    p0 = pick(cs, b2, b, pick(cs, nor01, x, b))
    p1 = pick(cs, b2, c, pick(cs, b1, c, pick(cs, b0, x, b)))
    p2 = pick(cs, b2, d, pick(cs, b1, pick(cs, b0, d, x), c))
    p3 = pick(cs, b2, e, pick(cs, and01, x, d))
    p4 = pick(cs, b2, pick(cs, nor01, x, f), e)
    p5 = pick(cs, b2, pick(cs, b1, g, pick(cs, b0, x, f)), f)
    p6 = pick(cs, b2, pick(cs, b1, pick(cs, b0, h, x), g), g)
    p7 = pick(cs, b2, pick(cs, and01, x, h), h)
    return [p0, p1, p2, p3, p4, p5, p6, p7]


def insert(cs: ConstraintSystem, x: int, bits: Sequence[int], elements: Sequence[int]) -> list[int]:
    """``elements`` with ``x`` inserted at the position given by little-endian ``bits``."""
    size = len(elements) + 1
    if 1 << len(bits) != size:
        raise InvalidInputError("insertion needs log2(arity) position bits")
    if size == 2:
        return _insert_2(cs, x, bits, elements)
    if size == 4:
        return _insert_4(cs, x, bits, elements)
    if size == 8:
        return _insert_8(cs, x, bits, elements)
    options = [[*elements[:i], x, *elements[i:]] for i in range(size)]
    return [_select(cs, [opt[pos] for opt in options], bits) for pos in range(size)]


def sha256_hash_nodes(cs: ConstraintSystem, nodes: Sequence[int]) -> int:
    """SHA-256 of the nodes' 32-byte little-endian encodings, truncated to a field element."""
    message: list[int] = []
    for var in nodes:
        le = [*num_to_bits_le(cs, var), FALSE]
        for i in range(0, 256, 8):
            message.extend(reversed(le[i : i + 8]))
    digest = sha256(cs, message)
    le_bits = [b for i in range(0, 256, 8) for b in reversed(digest[i : i + 8])]
    return pack_bits(cs, le_bits[:CAPACITY])


def hash_nodes(cs: ConstraintSystem, hasher: Hasher, nodes: Sequence[int]) -> int:
    """One tree node from its children."""
    return poseidon_merkle(cs, nodes) if hasher == "poseidon" else sha256_hash_nodes(cs, nodes)


def enforce_inclusion(
    cs: ConstraintSystem, hasher: Hasher, leaf: int, path: Sequence[PathLevel], root: int
) -> None:
    """Prove ``leaf`` is in the tree of ``root`` at the position the path's bits say.

    The position bits become public inputs (packed); the root stays private.
    """
    cur = leaf
    path_bits: list[int] = []
    for level in path:
        width = level.arity.bit_length() - 1
        if level.arity < 2 or 1 << width != level.arity or len(level.siblings) != level.arity - 1:
            raise InvalidInputError(f"bad Merkle path level of arity {level.arity}")
        bits = [
            alloc_bit(cs, None if level.index is None else (level.index >> i) & 1)
            for i in range(width)
        ]
        path_bits += bits
        siblings = [cs.alloc(v) for v in level.siblings]
        cur = hash_nodes(cs, hasher, insert(cs, cur, bits, siblings))
    pack_into_inputs(cs, path_bits)
    enforce_equal_nums(cs, cur, root)
