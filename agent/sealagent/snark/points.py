"""BLS12-381 points and scalars through py-arkworks-bls12381, in bellperson's encodings.

bellperson (blstrs) writes points in the ZCash format: big-endian coordinates, G2
coordinates as ``c1 ‖ c0``, flag bits in the first byte (compressed 0x80, infinity 0x40,
sign 0x20).  arkworks' ``xy`` encoding orders G2 coordinates ``c0 ‖ c1`` and has no flags,
so :func:`g1_to_uncompressed` and friends translate.  Compressed points are the same bytes
in both libraries.

:func:`msm` is the multi-scalar multiplication with supraseal's split: zero scalars are
skipped, the bases of scalars equal to one are simply added, and only the rest go
through the Pippenger MSM of arkworks (which releases the GIL).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final, TypeVar

from py_arkworks_bls12381 import G1Point, G2Point, Scalar

from sealagent.errors import InvalidInputError

G1_UNCOMPRESSED: Final = 96
G2_UNCOMPRESSED: Final = 192
G1_COMPRESSED: Final = 48
G2_COMPRESSED: Final = 96
_INFINITY: Final = 0x40

P = TypeVar("P", G1Point, G2Point)


def scalar(value: int) -> Scalar:
    """A py-arkworks scalar from a field element in ``[0, r)``."""
    return Scalar.from_le_bytes(value.to_bytes(32, "little"))


def _swap_fp2(data: bytes) -> bytes:
    return data[48:96] + data[0:48] + data[144:192] + data[96:144]


def g1_to_uncompressed(point: G1Point) -> bytes:
    """ZCash uncompressed encoding (96 bytes)."""
    raw = point.to_xy_bytes_be()
    return raw if any(raw) else bytes([_INFINITY]) + bytes(G1_UNCOMPRESSED - 1)


def g2_to_uncompressed(point: G2Point) -> bytes:
    """ZCash uncompressed encoding (192 bytes)."""
    raw = point.to_xy_bytes_be()
    return _swap_fp2(raw) if any(raw) else bytes([_INFINITY]) + bytes(G2_UNCOMPRESSED - 1)


def _decode(data: bytes, size: int, parse: Callable[[bytes], P], identity: P, what: str) -> P:
    if len(data) != size:
        raise InvalidInputError(f"a {what} point is {size} bytes, got {len(data)}")
    flags = data[0] & 0xE0
    if flags == _INFINITY:
        if any(data[1:]) or data[0] & 0x1F:
            raise InvalidInputError(f"malformed {what} point at infinity")
        return identity
    if flags:
        raise InvalidInputError(f"unexpected flags in an uncompressed {what} point")
    try:
        return parse(data)
    except ValueError as exc:
        raise InvalidInputError(f"invalid {what} point: {exc}") from None


def g1_from_uncompressed(data: bytes, *, checked: bool = True) -> G1Point:
    """Decode (and, when ``checked``, validate on-curve and subgroup) a G1 point."""
    parse = G1Point.from_xy_bytes_be if checked else G1Point.from_xy_bytes_unchecked_be
    return _decode(data, G1_UNCOMPRESSED, parse, G1Point.identity(), "G1")


def g2_from_uncompressed(data: bytes, *, checked: bool = True) -> G2Point:
    """Decode (and, when ``checked``, validate) a G2 point."""
    parse = G2Point.from_xy_bytes_be if checked else G2Point.from_xy_bytes_unchecked_be
    return _decode(data, G2_UNCOMPRESSED, lambda d: parse(_swap_fp2(d)), G2Point.identity(), "G2")


def msm(points: Sequence[P], scalars: Sequence[int], identity: P) -> P:
    """``Σ scalars[i]·points[i]`` with zero scalars skipped and unit scalars added."""
    ones = identity
    rest_points: list[P] = []
    rest_scalars: list[Scalar] = []
    for point, value in zip(points, scalars, strict=True):
        if value == 0:
            continue
        if value == 1:
            ones = ones + point
        else:
            rest_points.append(point)
            rest_scalars.append(scalar(value))
    if rest_points:
        ones = ones + type(identity).multiexp_unchecked(rest_points, rest_scalars)
    return ones
