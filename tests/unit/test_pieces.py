"""SHA-256 trees, piece commitments, CommD, sector layout, add_piece and CIDs."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sealagent.errors import InvalidInputError, PieceSizeError
from sealagent.proofs.cid import (
    cid_to_sealed_commitment,
    cid_to_unsealed_commitment,
    sealed_commitment_to_cid,
    unsealed_commitment_to_cid,
)
from sealagent.proofs.field import sha256_trunc254
from sealagent.proofs.fr32 import pad, unpad_range
from sealagent.proofs.pieces import (
    PieceInfo,
    add_piece,
    compute_comm_d,
    fill_pieces,
    generate_data_commitment,
    generate_piece_commitment,
    padded_piece_offsets,
    piece_alignment,
    zero_piece,
    zero_piece_commitment,
)
from sealagent.proofs.sha_tree import (
    Sha256TreeBuilder,
    sha256_hash_level,
    sha256_root_of_chunks,
    sha256_root_of_stream,
    sha256_tree_levels,
    sha256_tree_root,
)
from sealagent.vocab.registry import RegisteredSealProof

PROOF_2K = RegisteredSealProof.StackedDrg2KiBV1_1
SECTOR_2K = 2048


def naive_root(data: bytes) -> bytes:
    """Reference root: hash pairs with hashlib node by node, trimming each digest."""
    row = [data[i : i + 32] for i in range(0, len(data), 32)]
    while len(row) > 1:
        row = [
            (d := hashlib.sha256(row[i] + row[i + 1]).digest())[:31] + bytes([d[31] & 0x3F])
            for i in range(0, len(row), 2)
        ]
    return row[0]


def random_bytes(size: int, seed: int = 1) -> bytes:
    """Deterministic pseudo-random bytes."""
    return np.random.default_rng(seed).integers(0, 256, size, np.uint8).tobytes()


def sector_image(pieces: list[tuple[int, bytes]], size: int = SECTOR_2K) -> bytes:
    """A padded sector with each unpadded piece written at its padded offset."""
    image = bytearray(size)
    for offset, data in pieces:
        padded = pad(data)
        image[offset : offset + len(padded)] = padded
    return bytes(image)


# --- SHA-256 trees ---------------------------------------------------------------------


def test_hash_level_matches_hashlib() -> None:
    leaves = np.frombuffer(random_bytes(32 * 8), np.uint8).reshape(8, 32)
    parents = sha256_hash_level(leaves)
    assert parents.shape == (4, 32)
    first = bytearray(hashlib.sha256(leaves[:2].tobytes()).digest())
    first[31] &= 0x3F
    assert parents[0].tobytes() == bytes(first)


def test_tree_levels_and_root() -> None:
    data = random_bytes(32 * 64)
    leaves = np.frombuffer(data, np.uint8).reshape(64, 32)
    levels = sha256_tree_levels(leaves)
    assert [lv.shape[0] for lv in levels] == [64, 32, 16, 8, 4, 2, 1]
    assert levels[-1].tobytes() == naive_root(data)
    assert sha256_tree_root(leaves) == naive_root(data)
    assert sha256_tree_root(data) == naive_root(data)


def test_single_leaf_tree_is_the_leaf() -> None:
    leaf = random_bytes(32)
    assert sha256_tree_root(leaf) == leaf


@settings(max_examples=40)
@given(st.lists(st.integers(0, 40), max_size=12))
def test_builder_accepts_any_chunking(cuts: list[int]) -> None:
    data = random_bytes(32 * 128, seed=5)
    builder = Sha256TreeBuilder(128)
    position = 0
    for cut in cuts:
        end = min(position + cut, 128)
        builder.update(data[position * 32 : end * 32])
        position = end
    builder.update(data[position * 32 :])
    assert builder.root() == naive_root(data)


def test_root_of_stream_and_chunks() -> None:
    data = random_bytes(32 * 256, seed=9)
    assert sha256_root_of_stream(io.BytesIO(data).read, 256, chunk_leaves=7) == naive_root(data)
    chunks = [data[i : i + 96] for i in range(0, len(data), 96)]
    assert sha256_root_of_chunks(chunks, 256) == naive_root(data)


def test_tree_errors() -> None:
    with pytest.raises(InvalidInputError):
        sha256_hash_level(np.zeros((3, 32), np.uint8))
    with pytest.raises(InvalidInputError):
        sha256_hash_level(np.zeros((4, 31), np.uint8))
    with pytest.raises(InvalidInputError):
        sha256_tree_levels(np.zeros((6, 32), np.uint8))
    with pytest.raises(InvalidInputError):
        sha256_tree_root(np.zeros((4, 32), np.int32))
    with pytest.raises(InvalidInputError):
        sha256_tree_root(bytes(33))
    with pytest.raises(InvalidInputError):
        Sha256TreeBuilder(12)
    builder = Sha256TreeBuilder(4)
    builder.update(bytes(64))
    with pytest.raises(InvalidInputError, match="fed 2 of 4"):
        builder.root()
    with pytest.raises(InvalidInputError):
        builder.update(bytes(96))
    with pytest.raises(InvalidInputError, match="ended"):
        sha256_root_of_stream(io.BytesIO(bytes(64)).read, 4)


# --- zero pieces and piece commitments -------------------------------------------------


@pytest.mark.parametrize("size", [32, 64, 128, 1024, 2048])
def test_zero_piece_commitment_is_root_of_zeros(size: int) -> None:
    assert zero_piece_commitment(size) == naive_root(bytes(size))


@pytest.mark.parametrize("size", [0, 16, 96, 1000, -128])
def test_zero_piece_commitment_rejects_bad_sizes(size: int) -> None:
    with pytest.raises(PieceSizeError):
        zero_piece_commitment(size)


def test_zero_piece_commitment_of_huge_size_is_cheap() -> None:
    z30 = zero_piece_commitment(32 << 30)
    assert zero_piece_commitment(32 << 31) == sha256_trunc254(z30 + z30)


@pytest.mark.parametrize("size", [127, 254, 1016, 2032])
def test_generate_piece_commitment_is_root_of_padded_data(size: int) -> None:
    data = random_bytes(size, seed=size)
    piece = generate_piece_commitment(data, size)
    assert piece.size == size // 127 * 128
    assert piece.unpadded_size == size
    assert piece.commitment == naive_root(pad(data))
    assert generate_piece_commitment(io.BytesIO(data + b"tail"), size) == piece


@pytest.mark.parametrize("size", [0, 126, 128, 381, 508 + 127, True])
def test_generate_piece_commitment_rejects_bad_sizes(size: int) -> None:
    with pytest.raises(PieceSizeError):
        generate_piece_commitment(bytes(508), size)


def test_generate_piece_commitment_rejects_short_input() -> None:
    with pytest.raises(InvalidInputError, match="ended"):
        generate_piece_commitment(io.BytesIO(bytes(300)), 508)
    with pytest.raises(InvalidInputError, match="bytes"):
        generate_piece_commitment(bytes(300), 508)


# --- PieceInfo -------------------------------------------------------------------------


def test_piece_info_json_and_cid_round_trip() -> None:
    piece = generate_piece_commitment(random_bytes(254), 254)
    as_json = piece.to_json()
    assert as_json == {"cid": piece.cid, "size": 256}
    assert piece.cid.startswith("baga6ea4seaq")
    assert PieceInfo.from_json(as_json) == piece
    assert PieceInfo.from_cid(piece.cid, 256) == piece


@pytest.mark.parametrize(
    ("commitment", "size", "error"),
    [(bytes(31), 128, InvalidInputError), (bytes(32), 127, PieceSizeError),
     (bytes(32), 64, PieceSizeError), (bytes(32), 384, PieceSizeError)],
)
def test_piece_info_validates(commitment: bytes, size: int, error: type[Exception]) -> None:
    with pytest.raises(error):
        PieceInfo(commitment, size)


@pytest.mark.parametrize(
    "obj", [{"cid": "x", "size": 128}, {"size": 128}, {"cid": zero_piece(128).cid, "size": "1"},
            ["cid", 128]]
)
def test_piece_info_from_json_rejects_bad_input(obj: object) -> None:
    with pytest.raises(InvalidInputError):
        PieceInfo.from_json(obj)  # type: ignore[arg-type]


# --- layout ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "piece", "expected"),
    [(0, 127, (0, 0)), (127, 127, (0, 0)), (127, 254, (127, 0)), (127, 508, (381, 0)),
     (508, 254, (0, 0)), (0, 100, (0, 27)), (200, 200, (54, 54))],
)
def test_piece_alignment(written: int, piece: int, expected: tuple[int, int]) -> None:
    assert piece_alignment(written, piece) == expected


def test_piece_alignment_rejects_bad_input() -> None:
    with pytest.raises(InvalidInputError):
        piece_alignment(-1, 127)
    with pytest.raises(InvalidInputError):
        piece_alignment(0, 0)


def test_padded_piece_offsets() -> None:
    assert padded_piece_offsets([127, 508, 127, 254]) == [0, 512, 1024, 1280]
    assert padded_piece_offsets([]) == []
    with pytest.raises(PieceSizeError):
        padded_piece_offsets([127, 200])


# --- CommD -----------------------------------------------------------------------------


def test_compute_comm_d_matches_laid_out_tree() -> None:
    a, b, c = random_bytes(127, 1), random_bytes(508, 2), random_bytes(254, 3)
    pieces = [generate_piece_commitment(d, len(d)) for d in (a, b, c)]
    offsets = padded_piece_offsets([127, 508, 254])
    image = sector_image(list(zip(offsets, (a, b, c), strict=True)))
    # The pieces end at 1280, so the stack result covers 2048 bytes: the whole 2 KiB image.
    assert compute_comm_d(pieces) == naive_root(image)
    assert compute_comm_d(pieces[:1]) == pieces[0].commitment
    assert compute_comm_d(pieces[:2]) == naive_root(image[:1024])


def test_generate_data_commitment_fills_the_sector() -> None:
    data = random_bytes(254, 4)
    piece = generate_piece_commitment(data, 254)
    image = sector_image([(0, data)])
    assert generate_data_commitment(PROOF_2K, [piece]) == naive_root(image)
    assert generate_data_commitment("StackedDrg2KiBV1_1", []) == zero_piece_commitment(2048)
    assert compute_comm_d([piece]) == piece.commitment


def test_generate_data_commitment_rejects_overflow() -> None:
    pieces = [zero_piece(128), zero_piece(1024), zero_piece(512)]  # 512 lands at 2048
    with pytest.raises(PieceSizeError):
        generate_data_commitment(PROOF_2K, pieces)
    with pytest.raises(PieceSizeError):
        generate_data_commitment(PROOF_2K, [zero_piece(4096)])
    with pytest.raises(InvalidInputError):
        compute_comm_d([])


def test_fill_pieces_follows_lotus_fillers() -> None:
    first = zero_piece(128)
    filled = fill_pieces(PROOF_2K, [first])
    assert [p.size for p in filled] == [128, 128, 256, 512, 1024]
    assert filled[0] is first
    assert [p.size for p in fill_pieces(PROOF_2K, [])] == [2048]
    assert [p.size for p in fill_pieces(PROOF_2K, [zero_piece(256), zero_piece(256)])] == [
        256, 256, 512, 1024
    ]
    # A gap before an aligned piece is left to compute_comm_d, not filled.
    assert [p.size for p in fill_pieces(PROOF_2K, [zero_piece(256), zero_piece(1024)])] == [
        256, 1024
    ]
    assert fill_pieces(PROOF_2K, [zero_piece(2048)]) == [zero_piece(2048)]


def test_fill_pieces_give_the_data_commitment() -> None:
    pieces = [generate_piece_commitment(random_bytes(127, 8), 127),
              generate_piece_commitment(random_bytes(508, 9), 508)]
    assert compute_comm_d(fill_pieces(PROOF_2K, pieces)) == generate_data_commitment(
        PROOF_2K, pieces
    )


# --- add_piece -------------------------------------------------------------------------


def test_add_piece_writes_pieces_at_their_offsets(tmp_path: Path) -> None:
    path = tmp_path / "unsealed"
    a, b = random_bytes(127, 11), random_bytes(508, 12)
    first = add_piece(PROOF_2K, a, path, 127)
    second = add_piece(PROOF_2K, io.BytesIO(b), path, 508, [127])
    assert (first.offset, first.written) == (0, 127)
    assert (second.offset, second.written) == (512, 381 + 508)
    assert first.piece == generate_piece_commitment(a, 127)
    assert second.piece == generate_piece_commitment(b, 508)
    image = path.read_bytes()
    assert len(image) == SECTOR_2K
    assert unpad_range(image, 0, 127) == a
    assert unpad_range(image, 508, 508) == b
    comm_d = generate_data_commitment(PROOF_2K, [first.piece, second.piece])
    assert comm_d == sha256_tree_root(image)


def test_add_piece_keeps_existing_data_and_length(tmp_path: Path) -> None:
    path = tmp_path / "unsealed"
    tail = b"trailer bytes"
    a = random_bytes(254, 13)
    add_piece(PROOF_2K, a, path, 254)
    with path.open("ab") as file:
        file.write(tail)
    add_piece(PROOF_2K, random_bytes(127, 14), path, 127, [254])
    image = path.read_bytes()
    assert image.endswith(tail) and len(image) == SECTOR_2K + len(tail)
    assert unpad_range(image, 0, 254) == a


def test_add_piece_zeroes_the_alignment_gap(tmp_path: Path) -> None:
    path = tmp_path / "unsealed"
    path.write_bytes(b"\x5a" * SECTOR_2K)
    a, b = random_bytes(127, 15), random_bytes(254, 16)
    first = add_piece(PROOF_2K, a, path, 127)
    second = add_piece(PROOF_2K, b, path, 254, [127])
    image = path.read_bytes()
    assert image[128:256] == bytes(128)
    assert compute_comm_d([first.piece, second.piece]) == sha256_tree_root(image[:512])


def test_add_piece_rejects_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "unsealed"
    with pytest.raises(PieceSizeError):
        add_piece(PROOF_2K, bytes(200), path, 200)
    with pytest.raises(PieceSizeError, match="overflows"):
        add_piece(PROOF_2K, bytes(1016), path, 1016, [1016, 127])
    with pytest.raises(PieceSizeError):
        add_piece(PROOF_2K, bytes(127), path, 127, [300])
    with pytest.raises(InvalidInputError, match="bytes"):
        add_piece(PROOF_2K, bytes(126), path, 127)
    assert not path.exists()
    with pytest.raises(InvalidInputError, match="ended"):
        add_piece(PROOF_2K, io.BytesIO(bytes(100)), path, 127)


# --- CIDs ------------------------------------------------------------------------------


def test_cid_round_trips() -> None:
    comm = random_bytes(32, 21)
    unsealed = unsealed_commitment_to_cid(comm)
    sealed = sealed_commitment_to_cid(comm)
    assert unsealed.startswith("baga6ea4seaq")
    assert sealed.startswith("bagboea4b5abc")
    assert cid_to_unsealed_commitment(unsealed) == comm
    assert cid_to_sealed_commitment(sealed) == comm


@pytest.mark.parametrize(
    ("text", "match"),
    [("zabc", "must start with 'b'"), ("bAGA6EA4", "lower-case"), ("bag!", "lower-case"),
     ("b", "lower-case"), ("baga6ea4seaqa", "not valid|canonical|truncated|digest")],
)
def test_cid_decode_errors(text: str, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        cid_to_unsealed_commitment(text)


def test_cid_decode_rejects_wrong_kind_and_length() -> None:
    comm = random_bytes(32, 22)
    with pytest.raises(InvalidInputError, match="codec"):
        cid_to_unsealed_commitment(sealed_commitment_to_cid(comm))
    with pytest.raises(InvalidInputError, match="codec"):
        cid_to_sealed_commitment(unsealed_commitment_to_cid(comm))
    text = unsealed_commitment_to_cid(comm)
    with pytest.raises(InvalidInputError):
        cid_to_unsealed_commitment(text[:-2])
    with pytest.raises(InvalidInputError):
        cid_to_unsealed_commitment(text + "aa")
    with pytest.raises(InvalidInputError):
        cid_to_unsealed_commitment(123)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        unsealed_commitment_to_cid(bytes(31))
