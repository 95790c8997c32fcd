"""``sectors check``: re-verify a sector from its stored files.

As ``lotus-miner proving check`` does without ``--slow``: every copy of the sector's files
that the storage index knows of is looked at where it is (``/remote/stat`` on the host
that holds it), and each must be there with the right size:

- the sealed file (and the unsealed one, where a copy is kept) is exactly the sector size;
- the cache holds at least the ``tree-r-last`` files
  (:func:`~sealagent.storage.layout.tree_r_last_bytes`) plus ``p_aux`` and ``t_aux``.

The sector passes when each of its required files (sealed and cache) has at least one
copy that passes; a copy that fails is reported with the reason, whatever the verdict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from sealagent.errors import SealAgentError
from sealagent.storage.fetch import RemoteClient, RemoteStat
from sealagent.storage.index import StorageIndex
from sealagent.storage.layout import tree_r_last_bytes
from sealagent.vocab.registry import RegisteredSealProof
from sealagent.vocab.sectors import SECTOR_FILES, FileType, SectorID

REQUIRED: Final = FileType.SEALED | FileType.CACHE
"""The files a sealed sector cannot be proven without."""


@dataclass(frozen=True)
class CopyCheck:
    """The verdict on one copy of one sector file."""

    path_id: str
    file_type: FileType
    url: str | None
    size: int | None
    problem: str | None

    def to_json(self) -> dict[str, Any]:
        """The JSON form ``Sectors.Check`` answers with."""
        return {"path_id": self.path_id, "file_type": self.file_type.dir_name,
                "url": self.url, "size": self.size, "ok": self.problem is None,
                "problem": self.problem}


def size_problem(file_type: FileType, stat: RemoteStat, proof: RegisteredSealProof) -> str | None:
    """What is wrong with a stored file of this type and size (None: nothing)."""
    if file_type is FileType.CACHE:
        if not stat.is_dir:
            return "the cache is a file, not a directory"
        least = tree_r_last_bytes(proof)
        if stat.size <= least:
            return f"the cache holds {stat.size} bytes, less than its tree-r-last files ({least})"
        return None
    if stat.is_dir:
        return f"the {file_type.dir_name} file is a directory"
    if stat.size != proof.sector_size:
        return f"{stat.size} bytes, expected the sector size {proof.sector_size}"
    return None


async def check_copies(index: StorageIndex, sector: SectorID, proof: RegisteredSealProof,
                       token: str) -> list[CopyCheck]:
    """Look at every indexed copy of ``sector``'s files where it is stored."""
    checks: list[CopyCheck] = []
    async with RemoteClient(token) as client:
        for location in index.find(sector, SECTOR_FILES):
            for file_type in location.file_types.split():
                if not location.urls:
                    checks.append(CopyCheck(location.path_id, file_type, None, None,
                                            "the path has no URL to reach it at"))
                    continue
                url = f"{location.urls[0]}/{file_type.dir_name}/{sector.name}"
                try:
                    stat = await client.stat(url)
                except SealAgentError as exc:
                    checks.append(CopyCheck(location.path_id, file_type, url, None, str(exc)))
                    continue
                checks.append(CopyCheck(location.path_id, file_type, url, stat.size,
                                        size_problem(file_type, stat, proof)))
    return checks


def verdict(checks: list[CopyCheck]) -> list[str]:
    """The reasons a sector with these copies cannot be proven (empty: it can)."""
    good = FileType(0)
    for check in checks:
        if check.problem is None:
            good |= check.file_type
    return [f"no good copy of the {file_type.dir_name} file"
            for file_type in REQUIRED.split() if not file_type & good]
