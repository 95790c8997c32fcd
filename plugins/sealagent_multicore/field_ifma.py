"""BLS12-381 scalar field arithmetic on eight lanes at once with AVX-512 IFMA.

A *block* holds eight field elements (one per lane, e.g. eight Poseidon hashes side by
side) as five 52-bit limbs, least significant first: ``(5, 8)`` ``uint64``, limb-major, so
each limb of the eight lanes is one 512-bit register.  Blocks live in C-contiguous
``(n, 5, 8)`` arrays; every operation below is a numba intrinsic that reads and writes
blocks by index and emits LLVM IR with ``vpmadd52luq``/``vpmadd52huq`` (52×52-bit
multiply, low or high 52 bits of the product added to a 64-bit accumulator).

Values are in Montgomery form for ``R' = 2²⁶⁰`` (word-by-word reduction, five 52-bit
words).  Blocks hold *lazily reduced* values: every stored value is below ``2r`` with
each limb below ``2⁵²``, not necessarily below ``r``.  The bounds this relies on (``r``
is the BLS12-381 group order, ``r < 2²⁵⁵`` so ``r/R' < 0.0284`` and ``4r < 2²⁵⁷``):

* a Montgomery product of ``a, b < 3r`` is below ``9r²/R' + r < 1.26r``;
* a sum of ``n ≤ 12`` products of values below ``2r``, reduced once, is below
  ``n·4r²/R' + r < 2.37r``; one product plus an added value below ``2r`` is below
  ``4r²/R' + 3r < 3.12r``; both are then brought below ``2r`` by subtracting ``2r`` once;
* a product of ``a < 2r`` and ``1`` is at most ``r`` (``(a + m·r)/R' < r + 1``), so
  subtracting ``r`` once gives the canonical value.

Accumulators are 64-bit: a sum of 12 products adds at most ``12·10 + 20`` terms below
``2⁵²`` to a limb, far below ``2⁶⁴``.

:func:`available` says whether this CPU (and numba's target) has the instructions; the
callers fall back to :mod:`sealagent_multicore.field` where it has not.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, Final, cast

import numpy as np
import numpy.typing as npt
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from sealagent.proofs.field import R

LANES: Final = 8
LIMBS: Final = 5
LIMB_BITS: Final = 52
_MASK52: Final = (1 << LIMB_BITS) - 1
MONT_R: Final = (1 << (LIMB_BITS * LIMBS)) % R
"""``R' = 2²⁶⁰ mod r``: the Montgomery form of 1."""
_K0: Final = (-pow(R, -1, 1 << LIMB_BITS)) % (1 << LIMB_BITS)
"""``−r⁻¹ mod 2⁵²``."""

Blocks = npt.NDArray[np.uint64]
"""``(n, 5, 8)`` ``uint64``: ``n`` blocks of eight lanes."""

_I64: Final = ir.IntType(64)
_VEC: Final = ir.VectorType(_I64, LANES)
_Limbs = list[ir.Value]


@functools.cache
def _host_has_ifma() -> bool:
    """Whether this CPU (and its operating system) supports AVX-512 IFMA."""
    import llvmlite.binding as llvm

    return bool(llvm.get_host_cpu_features().get("avx512ifma"))


def available() -> bool:
    """Whether this CPU has AVX-512 IFMA and numba compiles for it (host CPU, default)."""
    from numba.core import config

    if getattr(config, "CPU_NAME", None) or getattr(config, "CPU_FEATURES", None):
        return False  # numba targets another CPU: IFMA may not be enabled there
    return _host_has_ifma()


def limbs52(value: int) -> list[int]:
    """An int below ``2²⁶⁰`` as five 52-bit limbs, least significant first."""
    return [(value >> (LIMB_BITS * j)) & _MASK52 for j in range(LIMBS)]


def broadcast(values: Sequence[int]) -> Blocks:
    """Field elements as Montgomery-form blocks, each value in all eight lanes."""
    limbs = [limbs52(v * MONT_R % R) for v in values]
    array = np.array(limbs, dtype=np.uint64).reshape(len(values), LIMBS, 1)
    return np.ascontiguousarray(np.broadcast_to(array, (len(values), LIMBS, LANES)))


