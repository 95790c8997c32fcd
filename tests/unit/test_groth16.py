"""Groth16 over BLS12-381: toy circuits proved and verified, tampering rejected, the
transforms and encodings checked, parameter files written once and checked on load."""

from __future__ import annotations

import io
import random
from pathlib import Path

import numpy as np
import pytest
from py_arkworks_bls12381 import G1Point, G2Point

from sealagent.errors import CorruptDataError, InvalidInputError
from sealagent.proofs.field import R
from sealagent.snark.bits import inputize
from sealagent.snark.cs import ONE, ConstraintSystem, Shape
from sealagent.snark.groth16 import (
    PROOF_BYTES,
    Parameters,
    Proof,
    VerifyingKey,
    generate_parameters,
    prove,
    verify,
)
from sealagent.snark.ntt import coset_intt, coset_ntt, intt, ntt, omega, to_vec
from sealagent.snark.parameters import (
    CircuitFiles,
    read_parameters,
    read_verifying_key,
    write_parameter_set,
)
from sealagent.snark.points import g1_from_uncompressed, g1_to_uncompressed, g2_to_uncompressed
from sealagent.snark.poseidon import poseidon_merkle


def cubic(cs: ConstraintSystem, x: int | None) -> None:
    """``x³ + x + 5 = y`` with ``y`` public."""
    xv = cs.alloc(x)
    x2 = cs.alloc(None if x is None else x * x)
    cs.enforce({xv: 1}, {xv: 1}, {x2: 1})
    x3 = cs.alloc(None if x is None else x**3)
    cs.enforce({x2: 1}, {xv: 1}, {x3: 1})
    y = cs.alloc_input(None if x is None else x**3 + x + 5)
    cs.enforce({x3: 1, xv: 1, ONE: 5}, {ONE: 1}, {y: 1})


def _shape(build: object, *args: object) -> Shape:
    cs = ConstraintSystem(witness=False, shape=True)
    build(cs, *args)  # type: ignore[operator]
    return cs.shape()


@pytest.fixture(scope="module")
def cubic_params() -> Parameters:
    buf = io.BytesIO()
    generate_parameters(_shape(cubic, None), buf)
    return Parameters(buf.getvalue())


def _cubic_witness(x: int) -> ConstraintSystem:
    cs = ConstraintSystem(witness=True)
    cubic(cs, x)
    return cs


def test_toy_circuit_proves_and_verifies(cubic_params: Parameters) -> None:
    proof = prove(cubic_params, _cubic_witness(3))
    data = proof.to_bytes()
    assert len(data) == PROOF_BYTES == 192
    assert verify(cubic_params.vk, Proof.from_bytes(data), [35])
    assert verify(cubic_params.vk, prove(cubic_params, _cubic_witness(3)), [35])


def test_a_changed_public_input_is_rejected(cubic_params: Parameters) -> None:
    proof = prove(cubic_params, _cubic_witness(3))
    assert not verify(cubic_params.vk, proof, [36])
    assert not verify(cubic_params.vk, proof, [R - 35])


def test_a_flipped_proof_byte_is_rejected(cubic_params: Parameters) -> None:
    data = prove(cubic_params, _cubic_witness(5)).to_bytes()
    for position in (0, 47, 60, 143, 150, 191):
        for bit in (0, 3, 7):
            tampered = bytearray(data)
            tampered[position] ^= 1 << bit
            try:
                accepted = verify(cubic_params.vk, Proof.from_bytes(bytes(tampered)), [135])
            except InvalidInputError:
                accepted = False
            assert not accepted, (position, bit)


def test_a_wrong_witness_is_refused(cubic_params: Parameters) -> None:
    cs = _cubic_witness(3)
    cs.aux_values[2] += 1  # x³ off by one: the last constraint's evaluation is stale
    cs.c[1] = (cs.c[1] + 1) % R
    with pytest.raises(InvalidInputError, match="does not satisfy constraint 1"):
        prove(cubic_params, cs)
    other = ConstraintSystem(witness=True)
    other.alloc(1)
    with pytest.raises(InvalidInputError, match="private variables"):
        prove(cubic_params, other)


