"""Groth16 over BLS12-381: parameter generation, prover and verifier (bellperson's scheme).

Parameters use bellperson's byte layout: the verifying key (``α₁ β₁ β₂ γ₂ δ₁ δ₂``, then a
u32 big-endian count and the IC points), then the ``h``, ``l``, ``a``, ``b_g1`` and ``b_g2``
vectors, each a u32 count and ZCash-uncompressed points.  Unlike bellperson, ``a`` and
``b`` keep one point per variable (identity where a variable does not occur), so a
section's index is the variable's index.

The QAP is bellperson's: the circuit's constraints followed by one constraint
``input_i · 0 = 0`` per public input (ONE included), over the smallest power-of-two domain
that holds them.  A proof is ``A ‖ B ‖ C``, ZCash-compressed: 192 bytes.
"""

from __future__ import annotations

import io
import secrets
import struct
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, BinaryIO, Final, TypeVar

import numpy as np
from py_arkworks_bls12381 import GT, G1Point, G2Point

from sealagent.errors import InvalidInputError, VerificationError
from sealagent.proofs.field import R
from sealagent.snark.cs import ConstraintSystem, Shape
from sealagent.snark.kernels import REFERENCE_PROVER_KERNELS, ProverKernels
from sealagent.snark.ntt import domain_size, omega, to_vec
from sealagent.snark.points import (
    G1_COMPRESSED,
    G1_UNCOMPRESSED,
    G2_COMPRESSED,
    G2_UNCOMPRESSED,
    g1_from_uncompressed,
    g1_to_uncompressed,
    g2_from_uncompressed,
    g2_to_uncompressed,
    msm,
    scalar,
)

PROOF_BYTES: Final = 2 * G1_COMPRESSED + G2_COMPRESSED
"""A Groth16 proof: A (G1) ‖ B (G2) ‖ C (G1), compressed (Filecoin's 192 bytes)."""

MSM_CHUNK: Final = 1 << 16
"""Bases decoded and multiplied per step, which bounds the prover's memory."""

Progress = Callable[[str, int, int], None]
P = TypeVar("P", G1Point, G2Point)


def _no_progress(stage: str, done: int, total: int) -> None:
    """Default progress sink."""


@dataclass(frozen=True)
class VerifyingKey:
    """The verifying key: ``α₁, β₁, β₂, γ₂, δ₁, δ₂`` and one IC point per public input."""

    alpha_g1: G1Point
    beta_g1: G1Point
    beta_g2: G2Point
    gamma_g2: G2Point
    delta_g1: G1Point
    delta_g2: G2Point
    ic: tuple[G1Point, ...]

    def to_bytes(self) -> bytes:
        """bellperson's ``VerifyingKey::write`` layout."""
        out = [
            g1_to_uncompressed(self.alpha_g1), g1_to_uncompressed(self.beta_g1),
            g2_to_uncompressed(self.beta_g2), g2_to_uncompressed(self.gamma_g2),
            g1_to_uncompressed(self.delta_g1), g2_to_uncompressed(self.delta_g2),
            struct.pack(">I", len(self.ic)),
        ]
        out += [g1_to_uncompressed(p) for p in self.ic]
        return b"".join(out)

    @classmethod
    def read(cls, stream: BinaryIO) -> VerifyingKey:
        """Parse (and validate every point of) a verifying key."""

        def g1() -> G1Point:
            return g1_from_uncompressed(_read_exact(stream, G1_UNCOMPRESSED))

        def g2() -> G2Point:
            return g2_from_uncompressed(_read_exact(stream, G2_UNCOMPRESSED))

        alpha, beta1, beta2, gamma2, delta1, delta2 = g1(), g1(), g2(), g2(), g1(), g2()
        (count,) = struct.unpack(">I", _read_exact(stream, 4))
        if count == 0 or count > 1 << 20:
            raise InvalidInputError(f"implausible IC count {count} in a verifying key")
        return cls(alpha, beta1, beta2, gamma2, delta1, delta2, tuple(g1() for _ in range(count)))

    @classmethod
    def from_bytes(cls, data: bytes) -> VerifyingKey:
        """Parse a verifying key that must span exactly ``data``."""
        stream = io.BytesIO(data)
        vk = cls.read(stream)
        if stream.read(1):
            raise InvalidInputError("trailing bytes after the verifying key")
        return vk


