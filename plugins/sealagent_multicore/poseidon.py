"""Batched Poseidon compiled with numba, spread over the granted threads.

Two compiled kernels hash a run of groups with any arity, from the instance's
:class:`~sealagent.proofs.poseidon.SparseSchedule` converted once to Montgomery-form
tables:

* :func:`_hash_blocks` (CPUs with AVX-512 IFMA, :mod:`sealagent_multicore.field_ifma`)
  hashes eight groups at once, one per vector lane, with lazily reduced 52-bit limbs and
  one Montgomery reduction per matrix-row dot product (:class:`_BlockTables`);
* :func:`_hash_groups` (any CPU, :mod:`sealagent_multicore.field`) hashes one group at a
  time with 64-bit limbs (:class:`_Tables`).

Both release the GIL, so a row is cut into one contiguous range of groups per thread and
the ranges are hashed at once; tree rows and column chunks both go through
:meth:`PoseidonRows.hash_level`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from numba import njit

from sealagent.errors import ConfigError, InvalidInputError
from sealagent.proofs.kernels import Progress, report
from sealagent.proofs.merkle import NODE_BYTES, Nodes, TreeHasher
from sealagent.proofs.poseidon import ARITIES, merkle_tree_tag, sparse_schedule
from sealagent_multicore import field_ifma as lanes
from sealagent_multicore.field import (
    MONT_R2,
    add,
    get,
    is_canonical,
    mul,
    put,
    sbox,
    to_limbs,
    to_montgomery_limbs,
)
from sealagent_multicore.threads import ThreadShares

Limbs = npt.NDArray[np.uint64]

MIN_GROUPS_PER_THREAD: Final = 64
"""Rows of fewer groups per thread are hashed on the calling thread alone."""

TREE_ARITIES: Final = (2, 4, 8, 11)
"""Arities sealing hashes with: columns of 2 or 11 layers, base 8, sub/top 2, 4 or 8."""

COLUMN_CHUNK_NODES: Final = 1 << 16
"""Columns hashed per step by :meth:`PoseidonRows.hash_columns`."""


@dataclass(frozen=True)
class _Tables:
    """An instance's schedule as Montgomery-form ``uint64`` limb arrays."""

    tag: Limbs
    """``(4,)``: the MerkleTree domain tag."""
    full: Limbs
    """``(R_F, width, 4)``."""
    mds: Limbs
    """``(width, width, 4)``."""
    pre_sparse: Limbs
    """``(width, width, 4)``."""
    partial: Limbs
    """``(R_P, 4)``."""
    m00: Limbs
    """``(4,)``."""
    rows: Limbs
    """``(R_P, width − 1, 4)``."""
    columns: Limbs
    """``(R_P, width − 1, 4)``."""
    r2: Limbs
    """``(4,)``: ``2⁵¹²`` mod r, to convert into Montgomery form."""

    def run(self, inputs: Limbs, out: Limbs) -> int:
        """:func:`_hash_groups` on ``(groups·arity, 4)`` limbs; returns non-canonical inputs."""
        bad: int = _hash_groups(inputs, out, self.tag, self.full, self.mds, self.pre_sparse,
                                self.partial, self.m00, self.rows, self.columns, self.r2)
        return bad


@dataclass(frozen=True)
class _BlockTables:
    """An instance's schedule as Montgomery-form blocks (:mod:`~sealagent_multicore.field_ifma`).

    Matrices are flattened row-major to one block per entry, every value in all lanes.
    """

    width: int
    tag: lanes.Blocks
    """``(1, 5, 8)``."""
    full: lanes.Blocks
    """``(R_F·width, 5, 8)``: round ``ρ``'s constants from block ``ρ·width``."""
    mds: lanes.Blocks
    """``(width², 5, 8)``."""
    pre_sparse: lanes.Blocks
    """``(width², 5, 8)``."""
    partial: lanes.Blocks
    """``(R_P, 5, 8)``."""
    sparse: lanes.Blocks
    """``(R_P·width, 5, 8)``: per partial round ``m00`` then its ``width − 1`` sparse row."""
    columns: lanes.Blocks
    """``(R_P·(width − 1), 5, 8)``."""
    r2: lanes.Blocks
    """``(1, 5, 8)``: ``R'²`` mod r (the Montgomery form of ``R'``), to convert into it."""

    def run(self, inputs: Limbs, out: Limbs) -> int:
        """:func:`_hash_blocks` on ``(groups·arity, 4)`` limbs; returns non-canonical inputs."""
        bad: int = _hash_blocks(inputs, out, self.width, self.tag, self.full, self.mds,
                                self.pre_sparse, self.partial, self.sparse, self.columns,
                                self.r2)
        return bad


