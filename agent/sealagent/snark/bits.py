"""Boolean, 32-bit word and packing gadgets, constraint for constraint as bellperson's.

A boolean is an int code: ``0``/``1`` are the constants false/true; an allocated bit in
auxiliary variable ``v`` is ``2·(v+1)`` and its negation ``2·(v+1)+1``.  Negation is
``b ^ 1`` for every code and costs nothing, as in bellperson's ``Boolean::Not``.

Constant operands are folded exactly where bellperson folds them (``Boolean::xor``,
``and``, ``sha256_ch``, ``sha256_maj``, ``UInt32::addmany``), so the constraint counts
match the ones its tests assert.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from sealagent.proofs.field import R
from sealagent.snark.cs import LC, ONE, ConstraintSystem, lc_add

FALSE: Final = 0
TRUE: Final = 1
CAPACITY: Final = 254
"""Bits that always fit in a field element (``Fr::CAPACITY``)."""
NUM_BITS: Final = 255


def is_constant(b: int) -> bool:
    """Whether a boolean code is a constant."""
    return b < 2


def bit_var(b: int) -> int:
    """The auxiliary variable of an allocated (possibly negated) bit."""
    return (b >> 1) - 1


def bool_value(cs: ConstraintSystem, b: int) -> int:
    """The boolean's value, 0 or 1 (witness mode)."""
    if b < 2:
        return b
    return cs.aux_values[(b >> 1) - 1] ^ (b & 1)


def bool_lc(b: int, coeff: int = 1) -> LC:
    """``coeff · b`` as a linear combination."""
    if b < 2:
        return {ONE: coeff % R} if b else {}
    var = (b >> 1) - 1
    if b & 1:
        return {ONE: coeff % R, var: -coeff % R}
    return {var: coeff % R}


def alloc_bit(cs: ConstraintSystem, value: int | None) -> int:
    """An allocated bit with its booleanity constraint ``(1 − v)·v = 0``."""
    var = cs.alloc(value)
    cs.enforce({ONE: 1, var: R - 1}, {var: 1}, {})
    return (var + 1) << 1


def _value_of(cs: ConstraintSystem, *codes: int) -> list[int] | None:
    return [bool_value(cs, x) for x in codes] if cs.witness else None


def xor(cs: ConstraintSystem, a: int, b: int) -> int:
    """``a ⊕ b`` (bellperson ``Boolean::xor``: one constraint unless a constant is involved)."""
    if a == FALSE:
        return b
    if b == FALSE:
        return a
    if a == TRUE:
        return b ^ 1
    if b == TRUE:
        return a ^ 1
    va, vb = (a >> 1) - 1, (b >> 1) - 1
    vals = _value_of(cs, a & ~1, b & ~1)
    res = cs.alloc(vals[0] ^ vals[1] if vals else None)
    lhs: LC = {va: 2}
    rhs: LC = {va: 1}
    lc_add(rhs, {vb: 1})
    rhs[res] = R - 1
    cs.enforce(lhs, {vb: 1}, rhs)
    code = (res + 1) << 1
    return code ^ 1 if (a & 1) != (b & 1) else code


def and_(cs: ConstraintSystem, a: int, b: int) -> int:
    """``a ∧ b`` (bellperson ``Boolean::and``: and / and_not / nor of the variables)."""
    if a == FALSE or b == FALSE:
        return FALSE
    if a == TRUE:
        return b
    if b == TRUE:
        return a
    vals = _value_of(cs, a, b)
    res = cs.alloc(vals[0] & vals[1] if vals else None)
    cs.enforce(bool_lc(a), bool_lc(b), {res: 1})
    return (res + 1) << 1


def sha256_ch(cs: ConstraintSystem, a: int, b: int, c: int) -> int:
    """``(a ∧ b) ⊕ (¬a ∧ c)`` with bellperson's constant folding."""
    if a < 2 and b < 2 and c < 2:
        return (a & b) ^ ((a ^ 1) & c)
    if a == FALSE:
        return c
    if b == FALSE:
        return and_(cs, a ^ 1, c)
    if c == FALSE:
        return and_(cs, a, b)
    if c == TRUE:
        return and_(cs, a, b ^ 1) ^ 1
    if b == TRUE:
        return and_(cs, a ^ 1, c ^ 1) ^ 1
    vals = _value_of(cs, a, b, c)
    ch = cs.alloc((vals[0] & vals[1]) ^ ((vals[0] ^ 1) & vals[2]) if vals else None)
    lhs = lc_add(bool_lc(b), bool_lc(c), R - 1)
    out = lc_add({ch: 1}, bool_lc(c), R - 1)
    cs.enforce(lhs, bool_lc(a), out)
    return (ch + 1) << 1