def _read_exact(stream: BinaryIO, size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise InvalidInputError("truncated Groth16 parameters")
    return data


_SECTIONS: Final = (("h", G1_UNCOMPRESSED), ("l", G1_UNCOMPRESSED), ("a", G1_UNCOMPRESSED),
                    ("b_g1", G1_UNCOMPRESSED), ("b_g2", G2_UNCOMPRESSED))


class Parameters:
    """Proving parameters over a byte buffer (bytes or an mmap), decoded lazily."""

    def __init__(self, buffer: bytes | memoryview) -> None:
        """Parse the layout: the verifying key in full, the vectors' offsets only."""
        self.buffer = memoryview(buffer)
        fixed = 3 * G1_UNCOMPRESSED + 3 * G2_UNCOMPRESSED
        if len(self.buffer) < fixed + 4:
            raise InvalidInputError("truncated Groth16 parameters")
        (ic_count,) = struct.unpack(">I", self.buffer[fixed : fixed + 4])
        offset = fixed + 4 + ic_count * G1_UNCOMPRESSED
        self.vk = VerifyingKey.from_bytes(bytes(self.buffer[:offset]))
        self.sections: dict[str, tuple[int, int, int]] = {}
        for name, size in _SECTIONS:
            if offset + 4 > len(self.buffer):
                raise InvalidInputError("truncated Groth16 parameters")
            (count,) = struct.unpack(">I", self.buffer[offset : offset + 4])
            offset += 4
            self.sections[name] = (offset, count, size)
            offset += count * size
        if offset != len(self.buffer):
            raise InvalidInputError(
                f"Groth16 parameters are {len(self.buffer)} bytes, their layout says {offset}"
            )

    def count(self, name: str) -> int:
        """Number of points in a section."""
        return self.sections[name][1]

    def msm_g1(self, name: str, scalars: Sequence[int],
               progress: Progress = _no_progress) -> G1Point:
        """``Σ scalars[i]·section[i]`` over a G1 section."""
        return self._msm(name, scalars, g1_from_uncompressed, G1Point.identity(), progress)

    def msm_g2(self, name: str, scalars: Sequence[int],
               progress: Progress = _no_progress) -> G2Point:
        """``Σ scalars[i]·section[i]`` over the G2 section."""
        return self._msm(name, scalars, g2_from_uncompressed, G2Point.identity(), progress)

    def _msm(self, name: str, scalars: Sequence[int], decode: Callable[..., P], identity: P,
             progress: Progress) -> P:
        """Decode only the bases with a nonzero scalar, a chunk at a time."""
        offset, count, size = self.sections[name]
        if len(scalars) > count:
            raise InvalidInputError(f"{len(scalars)} scalars for {count} {name} bases")
        total = identity
        buf = self.buffer
        for start in range(0, len(scalars), MSM_CHUNK):
            chunk = scalars[start : start + MSM_CHUNK]
            idx = [i for i, s in enumerate(chunk) if s]
            base = offset + start * size
            pts = [
                decode(bytes(buf[base + i * size : base + (i + 1) * size]), checked=False)
                for i in idx
            ]
            total = total + msm(pts, [chunk[i] for i in idx], identity)
            progress(f"msm {name}", min(start + MSM_CHUNK, len(scalars)), len(scalars))
        return total


def _batch_inverse(values: list[int]) -> list[int]:
    prefix = [1] * (len(values) + 1)
    for i, v in enumerate(values):
        prefix[i + 1] = prefix[i] * v % R
    inv = pow(prefix[-1], R - 2, R)
    out = [0] * len(values)
    for i in range(len(values) - 1, -1, -1):
        out[i] = prefix[i] * inv % R
        inv = inv * values[i] % R
    return out


def _qap_column_sums(shape: Shape, which: int, lagrange: np.ndarray, n_vars: int) -> np.ndarray:
    """``Σ_rows M[row][var] · L_row(τ)`` for every variable of matrix ``which``."""
    coeffs = np.array(shape.coeffs, dtype=object)
    out = np.zeros(n_vars, dtype=object)
    rows, cols, ids = shape.rows[which], shape.cols[which], shape.coeff_ids[which]
    order = np.argsort(cols, kind="stable")
    step = 1 << 20
    for start in range(0, len(order), step):
        sel = order[start : start + step]
        vals = coeffs[ids[sel]] * lagrange[rows[sel]] % R
        c = cols[sel]
        uniq, first = np.unique(c, return_index=True)
        out[uniq] += np.add.reduceat(vals, first)
    if which == 0:  # bellperson's input constraints: input_i · 0 = 0 after the circuit's rows
        n = shape.num_constraints
        out[: shape.num_inputs] += lagrange[n : n + shape.num_inputs]
    return out % R


def _lagrange_at(tau: int, size: int) -> np.ndarray:
    """``L_j(τ) = ω^j (τ^m − 1) / (m (τ − ω^j))`` for the whole domain."""
    w = omega(size)
    roots = [1] * size
    for j in range(1, size):
        roots[j] = roots[j - 1] * w % R
    inv = _batch_inverse([(tau - x) % R for x in roots])
    factor = (pow(tau, size, R) - 1) * pow(size, R - 2, R) % R
    return np.array([factor * x % R * i % R for x, i in zip(roots, inv, strict=True)], dtype=object)


_WINDOW_TABLES: dict[bool, list[list[Any]]] = {}


def _window_table(g2: bool) -> list[list[Any]]:
    """``T[w][d] = d·256^w·G`` for the 32 byte positions of a scalar (built once per process)."""
    table = _WINDOW_TABLES.get(g2)
    if table is None:
        base: Any = G2Point() if g2 else G1Point()
        ident = type(base).identity()
        table = []
        for _ in range(32):
            row = [ident, base]
            for _ in range(2, 256):
                row.append(row[-1] + base)
            table.append(row)
            base = row[255] + base
        _WINDOW_TABLES[g2] = table
    return table


def fixed_base_encoded(job: tuple[bool, list[int]]) -> bytes:
    """``v·G`` for each value, ZCash-uncompressed, by byte windows (G1, or G2 when flagged)."""
    g2, values = job
    table = _window_table(g2)
    encode: Callable[[Any], bytes] = g2_to_uncompressed if g2 else g1_to_uncompressed
    out = []
    for v in values:
        acc = table[0][0]
        for w, d in enumerate(v.to_bytes(32, "little")):
            if d:
                acc = acc + table[w][d]
        out.append(encode(acc))
    return b"".join(out)


_FIXED_BASE_CHUNK: Final = 4096


def _fixed_base(
    stream: BinaryIO, values: Sequence[int], g2: bool, progress: Progress, stage: str,
    pool: Executor | None,
) -> None:
    stream.write(struct.pack(">I", len(values)))
    jobs = ((g2, [int(v) for v in values[i : i + _FIXED_BASE_CHUNK]])
            for i in range(0, len(values), _FIXED_BASE_CHUNK))
    results = pool.map(fixed_base_encoded, jobs) if pool else map(fixed_base_encoded, jobs)
    done = 0
    for data in results:
        stream.write(data)
        done = min(done + _FIXED_BASE_CHUNK, len(values))
        progress(stage, done, len(values))


def generate_parameters(
    shape: Shape, stream: BinaryIO, progress: Progress = _no_progress,
    randomness: Callable[[], int] | None = None, pool: Executor | None = None,
) -> VerifyingKey:
    """Write fresh parameters for ``shape`` to ``stream`` and return the verifying key.

    The toxic waste (τ, α, β, γ, δ) comes from ``secrets`` and is dropped on return.  The
    fixed-base multiplications (one per parameter point) run on ``pool`` when given.
    """
    rand = randomness or (lambda: 1 + secrets.randbelow(R - 1))
    tau, alpha, beta, gamma, delta = (rand() for _ in range(5))
    n_in, n_aux = shape.num_inputs, shape.num_aux
    n_vars = n_in + n_aux
    size = domain_size(shape.num_constraints + n_in)
    progress("lagrange", 0, 1)
    lag = _lagrange_at(tau, size)
    u, v, w = (_qap_column_sums(shape, k, lag, n_vars) for k in range(3))
    progress("lagrange", 1, 1)
    g1 = G1Point()
    gamma_inv = pow(gamma, R - 2, R)
    delta_inv = pow(delta, R - 2, R)
    mix = (beta * u + alpha * v + w) % R
    ic = [g1 * scalar(int(x) * gamma_inv % R) for x in mix[:n_in]]
    vk = VerifyingKey(
        alpha_g1=g1 * scalar(alpha), beta_g1=g1 * scalar(beta), beta_g2=G2Point() * scalar(beta),
        gamma_g2=G2Point() * scalar(gamma), delta_g1=g1 * scalar(delta),
        delta_g2=G2Point() * scalar(delta), ic=tuple(ic),
    )
    stream.write(vk.to_bytes())
    z_delta = (pow(tau, size, R) - 1) * delta_inv % R
    h = [0] * (size - 1)
    x = z_delta
    for i in range(size - 1):
        h[i] = x
        x = x * tau % R
    _fixed_base(stream, h, False, progress, "h", pool)
    _fixed_base(stream, list(mix[n_in:] * delta_inv % R), False, progress, "l", pool)
    _fixed_base(stream, list(u), False, progress, "a", pool)
    _fixed_base(stream, list(v), False, progress, "b_g1", pool)
    _fixed_base(stream, list(v), True, progress, "b_g2", pool)
    return vk


@dataclass(frozen=True)
class Proof:
    """A Groth16 proof."""

    a: G1Point
    b: G2Point
    c: G1Point

    def to_bytes(self) -> bytes:
        """``A ‖ B ‖ C`` compressed: 192 bytes."""
        return b"".join(p.to_compressed_bytes() for p in (self.a, self.b, self.c))

    @classmethod
    def from_bytes(cls, data: bytes) -> Proof:
        """Parse a 192-byte proof; points off the curve or outside the subgroup are refused."""
        if len(data) != PROOF_BYTES:
            raise InvalidInputError(f"a Groth16 proof is {PROOF_BYTES} bytes, got {len(data)}")
        try:
            return cls(
                G1Point.from_compressed_bytes(data[:G1_COMPRESSED]),
                G2Point.from_compressed_bytes(data[G1_COMPRESSED : G1_COMPRESSED + G2_COMPRESSED]),
                G1Point.from_compressed_bytes(data[G1_COMPRESSED + G2_COMPRESSED :]),
            )
        except ValueError as exc:
            raise InvalidInputError(f"malformed Groth16 proof: {exc}") from None


def prove(
    params: Parameters, cs: ConstraintSystem, progress: Progress = _no_progress,
    kernels: ProverKernels = REFERENCE_PROVER_KERNELS,
) -> Proof:
    """Prove a satisfied witness-mode constraint system with the parameters of its circuit.

    ``kernels`` computes the H polynomial (:mod:`sealagent.snark.kernels`); everything else
    is this function's.
    """
    n_in, n_aux = cs.num_inputs, cs.num_aux
    if (len(params.vk.ic), params.count("l")) != (n_in, n_aux):
        raise InvalidInputError(
            f"the parameters are for {len(params.vk.ic)} inputs and {params.count('l')} "
            f"private variables, the circuit has {n_in} and {n_aux}"
        )
    bad = cs.first_unsatisfied()
    if bad is not None:
        raise InvalidInputError(f"the witness does not satisfy constraint {bad}")
    size = params.count("h") + 1
    n = cs.num_constraints
    if domain_size(n + n_in) != size:
        raise InvalidInputError(f"the parameters' domain ({size}) does not fit this circuit")
    progress("fft", 0, 1)
    a = to_vec(cs.a + cs.input_values, size)
    h = kernels.quotient(a, to_vec(cs.b, size), to_vec(cs.c, size))
    progress("fft", 1, 1)
    z = cs.input_values + cs.aux_values
    r, s = secrets.randbelow(R), secrets.randbelow(R)
    vk = params.vk
    msm_a = params.msm_g1("a", z, progress)
    msm_b1 = params.msm_g1("b_g1", z, progress)
    msm_b2 = params.msm_g2("b_g2", z, progress)
    msm_h = params.msm_g1("h", [int(x) for x in h[: size - 1]], progress)
    msm_l = params.msm_g1("l", cs.aux_values, progress)
    proof_a = vk.alpha_g1 + msm_a + vk.delta_g1 * scalar(r)
    proof_b = vk.beta_g2 + msm_b2 + vk.delta_g2 * scalar(s)
    b1 = vk.beta_g1 + msm_b1 + vk.delta_g1 * scalar(s)
    proof_c = (msm_h + msm_l + proof_a * scalar(s) + b1 * scalar(r)
               - vk.delta_g1 * scalar(r * s % R))
    return Proof(proof_a, proof_b, proof_c)


def verify(vk: VerifyingKey, proof: Proof, public_inputs: Sequence[int]) -> bool:
    """One pairing check: ``e(A,B) = e(α,β)·e(IC(x),γ)·e(C,δ)``; inputs exclude ONE."""
    if len(public_inputs) + 1 != len(vk.ic):
        raise VerificationError(
            f"the verifying key takes {len(vk.ic) - 1} public inputs, got {len(public_inputs)}"
        )
    points = [vk.ic[0]]
    values = [1]
    for point, x in zip(vk.ic[1:], public_inputs, strict=True):
        if not 0 <= x < R:
            raise VerificationError("public inputs must be field elements")
        points.append(point)
        values.append(x)
    ic = msm(points, values, G1Point.identity())
    return GT.pairing_check(
        [proof.a, -vk.alpha_g1, -ic, -proof.c], [proof.b, vk.beta_g2, vk.gamma_g2, vk.delta_g2]
    )