@njit(inline="always", cache=True)
def put_lane(blocks: Blocks, index: int, lane: int, x: tuple[Any, Any, Any, Any]) -> None:
    """Store a 4×64-bit-limb value (below ``2²⁵⁶``) in one lane of block ``index``."""
    m = np.uint64(_MASK52)
    a0, a1, a2, a3 = x
    blocks[index, 0, lane] = a0 & m
    blocks[index, 1, lane] = ((a0 >> np.uint64(52)) | (a1 << np.uint64(12))) & m
    blocks[index, 2, lane] = ((a1 >> np.uint64(40)) | (a2 << np.uint64(24))) & m
    blocks[index, 3, lane] = ((a2 >> np.uint64(28)) | (a3 << np.uint64(36))) & m
    blocks[index, 4, lane] = a3 >> np.uint64(16)


@njit(inline="always", cache=True)
def get_lane(blocks: Blocks, index: int, lane: int) -> tuple[Any, Any, Any, Any]:
    """One lane of block ``index`` (normalized, below ``2²⁵⁶``) as 4×64-bit limbs."""
    l0, l1, l2 = blocks[index, 0, lane], blocks[index, 1, lane], blocks[index, 2, lane]
    l3, l4 = blocks[index, 3, lane], blocks[index, 4, lane]
    return (l0 | (l1 << np.uint64(52)), (l1 >> np.uint64(12)) | (l2 << np.uint64(40)),
            (l2 >> np.uint64(24)) | (l3 << np.uint64(28)),
            (l3 >> np.uint64(36)) | (l4 << np.uint64(16)))


# LLVM IR building blocks (each works on lists of five <8 x i64> limb vectors).

def _splat(value: int) -> ir.Constant:
    """``value`` in all eight lanes."""
    return ir.Constant(_VEC, [ir.Constant(_I64, value)] * LANES)


def _madd52(builder: ir.IRBuilder, high: bool, acc: ir.Value, x: ir.Value,
            y: ir.Value) -> ir.Value:
    """``acc + (low or high 52 bits of x·y)``, with x and y taken modulo ``2⁵²``."""
    name = f"llvm.x86.avx512.vpmadd52{'h' if high else 'l'}.uq.512"
    fn = cgutils.get_or_insert_function(  # type: ignore[no-untyped-call]
        builder.module, ir.FunctionType(_VEC, [_VEC, _VEC, _VEC]), name)
    return builder.call(fn, [acc, x, y])


def _add_product(builder: ir.IRBuilder, acc: _Limbs, x: _Limbs, y: _Limbs) -> _Limbs:
    """The ten-limb accumulator plus the unreduced product ``x·y``."""
    acc = list(acc)
    for i in range(LIMBS):
        for j in range(LIMBS):
            acc[i + j] = _madd52(builder, False, acc[i + j], x[j], y[i])
            acc[i + j + 1] = _madd52(builder, True, acc[i + j + 1], x[j], y[i])
    return acc


def _square_wide(builder: ir.IRBuilder, x: _Limbs) -> _Limbs:
    """The unreduced square ``x²`` in ten limbs: each cross product once, then doubled."""
    acc: _Limbs = [_splat(0)] * (2 * LIMBS)
    for i in range(LIMBS):
        for j in range(i + 1, LIMBS):
            acc[i + j] = _madd52(builder, False, acc[i + j], x[i], x[j])
            acc[i + j + 1] = _madd52(builder, True, acc[i + j + 1], x[i], x[j])
    acc = [builder.add(a, a) for a in acc]
    for i in range(LIMBS):
        acc[2 * i] = _madd52(builder, False, acc[2 * i], x[i], x[i])
        acc[2 * i + 1] = _madd52(builder, True, acc[2 * i + 1], x[i], x[i])
    return acc


def _reduce(builder: ir.IRBuilder, acc: _Limbs) -> _Limbs:
    """Montgomery reduction of a ten-limb accumulator: five limbs ``≡ acc/R'``, unnormalized.

    The result is below ``acc/R' + r``.
    """
    acc = list(acc)
    p = [_splat(v) for v in limbs52(R)]
    k0 = _splat(_K0)
    for i in range(LIMBS):
        m = _madd52(builder, False, _splat(0), acc[i], k0)
        for j in range(LIMBS):
            acc[i + j] = _madd52(builder, False, acc[i + j], m, p[j])
            acc[i + j + 1] = _madd52(builder, True, acc[i + j + 1], m, p[j])
        # The low 52 bits of acc[i] are zero now: carry the rest up.
        acc[i + 1] = builder.add(acc[i + 1], builder.lshr(acc[i], _splat(LIMB_BITS)))
    return acc[LIMBS:]


