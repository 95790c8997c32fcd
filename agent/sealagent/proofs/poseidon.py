"""Poseidon over the BLS12-381 scalar field, bit-exact with neptune (docs/porep.md §8).

Filecoin uses neptune's ``Strength::Standard`` instances: width ``t = arity + 1``, S-box
``x^5``, ``R_F = 8`` full rounds around ``R_P`` partial rounds, round constants drawn from
the Grain LFSR and the Cauchy MDS matrix ``M[i][j] = 1/(i + j + t)``.  Everything is
generated here from those rules and cached per arity.

Two permutations give identical results:

* :func:`permute_reference` follows the definition round by round (docs/porep.md §8.5).
* :func:`permute` is the fast one (docs/porep.md §8.6).  The state is kept scaled by a known
  factor ``λ``, so that the full rounds multiply by the *integer* matrix ``L·M``
  (``L = lcm(t … 3t−2)``, entries of a few dozen bits, much cheaper than field elements)
  and values are reduced only before an S-box.  The partial rounds take one of two forms:

  - *sparse* (width above :data:`DENSE_PARTIAL_MAX_WIDTH`), like neptune's
    ``OptimizedStatic`` mode: each round adds one constant and multiplies by a sparse
    matrix (dense first row and column, identity elsewhere).  The factorisation is
    derived in closed form: with ``M = [[m00, m01ᵀ], [m10, M̂]]`` and ``k`` partial rounds
    left, the sparse matrix has first row ``(m00, (M̂⁻¹)ᵏ·m01)`` and first column
    ``(m00, M̂ᵏ⁻¹·m10)``, and the last full round before them multiplies by
    ``diag(1, M̂ᴿᴾ)·M`` instead of ``M``;
  - *dense* (narrow widths): each round adds one constant and keeps multiplying by
    ``L·M``; at width 3 its nine products with 8-bit factors cost less than the sparse
    round's five products with 255-bit ones.  The S-box output is brought back to the
    scale of the other elements inside the S-box: ``λ⁴·y⁵ = (λ²·y²)²·y``.

  Either way the constants the partial rounds would add to the other state elements are
  pushed forward through ``M`` into the first full round after them.

The fast permutation works on "lanes": a lane is either one Python int or a numpy object
array of ints, so the same code hashes one preimage or a whole tree row at once
(:func:`poseidon_hash_level`; rows of fewer than :data:`MIN_ARRAY_GROUPS` groups are
hashed one group at a time, as an object-array operation has a fixed cost of about a
microsecond).  Field elements are ints in ``[0, r)``; on the byte level they are 32-byte
little-endian canonical encodings (:mod:`sealagent.proofs.field`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from math import lcm
from operator import mul
from typing import Final, TypeAlias, TypeVar

import numpy as np
import numpy.typing as npt

from sealagent.errors import InvalidInputError
from sealagent.proofs.field import FR_BYTES, R, fr_from_bytes

FULL_ROUNDS: Final = 8
"""``R_F``: full rounds of every Filecoin instance (half before, half after the partial ones)."""

PARTIAL_ROUNDS: Final[dict[int, int]] = {2: 55, 4: 56, 8: 57, 11: 57, 16: 59, 24: 59, 36: 60}
"""``R_P`` by arity for ``Strength::Standard`` (neptune ``round_numbers``)."""

ARITIES: Final = tuple(PARTIAL_ROUNDS)
"""The arities neptune instantiates for Filecoin."""

MD_ARITY: Final = 36
"""Arity of the chaining hash ``hash_md``."""

FIELD_BITS: Final = 255
"""``Fr::NUM_BITS``, which seeds the Grain LFSR and sizes each round-constant draw."""

LEVEL_CHUNK: Final = 4096
"""Hashes computed together by :func:`poseidon_hash_level` (bounds its working memory)."""

MIN_ARRAY_GROUPS: Final = 16
"""Fewest groups :func:`poseidon_hash_level` hashes with object-array lanes; fewer are hashed
one at a time with int lanes (measured break-even: 16 to 32 groups, by arity)."""

DENSE_PARTIAL_MAX_WIDTH: Final = 3
"""Widest instance whose partial rounds keep the dense integer matrix (see module docstring)."""

Matrix: TypeAlias = tuple[tuple[int, ...], ...]
Lane = TypeVar("Lane", int, npt.NDArray[np.object_])

_GRAIN_TAPS: Final = (13, 23, 38, 51, 62)
_GRAIN_DISCARD: Final = 160
_GRAIN_MAX_STRIDE: Final = 4096
_TOP_BYTE_OF_R: Final = R >> 248


def merkle_tree_tag(arity: int) -> int:
    """Domain tag of ``HashType::MerkleTree``: ``2^arity − 1``."""
    return (1 << arity) - 1


def constant_length_tag(length: int) -> int:
    """Domain tag of ``HashType::ConstantLength(length)``: ``length · 2^64``."""
    return length << 64


def round_numbers(arity: int) -> tuple[int, int]:
    """``(R_F, R_P)`` of the instance of ``arity``."""
    try:
        return FULL_ROUNDS, PARTIAL_ROUNDS[arity]
    except KeyError:
        raise InvalidInputError(
            f"no Poseidon instance of arity {arity} (supported: {', '.join(map(str, ARITIES))})"
        ) from None


def _lfsr_bits(seed: Sequence[int], count: int) -> npt.NDArray[np.uint8]:
    """The first ``count`` bits of the Grain LFSR sequence that starts with the 80 ``seed`` bits.

    ``b[n+80] = b[n+62] ⊕ b[n+51] ⊕ b[n+38] ⊕ b[n+23] ⊕ b[n+13] ⊕ b[n]``.  Over GF(2) the
    same relation holds with every offset multiplied by a power of two ``s`` (the
    feedback polynomial raised to the power ``s``), which yields ``18·s`` new bits per step;
    ``s`` doubles as soon as enough bits exist to use it.
    """
    bits = np.zeros(max(count, len(seed)), dtype=np.uint8)
    bits[: len(seed)] = seed
    filled, stride = len(seed), 1
    while filled < count:
        start = filled - 80 * stride
        end = min(filled + 18 * stride, count)
        new = bits[start : start + end - filled].copy()
        for tap in _GRAIN_TAPS:
            offset = start + tap * stride
            new ^= bits[offset : offset + end - filled]
        bits[filled:end] = new
        filled = end
        if filled >= 160 * stride and stride < _GRAIN_MAX_STRIDE:
            stride *= 2
    return bits[:count]


def grain_round_constants(width: int, full_rounds: int, partial_rounds: int) -> list[int]:
    """The ``(R_F + R_P)·t`` round constants of the self-shrinking Grain LFSR (docs/porep.md §8.2).

    Seed (MSB first): field 1 (2 bits), S-box 1 (4), field bits 255 (12), ``t`` (12),
    ``R_F`` (10), ``R_P`` (10), 30 ones.  The first 160 generated bits are discarded; then
    bit pairs ``(b1, b2)`` output ``b2`` when ``b1`` is 1.  Each constant is the next 255
    output bits, most significant first, redrawn while ``≥ r``.
    """
    seed: list[int] = []
    for value, size in ((1, 2), (1, 4), (FIELD_BITS, 12), (width, 12), (full_rounds, 10),
                        (partial_rounds, 10), ((1 << 30) - 1, 30)):
        seed.extend((value >> i) & 1 for i in reversed(range(size)))
    needed = (full_rounds + partial_rounds) * width
    total = len(seed) + _GRAIN_DISCARD + needed * 5 * FIELD_BITS
    while True:
        stream = _lfsr_bits(seed, total)[len(seed) + _GRAIN_DISCARD :]
        pairs = len(stream) // 2
        output = stream[1 : 2 * pairs : 2][stream[0 : 2 * pairs : 2] == 1]
        draws = len(output) // FIELD_BITS
        padded = np.zeros((draws, 256), dtype=np.uint8)
        padded[:, 256 - FIELD_BITS :] = output[: draws * FIELD_BITS].reshape(draws, FIELD_BITS)
        candidates = (int.from_bytes(row.tobytes(), "big") for row in np.packbits(padded, axis=1))
        accepted = [value for value in candidates if value < R]
        if len(accepted) >= needed:
            return accepted[:needed]
        total *= 2


def cauchy_mds(width: int) -> list[list[int]]:
    """The MDS matrix ``M[i][j] = 1 / (i + j + t)`` over ``F_r`` (symmetric)."""
    return [[pow(i + j + width, -1, R) for j in range(width)] for i in range(width)]


def _mat_mul(a: Sequence[Sequence[int]], b: Sequence[Sequence[int]]) -> list[list[int]]:
    """Matrix product over ``F_r``."""
    cols = list(zip(*b, strict=True))
    return [[sum(map(mul, row, col)) % R for col in cols] for row in a]


def _mat_vec(a: Sequence[Sequence[int]], v: Sequence[int]) -> list[int]:
    """Matrix–vector product over ``F_r``."""
    return [sum(map(mul, row, v)) % R for row in a]


def _mat_pow(a: Sequence[Sequence[int]], exponent: int) -> list[list[int]]:
    """``a^exponent`` over ``F_r`` by repeated squaring."""
    result = [[int(i == j) for j in range(len(a))] for i in range(len(a))]
    base = [list(row) for row in a]
    while exponent:
        if exponent & 1:
            result = _mat_mul(result, base)
        base = _mat_mul(base, base)
        exponent >>= 1
    return result


def _mat_inv(a: Sequence[Sequence[int]]) -> list[list[int]]:
    """Inverse over ``F_r`` by Gauss–Jordan elimination."""
    n = len(a)
    rows = [[*row, *(int(i == j) for j in range(n))] for i, row in enumerate(a)]
    for col in range(n):
        pivot = next((i for i in range(col, n) if rows[i][col]), None)
        if pivot is None:
            raise InvalidInputError("matrix is singular over F_r")
        rows[col], rows[pivot] = rows[pivot], rows[col]
        inverse = pow(rows[col][col], -1, R)
        rows[col] = [x * inverse % R for x in rows[col]]
        for i in range(n):
            factor = rows[i][col]
            if i != col and factor:
                rows[i] = [(x - factor * y) % R for x, y in zip(rows[i], rows[col], strict=True)]
    return [row[n:] for row in rows]


def _as_matrix(rows: Sequence[Sequence[int]]) -> Matrix:
    """Freeze a list of rows."""
    return tuple(tuple(row) for row in rows)


SparseRound: TypeAlias = tuple[int, int, tuple[int, ...], tuple[int, ...]]
"""``(constant of state[0], m00, first row w, first column v)`` of a sparse partial round."""

DenseRound: TypeAlias = tuple[int, int]
"""``(constant of state[0], λ²)`` of a dense partial round (``λ``: the scale in force)."""


@dataclass(frozen=True)
class SparsePartialRounds:
    """Partial rounds as sparse matrices (widths above :data:`DENSE_PARTIAL_MAX_WIDTH`)."""

    rounds: tuple[SparseRound, ...]

    def __len__(self) -> int:
        """The number of partial rounds."""
        return len(self.rounds)

    def apply(self, lanes: list[Lane]) -> list[Lane]:
        """Run the rounds; ``state[0]`` leaves reduced, the others unreduced."""
        first: Lane = lanes[0] % R
        rest: list[Lane] = [y % R for y in lanes[1:]]
        for a, m00, w, v in self.rounds:
            x = _sbox(first + a)
            first = sum(map(mul, w, rest), m00 * x) % R
            rest = [y + c * x for y, c in zip(rest, v, strict=True)]
        rest.insert(0, first)
        return rest


@dataclass(frozen=True)
class DensePartialRounds:
    """Partial rounds with the integer matrix ``L·M`` (narrow widths).

    With the state carried as ``λ·u``, the S-box of ``y = u[0] + constant`` must output
    ``λ⁴·y⁵ = (λ²·y²)²·y`` to stay on the scale of the other elements; ``L·M`` then
    divides the scale by ``L``.  The elements that skip the S-box grow by less than
    ``t·max(L·M)`` per round (``2^9`` at width 3) and are reduced every other round.
    """

    int_mds: Matrix
    rounds: tuple[DenseRound, ...]

    def __len__(self) -> int:
        """The number of partial rounds."""
        return len(self.rounds)

    def apply(self, lanes: list[Lane]) -> list[Lane]:
        """Run the rounds; every element leaves unreduced."""
        for k, (a, scale_squared) in enumerate(self.rounds):
            y = lanes[0] + a
            x = y * y * scale_squared % R
            lanes = _mat_apply(self.int_mds, x * x * y % R, lanes[1:])
            if k % 2:
                lanes[1:] = [z % R for z in lanes[1:]]
        return lanes


@dataclass(frozen=True)
class FastSchedule:
    """The precomputed form of the fast permutation (see the module docstring).

    The state is carried as ``λ·u``: the code computes ``u`` and every constant below is
    already divided or multiplied by the ``λ`` in force where it is used.
    """

    int_mds: Matrix
    """``L·M`` as small integers: the linear layer of the ordinary full rounds."""
    head_constants: Matrix
    """Constants of the first-half full rounds except the last one."""
    pre_constants: tuple[int, ...]
    """Constants of the last first-half full round."""
    pre_matrix: Matrix
    """Matrix of the last first-half full round: ``diag(1, M̂ᴿᴾ)·M`` before sparse partial
    rounds, ``L·M`` before dense ones."""
    partial: SparsePartialRounds | DensePartialRounds
    """The partial rounds."""
    tail_constants: Matrix
    """Constants of the second-half full rounds."""
    out_scale: int
    """The final ``λ``: state = ``out_scale · u``."""


@dataclass(frozen=True)
class PoseidonConstants:
    """One Poseidon instance: its definition and the fast permutation's schedule."""

    arity: int
    full_rounds: int
    partial_rounds: int
    round_constants: tuple[int, ...]
    """``(R_F + R_P)·t`` Grain constants; round ``ρ`` uses ``[ρ·t, (ρ+1)·t)``."""
    mds: Matrix
    fast: FastSchedule

    @property
    def width(self) -> int:
        """State width ``t = arity + 1``."""
        return self.arity + 1


