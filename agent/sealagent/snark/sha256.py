"""The SHA-256 gadget, bellperson's ``sha256_compression_function`` and ``sha256``.

Additions go through :meth:`UInt32.addmany` with one :class:`MultiEq` per compression, and
the additions into ``a`` and ``e`` are deferred to the next round exactly as bellperson
defers them, so one compression over allocated message bits costs 25,840 constraints.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from sealagent.errors import InvalidInputError
from sealagent.snark.bits import FALSE, TRUE, MultiEq, UInt32
from sealagent.snark.cs import ConstraintSystem

ROUND_CONSTANTS: Final = (
    0x428A2F98, 0x71374491, 0xB5C0FBCF, 0xE9B5DBA5, 0x3956C25B, 0x59F111F1, 0x923F82A4, 0xAB1C5ED5,
    0xD807AA98, 0x12835B01, 0x243185BE, 0x550C7DC3, 0x72BE5D74, 0x80DEB1FE, 0x9BDC06A7, 0xC19BF174,
    0xE49B69C1, 0xEFBE4786, 0x0FC19DC6, 0x240CA1CC, 0x2DE92C6F, 0x4A7484AA, 0x5CB0A9DC, 0x76F988DA,
    0x983E5152, 0xA831C66D, 0xB00327C8, 0xBF597FC7, 0xC6E00BF3, 0xD5A79147, 0x06CA6351, 0x14292967,
    0x27B70A85, 0x2E1B2138, 0x4D2C6DFC, 0x53380D13, 0x650A7354, 0x766A0ABB, 0x81C2C92E, 0x92722C85,
    0xA2BFE8A1, 0xA81A664B, 0xC24B8B70, 0xC76C51A3, 0xD192E819, 0xD6990624, 0xF40E3585, 0x106AA070,
    0x19A4C116, 0x1E376C08, 0x2748774C, 0x34B0BCB5, 0x391C0CB3, 0x4ED8AA4A, 0x5B9CCA4F, 0x682E6FF3,
    0x748F82EE, 0x78A5636F, 0x84C87814, 0x8CC70208, 0x90BEFFFA, 0xA4506CEB, 0xBEF9A3F7, 0xC67178F2,
)
IV: Final = (
    0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19,
)


def sha256_iv() -> list[UInt32]:
    """The initial hash value as constant words."""
    return [UInt32.constant(v) for v in IV]


def _sigma(cs: ConstraintSystem, x: UInt32, r1: int, r2: int, third: UInt32) -> UInt32:
    return x.rotr(r1).xor(cs, x.rotr(r2)).xor(cs, third)


def compression(
    cs: ConstraintSystem, block: Sequence[int], state: Sequence[UInt32]
) -> list[UInt32]:
    """One SHA-256 compression of a 512-bit block (big-endian boolean codes)."""
    if len(block) != 512 or len(state) != 8:
        raise InvalidInputError("a SHA-256 compression takes 512 bits and 8 state words")
    meq = MultiEq(cs)
    w = [UInt32.from_bits_be(block[i : i + 32], cs) for i in range(0, 512, 32)]
    for i in range(16, 64):
        s0 = _sigma(cs, w[i - 15], 7, 18, w[i - 15].shr(3))
        s1 = _sigma(cs, w[i - 2], 17, 19, w[i - 2].shr(10))
        w.append(UInt32.addmany(cs, meq, [w[i - 16], s0, w[i - 7], s1]))

    a: UInt32 | list[UInt32] = state[0]
    b, c, d = state[1], state[2], state[3]
    e: UInt32 | list[UInt32] = state[4]
    f, g, h = state[5], state[6], state[7]

    def compute(x: UInt32 | list[UInt32], extra: Sequence[UInt32] = ()) -> UInt32:
        if isinstance(x, UInt32):
            return x
        return UInt32.addmany(cs, meq, [*x, *extra])

    for i in range(64):
        new_e = compute(e)
        s1 = _sigma(cs, new_e, 6, 11, new_e.rotr(25))
        ch = UInt32.sha256_ch(cs, new_e, f, g)
        temp1 = [h, s1, ch, UInt32.constant(ROUND_CONSTANTS[i]), w[i]]
        new_a = compute(a)
        s0 = _sigma(cs, new_a, 2, 13, new_a.rotr(22))
        maj = UInt32.sha256_maj(cs, new_a, b, c)
        h, g, f = g, f, new_e
        e = [*temp1, d]
        d, c, b = c, b, new_a
        a = [*temp1, s0, maj]

    out = [
        compute(a, [state[0]]),
        UInt32.addmany(cs, meq, [state[1], b]),
        UInt32.addmany(cs, meq, [state[2], c]),
        UInt32.addmany(cs, meq, [state[3], d]),
        compute(e, [state[4]]),
        UInt32.addmany(cs, meq, [state[5], f]),
        UInt32.addmany(cs, meq, [state[6], g]),
        UInt32.addmany(cs, meq, [state[7], h]),
    ]
    meq.flush()
    return out


def sha256(cs: ConstraintSystem, message: Sequence[int]) -> list[int]:
    """SHA-256 with standard padding of a whole-byte message; the digest's 256 bits, MSB first."""
    if len(message) % 8:
        raise InvalidInputError("the SHA-256 gadget hashes whole bytes")
    length = len(message)
    padded = [*message, TRUE]
    padded += [FALSE] * (-(len(padded) + 64) % 512)
    padded += [(length >> i) & 1 for i in range(63, -1, -1)]
    state = sha256_iv()
    for start in range(0, len(padded), 512):
        state = compression(cs, padded[start : start + 512], state)
    return [b for word in state for b in word.bits_be()]
