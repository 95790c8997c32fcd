"""The Poseidon constants the kernels read, in Montgomery form (``kernels/poseidon.cu``).

One flat array of field elements per arity, each element eight little-endian u32 limbs
of ``x·2^256 mod r``, laid out as the kernel's ``POSEIDON_OFFSET_*`` macros say:

=========  ========================  ==================================================
part       elements                  content
=========  ========================  ==================================================
tag        1                         ``2^arity − 1`` (MerkleTree)
head       ``4·t``                   constants of the four first full rounds
mds        ``t·t``                   the Cauchy matrix ``M`` (row-major)
pre        ``t·t``                   ``diag(1, M̂^R_P)·M``: the last first-half round
partial    ``R_P·(2t − 1)``          per partial round: the constant of ``state[0]``,
                                     the sparse first row ``w`` and first column ``v``
tail       ``4·t``                   constants of the last four full rounds (the first
                                     with the partial rounds' other constants pushed in)
=========  ========================  ==================================================

The schedule is :func:`sealagent.proofs.poseidon.sparse_schedule` (neptune's
``OptimizedStatic``); the kernel takes ``m00`` from ``mds``.
"""

from __future__ import annotations

from functools import cache
from typing import Final

import numpy as np
import numpy.typing as npt

from sealagent.proofs.field import R
from sealagent.proofs.poseidon import ARITIES, merkle_tree_tag, sparse_schedule
from sealagent.vocab.registry import RegisteredSealProof

LIMBS: Final = 8
"""u32 limbs per field element."""

HALF_FULL_ROUNDS: Final = 4
"""Full rounds before (and after) the partial rounds; the kernel assumes ``R_F = 8``."""

_MONTGOMERY_R: Final = 1 << 256

Limbs = npt.NDArray[np.uint32]


def porep_arities() -> tuple[int, ...]:
    """Every arity PoRep hashes with: the tree arities and the column arities (layer counts)."""
    used: set[int] = set()
    for proof in RegisteredSealProof:
        shape = proof.shape
        used |= {proof.layers, shape.base_arity, shape.sub_arity, shape.top_arity}
    return tuple(sorted(used & set(ARITIES)))


def to_montgomery_limbs(values: list[int]) -> Limbs:
    """Field elements as ``(n, 8)`` u32 limbs of their Montgomery form ``x·2^256 mod r``."""
    raw = b"".join((v * _MONTGOMERY_R % R).to_bytes(32, "little") for v in values)
    return np.frombuffer(raw, dtype="<u4").astype(np.uint32).reshape(-1, LIMBS)


def schedule_elements(arity: int) -> list[int]:
    """The kernel's constants of ``arity`` as field elements, in the documented order."""
    schedule = sparse_schedule(arity)
    if len(schedule.full_constants) != 2 * HALF_FULL_ROUNDS:
        raise ValueError(f"the kernels need R_F = {2 * HALF_FULL_ROUNDS}")
    out = [merkle_tree_tag(arity)]
    for rnd in schedule.full_constants[:HALF_FULL_ROUNDS]:
        out += rnd
    for matrix in (schedule.mds, schedule.pre_sparse):
        for row in matrix:
            out += row
    for a, w, v in zip(schedule.partial_constants, schedule.sparse_rows,
                       schedule.sparse_columns, strict=True):
        out += [a, *w, *v]
    for rnd in schedule.full_constants[HALF_FULL_ROUNDS:]:
        out += rnd
    return out


@cache
def schedule_limbs(arity: int) -> Limbs:
    """:func:`schedule_elements` in Montgomery limbs, flat ``(n·8,)`` u32 (cached)."""
    limbs = to_montgomery_limbs(schedule_elements(arity)).reshape(-1)
    limbs.flags.writeable = False
    return limbs


def compile_defines(arity: int) -> dict[str, int]:
    """The ``-D`` macros the kernel source needs for ``arity``."""
    return {"POSEIDON_ARITY": arity,
            "POSEIDON_PARTIAL_ROUNDS": len(sparse_schedule(arity).partial_constants)}
