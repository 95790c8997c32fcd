"""The SDR graph's parents compiled with numba: the parent cache built on the granted cores.

The compiled loop computes, per node, exactly what :meth:`StackedGraph.all_parents` does
(docs/porep.md §5): the six base parents from two ChaCha8 blocks keyed by the DRG seed and
the node number (rand_chacha's layout: 64-bit block counter, stream 0) and the bucket
sampling on ``u64``; the eight expander parents through the three Feistel rounds with
cycle walking.  The Feistel round function (BLAKE2b) is not recomputed here: it depends
only on the right half and the key, so the loop looks it up in the graph's
:attr:`~sealagent.proofs.graph.FeistelParams.round_tables`, computed once per graph.

The loop releases the GIL; :class:`CompiledParents` splits each range of nodes over the
phase's threads (:class:`~sealagent_multicore.threads.ThreadShares`).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
from numba import njit

from sealagent.proofs.chacha import CONSTANTS
from sealagent.proofs.graph import BASE_DEGREE, DEGREE, EXP_DEGREE, ParentsArray, StackedGraph
from sealagent_multicore.threads import ThreadShares

CHACHA_ROUNDS: Final = 8
"""rand_chacha's ``ChaCha8Rng``, the DRG's generator."""
MIN_SHARE: Final = 4096
"""Fewest nodes worth a thread of their own."""

_WORD: Final = 0xFFFFFFFF


@njit(inline="always")
def _quarter(x: npt.NDArray[np.uint32], a: int, b: int, c: int, d: int) -> None:
    """One ChaCha quarter-round on words ``a, b, c, d`` of ``x``, in place.

    Sums and shifts are computed wider and wrap to 32 bits when stored.
    """
    x[a] += x[b]
    t = x[d] ^ x[a]
    x[d] = (t << 16) | (t >> 16)
    x[c] += x[d]
    t = x[b] ^ x[c]
    x[b] = (t << 12) | (t >> 20)
    x[a] += x[b]
    t = x[d] ^ x[a]
    x[d] = (t << 8) | (t >> 24)
    x[c] += x[d]
    t = x[b] ^ x[c]
    x[b] = (t << 7) | (t >> 25)


@njit(inline="always")
def _chacha_block(state: npt.NDArray[np.uint32], work: npt.NDArray[np.uint32],
                  out: npt.NDArray[np.uint64], at: int) -> None:
    """ChaCha8 of ``state`` (16 words); the 16 output words go to ``out[at : at + 16]``."""
    work[:] = state
    for _ in range(CHACHA_ROUNDS // 2):
        _quarter(work, 0, 4, 8, 12)
        _quarter(work, 1, 5, 9, 13)
        _quarter(work, 2, 6, 10, 14)
        _quarter(work, 3, 7, 11, 15)
        _quarter(work, 0, 5, 10, 15)
        _quarter(work, 1, 6, 11, 12)
        _quarter(work, 2, 7, 8, 13)
        _quarter(work, 3, 4, 9, 14)
    for i in range(16):
        out[at + i] = np.uint64(np.uint32(work[i] + state[i]))


@njit(inline="always")
def _encode(value: np.uint64, tables: npt.NDArray[np.uint64], half_bits: np.uint64,
            mask: np.uint64) -> np.uint64:
    """One pass of the Feistel rounds over ``value`` (``FeistelParams.encode``)."""
    left = (value >> half_bits) & mask
    right = value & mask
    for r in range(tables.shape[0]):
        left, right = right, left ^ tables[r, right]
    return (left << half_bits) | right


@njit(nogil=True, cache=True)
def _parents_range(seed: npt.NDArray[np.uint32], tables: npt.NDArray[np.uint64],
                   half_bits: int, num_elements: int, legacy: bool, start: int, stop: int,
                   out: ParentsArray) -> None:
    """Parents of nodes ``[start, stop)`` into ``out`` (``(stop − start, 14)`` uint32).

    ``seed`` is the DRG seed as seven little-endian words; ``tables`` the Feistel round
    functions, one row per round, over ``half_bits``-bit halves; ``num_elements`` the
    permutation's domain (8 × nodes); ``legacy`` selects the V1 parent order and the
    expander truncation.
    """
    state = np.zeros(16, dtype=np.uint32)
    work = np.zeros(16, dtype=np.uint32)
    words = np.zeros(32, dtype=np.uint64)
    rng = np.zeros(10, dtype=np.uint64)
    once = np.zeros(EXP_DEGREE, dtype=np.uint64)
    twice = np.zeros(EXP_DEGREE, dtype=np.uint64)
    for i in range(4):
        state[i] = CONSTANTS[i]
    for i in range(7):
        state[4 + i] = seed[i]
    shift = np.uint64(half_bits)
    limit = np.uint64(num_elements)
    mask = (np.uint64(1) << shift) - np.uint64(1)
    one, two = np.uint64(1), np.uint64(2)
    m_prime = np.uint64(BASE_DEGREE - 1)
    exp_degree = np.uint64(EXP_DEGREE)
    for v in range(start, stop):
        row = v - start
        node = np.uint64(v)
        if v < 2:
            for k in range(BASE_DEGREE):
                out[row, k] = 0
        else:
            state[11] = v
            state[12] = 0
            _chacha_block(state, work, words, 0)
            state[12] = 1
            _chacha_block(state, work, words, 16)
            for k in range(10):
                rng[k] = words[2 * k] | (words[2 * k + 1] << np.uint64(32))
            meta = node * m_prime
            n_buckets = np.uint64(0)
            rest = meta - one
            while rest > np.uint64(0):
                rest >>= one
                n_buckets += one
            # V1_1: [v − 1, sampled…]; V1 (legacy): [sampled…, v − 1].
            shifted = 0 if legacy else 1
            out[row, BASE_DEGREE - 1 if legacy else 0] = np.uint32(node - one)
            for k in range(BASE_DEGREE - 1):
                bucket = rng[2 * k] % n_buckets + one
                largest = min(meta, one << bucket)
                smallest = max(two, largest >> one)
                distance = smallest + rng[2 * k + 1] % (largest - smallest + one)
                parent = (meta - distance) // m_prime
                if parent == node:
                    parent = node - one
                out[row, k + shifted] = np.uint32(parent)
        # Cycle walking (FeistelParams.permute): the eight edges' first two passes are
        # computed unconditionally (independent chains, no unpredictable branch); only a
        # value still outside the domain after two passes keeps walking.
        edge = node * exp_degree
        for i in range(EXP_DEGREE):
            once[i] = _encode(edge + np.uint64(i), tables, shift, mask)
        for i in range(EXP_DEGREE):
            twice[i] = _encode(once[i], tables, shift, mask)
        for i in range(EXP_DEGREE):
            t = once[i] if once[i] < limit else twice[i]
            while t >= limit:
                t = _encode(t, tables, shift, mask)
            if legacy:
                t &= np.uint64(_WORD)
            out[row, BASE_DEGREE + i] = np.uint32(t // exp_degree)


class CompiledParents:
    """A :class:`~sealagent.proofs.parent_cache.ParentsBuilder` on at most ``threads`` threads."""

    def __init__(self, threads: int) -> None:
        """Build on ``threads`` threads (the calling one included)."""
        self._shares = ThreadShares(threads, "sealagent-parents")

    @property
    def threads(self) -> int:
        """The most threads one call uses."""
        return self._shares.threads

    def __call__(self, graph: StackedGraph, start: int, stop: int) -> ParentsArray:
        """Parents of nodes ``[start, stop)`` of ``graph``, byte for byte the reference's."""
        graph.check_node_range(start, stop)
        out = np.empty((stop - start, DEGREE), dtype=np.uint32)
        feistel = graph.feistel
        seed = np.frombuffer(graph.drg_seed, dtype="<u4").astype(np.uint32)
        tables = np.ascontiguousarray(feistel.round_tables, dtype=np.uint64)
        legacy = graph.api_version.is_legacy

        def build(lo: int, hi: int) -> None:
            _parents_range(seed, tables, feistel.half_bits, feistel.num_elements, legacy,
                           start + lo, start + hi, out[lo:hi])

        self._shares.spread(stop - start, MIN_SHARE, build)
        return out


def warm() -> None:
    """Compile (or load) the parents loop."""
    graph = StackedGraph(16, bytes(32), "1.1.0")
    CompiledParents(1)(graph, 0, graph.nodes)
