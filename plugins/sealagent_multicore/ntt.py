"""Number-theoretic transforms over Fr compiled with numba, spread over the granted threads.

The same transforms as :mod:`sealagent.snark.ntt` (radix-2 Cooley–Tukey on the domain of
``ω = ROOT_OF_UNITY^(2^(32−k))``, cosets shifted by 7), on ``(n, 4)`` arrays of
Montgomery-form limbs (:mod:`sealagent_multicore.field`).  A transform is the bit-reversal
permutation, then the stages whose blocks fit one thread's share (each thread runs them on
its own contiguous block), then the last ``log₂(threads)`` stages with their butterflies
split between the threads.  Scalings by ``c·gⁱ`` (the coset shift, ``1/n``, the
Montgomery conversions) are one compiled pass each.  Every kernel releases the GIL.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from numba import njit

from sealagent.errors import InvalidInputError
from sealagent.proofs.field import R
from sealagent.snark.ntt import GENERATOR, Vec, omega
from sealagent_multicore.field import (
    MONT_R2,
    add,
    get,
    is_canonical,
    mul,
    put,
    sub,
    to_limbs,
    to_montgomery_limbs,
)
from sealagent_multicore.threads import ThreadShares

Limbs = npt.NDArray[np.uint64]

MIN_SPAN: Final = 1 << 12
"""Fewer elements per thread than this run on the calling thread alone."""


def _element(limbs: tuple[int, int, int, int]) -> Limbs:
    """Four limbs as a ``(4,)`` array to pass to a kernel."""
    return np.array(limbs, dtype=np.uint64)


@njit(nogil=True, cache=True)
def _scale(a: Limbs, lo: int, hi: int, start: Limbs, step: Limbs) -> None:
    """``a[i] ← mul(a[i], start·stepⁱ⁻ˡᵒ)`` for ``i`` in ``[lo, hi)`` (``step``: Montgomery)."""
    cur = (start[0], start[1], start[2], start[3])
    s = (step[0], step[1], step[2], step[3])
    for i in range(lo, hi):
        put(a, i, mul(get(a, i), cur))
        cur = mul(cur, s)


@njit(nogil=True, cache=True)
def _powers(out: Limbs, lo: int, hi: int, start: Limbs, step: Limbs) -> None:
    """``out[i] ← start·stepⁱ⁻ˡᵒ`` for ``i`` in ``[lo, hi)``."""
    cur = (start[0], start[1], start[2], start[3])
    s = (step[0], step[1], step[2], step[3])
    for i in range(lo, hi):
        put(out, i, cur)
        cur = mul(cur, s)


@njit(nogil=True, cache=True)
def _count_non_canonical(a: Limbs, lo: int, hi: int) -> int:
    """How many of ``a[lo:hi]`` are not below r."""
    bad = 0
    for i in range(lo, hi):
        if not is_canonical(get(a, i)):
            bad += 1
    return bad


@njit(nogil=True, cache=True)
def _bit_reverse(a: Limbs) -> None:
    """Permute ``a`` into bit-reversed order, in place."""
    n = a.shape[0]
    j = 0
    for i in range(1, n):
        bit = n >> 1
        while j & bit:
            j ^= bit
            bit >>= 1
        j |= bit
        if i < j:
            x = get(a, i)
            put(a, i, get(a, j))
            put(a, j, x)


@njit(inline="always", cache=True)
def _butterfly(a: Limbs, i0: int, i1: int, w: tuple[int, int, int, int]) -> None:
    """``(a[i0], a[i1]) ← (a[i0] + w·a[i1], a[i0] − w·a[i1])``."""
    t = mul(get(a, i1), w)
    u = get(a, i0)
    put(a, i0, add(u, t))
    put(a, i1, sub(u, t))


@njit(nogil=True, cache=True)
def _local_stages(a: Limbs, twiddles: Limbs, lo: int, hi: int, last: int) -> None:
    """The stages of block sizes ``2 … last`` on ``a[lo:hi]`` (a multiple of ``last``)."""
    size = 2 * twiddles.shape[0]
    m = 2
    while m <= last:
        half = m // 2
        stride = size // m
        for base in range(lo, hi, m):
            for k in range(half):
                _butterfly(a, base + k, base + k + half, get(twiddles, k * stride))
        m *= 2


@njit(nogil=True, cache=True)
def _stage(a: Limbs, twiddles: Limbs, m: int, lo: int, hi: int) -> None:
    """Butterflies ``lo … hi−1`` (of ``n/2``) of the stage of block size ``m``."""
    size = 2 * twiddles.shape[0]
    half = m // 2
    stride = size // m
    for j in range(lo, hi):
        k = j % half
        i0 = (j // half) * m + k
        _butterfly(a, i0, i0 + half, get(twiddles, k * stride))


@njit(nogil=True, cache=True)
def _quotient_point(ea: Limbs, eb: Limbs, ec: Limbs, lo: int, hi: int, z_inv: Limbs) -> None:
    """``ea[i] ← (ea[i]·eb[i] − ec[i])·z_inv`` for ``i`` in ``[lo, hi)``."""
    z = (z_inv[0], z_inv[1], z_inv[2], z_inv[3])
    for i in range(lo, hi):
        put(ea, i, mul(sub(mul(get(ea, i), get(eb, i)), get(ec, i)), z))


class CompiledNtt(ThreadShares):
    """Transforms over Fr on ``threads`` threads (one pool, made on first use)."""

    def __init__(self, threads: int) -> None:
        """Use at most ``threads`` threads (the calling one included)."""
        super().__init__(threads, "ntt")

    def _spread(self, count: int, work: Callable[[int, int], Any]) -> list[Any]:
        """Run ``work(lo, hi)`` on one contiguous range of ``[0, count)`` per thread."""
        return self.spread(count, MIN_SPAN, work)

    def _scale(self, a: Limbs, start: int, step: int, *, montgomery_start: bool) -> None:
        """``a[i] ← mul(a[i], sᵢ)`` with ``sᵢ = start·stepⁱ``.

        With ``montgomery_start`` the multipliers are in Montgomery form (the product is
        ``a[i]·start·stepⁱ``); without, they are plain (the product also leaves Montgomery
        form).
        """
        limbs = to_montgomery_limbs if montgomery_start else to_limbs
        s = _element(to_montgomery_limbs(step))

        def work(lo: int, hi: int) -> None:
            _scale(a, lo, hi, _element(limbs(start * pow(step, lo, R) % R)), s)

        self._spread(len(a), work)

    def _twiddles(self, root: int, size: int) -> Limbs:
        """``[1, root, root², …]`` (``size/2`` of them) in Montgomery form."""
        out = np.empty((size // 2, 4), dtype=np.uint64)
        step = _element(to_montgomery_limbs(root))

        def work(lo: int, hi: int) -> None:
            _powers(out, lo, hi, _element(to_montgomery_limbs(pow(root, lo, R))), step)

        self._spread(len(out), work)
        return out

    def _transform(self, a: Limbs, root: int) -> None:
        """The radix-2 transform of ``a`` (Montgomery limbs) with ``root``, in place."""
        size = len(a)
        twiddles = self._twiddles(root, size)
        _bit_reverse(a)
        parts = 1 << (self.parts(size, MIN_SPAN).bit_length() - 1)
        block = size // parts
        self._spread_blocks(parts, block, lambda lo, hi: _local_stages(a, twiddles, lo, hi,
                                                                       block))
        m = 2 * block
        while m <= size:
            self._spread(size // 2, functools.partial(_stage, a, twiddles, m))
            m *= 2

    def _spread_blocks(self, parts: int, block: int, work: Callable[[int, int], Any]) -> None:
        """Run ``work(lo, hi)`` on each of ``parts`` blocks, one per thread."""
        futures = [self._executor().submit(work, i * block, (i + 1) * block)
                   for i in range(1, parts)]
        work(0, block)
        for f in futures:
            f.result()

    def to_montgomery(self, values: Vec) -> Limbs:
        """Field elements (Python ints in ``[0, r)``) as Montgomery-form limbs."""
        size = len(values)
        try:
            raw = b"".join(int(v).to_bytes(32, "little") for v in values)
        except (OverflowError, TypeError, ValueError):
            raise InvalidInputError("the transform's input holds a value that is not a "
                                    "field element") from None
        a = np.frombuffer(raw, dtype="<u8").astype(np.uint64).reshape(size, 4)
        if sum(self._spread(size, lambda lo, hi: _count_non_canonical(a, lo, hi))):
            raise InvalidInputError("the transform's input holds a value that is not a "
                                    "field element")
        self._scale(a, MONT_R2, 1, montgomery_start=False)
        return a

    @staticmethod
    def to_ints(a: Limbs) -> Vec:
        """Plain (not Montgomery) limbs as an object array of Python ints."""
        raw = a.astype("<u8").tobytes()
        out = np.empty(len(a), dtype=object)
        out[:] = [int.from_bytes(raw[i : i + 32], "little") for i in range(0, len(raw), 32)]
        return out

    def transform(self, values: Vec, *, inverse: bool = False, coset: bool = False) -> Vec:
        """:func:`~sealagent.snark.ntt.ntt` (``intt``, ``coset_ntt``, ``coset_intt``)."""
        size = _checked_size(values)
        a = self.to_montgomery(values)
        if coset and not inverse:
            self._scale(a, 1, GENERATOR, montgomery_start=True)
        w = omega(size)
        self._transform(a, pow(w, R - 2, R) if inverse else w)
        if inverse:
            g = pow(GENERATOR, R - 2, R) if coset else 1
            self._scale(a, pow(size, R - 2, R), g, montgomery_start=False)
        else:
            self._scale(a, 1, 1, montgomery_start=False)
        return self.to_ints(a)

    def quotient(self, a: Vec, b: Vec, c: Vec) -> Vec:
        """:func:`~sealagent.snark.ntt.quotient_coefficients`, the prover's H kernel."""
        size = _checked_size(a)
        if len(b) != size or len(c) != size:
            raise InvalidInputError(f"evaluations of {len(a)}, {len(b)} and {len(c)} points "
                                    "do not share a domain")
        w = omega(size)
        w_inv, n_inv = pow(w, R - 2, R), pow(size, R - 2, R)
        evals = []
        for values in (a, b, c):
            x = self.to_montgomery(values)
            self._transform(x, w_inv)
            self._scale(x, n_inv, GENERATOR, montgomery_start=True)
            self._transform(x, w)
            evals.append(x)
        ea, eb, ec = evals
        z_inv = _element(to_montgomery_limbs(pow((pow(GENERATOR, size, R) - 1) % R, R - 2, R)))
        self._spread(size, lambda lo, hi: _quotient_point(ea, eb, ec, lo, hi, z_inv))
        self._transform(ea, w_inv)
        self._scale(ea, n_inv, pow(GENERATOR, R - 2, R), montgomery_start=False)
        return self.to_ints(ea)

    def warm(self) -> None:
        """Compile (or load) every kernel with a small transform."""
        values = np.zeros(8, dtype=object)
        values[:] = list(range(8))
        self.quotient(values, values, values)
        self.transform(values, inverse=True, coset=True)


def _checked_size(values: Vec) -> int:
    """The length of a transform's input: a power of two ≥ 2."""
    size = len(values)
    if size < 2 or size & (size - 1) or size.bit_length() - 1 > 32:
        raise InvalidInputError(f"a transform needs a power-of-two length, got {size}")
    return size
