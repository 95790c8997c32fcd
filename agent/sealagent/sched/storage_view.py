"""The storage index as the scheduler sees it: a snapshot passed into every pass.

The storage index (manager side) owns the truth; it hands the scheduler a
:class:`StorageView` – path health, free space, and which paths hold which sector files.
Which paths are local to which worker comes from each worker's report
(:attr:`sealagent.sched.windows.SchedWorker.paths`).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final, NamedTuple

from sealagent.vocab.groups import allowed_groups
from sealagent.vocab.sectors import SECTOR_FILES, FileType, SectorID

OVERHEAD_DENOMINATOR: Final = 10


def seal_space(file_types: FileType, sector_size: int) -> int:
    """Bytes to reserve while sealing: Lotus' ``FSOverheadSeal`` (cache = 14.1 × size).

    The scheduler's estimate, as Lotus makes it; an agent reserves what
    :func:`~sealagent.storage.layout.space_needed` computes from the proof's geometry.
    """
    return _overhead(file_types, sector_size, _SEAL_OVERHEAD)


def _overhead(file_types: FileType, sector_size: int, table: dict[FileType, int]) -> int:
    """The sum of each file type's ``table`` share of the sector size."""
    return sum(sector_size * table[t] // OVERHEAD_DENOMINATOR for t in file_types.split())


_SEAL_OVERHEAD: Final[dict[FileType, int]] = {
    FileType.UNSEALED: 10,
    FileType.SEALED: 10,
    FileType.CACHE: 141,
    FileType.UPDATE: 10,
    FileType.UPDATE_CACHE: 21,
    FileType.PIECE: 10,
}


def store_space(file_types: FileType, sector_size: int) -> int:
    """Bytes finalized files take on a store path: Lotus' ``FsOverheadFinalized`` (the
    trimmed cache keeps about a tenth of the sector size)."""
    return _overhead(file_types, sector_size, _STORE_OVERHEAD)


_STORE_OVERHEAD: Final[dict[FileType, int]] = {
    FileType.UNSEALED: 10,
    FileType.SEALED: 10,
    FileType.CACHE: 1,
    FileType.UPDATE: 10,
    FileType.UPDATE_CACHE: 1,
    FileType.PIECE: 10,
}

SEALING_FILES: Final = SECTOR_FILES | FileType.UPDATE | FileType.UPDATE_CACHE
"""The files whose movement between hosts ``SectorAffinity`` forbids."""


class PathKind(enum.StrEnum):
    """What a path is used for: sealing scratch space or long-term storage."""

    SEAL = "seal"
    STORE = "store"


@dataclass(frozen=True, slots=True)
class PathStat:
    """One storage path: what it may hold, its free space and health."""

    path_id: str
    can_seal: bool = True
    can_store: bool = False
    available: int = 0
    """Bytes free for new reservations (filesystem free minus outstanding reservations)."""
    weight: int = 10
    healthy: bool = True
    """False when the path's heartbeat is stale or its last stat failed."""
    groups: tuple[str, ...] = ()
    """The storage groups the path belongs to (``Groups``)."""
    allow_to: tuple[str, ...] = ()
    """The groups its sectors' files may move to (``AllowTo``; empty: anywhere)."""

    def allows(self, kind: PathKind, groups: frozenset[str] | None = None) -> bool:
        """True when the path is healthy, may hold files of ``kind`` and, when ``groups``
        is given, belongs to one of them."""
        if not self.healthy or (groups is not None and not groups & set(self.groups)):
            return False
        return self.can_seal if kind is PathKind.SEAL else self.can_store


class Locations(NamedTuple):
    """Where each requested file type of one sector is: ``((type, path ids), ...)``."""

    by_type: tuple[tuple[FileType, frozenset[str]], ...]

    def all_paths(self) -> frozenset[str]:
        """Every path holding any of the types."""
        return frozenset().union(*(paths for _, paths in self.by_type))


@dataclass(frozen=True)
class StorageView:
    """A snapshot of the storage index for one scheduling pass."""

    paths: Mapping[str, PathStat] = field(default_factory=dict)
    sectors: Mapping[SectorID, Mapping[FileType, frozenset[str]]] = field(default_factory=dict)
    """Sector → single file type → ids of the paths that hold it."""

    def allowed_groups(self, path_ids: Iterable[str]) -> frozenset[str] | None:
        """The groups files held in ``path_ids`` may move to (their ``AllowTo``)."""
        return allowed_groups(self.paths[p].allow_to for p in path_ids if p in self.paths)

    def locations(self, sector: SectorID, file_types: FileType) -> Locations:
        """For each single type of ``file_types``, the paths holding it (maybe none)."""
        held = self.sectors.get(sector, {})
        return Locations(tuple((t, frozenset(held.get(t, ()))) for t in file_types.split()))