def _limbs(values: Any) -> Limbs:
    """Nested lists of field elements as Montgomery-form limbs (last axis of 4)."""
    array = np.array(values, dtype=object)
    flat = [to_montgomery_limbs(int(v)) for v in array.reshape(-1)]
    return np.array(flat, dtype=np.uint64).reshape((*array.shape, 4))


@cache
def tables(arity: int) -> _Tables:
    """The limb tables of the instance of ``arity`` (cached)."""
    s = sparse_schedule(arity)
    return _Tables(
        tag=_limbs(merkle_tree_tag(arity)), full=_limbs(s.full_constants), mds=_limbs(s.mds),
        pre_sparse=_limbs(s.pre_sparse), partial=_limbs(s.partial_constants),
        m00=_limbs(s.m00), rows=_limbs(s.sparse_rows), columns=_limbs(s.sparse_columns),
        r2=np.array(to_limbs(MONT_R2), dtype=np.uint64),
    )


def _flat_blocks(values: Any) -> lanes.Blocks:
    """Nested lists of field elements as Montgomery-form blocks, flattened row-major."""
    return lanes.broadcast([int(v) for v in np.array(values, dtype=object).reshape(-1)])


@cache
def block_tables(arity: int) -> _BlockTables:
    """The block tables of the instance of ``arity`` (cached)."""
    s = sparse_schedule(arity)
    return _BlockTables(
        width=s.width, tag=_flat_blocks([merkle_tree_tag(arity)]),
        full=_flat_blocks(s.full_constants), mds=_flat_blocks(s.mds),
        pre_sparse=_flat_blocks(s.pre_sparse), partial=_flat_blocks(s.partial_constants),
        sparse=_flat_blocks([[s.m00, *row] for row in s.sparse_rows]),
        columns=_flat_blocks(s.sparse_columns), r2=_flat_blocks([lanes.MONT_R]),
    )


@njit(inline="always", cache=True)
def _full_round(state: Limbs, scratch: Limbs, constants: Limbs, matrix: Limbs,
                rows: int) -> None:
    """Add constants, S-box every element, multiply by the first ``rows`` rows of ``matrix``."""
    width = state.shape[0]
    for i in range(width):
        put(scratch, i, sbox(add(get(state, i), get(constants, i))))
    for i in range(rows):
        acc = mul(get(scratch, 0), get(matrix[i], 0))
        for j in range(1, width):
            acc = add(acc, mul(get(scratch, j), get(matrix[i], j)))
        put(state, i, acc)


