"""Sector files on disk: names, file types, directories and the space each one needs.

A storage path holds one directory per file type, each holding one entry per sector named
``s-t0<miner>-<number>`` (Lotus' layout)::

    <path>/unsealed/s-t01000-3        file
    <path>/sealed/s-t01000-3          file
    <path>/cache/s-t01000-3/          directory (labels, trees, p_aux, t_aux)
    <path>/update/s-t01000-3          file       (SnapDeals)
    <path>/update-cache/s-t01000-3/   directory  (SnapDeals)
    <path>/piece/s-t01000-3           file
    <path>/<type>/fetching/<name>     a download in progress

Space estimates (:func:`space_needed`) are computed from the proof's real geometry rather
than Lotus' fixed multiples (``cache`` = 14.1 × sector while sealing, 0.1 × after
finalize).  With ``S`` the sector size, ``N = S/32`` nodes, ``L`` layers, ``B`` base trees
of ``N/B`` leaves each (oct trees)::

    labels       = L · S                                  sc-02-data-layer-<l>.dat
    tree_d       = (2N − 1) · 32                           sc-02-data-tree-d.dat
    tree_c       = B · octtree(N/B) · 32                   every row, leaves included
    tree_r_last  = B · (octtree(N/B) − Σ_{k=0..d} N/B/8^k) · 32
                   (the leaf row and ``d`` = rows_to_discard rows above it are not kept)
    aux          = 64 KiB budget for p_aux + t_aux

    cache while sealing      = labels + tree_d + tree_c + tree_r_last + aux
    cache when finalized     = tree_r_last + aux
    update-cache (sealing)   = tree_d + tree_r_last + aux
    update-cache (finalized) = tree_r_last + aux
    unsealed, sealed, update, piece = S

For 32 GiB (L = 11, B = 8) the cache needs 11 S + 2 S + 8/7 S + 73 MiB ≈ 14.14 S, which is
what Lotus' 14.1 approximates (its 484,472,310,988-byte reservation).
"""

from __future__ import annotations

import enum
import re
from pathlib import Path
from typing import Final, NamedTuple, Self

from sealagent.errors import ConfigError
from sealagent.proofs.registry import NODE_SIZE, RegisteredSealProof, resolve_proof

FETCH_TEMP_DIR: Final = "fetching"
"""Directory, inside each file-type directory, that holds downloads in progress."""

AUX_BUDGET: Final = 64 * 1024
"""Bytes reserved for ``p_aux`` and ``t_aux`` together."""

_OCT_ARITY: Final = 8
_SECTOR_NAME = re.compile(r"^s-t0(\d+)-(\d+)$")


class FileType(enum.IntFlag):
    """Sector file types, with Lotus' bit values."""

    UNSEALED = 1
    SEALED = 2
    CACHE = 4
    UPDATE = 8
    UPDATE_CACHE = 16
    PIECE = 32

    @property
    def dir_name(self) -> str:
        """Directory (and wire) name: ``unsealed``, ..., ``update-cache``, ``piece``."""
        if self.name is None or self not in ALL_FILE_TYPES:
            raise ConfigError(f"{self!r} is not a single file type")
        return self.name.lower().replace("_", "-")

    @property
    def is_dir(self) -> bool:
        """True for the types stored as a directory (``cache``, ``update-cache``)."""
        return self in (FileType.CACHE, FileType.UPDATE_CACHE)

    @classmethod
    def parse(cls, name: str) -> FileType:
        """The file type called ``name`` (``cache``, ``update-cache``...)."""
        for file_type in ALL_FILE_TYPES:
            if file_type.dir_name == name:
                return file_type
        raise ConfigError(
            f"unknown file type {name!r}; expected one of "
            + ", ".join(t.dir_name for t in ALL_FILE_TYPES)
        )

    @property
    def names(self) -> tuple[str, ...]:
        """The directory names of the single types this set holds."""
        return tuple(t.dir_name for t in self.split())

    def split(self) -> tuple[FileType, ...]:
        """The single file types this set holds, in bit order (cached: the scheduler
        splits a set for every task it queues)."""
        found = _SPLIT.get(self.value)
        if found is None:
            found = _SPLIT[self.value] = tuple(t for t in ALL_FILE_TYPES if t & self)
        return found


