"""BLS12-381 scalar field arithmetic compiled with numba: 4×64-bit limbs, Montgomery form.

An element is a tuple of four ``uint64`` limbs, least significant first (the 32-byte
little-endian encoding viewed as ``<u8``), kept in Montgomery form ``x·2²⁵⁶ mod r`` while
computing.  Products go through an LLVM ``i128`` multiply (one ``MULX`` on x86-64), and
the multiplication is the CIOS form without a final carry word, valid because ``r``'s top
limb is below ``2⁶³ − 1``.

Every function here is an inlined building block of the compiled kernels in
:mod:`sealagent_multicore.poseidon` and :mod:`sealagent_multicore.ntt`; numba must
already be importable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, TypeAlias, cast

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from sealagent.proofs.field import R

_MASK: Final = (1 << 64) - 1
Q0: Final = np.uint64(R & _MASK)
Q1: Final = np.uint64((R >> 64) & _MASK)
Q2: Final = np.uint64((R >> 128) & _MASK)
Q3: Final = np.uint64((R >> 192) & _MASK)
Q_INV_NEG: Final = np.uint64((-pow(R, -1, 1 << 64)) % (1 << 64))
"""``−r⁻¹ mod 2⁶⁴``."""
MONT_R: Final = (1 << 256) % R
MONT_R2: Final = pow(1 << 256, 2, R)

U64: TypeAlias = Any
"""A ``uint64`` limb inside compiled code."""
Element: TypeAlias = tuple[U64, U64, U64, U64]
"""A field element as four limbs, least significant first."""

_U64: Final = types.uint64
_PAIR: Final = types.UniTuple(types.uint64, 2)  # type: ignore[no-untyped-call]


def _madd(typingctx: Any, a: Any, b: Any, c: Any, d: Any) -> Any:
    """``a·b + c + d`` as ``(high, low)`` 64-bit halves (never overflows 128 bits)."""
    sig = _PAIR(_U64, _U64, _U64, _U64)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        wide = ir.IntType(128)
        x, y, z, w = (builder.zext(v, wide) for v in args)
        total = builder.add(builder.add(builder.mul(x, y), z), w)
        low = builder.trunc(total, ir.IntType(64))
        high = builder.trunc(builder.lshr(total, ir.Constant(wide, 64)), ir.IntType(64))
        return context.make_tuple(builder, signature.return_type, (high, low))

    return sig, codegen


madd = cast(Callable[[U64, U64, U64, U64], tuple[U64, U64]], intrinsic(_madd))


def _sbb(typingctx: Any, a: Any, b: Any, borrow: Any) -> Any:
    """``a − b − borrow`` as ``(borrow out, difference)``."""
    sig = _PAIR(_U64, _U64, _U64)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        wide = ir.IntType(128)
        x, y, z = (builder.zext(v, wide) for v in args)
        total = builder.sub(builder.sub(x, y), z)
        low = builder.trunc(total, ir.IntType(64))
        out = builder.trunc(builder.lshr(total, ir.Constant(wide, 127)), ir.IntType(64))
        return context.make_tuple(builder, signature.return_type, (out, low))

    return sig, codegen


sbb = cast(Callable[[U64, U64, U64], tuple[U64, U64]], intrinsic(_sbb))


@njit(inline="always", cache=True)
def _reduce_once(t0: U64, t1: U64, t2: U64, t3: U64) -> Element:
    """``t − r`` when ``t ≥ r``, else ``t`` (for ``t < 2r``)."""
    b, d0 = sbb(t0, Q0, 0)
    b, d1 = sbb(t1, Q1, b)
    b, d2 = sbb(t2, Q2, b)
    b, d3 = sbb(t3, Q3, b)
    if b:
        return t0, t1, t2, t3
    return d0, d1, d2, d3


@njit(inline="always", cache=True)
def is_canonical(x: Element) -> bool:
    """``x < r``."""
    b, _ = sbb(x[0], Q0, 0)
    b, _ = sbb(x[1], Q1, b)
    b, _ = sbb(x[2], Q2, b)
    b, _ = sbb(x[3], Q3, b)
    return bool(b != 0)


@njit(inline="always", cache=True)
def add(x: Element, y: Element) -> Element:
    """``x + y mod r``."""
    one = np.uint64(1)
    c, s0 = madd(x[0], one, y[0], 0)
    c, s1 = madd(x[1], one, y[1], c)
    c, s2 = madd(x[2], one, y[2], c)
    c, s3 = madd(x[3], one, y[3], c)
    return _reduce_once(s0, s1, s2, s3)


@njit(inline="always", cache=True)
def sub(x: Element, y: Element) -> Element:
    """``x − y mod r``."""
    b, d0 = sbb(x[0], y[0], 0)
    b, d1 = sbb(x[1], y[1], b)
    b, d2 = sbb(x[2], y[2], b)
    b, d3 = sbb(x[3], y[3], b)
    if not b:
        return d0, d1, d2, d3
    one = np.uint64(1)
    c, s0 = madd(d0, one, Q0, 0)
    c, s1 = madd(d1, one, Q1, c)
    c, s2 = madd(d2, one, Q2, c)
    _, s3 = madd(d3, one, Q3, c)
    return s0, s1, s2, s3


@njit(inline="always", cache=True)
def _mont_step(t0: U64, t1: U64, t2: U64, t3: U64, x: Element,
               yi: U64) -> Element:
    """One CIOS iteration: ``(t + x·yᵢ + m·r) / 2⁶⁴``."""
    a, t0 = madd(x[0], yi, t0, 0)
    m = t0 * Q_INV_NEG
    c, _ = madd(m, Q0, t0, 0)
    a, t1 = madd(x[1], yi, t1, a)
    c, t0 = madd(m, Q1, t1, c)
    a, t2 = madd(x[2], yi, t2, a)
    c, t1 = madd(m, Q2, t2, c)
    a, t3 = madd(x[3], yi, t3, a)
    c, t2 = madd(m, Q3, t3, c)
    return t0, t1, t2, c + a


@njit(inline="always", cache=True)
def mul(x: Element, y: Element) -> Element:
    """Montgomery product ``x·y·2⁻²⁵⁶ mod r``."""
    z = np.uint64(0)
    t0, t1, t2, t3 = _mont_step(z, z, z, z, x, y[0])
    t0, t1, t2, t3 = _mont_step(t0, t1, t2, t3, x, y[1])
    t0, t1, t2, t3 = _mont_step(t0, t1, t2, t3, x, y[2])
    t0, t1, t2, t3 = _mont_step(t0, t1, t2, t3, x, y[3])
    return _reduce_once(t0, t1, t2, t3)


@njit(inline="always", cache=True)
def sbox(x: Element) -> Element:
    """``x⁵``."""
    x2 = mul(x, x)
    return mul(mul(x2, x2), x)


@njit(inline="always", cache=True)
def get(a: Any, i: int) -> Element:
    """Row ``i`` of an ``(n, 4)`` uint64 limb array as an element."""
    return a[i, 0], a[i, 1], a[i, 2], a[i, 3]


@njit(inline="always", cache=True)
def put(a: Any, i: int, x: Element) -> None:
    """Store element ``x`` in row ``i`` of an ``(n, 4)`` uint64 limb array."""
    a[i, 0], a[i, 1], a[i, 2], a[i, 3] = x


def to_limbs(value: int) -> tuple[int, int, int, int]:
    """An int in ``[0, 2²⁵⁶)`` as four 64-bit limbs, least significant first."""
    return (value & _MASK, (value >> 64) & _MASK, (value >> 128) & _MASK, value >> 192)


def to_montgomery_limbs(value: int) -> tuple[int, int, int, int]:
    """A field element's Montgomery form as limbs (for constant tables)."""
    return to_limbs(value * MONT_R % R)
