"""Known answers for Fr32 padding, zero-piece commitments, CommP and commitment CIDs."""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest

from sealagent.proofs.cid import (
    cid_to_sealed_commitment,
    cid_to_unsealed_commitment,
    sealed_commitment_to_cid,
    unsealed_commitment_to_cid,
)
from sealagent.proofs.fr32 import pad, unpad
from sealagent.proofs.pieces import (
    PieceInfo,
    compute_comm_d,
    generate_data_commitment,
    generate_piece_commitment,
    zero_piece,
    zero_piece_commitment,
)
from sealagent.vocab.registry import RegisteredSealProof

Vectors = dict[str, dict[str, Any]]


def test_fr32_pad_examples(vectors: Vectors) -> None:
    vector = vectors["fr32_pad_examples"]
    inputs, expected = vector["inputs"], vector["expected"]
    assert {k.removeprefix("unpadded_hex_") for k in inputs} == {
        k.removeprefix("padded_hex_") for k in expected
    }
    for key, unpadded_hex in inputs.items():
        unpadded = bytes.fromhex(unpadded_hex)
        padded = bytes.fromhex(expected["padded_hex_" + key.removeprefix("unpadded_hex_")])
        assert pad(unpadded) == padded
        assert unpad(padded) == unpadded


def test_zero_piece_commitments(vectors: Vectors) -> None:
    table = vectors["zero_piece_commitments"]["expected"]["table"]
    assert [row["level"] for row in table] == list(range(len(table)))
    assert len(table) == 37
    for row in table:
        assert row["padded_size"] == 32 << row["level"]
        comm = zero_piece_commitment(row["padded_size"])
        assert comm.hex() == row["comm_hex"]
        assert unsealed_commitment_to_cid(comm) == row["piece_cid"]
        assert cid_to_unsealed_commitment(row["piece_cid"]) == comm


@pytest.mark.parametrize(
    ("proof", "level"),
    [(RegisteredSealProof.StackedDrg2KiBV1_1, 6), (RegisteredSealProof.StackedDrg8MiBV1_1, 18),
     (RegisteredSealProof.StackedDrg32GiBV1_1, 30), (RegisteredSealProof.StackedDrg64GiBV1, 31)],
)
def test_empty_sector_data_commitment(vectors: Vectors, proof: RegisteredSealProof,
                                      level: int) -> None:
    table = vectors["zero_piece_commitments"]["expected"]["table"]
    assert generate_data_commitment(proof, []).hex() == table[level]["comm_hex"]


def _commp_127_each() -> bytes:
    """127 bytes each of 0, 1, 2 and 3, the go-fil-commcid fixture."""
    return b"".join(bytes([value]) * 127 for value in range(4))


def test_commp_127_each_0_1_2_3(vectors: Vectors) -> None:
    vector = vectors["commp_127_each_0_1_2_3"]
    inputs, expected = vector["inputs"], vector["expected"]
    data = bytes.fromhex(inputs["unpadded_hex"])
    assert data == _commp_127_each()
    assert len(data) == inputs["unpadded_size"]
    piece = generate_piece_commitment(data, inputs["unpadded_size"])
    assert piece.size == inputs["padded_size"]
    assert piece.commitment.hex() == expected["comm_p"]
    assert piece.cid == expected["piece_cid"]
    assert PieceInfo.from_cid(expected["piece_cid"], inputs["padded_size"]) == piece


def test_commp_127_each_0_1_2_3_then_508_zeros(vectors: Vectors) -> None:
    vector = vectors["commp_127_each_0_1_2_3_then_508_zeros"]
    inputs, expected = vector["inputs"], vector["expected"]
    data = _commp_127_each() + bytes(508)
    assert len(data) == inputs["unpadded_size"]
    piece = generate_piece_commitment(io.BytesIO(data), inputs["unpadded_size"])
    assert piece.size == inputs["padded_size"]
    assert piece.commitment.hex() == expected["comm_p"]
    assert piece.cid == expected["piece_cid"]
    # The same root from the first piece plus a zero piece, via the CommD stack.
    first = generate_piece_commitment(data[:508], 508)
    assert compute_comm_d([first, zero_piece(512)]).hex() == expected["comm_p"]


def test_cid_encodings(vectors: Vectors) -> None:
    expected = vectors["cid_encodings"]["expected"]
    comm = bytes(range(32))
    unsealed_raw = _raw_cid(unsealed_commitment_to_cid(comm))
    sealed_raw = _raw_cid(sealed_commitment_to_cid(comm))
    assert unsealed_raw.hex() == expected["unsealed_prefix_bytes_hex"] + comm.hex()
    assert sealed_raw.hex() == expected["sealed_prefix_bytes_hex"] + comm.hex()

    empty_32g = expected["example_empty_32GiB_unsealed"]
    comm_d = generate_data_commitment(RegisteredSealProof.StackedDrg32GiBV1_1, [])
    assert unsealed_commitment_to_cid(comm_d) == empty_32g
    assert cid_to_unsealed_commitment(empty_32g) == comm_d

    sealed = expected["example_sealed"]
    comm_r = cid_to_sealed_commitment(sealed)
    assert _raw_cid(sealed).hex() == expected["sealed_prefix_bytes_hex"] + comm_r.hex()
    assert sealed_commitment_to_cid(comm_r) == sealed


def _raw_cid(text: str) -> bytes:
    """The binary form of a ``b``-multibase CID (independent base32 decoding)."""
    assert text[0] == "b"
    body = text[1:].upper()
    return base64.b32decode(body + "=" * (-len(body) % 8))