@njit(nogil=True, cache=True)
def _hash_groups(inputs: Limbs, out: Limbs, tag: Limbs, full: Limbs, mds: Limbs,
                 pre_sparse: Limbs, partial: Limbs, m00: Limbs, rows: Limbs, columns: Limbs,
                 r2: Limbs) -> int:
    """MerkleTree-tagged Poseidon of each group of ``arity`` consecutive ``inputs`` rows.

    ``inputs`` is ``(groups·arity, 4)`` canonical little-endian limbs, ``out`` ``(groups, 4)``.
    Returns how many inputs were not canonical (their groups' outputs are meaningless).
    """
    width = mds.shape[0]
    arity = width - 1
    half = full.shape[0] // 2
    state = np.empty((width, 4), dtype=np.uint64)
    scratch = np.empty((width, 4), dtype=np.uint64)
    one = np.zeros((1, 4), dtype=np.uint64)
    one[0, 0] = 1
    r2_x = get(r2.reshape(1, 4), 0)
    bad = 0
    for g in range(out.shape[0]):
        put(state, 0, get(tag.reshape(1, 4), 0))
        for j in range(arity):
            x = get(inputs, g * arity + j)
            if not is_canonical(x):
                bad += 1
            put(state, j + 1, mul(x, r2_x))
        for rnd in range(half - 1):
            _full_round(state, scratch, full[rnd], mds, width)
        _full_round(state, scratch, full[half - 1], pre_sparse, width)
        m = get(m00.reshape(1, 4), 0)
        for k in range(partial.shape[0]):
            x = sbox(add(get(state, 0), get(partial, k)))
            acc = mul(m, x)
            for i in range(arity):
                s = get(state, i + 1)
                acc = add(acc, mul(get(rows[k], i), s))
                put(state, i + 1, add(s, mul(get(columns[k], i), x)))
            put(state, 0, acc)
        for rnd in range(half, 2 * half - 1):
            _full_round(state, scratch, full[rnd], mds, width)
        # The last round: only element 1 (the digest) is needed.
        last = full[2 * half - 1]
        for i in range(width):
            put(scratch, i, sbox(add(get(state, i), get(last, i))))
        acc = mul(get(scratch, 0), get(mds[1], 0))
        for j in range(1, width):
            acc = add(acc, mul(get(scratch, j), get(mds[1], j)))
        put(out, g, mul(acc, get(one, 0)))
    return bad


@njit(inline="always", cache=True)
def _block_full_round(state: lanes.Blocks, scratch: lanes.Blocks, constants: lanes.Blocks,
                      first: int, matrix: lanes.Blocks) -> None:
    """Add constants from block ``first`` on, S-box every element, multiply by ``matrix``."""
    width = state.shape[0]
    for i in range(width):
        lanes.sbox_add(scratch, i, state, i, constants, first + i)
    for i in range(width):
        lanes.dot(state, i, scratch, 0, matrix, i * width, width)


