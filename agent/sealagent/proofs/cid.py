"""Commitments as CIDs, as go-fil-commcid writes them (docs/porep.md §3.5).

A commitment CID is ``uvarint(1) uvarint(codec) uvarint(multihash) uvarint(32) comm``,
written as ``"b"`` + lower-case RFC 4648 base32 without padding:

* unsealed (CommP / CommD): codec ``fil-commitment-unsealed`` 0xf101, multihash
  ``sha2-256-trunc254-padded`` 0x1012 (text starts ``baga6ea4seaq``);
* sealed (CommR): codec ``fil-commitment-sealed`` 0xf102, multihash
  ``poseidon-bls12_381-a2-fc1`` 0xb401 (text starts ``bagboea4b5abc``).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Final

from sealagent.errors import InvalidInputError

CID_VERSION: Final = 1
COMMITMENT_BYTES: Final = 32

FIL_COMMITMENT_UNSEALED: Final = 0xF101
"""Multicodec of unsealed commitments (CommP, CommD)."""

FIL_COMMITMENT_SEALED: Final = 0xF102
"""Multicodec of sealed commitments (CommR)."""

SHA2_256_TRUNC254_PADDED: Final = 0x1012
"""Multihash of the SHA256-trunc254 piece tree."""

POSEIDON_BLS12_381_A2_FC1: Final = 0xB401
"""Multihash of the Poseidon replica commitment."""

_BASE32_LOWER: Final = re.compile(r"[a-z2-7]+")


def uvarint(value: int) -> bytes:
    """Unsigned LEB128 encoding."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_uvarint(data: bytes, pos: int) -> tuple[int, int]:
    """Decode a minimal unsigned LEB128 value at ``pos``; returns (value, next pos)."""
    value = 0
    for i in range(9):
        if pos + i >= len(data):
            raise InvalidInputError("CID is truncated inside a varint")
        byte = data[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            if byte == 0 and i:
                raise InvalidInputError("CID has a non-minimal varint")
            return value, pos + i + 1
    raise InvalidInputError("CID has a varint longer than 9 bytes")


def _encode(commitment: bytes, codec: int, multihash: int) -> str:
    """Text CID of a 32-byte commitment with the given codec and multihash."""
    if not isinstance(commitment, bytes | bytearray) or len(commitment) != COMMITMENT_BYTES:
        raise InvalidInputError(f"a commitment is {COMMITMENT_BYTES} bytes, got {commitment!r}")
    raw = b"".join(
        (uvarint(CID_VERSION), uvarint(codec), uvarint(multihash),
         uvarint(COMMITMENT_BYTES), bytes(commitment))
    )
    return _encode_raw_text(raw)


def _decode(cid: str, codec: int, multihash: int, kind: str) -> bytes:
    """The commitment inside a text CID, checking every field against ``codec``/``multihash``."""
    if not isinstance(cid, str):
        raise InvalidInputError(f"a CID is a string, got {type(cid).__name__}")
    if not cid.startswith("b"):
        raise InvalidInputError(f"CID {cid!r} is not base32 (it must start with 'b')")
    body = cid[1:]
    if not _BASE32_LOWER.fullmatch(body):
        raise InvalidInputError(f"CID {cid!r} is not lower-case base32")
    try:
        raw = base64.b32decode(body.upper() + "=" * (-len(body) % 8))
    except binascii.Error:
        raise InvalidInputError(f"CID {cid!r} is not valid base32") from None
    if _encode_raw_text(raw) != cid:
        raise InvalidInputError(f"CID {cid!r} is not canonical base32")
    version, pos = _read_uvarint(raw, 0)
    if version != CID_VERSION:
        raise InvalidInputError(f"CID {cid!r} has version {version}, expected {CID_VERSION}")
    got_codec, pos = _read_uvarint(raw, pos)
    if got_codec != codec:
        raise InvalidInputError(
            f"CID {cid!r} has codec {got_codec:#x}, expected {codec:#x} ({kind})"
        )
    got_hash, pos = _read_uvarint(raw, pos)
    if got_hash != multihash:
        raise InvalidInputError(
            f"CID {cid!r} has multihash {got_hash:#x}, expected {multihash:#x} ({kind})"
        )
    length, pos = _read_uvarint(raw, pos)
    digest = raw[pos:]
    if length != COMMITMENT_BYTES or len(digest) != COMMITMENT_BYTES:
        raise InvalidInputError(
            f"CID {cid!r} carries a {len(digest)}-byte digest (declared {length}),"
            f" expected {COMMITMENT_BYTES}"
        )
    return digest


def _encode_raw_text(raw: bytes) -> str:
    """Text form of raw CID bytes (multibase ``b``)."""
    return "b" + base64.b32encode(raw).decode("ascii").rstrip("=").lower()


def unsealed_commitment_to_cid(commitment: bytes) -> str:
    """The piece / data CID (``baga6ea4seaq…``) of a CommP or CommD."""
    return _encode(commitment, FIL_COMMITMENT_UNSEALED, SHA2_256_TRUNC254_PADDED)


def sealed_commitment_to_cid(commitment: bytes) -> str:
    """The replica CID (``bagboea4b5abc…``) of a CommR."""
    return _encode(commitment, FIL_COMMITMENT_SEALED, POSEIDON_BLS12_381_A2_FC1)


def cid_to_unsealed_commitment(cid: str) -> bytes:
    """The CommP / CommD inside an unsealed-commitment CID."""
    return _decode(cid, FIL_COMMITMENT_UNSEALED, SHA2_256_TRUNC254_PADDED, "unsealed")


def cid_to_sealed_commitment(cid: str) -> bytes:
    """The CommR inside a sealed-commitment CID."""
    return _decode(cid, FIL_COMMITMENT_SEALED, POSEIDON_BLS12_381_A2_FC1, "sealed")
