"""The BLS12-381 scalar field as sealagent uses it: 32-byte little-endian elements."""

from __future__ import annotations

import hashlib
from typing import Final

from sealagent.errors import InvalidInputError

R: Final = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001
"""The scalar field order r (255 bits)."""

FR_BYTES: Final = 32


def trim(digest: bytes) -> bytes:
    """Clear the two most significant bits of a 32-byte LE value (``byte[31] &= 0x3F``)."""
    if len(digest) != FR_BYTES:
        raise InvalidInputError(f"expected {FR_BYTES} bytes, got {len(digest)}")
    return digest[:31] + bytes((digest[31] & 0x3F,))


def sha256_trunc254(data: bytes) -> bytes:
    """``trim(SHA256(data))``: a SHA-256 digest made into a valid field element."""
    d = bytearray(hashlib.sha256(data).digest())
    d[31] &= 0x3F
    return bytes(d)


def fr_from_bytes(data: bytes) -> int:
    """Decode a canonical 32-byte little-endian field element; values ≥ r are rejected."""
    if len(data) != FR_BYTES:
        raise InvalidInputError(f"a field element is {FR_BYTES} bytes, got {len(data)}")
    value = int.from_bytes(data, "little")
    if value >= R:
        raise InvalidInputError("value is not a canonical field element (≥ r)")
    return value


def fr_to_bytes(value: int) -> bytes:
    """Encode a field element (reduced mod r) as 32 little-endian bytes."""
    return (value % R).to_bytes(FR_BYTES, "little")
