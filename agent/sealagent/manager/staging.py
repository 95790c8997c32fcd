"""Deal pieces waiting for their sector: copied into the staging area, CommP checked.

The staging area is a storage path of its own (weight 0, neither seal nor store), so the
manager's ``/remote`` serves each staged piece as ``piece/s-t0<miner>-<number>`` to the
agent that runs the sector's AddPiece.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sealagent.proofs.pieces import PieceInfo, generate_piece_commitment
from sealagent.storage.paths import SECTORSTORE_FILE, LocalPath, init_path, open_path


def staging_path(directory: Path) -> LocalPath:
    """Open the staging area, making it a storage path the first time."""
    if (directory / SECTORSTORE_FILE).exists():
        return open_path(directory)
    return init_path(directory, can_seal=False, can_store=False, weight=0)


def file_size(path: Path) -> int | None:
    """The size of a regular file, or None when there is none."""
    return path.stat().st_size if path.is_file() else None


def stage_piece(source: Path, target: Path, size: int) -> PieceInfo:
    """Copy ``source`` to ``target`` zero-padded to ``size`` bytes; returns its CommP.

    The copy is hashed from disk, so what is checked is what agents will read.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".staging")
    with open(source, "rb") as src, open(tmp, "wb") as dst:
        shutil.copyfileobj(src, dst)
        dst.truncate(size)
    with open(tmp, "rb") as staged:
        info = generate_piece_commitment(staged, size)
    tmp.replace(target)
    return info