def _normalize(builder: ir.IRBuilder, limbs: _Limbs) -> _Limbs:
    """Carry each limb's bits above 52 into the next (the value must fit 260 bits)."""
    out = []
    carry: ir.Value | None = None
    for j, limb in enumerate(limbs):
        value = limb if carry is None else builder.add(limb, carry)
        if j < LIMBS - 1:
            carry = builder.lshr(value, _splat(LIMB_BITS))
            value = builder.and_(value, _splat(_MASK52))
        out.append(value)
    return out


def _subtract_if_not_below(builder: ir.IRBuilder, limbs: _Limbs, modulus: int) -> _Limbs:
    """``x − modulus`` in the lanes where normalized ``x ≥ modulus``, else ``x`` (branchless)."""
    diff = []
    borrow: ir.Value = _splat(0)
    for limb, m in zip(limbs, limbs52(modulus), strict=True):
        d = builder.sub(builder.sub(limb, _splat(m)), borrow)
        borrow = builder.lshr(d, _splat(63))
        diff.append(builder.and_(d, _splat(_MASK52)))
    below = builder.icmp_unsigned("!=", borrow, _splat(0))
    return [builder.select(below, x, d) for x, d in zip(limbs, diff, strict=True)]


def _product(builder: ir.IRBuilder, x: _Limbs, y: _Limbs) -> _Limbs:
    """Normalized Montgomery product of ``x, y < 3r`` (below ``1.26r``)."""
    zero = _splat(0)
    return _normalize(builder, _reduce(builder, _add_product(builder, [zero] * 10, x, y)))


def _square(builder: ir.IRBuilder, x: _Limbs) -> _Limbs:
    """Normalized Montgomery square of ``x < 3r`` (below ``1.26r``): 30 IFMA instead of 50."""
    return _normalize(builder, _reduce(builder, _square_wide(builder, x)))


def _block_pointer(context: Any, builder: ir.IRBuilder, array_type: Any, array: ir.Value,
                   index_type: Any, index: ir.Value) -> ir.Value:
    """Pointer to the first limb of block ``index`` of a C-contiguous ``(n, 5, 8)`` array."""
    data = context.make_array(array_type)(context, builder, array).data
    i = context.cast(builder, index, index_type, types.intp)
    return builder.gep(data, [builder.mul(i, ir.Constant(i.type, LIMBS * LANES))])


def _load(builder: ir.IRBuilder, pointer: ir.Value) -> _Limbs:
    """The five limb vectors of a block."""
    return [builder.load(builder.bitcast(builder.gep(pointer, [ir.Constant(_I64, LANES * j)]),
                                         _VEC.as_pointer()), align=8) for j in range(LIMBS)]


def _store(builder: ir.IRBuilder, pointer: ir.Value, limbs: _Limbs) -> None:
    """Write five limb vectors into a block."""
    for j, limb in enumerate(limbs):
        target = builder.gep(pointer, [ir.Constant(_I64, LANES * j)])
        builder.store(limb, builder.bitcast(target, _VEC.as_pointer()), align=8)


def _check_blocks(*array_types: Any) -> None:
    """Refuse to compile for arrays that are not C-contiguous 3-D ``uint64``."""
    for t in array_types:
        if not (isinstance(t, types.Array) and t.ndim == 3 and t.layout == "C"
                and t.dtype == types.uint64):
            raise TypeError(f"field_ifma needs C-contiguous (n, 5, 8) uint64 arrays, not {t}")


_Body = Callable[[ir.IRBuilder, list[_Limbs]], _Limbs]


def _blockwise(args: tuple[Any, ...], body: _Body) -> Any:
    """Signature and codegen of ``f(out, o, a1, i1, …)``: ``out[o] = body(a1[i1], …)``."""
    _check_blocks(*args[0::2])
    sig = types.void(*args)

    def codegen(context: Any, builder: ir.IRBuilder, signature: Any, values: Any) -> Any:
        t = signature.args
        pointers = [_block_pointer(context, builder, t[k], values[k], t[k + 1], values[k + 1])
                    for k in range(0, len(values), 2)]
        _store(builder, pointers[0],
               body(builder, [_load(builder, p) for p in pointers[1:]]))
        return context.get_dummy_value()

    return sig, codegen


def _mul_body(builder: ir.IRBuilder, blocks: list[_Limbs]) -> _Limbs:
    x, y = blocks
    return _product(builder, x, y)


