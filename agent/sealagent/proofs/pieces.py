"""Pieces: CommP, their layout in a sector, CommD, and staging (docs/porep.md §3).

A piece is ``127·2^k`` user bytes; Fr32 padding makes it ``128·2^k`` bytes whose
SHA256-trunc254 tree root is its commitment (CommP).  Pieces are laid out in order,
each at an offset that is a multiple of its own size, and the rest of the sector is
zero; CommD is the root over the whole padded sector, computed from the piece
commitments with rust-fil-proofs' stack algorithm.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Final

from sealagent.errors import InvalidInputError, PieceSizeError
from sealagent.proofs.cid import cid_to_unsealed_commitment, unsealed_commitment_to_cid
from sealagent.proofs.field import sha256_trunc254
from sealagent.proofs.fr32 import (
    UNPADDED_BLOCK,
    BytesLike,
    iter_padded,
    to_padded_size,
    to_unpadded_size,
)
from sealagent.proofs.sha_tree import NODE_BYTES, PairHasher, Sha256TreeBuilder, hash_pairs
from sealagent.vocab.registry import RegisteredSealProof, resolve_proof

MIN_PIECE_PADDED: Final = 128
"""The smallest piece: one Fr32 block."""

_ZERO_CHUNK: Final = 1 << 20


def _is_power_of_two(value: int) -> bool:
    """True for 1, 2, 4, …"""
    return value > 0 and value & (value - 1) == 0


def _require_int(value: object, what: str, error: type[InvalidInputError]) -> None:
    """Raise ``error`` unless ``value`` is a plain integer."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise error(f"{what} must be an integer, got {value!r}")


def _check_source_length(source: BinaryIO | BytesLike, unpadded_size: int) -> None:
    """An in-memory source must hold exactly the piece."""
    if isinstance(source, BytesLike) and len(source) != unpadded_size:
        raise InvalidInputError(f"data is {len(source)} bytes, the piece is {unpadded_size}")


def check_padded_piece_size(padded_size: int) -> None:
    """Raise :class:`PieceSizeError` unless ``padded_size`` is a power of two ≥ 128."""
    _require_int(padded_size, "a piece size", PieceSizeError)
    if padded_size < MIN_PIECE_PADDED or not _is_power_of_two(padded_size):
        raise PieceSizeError(f"padded piece size {padded_size} is not a power of two ≥ 128")


def check_unpadded_piece_size(unpadded_size: int) -> None:
    """Raise :class:`PieceSizeError` unless ``unpadded_size`` is ``127·2^k`` (≥ 127)."""
    _require_int(unpadded_size, "a piece size", PieceSizeError)
    blocks, rest = divmod(unpadded_size, UNPADDED_BLOCK)
    if rest or not _is_power_of_two(blocks):
        raise PieceSizeError(f"unpadded piece size {unpadded_size} is not 127·2^k (≥ 127)")


@dataclass(frozen=True)
class PieceInfo:
    """A piece commitment and its padded size in bytes."""

    commitment: bytes
    size: int

    def __post_init__(self) -> None:
        """Validate the commitment length and the padded size."""
        if not isinstance(self.commitment, bytes) or len(self.commitment) != NODE_BYTES:
            raise InvalidInputError(
                f"a piece commitment is {NODE_BYTES} bytes, got {self.commitment!r}"
            )
        check_padded_piece_size(self.size)

    @property
    def cid(self) -> str:
        """The piece CID (``baga6ea4seaq…``)."""
        return unsealed_commitment_to_cid(self.commitment)

    @property
    def unpadded_size(self) -> int:
        """User bytes in the piece (``127·2^k``)."""
        return to_unpadded_size(self.size)

    @classmethod
    def from_cid(cls, cid: str, padded_size: int) -> PieceInfo:
        """A piece from its CID and padded size."""
        return cls(cid_to_unsealed_commitment(cid), padded_size)

    def to_json(self) -> dict[str, Any]:
        """``{"cid": ..., "size": padded_size}``, the form Lotus' APIs use."""
        return {"cid": self.cid, "size": self.size}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> PieceInfo:
        """Inverse of :meth:`to_json`."""
        if not isinstance(obj, Mapping) or set(obj) != {"cid", "size"}:
            raise InvalidInputError(f"a piece is {{'cid': str, 'size': int}}, got {obj!r}")
        return cls.from_cid(obj["cid"], obj["size"])


@dataclass(frozen=True)
class AddPieceOutput:
    """What :func:`add_piece` wrote."""

    piece: PieceInfo
    offset: int
    """Padded byte offset of the piece in the sector."""
    written: int
    """Unpadded bytes added to the sector, left alignment included."""