ALL_FILE_TYPES: Final = (FileType.UNSEALED, FileType.SEALED, FileType.CACHE,
                         FileType.UPDATE, FileType.UPDATE_CACHE, FileType.PIECE)
"""Every single file type, in bit order."""

SECTOR_FILES: Final = FileType.UNSEALED | FileType.SEALED | FileType.CACHE
"""The files of a sector the sealing phases use (:class:`~sealagent.phases.SectorPaths`)."""

_SPLIT: dict[int, tuple[FileType, ...]] = {}


class _SectorKey(NamedTuple):
    miner: int
    number: int


class SectorID(_SectorKey):
    """A sector: the miner's actor id and the sector number.

    A tuple ``(miner, number)``: hashable, ordered, and cheap as a dictionary key (the
    scheduler and the storage index key everything on it).
    """

    __slots__ = ()

    def __new__(cls, miner: int, number: int) -> Self:
        """Check both are non-negative integers (ConfigError otherwise)."""
        for field, value in (("miner", miner), ("number", number)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"sector {field} must be a non-negative integer, got {value!r}")
        return super().__new__(cls, miner, number)

    @property
    def name(self) -> str:
        """``s-t0<miner>-<number>``, the name of the sector's files."""
        return f"s-t0{self.miner}-{self.number}"

    @classmethod
    def parse(cls, name: str) -> SectorID:
        """Parse ``s-t0<miner>-<number>``."""
        match = _SECTOR_NAME.match(name)
        if match is None:
            raise ConfigError(f"not a sector file name: {name!r} (expected s-t0<miner>-<number>)")
        return cls(int(match[1]), int(match[2]))

    def __str__(self) -> str:
        return self.name


def sector_path(root: str | Path, file_type: FileType, sector: SectorID) -> Path:
    """``<root>/<type>/s-t0<miner>-<number>``."""
    return Path(root) / file_type.dir_name / sector.name


def fetch_temp_path(dest: str | Path) -> Path:
    """Where a download of ``dest`` is written before it is renamed into place."""
    dest = Path(dest)
    return dest.parent / FETCH_TEMP_DIR / dest.name


def _oct_tree_nodes(leaves: int) -> int:
    """Nodes of a full oct tree over ``leaves`` leaves, every row included."""
    total, row = 0, leaves
    while row > 1:
        total += row
        row //= _OCT_ARITY
    return total + 1


def _rows_to_discard(leaves: int) -> int:
    """rust-fil-proofs' default rows_to_discard for an oct tree of ``leaves`` leaves."""
    rows = 1
    while leaves > 1:
        leaves //= _OCT_ARITY
        rows += 1
    if rows <= 2:
        return 0
    return 1 if rows == 3 else min(rows - 2, 2)


def _tree_r_last_bytes(proof: RegisteredSealProof) -> int:
    shape = proof.shape
    leaves = shape.base_tree_leaves
    kept, row = _oct_tree_nodes(leaves), leaves
    for _ in range(_rows_to_discard(leaves) + 1):
        kept -= row
        row //= _OCT_ARITY
    return shape.base_tree_count * kept * NODE_SIZE


def _tree_d_bytes(proof: RegisteredSealProof) -> int:
    return (2 * proof.nodes - 1) * NODE_SIZE


def _tree_c_bytes(proof: RegisteredSealProof) -> int:
    shape = proof.shape
    return shape.base_tree_count * _oct_tree_nodes(shape.base_tree_leaves) * NODE_SIZE


def space_needed(file_type: FileType, proof: RegisteredSealProof | str | int, *,
                 sealing: bool = True) -> int:
    """Bytes the files of ``file_type`` (one type or a set) take for one sector.

    ``sealing=True`` counts everything a sector holds while it is sealed; ``False`` what
    is left after finalize (see the module docstring for the formula).
    """
    proof = resolve_proof(proof)
    size = proof.sector_size
    small = _tree_r_last_bytes(proof) + AUX_BUDGET
    per_type = {
        FileType.UNSEALED: size,
        FileType.SEALED: size,
        FileType.UPDATE: size,
        FileType.PIECE: size,
        FileType.CACHE: small + (
            proof.layers * size + _tree_d_bytes(proof) + _tree_c_bytes(proof) if sealing else 0
        ),
        FileType.UPDATE_CACHE: small + (_tree_d_bytes(proof) if sealing else 0),
    }
    return sum(per_type[t] for t in file_type.split())
