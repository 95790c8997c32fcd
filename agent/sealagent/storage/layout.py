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

from pathlib import Path
from typing import Final

from sealagent.vocab.registry import NODE_SIZE, RegisteredSealProof, resolve_proof
from sealagent.vocab.sectors import FileType

FETCH_TEMP_DIR: Final = "fetching"
"""Directory, inside each file-type directory, that holds downloads in progress."""

AUX_BUDGET: Final = 64 * 1024
"""Bytes reserved for ``p_aux`` and ``t_aux`` together."""

_OCT_ARITY: Final = 8


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


def tree_r_last_bytes(proof: RegisteredSealProof) -> int:
    """Bytes of a sector's ``tree-r-last`` files (every base tree, the discarded rows
    left out): what a finalized cache must hold at least."""
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
    small = tree_r_last_bytes(proof) + AUX_BUDGET
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