def _sbox_add_body(builder: ir.IRBuilder, blocks: list[_Limbs]) -> _Limbs:
    a, c = blocks
    x = _normalize(builder, [builder.add(u, v) for u, v in zip(a, c, strict=True)])
    return _product(builder, _square(builder, _square(builder, x)), x)


def _mul_add_body(builder: ir.IRBuilder, blocks: list[_Limbs]) -> _Limbs:
    x, y, z = blocks
    zero = _splat(0)
    reduced = _reduce(builder, _add_product(builder, [zero] * 10, x, y))
    total = _normalize(builder, [builder.add(u, v) for u, v in zip(reduced, z, strict=True)])
    return _subtract_if_not_below(builder, total, 2 * R)


def _from_montgomery_body(builder: ir.IRBuilder, blocks: list[_Limbs]) -> _Limbs:
    one = [_splat(1)] + [_splat(0)] * (LIMBS - 1)
    return _subtract_if_not_below(builder, _product(builder, blocks[0], one), R)


def _mul(typingctx: Any, out: Any, o: Any, x: Any, i: Any, y: Any, j: Any) -> Any:
    """``out[o] = x[i]·y[j]/R'`` for ``x[i], y[j] < 3r`` (below ``1.26r``)."""
    return _blockwise((out, o, x, i, y, j), _mul_body)


mul = cast(Callable[..., None], intrinsic(_mul))


def _sbox_add(typingctx: Any, out: Any, o: Any, x: Any, i: Any, c: Any, j: Any) -> Any:
    """``out[o] = (x[i] + c[j])⁵`` for ``x[i] < 2r``, ``c[j] < r`` (below ``1.1r``)."""
    return _blockwise((out, o, x, i, c, j), _sbox_add_body)


sbox_add = cast(Callable[..., None], intrinsic(_sbox_add))


def _mul_add(typingctx: Any, out: Any, o: Any, x: Any, i: Any, y: Any, j: Any, z: Any,
            k: Any) -> Any:
    """``out[o] = x[i]·y[j]/R' + z[k]`` for values below ``2r`` (below ``2r``)."""
    return _blockwise((out, o, x, i, y, j, z, k), _mul_add_body)


mul_add = cast(Callable[..., None], intrinsic(_mul_add))


def _from_montgomery(typingctx: Any, out: Any, o: Any, x: Any, i: Any) -> Any:
    """``out[o] = x[i]/R'`` reduced to ``[0, r)`` for ``x[i] < 2r``."""
    return _blockwise((out, o, x, i), _from_montgomery_body)


from_montgomery = cast(Callable[..., None], intrinsic(_from_montgomery))


def _dot(typingctx: Any, out: Any, o: Any, x: Any, i: Any, y: Any, j: Any, n: Any) -> Any:
    """``out[o] = Σₖ x[i+k]·y[j+k]/R'`` over ``k < n ≤ 12``, values below ``2r`` (below ``2r``).

    One Montgomery reduction for the whole sum.
    """
    _check_blocks(out, x, y)
    sig = types.void(out, o, x, i, y, j, n)

    def codegen(context: Any, builder: ir.IRBuilder, signature: Any, values: Any) -> Any:
        t = signature.args
        target = _block_pointer(context, builder, t[0], values[0], t[1], values[1])
        count = context.cast(builder, values[6], t[6], types.intp)
        slots = [cgutils.alloca_once_value(builder, _splat(0))  # type: ignore[no-untyped-call]
                 for _ in range(2 * LIMBS)]
        with cgutils.for_range(builder, count) as loop:
            xs = _load(builder, _block_pointer(
                context, builder, t[2], values[2], types.intp,
                builder.add(context.cast(builder, values[3], t[3], types.intp), loop.index)))
            ys = _load(builder, _block_pointer(
                context, builder, t[4], values[4], types.intp,
                builder.add(context.cast(builder, values[5], t[5], types.intp), loop.index)))
            acc = _add_product(builder, [builder.load(s) for s in slots], xs, ys)
            for slot, value in zip(slots, acc, strict=True):
                builder.store(value, slot)
        total = _normalize(builder, _reduce(builder, [builder.load(s) for s in slots]))
        _store(builder, target, _subtract_if_not_below(builder, total, 2 * R))
        return context.get_dummy_value()

    return sig, codegen


dot = cast(Callable[..., None], intrinsic(_dot))