@njit(nogil=True, cache=True)
def _hash_blocks(inputs: Limbs, out: Limbs, width: int, tag: lanes.Blocks,
                 full: lanes.Blocks, mds: lanes.Blocks, pre_sparse: lanes.Blocks,
                 partial: lanes.Blocks, sparse: lanes.Blocks, columns: lanes.Blocks,
                 r2: lanes.Blocks) -> int:
    """MerkleTree-tagged Poseidon of each group of ``width − 1`` consecutive ``inputs`` rows.

    The same contract as :func:`_hash_groups`; eight groups are hashed at once, one per
    lane (the last block's missing groups hash zeros and are dropped).
    """
    arity = width - 1
    groups = out.shape[0]
    half = full.shape[0] // (2 * width)
    shape = (width, lanes.LIMBS, lanes.LANES)
    state = np.empty(shape, dtype=np.uint64)
    scratch = np.empty(shape, dtype=np.uint64)
    raw = np.empty(shape, dtype=np.uint64)
    head = np.empty((1, lanes.LIMBS, lanes.LANES), dtype=np.uint64)
    zero = (np.uint64(0), np.uint64(0), np.uint64(0), np.uint64(0))
    bad = 0
    for b in range((groups + lanes.LANES - 1) // lanes.LANES):
        for lane in range(lanes.LANES):
            g = b * lanes.LANES + lane
            for j in range(arity):
                x = get(inputs, g * arity + j) if g < groups else zero
                if not is_canonical(x):
                    bad += 1
                lanes.put_lane(raw, j, lane, x)
        state[0] = tag[0]
        for j in range(arity):
            lanes.mul(state, j + 1, raw, j, r2, 0)
        for rnd in range(half - 1):
            _block_full_round(state, scratch, full, rnd * width, mds)
        _block_full_round(state, scratch, full, (half - 1) * width, pre_sparse)
        for k in range(partial.shape[0]):
            lanes.sbox_add(state, 0, state, 0, partial, k)
            lanes.dot(head, 0, state, 0, sparse, k * width, width)
            for i in range(arity):
                lanes.mul_add(state, i + 1, columns, k * arity + i, state, 0, state, i + 1)
            state[0] = head[0]
        for rnd in range(half, 2 * half - 1):
            _block_full_round(state, scratch, full, rnd * width, mds)
        # The last round: only element 1 (the digest) is needed.
        for i in range(width):
            lanes.sbox_add(scratch, i, state, i, full, (2 * half - 1) * width + i)
        lanes.dot(head, 0, scratch, 0, mds, width, width)
        lanes.from_montgomery(head, 0, head, 0)
        for lane in range(min(lanes.LANES, groups - b * lanes.LANES)):
            put(out, b * lanes.LANES + lane, lanes.get_lane(head, 0, lane))
    return bad


def _run(inputs: Limbs, out: Limbs, t: _Tables | _BlockTables) -> int:
    """Hash one thread's share with an instance's tables; returns non-canonical inputs."""
    return t.run(inputs, out)


class PoseidonRows(ThreadShares):
    """Poseidon row and column hashing on ``threads`` threads (one pool, made on first use)."""

    def __init__(self, threads: int, *, ifma: bool | None = None) -> None:
        """Use at most ``threads`` threads (the calling one included).

        ``ifma`` picks the kernel: eight lanes with AVX-512 IFMA, or one group at a time;
        by default the former where this CPU has it.

        :raises ConfigError: ``ifma=True`` on a CPU without AVX-512 IFMA.
        """
        super().__init__(threads, "poseidon")
        if ifma and not lanes.available():
            raise ConfigError("this CPU (or numba's target) has no AVX-512 IFMA")
        self.ifma = lanes.available() if ifma is None else ifma

    def hash_level(self, level: Nodes, arity: int) -> Nodes:
        """Hash a row ``(arity·n, 32)`` uint8 into its parent row ``(n, 32)``.

        The same contract as :func:`sealagent.proofs.poseidon.poseidon_hash_level`.
        """
        if arity not in ARITIES:
            raise InvalidInputError(f"no Poseidon instance of arity {arity}")
        if level.ndim != 2 or level.shape[1] != NODE_BYTES or level.dtype != np.uint8 \
                or level.shape[0] == 0 or level.shape[0] % arity:
            raise InvalidInputError(f"a row of shape {level.shape} cannot be hashed in "
                                    f"groups of {arity}")
        inputs = np.ascontiguousarray(level).view("<u8").astype(np.uint64, copy=False)
        groups = level.shape[0] // arity
        out = np.empty((groups, 4), dtype=np.uint64)
        t = block_tables(arity) if self.ifma else tables(arity)
        bad = sum(self.spread(groups, MIN_GROUPS_PER_THREAD,
                              lambda a, b: _run(inputs[a * arity : b * arity], out[a:b], t)))
        if bad:
            raise InvalidInputError("tree row holds a value that is not a canonical field "
                                    "element")
        return out.view(np.uint8).reshape(groups, NODE_BYTES)

    def hash_columns(self, layers: Sequence[Nodes], out: Nodes,
                     progress: Progress | None = None) -> None:
        """The :class:`~sealagent.proofs.kernels.ColumnHasher`: a chunk of columns at a time."""
        count, nodes = len(layers), out.shape[0]
        for start in range(0, nodes, COLUMN_CHUNK_NODES):
            stop = min(start + COLUMN_CHUNK_NODES, nodes)
            columns = np.stack([layer[start:stop] for layer in layers], axis=1)
            out[start:stop] = self.hash_level(columns.reshape(-1, NODE_BYTES), count)
            report(progress, "tree-c", stop, nodes)

    def tree_hasher(self) -> TreeHasher:
        """This hashing as a :class:`TreeHasher` (for tree_c and tree_r_last)."""
        return TreeHasher("poseidon-multicore", ARITIES, self.hash_level)

    def warm(self) -> None:
        """Compile (or load) the kernel and build the tables of the arities trees use."""
        for arity in TREE_ARITIES:
            self.hash_level(np.zeros((arity, NODE_BYTES), dtype=np.uint8), arity)