def test_malformed_proof_bytes_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="192 bytes"):
        Proof.from_bytes(bytes(191))
    with pytest.raises(InvalidInputError):
        Proof.from_bytes(bytes(192))


def _poseidon_circuit(cs: ConstraintSystem, values: list[int | None]) -> None:
    inputize(cs, poseidon_merkle(cs, [cs.alloc(v) for v in values]))


def test_poseidon_circuit_proves_and_verifies() -> None:
    buf = io.BytesIO()
    generate_parameters(_shape(_poseidon_circuit, [None] * 2), buf)
    params = Parameters(buf.getvalue())
    cs = ConstraintSystem(witness=True)
    _poseidon_circuit(cs, [11, 22])
    digest = cs.input_values[1]
    proof = prove(params, cs)
    assert verify(params.vk, proof, [digest])
    assert not verify(params.vk, proof, [(digest + 1) % R])


def test_ntt_round_trips_and_matches_direct_evaluation() -> None:
    rng = random.Random(7)
    size = 64
    coeffs = to_vec([rng.randrange(R) for _ in range(size)], size)
    evals = ntt(coeffs)
    x = pow(omega(size), 5, R)
    assert evals[5] == sum(int(c) * pow(x, i, R) for i, c in enumerate(coeffs)) % R
    assert np.array_equal(intt(evals), coeffs)
    coset = coset_ntt(coeffs)
    y = 7 * x % R
    assert coset[5] == sum(int(c) * pow(y, i, R) for i, c in enumerate(coeffs)) % R
    assert np.array_equal(coset_intt(coset), coeffs)


def test_points_use_the_zcash_encoding() -> None:
    assert g1_to_uncompressed(G1Point()).hex().startswith("17f1d3a73197d794")
    assert g2_to_uncompressed(G2Point()).hex().startswith("13e02b6052719f60")
    assert g1_to_uncompressed(G1Point.identity()) == b"\x40" + bytes(95)
    assert g1_from_uncompressed(b"\x40" + bytes(95)) == G1Point.identity()
    with pytest.raises(InvalidInputError):
        g1_from_uncompressed(b"\x00" * 95 + b"\x01")


def _files(tmp_path: Path) -> CircuitFiles:
    stem = tmp_path / "v28-test-circuit"
    return CircuitFiles(stem.with_suffix(".params"), stem.with_suffix(".vk"),
                        stem.with_suffix(".meta"), "ab" * 32)


def test_parameter_files_are_written_once_and_checked_on_load(tmp_path: Path) -> None:
    files = _files(tmp_path)
    assert write_parameter_set(files, lambda: _shape(cubic, None), "cubic")
    assert not write_parameter_set(files, lambda: pytest.fail("not regenerated"), "cubic")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "v28-test-circuit.lock", "v28-test-circuit.meta", "v28-test-circuit.params",
        "v28-test-circuit.vk"]
    vk = read_verifying_key(files)
    vk_bytes = files.vk.read_bytes()
    assert len(vk_bytes) == 3 * 96 + 3 * 192 + 4 + 2 * 96  # α β₁ δ₁, β₂ γ₂ δ₂, 2 IC points
    assert VerifyingKey.from_bytes(vk_bytes) == vk
    params = read_parameters(files)
    assert params.vk == vk
    assert verify(vk, prove(params, _cubic_witness(2)), [15])


@pytest.mark.parametrize("which", ["params", "vk"])
def test_a_corrupt_parameter_file_is_refused(tmp_path: Path, which: str) -> None:
    files = _files(tmp_path)
    write_parameter_set(files, lambda: _shape(cubic, None), "cubic")
    path = getattr(files, which)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptDataError, match="corrupt"):
        read_parameters(files) if which == "params" else read_verifying_key(files)


def test_missing_parameters_say_how_to_make_them(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="sealagent params generate"):
        read_verifying_key(_files(tmp_path))