def _push_partial_constants(rounds: list[list[int]], half: int, partial: int,
                            mds: Matrix) -> list[int]:
    """The constant of ``state[0]`` per partial round; the others move into the next round.

    A constant added to ``state[1:]`` in a partial round passes the S-box untouched, so it
    can be added after the matrix instead (multiplied by ``M``), and so on until the first
    full round after the partial ones, whose constants in ``rounds`` are updated.
    """
    carry = [0] * len(mds)
    adds = []
    for k in range(partial):
        acc = [(c + d) % R for c, d in zip(rounds[half + k], carry, strict=True)]
        adds.append(acc[0])
        carry = _mat_vec(mds, [0, *acc[1:]])
    after = rounds[half + partial]
    rounds[half + partial] = [(c + d) % R for c, d in zip(after, carry, strict=True)]
    return adds


def _sparse_factors(mds: Matrix, partial: int) -> tuple[Matrix, list[tuple[int, ...]],
                                                        list[tuple[int, ...]]]:
    """``diag(1, M̂ᴿᴾ)·M`` and the first rows ``w`` and columns ``v`` of the sparse rounds."""
    width = len(mds)
    m_hat = [list(row[1:]) for row in mds[1:]]
    m_hat_inv = _mat_inv(m_hat)
    w, v = list(mds[0][1:]), [row[0] for row in mds[1:]]
    rows, columns = [], []
    for _ in range(partial):
        w = _mat_vec(m_hat_inv, w)
        rows.append(tuple(w))
        columns.append(tuple(v))
        v = _mat_vec(m_hat, v)
    rows.reverse()
    columns.reverse()
    lift = [[1] + [0] * (width - 1)] + [[0, *row] for row in _mat_pow(m_hat, partial)]
    return _as_matrix(_mat_mul(lift, mds)), rows, columns


