"""A rank-1 constraint system with bellperson's two modes: shape and witness.

A constraint is ``⟨A_k, z⟩ · ⟨B_k, z⟩ = ⟨C_k, z⟩`` over the BLS12-381 scalar field, where
``z`` is the full assignment: the public inputs (input 0 is the constant ONE) followed by
the private (auxiliary) variables.  Gadgets build linear combinations (dicts from variable
to coefficient) and call :meth:`ConstraintSystem.enforce`.

* In *shape* mode (``shape=True``) every constraint's three rows are recorded as sparse
  COO arrays (row, variable, index into a small table of distinct coefficients: almost
  all are ±1 or powers of two).  This is what the parameter generation needs.
* In *witness* mode (``witness=True``) every allocation carries its value, and every
  constraint is evaluated on the spot: the prover needs exactly ``a_k = ⟨A_k, z⟩``,
  ``b_k`` and ``c_k``, never the matrices.

Variables are ints: an auxiliary variable ``j`` is ``j`` (≥ 0), public input ``i`` is
``~i`` (< 0), so ONE is ``-1``.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from typing import Final, TypeAlias

import numpy as np
import numpy.typing as npt

from sealagent.errors import InvalidInputError
from sealagent.proofs.field import R

LC: TypeAlias = dict[int, int]
"""A linear combination: variable → coefficient in ``[0, r)``."""

ONE: Final = -1
"""The constant-one variable (public input 0)."""


def lc_add(dst: LC, src: LC, scale: int = 1) -> LC:
    """``dst += scale · src`` in place (coefficients reduced mod r); returns ``dst``."""
    for var, coeff in src.items():
        dst[var] = (dst.get(var, 0) + coeff * scale) % R
    return dst


@dataclass(frozen=True)
class Shape:
    """The recorded matrices of a circuit, as COO arrays per matrix."""

    num_inputs: int
    num_aux: int
    num_constraints: int
    rows: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]
    cols: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]
    """Column of each entry in the full assignment: inputs first, then aux."""
    coeff_ids: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]
    coeffs: tuple[int, ...]
    """The distinct coefficients; ``coeff_ids`` index into this table."""


class _MatrixRecorder:
    """Appends one matrix's entries to flat arrays."""

    def __init__(self, table: dict[int, int]) -> None:
        self.rows = array("q")
        self.cols = array("q")
        self.ids = array("q")
        self._table = table

    def add(self, row: int, lc: LC) -> None:
        table = self._table
        for var, coeff in lc.items():
            if coeff == 0:
                continue
            cid = table.get(coeff)
            if cid is None:
                cid = table[coeff] = len(table)
            self.rows.append(row)
            self.cols.append(var)
            self.ids.append(cid)


class ConstraintSystem:
    """Collects allocations and constraints in shape mode, witness mode or both."""

    def __init__(self, *, witness: bool, shape: bool = False) -> None:
        self.witness = witness
        self.num_inputs = 1
        self.num_aux = 0
        self.num_constraints = 0
        self.input_values: list[int] = [1]
        self.aux_values: list[int] = []
        self.a: list[int] = []
        self.b: list[int] = []
        self.c: list[int] = []
        self._table: dict[int, int] = {}
        self._recorders = (
            (_MatrixRecorder(self._table), _MatrixRecorder(self._table),
             _MatrixRecorder(self._table)) if shape else None
        )

    def alloc(self, value: int | None) -> int:
        """A new private variable (its value is required in witness mode)."""
        var = self.num_aux
        self.num_aux += 1
        if self.witness:
            if value is None:
                raise InvalidInputError("witness mode needs a value for every variable")
            self.aux_values.append(value % R)
        return var

    def alloc_input(self, value: int | None) -> int:
        """A new public input."""
        var = ~self.num_inputs
        self.num_inputs += 1
        if self.witness:
            if value is None:
                raise InvalidInputError("witness mode needs a value for every input")
            self.input_values.append(value % R)
        return var

    def value(self, var: int) -> int:
        """The assigned value of a variable (witness mode)."""
        return self.aux_values[var] if var >= 0 else self.input_values[~var]

    def eval(self, lc: LC) -> int:
        """``⟨lc, z⟩`` mod r (witness mode)."""
        aux = self.aux_values
        inputs = self.input_values
        total = 0
        for var, coeff in lc.items():
            total += (aux[var] if var >= 0 else inputs[~var]) * coeff
        return total % R

    def enforce(self, a: LC, b: LC, c: LC) -> None:
        """Add the constraint ``⟨a, z⟩ · ⟨b, z⟩ = ⟨c, z⟩``."""
        row = self.num_constraints
        self.num_constraints = row + 1
        if self.witness:
            self.a.append(self.eval(a))
            self.b.append(self.eval(b))
            self.c.append(self.eval(c))
        if self._recorders is not None:
            ra, rb, rc = self._recorders
            ra.add(row, a)
            rb.add(row, b)
            rc.add(row, c)

    def first_unsatisfied(self) -> int | None:
        """Index of the first violated constraint, or None when all hold (witness mode)."""
        for k, (x, y, z) in enumerate(zip(self.a, self.b, self.c, strict=True)):
            if x * y % R != z:
                return k
        return None

    def shape(self) -> Shape:
        """The recorded matrices (shape mode), columns renumbered inputs-then-aux."""
        if self._recorders is None:
            raise InvalidInputError("this constraint system does not record its shape")
        n_in = self.num_inputs
        rows, cols, ids = [], [], []
        for rec in self._recorders:
            raw = np.frombuffer(rec.cols, dtype=np.int64)
            rows.append(np.frombuffer(rec.rows, dtype=np.int64).copy())
            cols.append(np.where(raw >= 0, raw + n_in, ~raw))
            ids.append(np.frombuffer(rec.ids, dtype=np.int64).copy())
        table = sorted(self._table.items(), key=lambda kv: kv[1])
        return Shape(
            num_inputs=n_in, num_aux=self.num_aux, num_constraints=self.num_constraints,
            rows=(rows[0], rows[1], rows[2]), cols=(cols[0], cols[1], cols[2]),
            coeff_ids=(ids[0], ids[1], ids[2]), coeffs=tuple(c for c, _ in table),
        )