@functools.cache
def _zero_commitment_at(level: int) -> bytes:
    """``z[level]``: the root of ``2^level`` zero nodes."""
    if level == 0:
        return bytes(NODE_BYTES)
    below = _zero_commitment_at(level - 1)
    return sha256_trunc254(below + below)


def zero_piece_commitment(padded_size: int) -> bytes:
    """Commitment of an all-zero piece of ``padded_size`` bytes (a power of two ≥ 32)."""
    _require_int(padded_size, "a piece size", PieceSizeError)
    if padded_size < NODE_BYTES or not _is_power_of_two(padded_size):
        raise PieceSizeError(f"zero piece size {padded_size} is not a power of two ≥ 32")
    level = (padded_size // NODE_BYTES).bit_length() - 1
    for lower in range(level):  # fill the cache bottom-up, never deeply recursive
        _zero_commitment_at(lower)
    return _zero_commitment_at(level)


def zero_piece(padded_size: int) -> PieceInfo:
    """An all-zero piece of ``padded_size`` bytes."""
    return PieceInfo(zero_piece_commitment(padded_size), padded_size)


def _piece_tree(unpadded_size: int, pair_hasher: PairHasher = hash_pairs) -> Sha256TreeBuilder:
    """A tree builder for the padded nodes of an ``unpadded_size``-byte piece."""
    return Sha256TreeBuilder(to_padded_size(unpadded_size) // NODE_BYTES, pair_hasher)


def generate_piece_commitment(data: BinaryIO | BytesLike, unpadded_size: int) -> PieceInfo:
    """CommP of ``unpadded_size`` bytes (``127·2^k``) of ``data``, streamed in chunks.

    A buffer must hold exactly ``unpadded_size`` bytes; a stream is read for exactly
    that many, and ending earlier raises :class:`InvalidInputError`.
    """
    check_unpadded_piece_size(unpadded_size)
    _check_source_length(data, unpadded_size)
    builder = _piece_tree(unpadded_size)
    for chunk in iter_padded(data, unpadded_size):
        builder.update(chunk)
    return PieceInfo(builder.root(), to_padded_size(unpadded_size))


def piece_alignment(written_unpadded: int, piece_unpadded: int) -> tuple[int, int]:
    """Zero bytes ``(left, right)`` around a piece written after ``written_unpadded`` bytes.

    The piece is placed at the next multiple of the smallest ``127·2^j`` holding it, and
    ``right`` pads it up to that size (rust ``get_piece_alignment``; all unpadded bytes).
    """
    _require_int(written_unpadded, "written bytes", InvalidInputError)
    _require_int(piece_unpadded, "a piece size", InvalidInputError)
    if written_unpadded < 0 or piece_unpadded < 1:
        raise InvalidInputError(
            f"need written ≥ 0 and piece ≥ 1 bytes, got {written_unpadded}, {piece_unpadded}"
        )
    needed = UNPADDED_BLOCK
    while needed < piece_unpadded:
        needed *= 2
    encroaching = written_unpadded % needed
    left = needed - encroaching if encroaching else 0
    return left, needed - piece_unpadded


def _unpadded_layout(unpadded_sizes: Sequence[int]) -> tuple[list[int], int]:
    """Unpadded start of each piece laid out in order, and the unpadded end of the last."""
    starts: list[int] = []
    written = 0
    for size in unpadded_sizes:
        check_unpadded_piece_size(size)
        left, right = piece_alignment(written, size)
        starts.append(written + left)
        written += left + size + right
    return starts, written


def padded_piece_offsets(unpadded_sizes: Sequence[int]) -> list[int]:
    """Padded byte offset in the sector of each piece, given the pieces' unpadded sizes."""
    return [to_padded_size(start) for start in _unpadded_layout(unpadded_sizes)[0]]


def _check_fits(proof: RegisteredSealProof, pieces: Sequence[PieceInfo]) -> int:
    """The padded end of ``pieces``; :class:`PieceSizeError` if it passes the sector."""
    end = to_padded_size(_unpadded_layout([p.unpadded_size for p in pieces])[1])
    if end > proof.sector_size:
        raise PieceSizeError(
            f"pieces end at padded byte {end}, past the {proof.sector_size}-byte sector"
        )
    return end


def _hash_pieces(left: PieceInfo, right: PieceInfo) -> PieceInfo:
    """The parent of two equal-size sibling pieces."""
    return PieceInfo(sha256_trunc254(left.commitment + right.commitment), left.size * 2)


def _shift_reduce(stack: list[PieceInfo], piece: PieceInfo) -> None:
    """Push ``piece`` and merge the top two entries while their sizes are equal."""
    stack.append(piece)
    while len(stack) > 1 and stack[-1].size == stack[-2].size:
        right = stack.pop()
        stack.append(_hash_pieces(stack.pop(), right))


def compute_comm_d(pieces: Sequence[PieceInfo]) -> bytes:
    """Root over ``pieces`` laid out in order (rust's stack algorithm).

    The result covers the smallest power of two holding every piece; it is not grown
    to a sector size (see :func:`generate_data_commitment`).
    """
    if not pieces:
        raise InvalidInputError("compute_comm_d needs at least one piece")
    stack = [pieces[0]]
    for piece in pieces[1:]:
        while stack[-1].size < piece.size:
            _shift_reduce(stack, zero_piece(stack[-1].size))
        _shift_reduce(stack, piece)
    while len(stack) > 1:
        _shift_reduce(stack, zero_piece(stack[-1].size))
    return stack[0].commitment


def generate_data_commitment(
    registered_proof: RegisteredSealProof | str | int, pieces: Sequence[PieceInfo]
) -> bytes:
    """CommD of a sector holding ``pieces`` in order, zero up to the sector size."""
    proof = resolve_proof(registered_proof)
    if not pieces:
        return zero_piece_commitment(proof.sector_size)
    return compute_comm_d(fill_pieces(proof, pieces))


def fill_pieces(
    registered_proof: RegisteredSealProof | str | int, pieces: Sequence[PieceInfo]
) -> list[PieceInfo]:
    """``pieces`` followed by the zero pieces that fill the rest of the sector.

    At each position the largest zero piece that is aligned there and fits is placed,
    which gives Lotus' filler pieces (smallest first after a small piece).
    """
    proof = resolve_proof(registered_proof)
    position = _check_fits(proof, pieces)
    filled = list(pieces)
    while position < proof.sector_size:
        aligned = position & -position if position else proof.sector_size
        size = min(aligned, 1 << ((proof.sector_size - position).bit_length() - 1))
        filled.append(zero_piece(size))
        position += size
    return filled


def _open_unsealed(path: Path, sector_size: int) -> BinaryIO:
    """Open (or create) the unsealed file for update, extending it sparsely to a sector."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if os.fstat(fd).st_size < sector_size:
            os.ftruncate(fd, sector_size)
        return os.fdopen(fd, "r+b")
    except BaseException:
        os.close(fd)
        raise


def _zero_region(file: BinaryIO, start: int, end: int) -> None:
    """Make ``[start, end)`` zero, writing only where it is not already (keeps holes)."""
    position = start
    while position < end:
        size = min(_ZERO_CHUNK, end - position)
        file.seek(position)
        if file.read(size).count(0) != size:
            file.seek(position)
            file.write(bytes(size))
        position += size


def add_piece(
    registered_proof: RegisteredSealProof | str | int,
    source: BinaryIO | BytesLike,
    unsealed_path: str | os.PathLike[str],
    piece_size: int,
    existing_piece_sizes: Sequence[int] = (),
    *,
    pair_hasher: PairHasher = hash_pairs,
) -> AddPieceOutput:
    """Write a piece into the unsealed sector file and return its commitment.

    The unsealed file is the padded sector layout (created sparse at the sector size
    if missing, never truncated).  ``piece_size`` and ``existing_piece_sizes`` are
    unpadded ``127·2^k`` sizes; the piece goes at its aligned offset after the existing
    pieces, the alignment gap is zeroed, and CommP is computed while streaming, its
    pairs hashed by ``pair_hasher`` (:data:`~sealagent.proofs.sha_tree.PairHasher`).
    """
    proof = resolve_proof(registered_proof)
    check_unpadded_piece_size(piece_size)
    _check_source_length(source, piece_size)
    written_before = _unpadded_layout(existing_piece_sizes)[1]
    left, _ = piece_alignment(written_before, piece_size)
    offset = to_padded_size(written_before + left)
    padded_size = to_padded_size(piece_size)
    if offset + padded_size > proof.sector_size:
        raise PieceSizeError(
            f"a {piece_size}-byte piece at padded offset {offset} overflows the"
            f" {proof.sector_size}-byte sector"
        )
    builder = _piece_tree(piece_size, pair_hasher)
    with _open_unsealed(Path(unsealed_path), proof.sector_size) as file:
        _zero_region(file, to_padded_size(written_before), offset)
        file.seek(offset)
        for chunk in iter_padded(source, piece_size):
            file.write(chunk)
            builder.update(chunk)
        file.flush()
        os.fsync(file.fileno())
    return AddPieceOutput(PieceInfo(builder.root(), padded_size), offset, left + piece_size)
