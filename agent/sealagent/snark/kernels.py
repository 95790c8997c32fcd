"""The prover's kernel seam: the H polynomial's transforms, swappable by a backend.

:func:`~sealagent.snark.groth16.prove` (and :func:`~sealagent.snark.seal.seal_commit_phase2`
above it) keeps everything that must stay as bellperson has it: the parameter checks, the
QAP (circuit rows, then one ``input_i · 0 = 0`` row per input), the witness check, the
MSMs, the randomization and the proof encoding.  The seven number-theoretic transforms that
turn the QAP's evaluations into the coefficients of ``h = (A·B − C)/Z`` are one kernel,
passed as a :class:`ProverKernels` (``kernels=`` argument, default
:data:`REFERENCE_PROVER_KERNELS`: :func:`sealagent.snark.ntt.quotient_coefficients` on
numpy object arrays).

The ``quotient`` kernel's contract:

* **Input**: three numpy object arrays of Python ints in ``[0, r)``, the evaluations of A,
  B and C on the domain, all of the same power-of-two length (the domain size, at most
  ``2³²``).  They are not modified.
* **Output**: an object array of the same length holding the coefficients of ``h`` as
  Python ints in ``[0, r)``: element for element the reference's result (so the proof's
  ``h`` MSM sees the same scalars, whichever kernel ran).  The top coefficient is zero when
  the evaluations satisfy the constraints; the prover does not rely on it.
* **Threads**: a kernel object is built by its backend with the thread count the phase was
  granted, never runs more, and returns only when all its work is finished.
* **Errors**: bad input raises :class:`~sealagent.errors.InvalidInputError`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeAlias

from sealagent.snark.ntt import Vec, quotient_coefficients

QuotientKernel: TypeAlias = Callable[[Vec, Vec, Vec], Vec]
"""``quotient(a, b, c)``: the coefficients of ``(A·B − C)/Z`` from A, B, C's evaluations."""


@dataclass(frozen=True)
class ProverKernels:
    """The kernels a Groth16 prove runs (see the module's contract)."""

    quotient: QuotientKernel = quotient_coefficients
    """The seven transforms of the H polynomial."""
    name: str = "reference"
    """Shown in progress and errors."""


REFERENCE_PROVER_KERNELS: Final = ProverKernels()
"""numpy object-array transforms (:mod:`sealagent.snark.ntt`)."""
