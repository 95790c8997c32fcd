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

The schedule is the one :mod:`sealagent.proofs.poseidon` derives for its fast permutation
(neptune's ``OptimizedStatic``), taken unscaled.
"""

from __future__ import annotations

from functools import cache
from typing import Final

import numpy as np
import numpy.typing as npt

from sealagent.proofs.field import R
from sealagent.proofs.poseidon import (
    _push_partial_constants,
    _sparse_factors,
    constants,
    merkle_tree_tag,
)

LIMBS: Final = 8
"""u32 limbs per field element."""

HALF_FULL_ROUNDS: Final = 4
"""Full rounds before (and after) the partial rounds; the kernel assumes ``R_F = 8``."""

_MONTGOMERY_R: Final = 1 << 256

Limbs = npt.NDArray[np.uint32]


def to_montgomery_limbs(values: list[int]) -> Limbs:
    """Field elements as ``(n, 8)`` u32 limbs of their Montgomery form ``x·2^256 mod r``."""
    raw = b"".join((v * _MONTGOMERY_R % R).to_bytes(32, "little") for v in values)
    return np.frombuffer(raw, dtype="<u4").astype(np.uint32).reshape(-1, LIMBS)


def schedule_elements(arity: int) -> list[int]:
    """The kernel's constants of ``arity`` as field elements, in the documented order."""
    consts = constants(arity)
    if consts.full_rounds != 2 * HALF_FULL_ROUNDS:
        raise ValueError(f"the kernels need R_F = {2 * HALF_FULL_ROUNDS}")
    width, partial = consts.width, consts.partial_rounds
    rounds = [list(consts.round_constants[i * width : (i + 1) * width])
              for i in range(consts.full_rounds + partial)]
    adds = _push_partial_constants(rounds, HALF_FULL_ROUNDS, partial, consts.mds)
    pre, rows, columns = _sparse_factors(consts.mds, partial)
    out = [merkle_tree_tag(arity)]
    for rnd in rounds[:HALF_FULL_ROUNDS]:
        out += rnd
    for matrix in (consts.mds, pre):
        for row in matrix:
            out += row
    for a, w, v in zip(adds, rows, columns, strict=True):
        out += [a, *w, *v]
    for rnd in rounds[HALF_FULL_ROUNDS + partial :]:
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
    return {"POSEIDON_ARITY": arity, "POSEIDON_PARTIAL_ROUNDS": constants(arity).partial_rounds}