def sha256_maj(cs: ConstraintSystem, a: int, b: int, c: int) -> int:
    """``(a ∧ b) ⊕ (a ∧ c) ⊕ (b ∧ c)`` with bellperson's constant folding."""
    if a < 2 and b < 2 and c < 2:
        return (a & b) ^ (a & c) ^ (b & c)
    if a == FALSE:
        return and_(cs, b, c)
    if b == FALSE:
        return and_(cs, a, c)
    if c == FALSE:
        return and_(cs, a, b)
    if c == TRUE:
        return and_(cs, a ^ 1, b ^ 1) ^ 1
    if b == TRUE:
        return and_(cs, a ^ 1, c ^ 1) ^ 1
    if a == TRUE:
        return and_(cs, b ^ 1, c ^ 1) ^ 1
    vals = _value_of(cs, a, b, c)
    maj = cs.alloc(
        (vals[0] & vals[1]) ^ (vals[0] & vals[2]) ^ (vals[1] & vals[2]) if vals else None
    )
    bc = and_(cs, b, c)
    lhs = lc_add(bool_lc(bc, 2), bool_lc(b), R - 1)
    lc_add(lhs, bool_lc(c), R - 1)
    out = lc_add(bool_lc(bc), {maj: 1}, R - 1)
    cs.enforce(lhs, bool_lc(a), out)
    return (maj + 1) << 1


class MultiEq:
    """Packs many ``lhs = rhs`` equalities of few bits into one constraint (bellperson)."""

    def __init__(self, cs: ConstraintSystem) -> None:
        self.cs = cs
        self.bits_used = 0
        self.lhs: LC = {}
        self.rhs: LC = {}

    def _accumulate(self) -> None:
        self.cs.enforce(self.lhs, {ONE: 1}, self.rhs)
        self.lhs, self.rhs, self.bits_used = {}, {}, 0

    def enforce_equal(self, num_bits: int, lhs: LC, rhs: LC) -> None:
        """Queue ``lhs = rhs`` where both sides are below ``2^num_bits``."""
        if self.bits_used + num_bits >= CAPACITY:
            self._accumulate()
        coeff = 1 << self.bits_used
        lc_add(self.lhs, lhs, coeff)
        lc_add(self.rhs, rhs, coeff)
        self.bits_used += num_bits

    def flush(self) -> None:
        """Emit the pending equalities (bellperson does this when a MultiEq is dropped)."""
        if self.bits_used > 0:
            self._accumulate()


class UInt32:
    """A 32-bit word: 32 boolean codes, least significant first, and its value if known."""

    __slots__ = ("bits", "value")

    def __init__(self, bits: list[int], value: int | None) -> None:
        self.bits = bits
        self.value = value

    @classmethod
    def constant(cls, value: int) -> UInt32:
        """A constant word (no variables)."""
        return cls([(value >> i) & 1 for i in range(32)], value)

    @classmethod
    def from_bits_be(cls, bits: Sequence[int], cs: ConstraintSystem) -> UInt32:
        """A word from 32 big-endian boolean codes."""
        le = list(reversed(bits))
        value = None
        if cs.witness or all(b < 2 for b in le):
            value = sum(bool_value(cs, b) << i for i, b in enumerate(le))
        return cls(le, value)

    def bits_be(self) -> list[int]:
        """The boolean codes, most significant first."""
        return self.bits[::-1]

    def rotr(self, by: int) -> UInt32:
        """Rotate right (free)."""
        by %= 32
        v = self.value
        if v is not None:
            v = ((v >> by) | (v << (32 - by))) & 0xFFFFFFFF
        return UInt32(self.bits[by:] + self.bits[:by], v)

    def shr(self, by: int) -> UInt32:
        """Shift right, filling with constant zeros (free)."""
        by %= 32
        value = None if self.value is None else self.value >> by
        return UInt32(self.bits[by:] + [FALSE] * by, value)

    def xor(self, cs: ConstraintSystem, other: UInt32) -> UInt32:
        """Bitwise xor."""
        bits = [xor(cs, x, y) for x, y in zip(self.bits, other.bits, strict=True)]
        v = None if self.value is None or other.value is None else self.value ^ other.value
        return UInt32(bits, v)

    @staticmethod
    def sha256_ch(cs: ConstraintSystem, a: UInt32, b: UInt32, c: UInt32) -> UInt32:
        """Bitwise SHA-256 choose."""
        bits = [sha256_ch(cs, x, y, z) for x, y, z in zip(a.bits, b.bits, c.bits, strict=True)]
        v = None
        if a.value is not None and b.value is not None and c.value is not None:
            v = (a.value & b.value) ^ (~a.value & 0xFFFFFFFF & c.value)
        return UInt32(bits, v)

    @staticmethod
    def sha256_maj(cs: ConstraintSystem, a: UInt32, b: UInt32, c: UInt32) -> UInt32:
        """Bitwise SHA-256 majority."""
        bits = [sha256_maj(cs, x, y, z) for x, y, z in zip(a.bits, b.bits, c.bits, strict=True)]
        v = None
        if a.value is not None and b.value is not None and c.value is not None:
            v = (a.value & b.value) ^ (a.value & c.value) ^ (b.value & c.value)
        return UInt32(bits, v)

    @staticmethod
    def addmany(cs: ConstraintSystem, meq: MultiEq, operands: Sequence[UInt32]) -> UInt32:
        """Sum modulo 2^32: the result bits are allocated, the equality goes to ``meq``."""
        max_value = len(operands) * 0xFFFFFFFF
        total: int | None = 0
        lc: LC = {}
        all_constants = True
        for op in operands:
            total = None if total is None or op.value is None else total + op.value
            for i, bit in enumerate(op.bits):
                if bit >= 2:
                    all_constants = False
                if bit:
                    lc_add(lc, bool_lc(bit, 1 << i))
        if all_constants and total is not None:
            return UInt32.constant(total & 0xFFFFFFFF)
        result_bits = []
        result_lc: LC = {}
        for i in range(max_value.bit_length()):
            bit = alloc_bit(cs, None if total is None else (total >> i) & 1)
            result_lc[bit_var(bit)] = 1 << i
            result_bits.append(bit)
        meq.enforce_equal(max_value.bit_length(), lc, result_lc)
        return UInt32(result_bits[:32], None if total is None else total & 0xFFFFFFFF)