def _fast_schedule(full: int, partial: int, rc: Sequence[int], mds: Matrix) -> FastSchedule:
    """Derive :class:`FastSchedule` from the definition of an instance."""
    width, half = len(mds), full // 2
    rounds = [list(rc[i * width : (i + 1) * width]) for i in range(full + partial)]
    partial_adds = _push_partial_constants(rounds, half, partial, mds)

    # Scale the state so that ordinary full rounds multiply by the integer matrix L·M.
    big_l = lcm(*range(width, 3 * width - 1))
    int_mds = _as_matrix([[big_l // (i + j + width) for j in range(width)]
                          for i in range(width)])
    inv_l = pow(big_l, -1, R)
    scale = 1

    def scaled(constants: Sequence[int]) -> tuple[int, ...]:
        inverse = pow(scale, -1, R)
        return tuple(c * inverse % R for c in constants)

    head = []
    for rnd in range(half - 1):
        head.append(scaled(rounds[rnd]))
        scale = pow(scale, 5, R) * inv_l % R
    pre_constants = scaled(rounds[half - 1])
    partial_rounds: SparsePartialRounds | DensePartialRounds
    if width <= DENSE_PARTIAL_MAX_WIDTH:
        # The last first-half round is an ordinary one; each partial round divides by L.
        pre_matrix = int_mds
        scale = pow(scale, 5, R) * inv_l % R
        dense = []
        for a in partial_adds:
            dense.append((a * pow(scale, -1, R) % R, scale * scale % R))
            scale = scale * inv_l % R
        partial_rounds = DensePartialRounds(int_mds, tuple(dense))
    else:
        # The scale stays put through the field-element matrices of the sparse form.
        pre_matrix, rows, columns = _sparse_factors(mds, partial)
        scale = pow(scale, 5, R)
        inverse, fourth = pow(scale, -1, R), pow(scale, 4, R)
        partial_rounds = SparsePartialRounds(tuple(
            (a * inverse % R, mds[0][0] * fourth % R, w_k, tuple(x * fourth % R for x in v_k))
            for a, w_k, v_k in zip(partial_adds, rows, columns, strict=True)
        ))
    tail = []
    for rnd in range(half + partial, full + partial):
        tail.append(scaled(rounds[rnd]))
        scale = pow(scale, 5, R) * inv_l % R
    return FastSchedule(
        int_mds=int_mds, head_constants=_as_matrix(head), pre_constants=pre_constants,
        pre_matrix=pre_matrix, partial=partial_rounds, tail_constants=_as_matrix(tail),
        out_scale=scale,
    )


@cache
def constants(arity: int) -> PoseidonConstants:
    """The (cached) constants of the instance of ``arity``."""
    full, partial = round_numbers(arity)
    rc = grain_round_constants(arity + 1, full, partial)
    mds = _as_matrix(cauchy_mds(arity + 1))
    return PoseidonConstants(
        arity=arity, full_rounds=full, partial_rounds=partial, round_constants=tuple(rc),
        mds=mds, fast=_fast_schedule(full, partial, rc, mds),
    )


@dataclass(frozen=True)
class SparseSchedule:
    """neptune's optimized static schedule over plain field elements, for compiled kernels.

    The same permutation as :func:`permute_reference`, rearranged (module docstring) but
    without the integer scaling of :class:`FastSchedule`, so that every step is ordinary
    field arithmetic:

    1. full rounds ``0 … R_F/2 − 2``: add ``full_constants[ρ]``, S-box every element,
       multiply by ``mds``;
    2. full round ``R_F/2 − 1``: add its constants, S-box, multiply by ``pre_sparse``;
    3. partial round ``k``: ``x = (s₀ + partial_constants[k])⁵``, then
       ``s₀ = m00·x + Σᵢ sparse_rows[k][i]·sᵢ₊₁`` and ``sᵢ₊₁ += sparse_columns[k][i]·x``;
    4. the last ``R_F/2`` full rounds: add ``full_constants[ρ]``, S-box, multiply by ``mds``.

    ``full_constants`` holds the ``R_F`` full rounds' constants in order (the first round
    after the partial ones includes the constants pushed forward out of them).
    """

    width: int
    full_constants: Matrix
    mds: Matrix
    pre_sparse: Matrix
    partial_constants: tuple[int, ...]
    m00: int
    sparse_rows: Matrix
    sparse_columns: Matrix


@cache
def sparse_schedule(arity: int) -> SparseSchedule:
    """The :class:`SparseSchedule` of the instance of ``arity`` (cached)."""
    consts = constants(arity)
    width, half = consts.width, consts.full_rounds // 2
    partial = consts.partial_rounds
    rc = consts.round_constants
    rounds = [list(rc[i * width : (i + 1) * width])
              for i in range(consts.full_rounds + partial)]
    adds = _push_partial_constants(rounds, half, partial, consts.mds)
    pre_sparse, rows, columns = _sparse_factors(consts.mds, partial)
    return SparseSchedule(
        width=width, full_constants=_as_matrix(rounds[:half] + rounds[half + partial :]),
        mds=consts.mds, pre_sparse=pre_sparse, partial_constants=tuple(adds),
        m00=consts.mds[0][0], sparse_rows=_as_matrix(rows), sparse_columns=_as_matrix(columns),
    )


def _check_state(state: Sequence[int], consts: PoseidonConstants) -> None:
    """Reject a state of the wrong width or with values outside ``[0, r)``."""
    if len(state) != consts.width:
        raise InvalidInputError(
            f"a Poseidon state of arity {consts.arity} has {consts.width} elements, "
            f"got {len(state)}"
        )
    for x in state:
        if not isinstance(x, int) or not 0 <= x < R:
            raise InvalidInputError("Poseidon inputs must be field elements: ints in [0, r)")


def permute_reference(state: Sequence[int], consts: PoseidonConstants) -> list[int]:
    """The permutation exactly as defined (docs/porep.md §8.5): constants, S-box, MDS per round."""
    _check_state(state, consts)
    s = list(state)
    t = consts.width
    half = consts.full_rounds // 2
    for rnd in range(consts.full_rounds + consts.partial_rounds):
        added = consts.round_constants[rnd * t : (rnd + 1) * t]
        s = [(x + c) % R for x, c in zip(s, added, strict=True)]
        if half <= rnd < half + consts.partial_rounds:
            s[0] = pow(s[0], 5, R)
        else:
            s = [pow(x, 5, R) for x in s]
        s = [sum(map(mul, row, s)) % R for row in consts.mds]
    return s


def _sbox(x: Lane) -> Lane:
    """``x^5 mod r`` (``x`` may be unreduced)."""
    x2 = x * x % R
    result: Lane = x2 * x2 * x % R
    return result


def _mat_apply(matrix: Matrix, first: Lane, rest: Sequence[Lane]) -> list[Lane]:
    """``matrix · (first, *rest)``, unreduced (each sum starts from a product, not from 0)."""
    return [sum(map(mul, row[1:], rest), row[0] * first) for row in matrix]


def _full_round(lanes: Sequence[Lane], added: Sequence[int], matrix: Matrix) -> list[Lane]:
    """Add constants, S-box every lane, multiply by ``matrix`` (results left unreduced)."""
    boxed = [_sbox(x + c) for x, c in zip(lanes, added, strict=True)]
    return _mat_apply(matrix, boxed[0], boxed[1:])


def _permute_lanes(lanes: list[Lane], fast: FastSchedule, only: int | None = None) -> list[Lane]:
    """The fast permutation over lanes; with ``only``, just that output element is computed."""
    for added in fast.head_constants:
        lanes = _full_round(lanes, added, fast.int_mds)
    lanes = fast.partial.apply(_full_round(lanes, fast.pre_constants, fast.pre_matrix))
    for added in fast.tail_constants[:-1]:
        lanes = _full_round(lanes, added, fast.int_mds)
    rows = fast.int_mds if only is None else (fast.int_mds[only],)
    return [x * fast.out_scale % R for x in _full_round(lanes, fast.tail_constants[-1], rows)]


def permute(state: Sequence[int], consts: PoseidonConstants) -> list[int]:
    """The fast permutation (docs/porep.md §8.6); equal to :func:`permute_reference`."""
    _check_state(state, consts)
    return _permute_lanes(list(state), consts.fast)


def poseidon_hash_ints(
    values: Sequence[int], tag: int | None = None, arity: int | None = None
) -> int:
    """Poseidon of field elements: ``state = [tag, values…, 0…]``, output ``state[1]``.

    ``arity`` defaults to ``len(values)`` and ``tag`` to the MerkleTree tag ``2^arity − 1``;
    fewer values than ``arity`` are zero-padded (as ConstantLength hashing does).
    """
    arity = len(values) if arity is None else arity
    consts = constants(arity)
    if not 0 < len(values) <= arity:
        raise InvalidInputError(f"{len(values)} values do not fit a Poseidon of arity {arity}")
    state = [merkle_tree_tag(arity) if tag is None else tag, *values]
    state += [0] * (consts.width - len(state))
    _check_state(state, consts)
    return _permute_lanes(state, consts.fast, only=1)[0]


def poseidon_hash(elements: Sequence[bytes]) -> bytes:
    """MerkleTree-tagged Poseidon of ``len(elements)`` 32-byte LE field elements.

    Values that are not canonical (``≥ r``) or not 32 bytes raise InvalidInputError.
    """
    return poseidon_hash_ints([fr_from_bytes(e) for e in elements]).to_bytes(FR_BYTES, "little")


def poseidon_constant_length(values: Sequence[int], arity: int) -> int:
    """``HashType::ConstantLength(len(values))`` with the instance of ``arity``."""
    return poseidon_hash_ints(values, constant_length_tag(len(values)), arity)


def poseidon_hash_md(values: Sequence[int]) -> int:
    """filecoin-hashers ``hash_md``: fold the values into arity-36 MerkleTree hashes.

    ``acc = values[0]``; for each chunk of 35 further values,
    ``acc = Poseidon36([acc, *chunk])`` (a short last chunk is zero-padded).
    """
    if len(values) < 2:
        raise InvalidInputError("hash_md needs at least two elements")
    acc = values[0]
    step = MD_ARITY - 1
    for start in range(1, len(values), step):
        chunk = values[start : start + step]
        acc = poseidon_hash_ints([acc, *chunk], merkle_tree_tag(MD_ARITY), MD_ARITY)
    return acc


def _check_row(level: npt.NDArray[np.uint8], arity: int) -> None:
    """Reject anything but a ``(arity·n, 32)`` uint8 row of canonical field elements."""
    if level.ndim != 2 or level.shape[1] != FR_BYTES or level.dtype != np.uint8:
        raise InvalidInputError(
            f"a tree row must be a (n, 32) uint8 array, got shape {level.shape} {level.dtype}"
        )
    if level.shape[0] == 0 or level.shape[0] % arity:
        raise InvalidInputError(
            f"a row of {level.shape[0]} nodes cannot be hashed in groups of {arity}"
        )


def _chunk_ints(chunk: npt.NDArray[np.uint8]) -> list[int]:
    """Decode ``(n, 32)`` LE field elements, rejecting values ``≥ r``."""
    raw = np.ascontiguousarray(chunk).tobytes()
    from_bytes = int.from_bytes
    values = [from_bytes(raw[i : i + FR_BYTES], "little") for i in range(0, len(raw), FR_BYTES)]
    suspects = np.flatnonzero(chunk[:, FR_BYTES - 1] >= _TOP_BYTE_OF_R)
    if any(values[i] >= R for i in suspects):
        raise InvalidInputError("tree row holds a value that is not a canonical field element")
    return values


def _merkle_digests(values: list[int], consts: PoseidonConstants) -> list[int]:
    """MerkleTree-tagged Poseidon of each group of ``arity`` consecutive ``values``."""
    arity, fast = consts.arity, consts.fast
    tag = merkle_tree_tag(arity)
    groups = len(values) // arity
    if groups < MIN_ARRAY_GROUPS:
        return [_permute_lanes([tag, *values[i : i + arity]], fast, only=1)[0]
                for i in range(0, len(values), arity)]
    inputs = np.array(values, dtype=object).reshape(groups, arity)
    lanes: list[npt.NDArray[np.object_]] = [np.full(groups, tag, dtype=object)]
    lanes += [inputs[:, j] for j in range(arity)]
    (digests,) = _permute_lanes(lanes, fast, only=1)
    return list(digests)


def poseidon_hash_level(level: npt.NDArray[np.uint8], arity: int) -> npt.NDArray[np.uint8]:
    """Hash a tree row ``(arity·n, 32)`` uint8 into its parent row ``(n, 32)``.

    Each group of ``arity`` consecutive nodes is hashed with the MerkleTree tag.  ``level``
    may be a memmap: it is read :data:`LEVEL_CHUNK` groups at a time.
    """
    consts = constants(arity)
    _check_row(level, arity)
    groups = level.shape[0] // arity
    out = np.empty((groups, FR_BYTES), dtype=np.uint8)
    for first in range(0, groups, LEVEL_CHUNK):
        last = min(first + LEVEL_CHUNK, groups)
        digests = _merkle_digests(_chunk_ints(level[first * arity : last * arity]), consts)
        raw = b"".join([d.to_bytes(FR_BYTES, "little") for d in digests])
        out[first:last] = np.frombuffer(raw, dtype=np.uint8).reshape(-1, FR_BYTES)
    return out
