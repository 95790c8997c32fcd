"""Eight-lane Fr arithmetic with AVX-512 IFMA: results against Python integers.

Values are lazily reduced (below ``2r``, limbs below ``2⁵²``), so a result is checked for
its residue and for the bound the module promises, with inputs at the edges those bounds
allow (``0``, ``r − 1``, ``r``, ``2r − 1`` and, for products, ``3r − 1``).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from sealagent.proofs.field import R

pytest.importorskip("numba", reason="the multicore backend needs numba (sealagent[multicore])")

from numba import njit

from sealagent_multicore import field_ifma as lanes

Blocks = npt.NDArray[np.uint64]
R_INV = pow(1 << 260, -1, R)
MASK52 = (1 << 52) - 1

needs_ifma = pytest.mark.skipif(not lanes.available(), reason="this CPU has no AVX-512 IFMA")


def _block(values: list[int]) -> Blocks:
    """Eight raw values (not converted to Montgomery form) as one ``(1, 5, 8)`` block."""
    assert len(values) == lanes.LANES
    return np.array([[lanes.limbs52(v)[j] for v in values] for j in range(lanes.LIMBS)],
                    dtype=np.uint64).reshape(1, lanes.LIMBS, lanes.LANES)


def _values(block: Blocks, index: int = 0) -> list[int]:
    """The eight lanes of a block as ints, checking every limb is below ``2⁵²``."""
    assert int(block[index].max()) <= MASK52
    return [sum(int(block[index, j, lane]) << (52 * j) for j in range(lanes.LIMBS))
            for lane in range(lanes.LANES)]


def _lanes(rng: np.random.Generator, bound: int, edges: list[int]) -> list[int]:
    """Eight values below ``bound``: the edge values first, random ones after."""
    randoms = [int.from_bytes(rng.bytes(40), "little") % bound for _ in range(lanes.LANES)]
    return (edges + randoms)[: lanes.LANES]


@njit(cache=False)
def _mul(out: Blocks, x: Blocks, y: Blocks) -> None:
    lanes.mul(out, 0, x, 0, y, 0)


@njit(cache=False)
def _sbox_add(out: Blocks, x: Blocks, c: Blocks) -> None:
    lanes.sbox_add(out, 0, x, 0, c, 0)


@njit(cache=False)
def _mul_add(out: Blocks, x: Blocks, y: Blocks, z: Blocks) -> None:
    lanes.mul_add(out, 0, x, 0, y, 0, z, 0)


@njit(cache=False)
def _dot(out: Blocks, x: Blocks, y: Blocks, first: int, n: int) -> None:
    lanes.dot(out, 0, x, first, y, first, n)


@njit(cache=False)
def _from_montgomery(out: Blocks, x: Blocks) -> None:
    lanes.from_montgomery(out, 0, x, 0)


def _out() -> Blocks:
    return np.zeros((1, lanes.LIMBS, lanes.LANES), dtype=np.uint64)


@needs_ifma
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mul_of_values_below_3r(seed: int) -> None:
    rng = np.random.default_rng(seed)
    xs = _lanes(rng, 3 * R, [0, 1, R - 1, R, 2 * R - 1, 3 * R - 1])
    ys = _lanes(rng, 3 * R, [3 * R - 1, R - 1, 3 * R - 1, 2 * R - 1, 3 * R - 1, 3 * R - 1])
    out = _out()
    _mul(out, _block(xs), _block(ys))
    for x, y, z in zip(xs, ys, _values(out), strict=True):
        assert z < 2 * R
        assert z % R == x * y * R_INV % R


@needs_ifma
def test_sbox_add_is_the_fifth_power_of_the_sum() -> None:
    rng = np.random.default_rng(5)
    xs = _lanes(rng, 2 * R, [0, 2 * R - 1, R, R - 1])
    cs = _lanes(rng, R, [0, R - 1, R - 1, 1])
    out = _out()
    _sbox_add(out, _block(xs), _block(cs))
    for x, c, z in zip(xs, cs, _values(out), strict=True):
        assert z < 2 * R
        # In Montgomery form: (x + c)⁵ / R'⁴ is the fifth power of the value x + c stands for.
        assert z % R == pow(x + c, 5, R) * pow(R_INV, 4, R) % R


@needs_ifma
def test_mul_add_of_values_below_2r() -> None:
    rng = np.random.default_rng(7)
    edge = [2 * R - 1, R, R - 1, 0]
    xs, ys, zs = (_lanes(rng, 2 * R, edge) for _ in range(3))
    out = _out()
    _mul_add(out, _block(xs), _block(ys), _block(zs))
    for x, y, z, got in zip(xs, ys, zs, _values(out), strict=True):
        assert got < 2 * R
        assert got % R == (x * y * R_INV + z) % R


@needs_ifma
@pytest.mark.parametrize("n", [1, 2, 3, 12])
def test_dot_of_up_to_twelve_products_reduced_once(n: int) -> None:
    rng = np.random.default_rng(n)
    first = 2
    terms = first + n
    xs = [_lanes(rng, 2 * R, [2 * R - 1] * 4) for _ in range(terms)]
    ys = [_lanes(rng, 2 * R, [2 * R - 1, 2 * R - 1, R, R - 1]) for _ in range(terms)]
    x = np.concatenate([_block(v) for v in xs])
    y = np.concatenate([_block(v) for v in ys])
    out = _out()
    _dot(out, x, y, first, n)
    for lane, got in enumerate(_values(out)):
        assert got < 2 * R
        expected = sum(xs[k][lane] * ys[k][lane] for k in range(first, terms)) * R_INV % R
        assert got % R == expected


@needs_ifma
def test_from_montgomery_is_canonical() -> None:
    rng = np.random.default_rng(11)
    xs = _lanes(rng, 2 * R, [0, R, 2 * R - 1, 1, R - 1, (1 << 260) % R])
    out = _out()
    _from_montgomery(out, _block(xs))
    assert _values(out) == [x * R_INV % R for x in xs]
    assert _values(out)[1] == 0  # r stands for 0


@njit(cache=False)
def _put_get(blocks: Blocks, limbs64: npt.NDArray[np.uint64], index: int,
             lane: int) -> npt.NDArray[np.uint64]:
    x = (limbs64[0], limbs64[1], limbs64[2], limbs64[3])
    lanes.put_lane(blocks, index, lane, x)
    back = np.empty(4, dtype=np.uint64)
    back[0], back[1], back[2], back[3] = lanes.get_lane(blocks, index, lane)
    return back


@pytest.mark.parametrize("value", [0, 1, R - 1, R, 2 * R - 1, (1 << 256) - 1, 0x1234 << 200])
def test_a_lane_holds_a_64_bit_limb_value_as_52_bit_limbs(value: int) -> None:
    blocks = np.zeros((3, lanes.LIMBS, lanes.LANES), dtype=np.uint64)
    limbs64 = np.array([(value >> (64 * k)) & ((1 << 64) - 1) for k in range(4)],
                       dtype=np.uint64)
    back = _put_get(blocks, limbs64, 1, 5)
    assert np.array_equal(back, limbs64)
    assert _values(blocks, 1)[5] == value
    blocks[1, :, 5] = 0
    assert not blocks.any()  # nothing else was written


def test_broadcast_holds_the_montgomery_form_in_every_lane() -> None:
    blocks = lanes.broadcast([0, 1, R - 1])
    assert blocks.shape == (3, lanes.LIMBS, lanes.LANES)
    assert [_values(blocks, i) for i in range(3)] == [
        [v * (1 << 260) % R] * lanes.LANES for v in (0, 1, R - 1)]


def test_not_available_when_numba_targets_another_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    from numba.core import config

    monkeypatch.setattr(config, "CPU_NAME", "generic")
    assert not lanes.available()