def alloc_num(cs: ConstraintSystem, value: int | None) -> int:
    """An allocated field element (no constraint)."""
    return cs.alloc(value)


def num_to_bits_le(cs: ConstraintSystem, var: int) -> list[int]:
    """The 255 little-endian bits of a number plus one packing constraint (``to_bits_le``)."""
    value = cs.value(var) if cs.witness else None
    bits = [alloc_bit(cs, None if value is None else (value >> i) & 1) for i in range(NUM_BITS)]
    lc: LC = {bit_var(b): 1 << i for i, b in enumerate(bits)}
    lc[var] = (lc.get(var, 0) - 1) % R
    cs.enforce({}, {}, lc)
    return bits


def _packed(cs: ConstraintSystem, bits: Sequence[int]) -> tuple[LC, int | None]:
    lc: LC = {}
    for i, b in enumerate(bits):
        if b:
            lc_add(lc, bool_lc(b, 1 << i))
    value = sum(bool_value(cs, b) << i for i, b in enumerate(bits)) if cs.witness else None
    return lc, value


def pack_bits(cs: ConstraintSystem, bits: Sequence[int]) -> int:
    """Allocate the number whose little-endian bits (at most 254) are given (one constraint)."""
    lc, value = _packed(cs, bits[:CAPACITY])
    var = cs.alloc(value)
    cs.enforce(lc, {ONE: 1}, {var: 1})
    return var


def pack_into_inputs(cs: ConstraintSystem, bits: Sequence[int]) -> None:
    """Public inputs packing the bits 254 at a time (``multipack::pack_into_inputs``)."""
    for start in range(0, len(bits), CAPACITY):
        lc, value = _packed(cs, bits[start : start + CAPACITY])
        var = cs.alloc_input(value)
        cs.enforce(lc, {ONE: 1}, {var: 1})


def compute_multipacking(bits: Sequence[int]) -> list[int]:
    """The public-input values :func:`pack_into_inputs` creates for known bits."""
    return [
        sum(b << i for i, b in enumerate(bits[start : start + CAPACITY]))
        for start in range(0, len(bits), CAPACITY)
    ]


def inputize(cs: ConstraintSystem, var: int) -> int:
    """Expose a number as a public input equal to it (one constraint)."""
    inp = cs.alloc_input(cs.value(var) if cs.witness else None)
    cs.enforce({inp: 1}, {ONE: 1}, {var: 1})
    return inp


def enforce_equal_nums(cs: ConstraintSystem, a: int, b: int) -> None:
    """``a = b`` (``constraint::equal``)."""
    cs.enforce({a: 1}, {ONE: 1}, {b: 1})


def reverse_bit_numbering(bits: Sequence[int]) -> list[int]:
    """Reverse the bit order inside each byte, padding a partial byte with zeros."""
    padded = list(bits) + [FALSE] * (-len(bits) % 8)
    return [b for i in range(0, len(padded), 8) for b in reversed(padded[i : i + 8])]
