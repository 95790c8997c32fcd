"""The Poseidon gadget, shaped as neptune's ``circuit::poseidon_hash``.

Every S-box ``x^5`` costs three constraints (``x², x⁴, x⁵``) on an allocated input; an
S-box input that is a linear combination (everything after the first round) is allocated
first (one more constraint); the domain tag's first S-box is computed as a constant; the
output is allocated at the end.  For arity 2 / 8 / 11 that is 311 / 505 / 598
constraints, neptune's asserted counts.  The rounds follow the permutation's definition
(constants added before each S-box, dense MDS), an equivalent of neptune's compressed
schedule with the same allocations.

For ``ConstantLength`` hashes the unused state elements are the constant zero, so their
first S-boxes are free too (neptune allocates them as unconstrained zero variables).
"""

from __future__ import annotations

from collections.abc import Sequence

from sealagent.errors import InvalidInputError
from sealagent.proofs.field import R
from sealagent.proofs.poseidon import (
    PoseidonConstants,
    constant_length_tag,
    constants,
    merkle_tree_tag,
)
from sealagent.snark.cs import LC, ONE, ConstraintSystem, lc_add


class _Elt:
    """A state element: a linear combination and its value (when known)."""

    __slots__ = ("lc", "value")

    def __init__(self, lc: LC, value: int | None) -> None:
        self.lc = lc
        self.value = value

    def constant(self) -> int | None:
        """The element's value when it is a constant (its LC is ONE only)."""
        if not self.lc:
            return 0
        if len(self.lc) == 1 and ONE in self.lc:
            return self.lc[ONE]
        return None


def _sbox(cs: ConstraintSystem, elt: _Elt, pre: int) -> _Elt:
    """``(elt + pre)^5`` with 3 constraints on an allocated input, 4 on a combination."""
    const = elt.constant()
    if const is not None:
        v = pow((const + pre) % R, 5, R)
        return _Elt({ONE: v}, v)
    xv = None if elt.value is None else (elt.value + pre) % R
    if len(elt.lc) == 1 and next(iter(elt.lc.values())) == 1:
        base: LC = dict(elt.lc)
    else:
        lc = dict(elt.lc)
        if pre:
            lc[ONE] = (lc.get(ONE, 0) + pre) % R
        x = cs.alloc(xv)
        cs.enforce(lc, {ONE: 1}, {x: 1})
        base, pre = {x: 1}, 0
    shifted = dict(base)
    if pre:
        shifted[ONE] = (shifted.get(ONE, 0) + pre) % R
    x2 = cs.alloc(None if xv is None else xv * xv % R)
    cs.enforce(shifted, shifted, {x2: 1})
    x4 = cs.alloc(None if xv is None else pow(xv, 4, R))
    cs.enforce({x2: 1}, {x2: 1}, {x4: 1})
    x5v = None if xv is None else pow(xv, 5, R)
    x5 = cs.alloc(x5v)
    cs.enforce(shifted, {x4: 1}, {x5: 1})
    return _Elt({x5: 1}, x5v)


def _add_constant(elt: _Elt, c: int) -> _Elt:
    lc = dict(elt.lc)
    lc[ONE] = (lc.get(ONE, 0) + c) % R
    return _Elt(lc, None if elt.value is None else (elt.value + c) % R)


def _mds(state: list[_Elt], consts: PoseidonConstants, witness: bool) -> list[_Elt]:
    t = consts.width
    out = []
    for j in range(t):
        lc: LC = {}
        value = 0
        for i in range(t):
            m = consts.mds[i][j]
            lc_add(lc, state[i].lc, m)
            if witness:
                value += m * (state[i].value or 0)
        out.append(_Elt({v: c for v, c in lc.items() if c}, value % R if witness else None))
    return out


def _permute(cs: ConstraintSystem, state: list[_Elt], consts: PoseidonConstants) -> list[_Elt]:
    t = consts.width
    half = consts.full_rounds // 2
    rc = consts.round_constants
    for rnd in range(consts.full_rounds + consts.partial_rounds):
        added = rc[rnd * t : (rnd + 1) * t]
        if half <= rnd < half + consts.partial_rounds:
            state = [_sbox(cs, state[0], added[0])] + [
                _add_constant(e, c) for e, c in zip(state[1:], added[1:], strict=True)
            ]
        else:
            state = [_sbox(cs, e, c) for e, c in zip(state, added, strict=True)]
        state = _mds(state, consts, cs.witness)
    return state


def poseidon_hash(cs: ConstraintSystem, inputs: Sequence[int], arity: int, tag: int) -> int:
    """Hash allocated numbers (padded with constant zeros to ``arity``) under a domain tag."""
    if not 0 < len(inputs) <= arity:
        raise InvalidInputError(f"a Poseidon hash of arity {arity} takes 1..{arity} inputs")
    consts = constants(arity)
    state = [_Elt({ONE: tag}, tag)]
    for var in inputs:
        state.append(_Elt({var: 1}, cs.value(var) if cs.witness else None))
    state += [_Elt({}, 0) for _ in range(arity - len(inputs))]
    out = _permute(cs, state, consts)[1]
    result = cs.alloc(out.value)
    cs.enforce(out.lc, {ONE: 1}, {result: 1})
    return result


def poseidon_merkle(cs: ConstraintSystem, inputs: Sequence[int]) -> int:
    """Poseidon with the MerkleTree tag over exactly ``len(inputs)`` (the arity) numbers."""
    return poseidon_hash(cs, inputs, len(inputs), merkle_tree_tag(len(inputs)))


def poseidon_constant_length(cs: ConstraintSystem, inputs: Sequence[int], arity: int) -> int:
    """Poseidon with the ConstantLength(len(inputs)) tag in an instance of ``arity``."""
    return poseidon_hash(cs, inputs, arity, constant_length_tag(len(inputs)))
