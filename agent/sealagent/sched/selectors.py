"""Selectors: which workers may take a task, as pure functions of a storage snapshot.

Every selector first requires the task type among the worker's enabled types (the pass
does that).  A selector works in two steps, so that tasks with the same answer share one
group and one candidate pool:

* :meth:`Selector.locality`, when a task is queued, reads where the sector's files are
  from the :class:`~sealagent.sched.storage_view.StorageView` (``None`` when the selector
  does not care);
* :meth:`Selector.pools`, once per pass for each group, turns the locality into a
  *preferred* and a *fallback* :class:`PoolSpec`.  When some open window of a preferred
  worker could take the task, only preferred windows are used (Lotus' rule); otherwise
  the fallback, if any.

A caller that moves a queued sector's files calls
:meth:`~sealagent.sched.scheduler.Scheduler.refresh_locality` so its locality is read
again.

Selectors (Lotus' names):

``AllocSelector``  the worker has a local path of the right kind (sealing / storage),
                   healthy, with room for the new files (``FSOverheadSeal``, e.g. 14.1 ×
                   sector size for ``cache``).  Space taken by earlier assignments in the
                   same pass is counted, so one pass never hands a path more sectors than
                   it has room for (Lotus only notices when the worker reserves space).
``ExistingSelector`` the worker holds the sector's files.  With ``allow_fetch`` the
                   holders are *preferred* and any worker with room to fetch the files is
                   the fallback (Lotus never prefers holders, so sealed data moved to
                   whichever worker had the lowest utilization); without it any holder of
                   any of the types is acceptable.
``MoveSelector``   (Lotus' ``moveSelector``) a worker with room on a healthy store path
                   for the sector's finalized files (the unsealed copy included where
                   the sector has one).  Workers holding all of them are
                   *preferred* (the move is a rename there); with ``allow_remote`` any
                   worker with room is the fallback and fetches them, otherwise only
                   workers holding some of the files.
``TaskSelector``   any worker with the task type; workers with fewer enabled task types
                   come first on ties (Lotus' ``Cmp``), keeping generalists free.

``SectorAffinity`` (the scheduler's switch, off by default) never moves a sector's
sealing data between hosts, that is between agents: the fetch fallback is limited to
agents that already hold some of the files, and an allocation for a sector that already
has files (PC1 after AddPiece) goes to an agent holding them, on whichever of its paths
has room.  A path that several agents report (shared storage) counts for each of them.

:meth:`Selector.requirement` says in words what a selector asks of a worker, so that a
task nobody may take can say why (:mod:`~sealagent.sched.explain`).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Final, NamedTuple, Protocol

from sealagent.sched.storage_view import (
    SEALING_FILES,
    Locations,
    PathKind,
    StorageView,
    seal_space,
    store_space,
)
from sealagent.vocab.registry import RegisteredSealProof
from sealagent.vocab.sectors import FileType, SectorID

_NO_FILES: Final = FileType(0)


class SpaceNeed(NamedTuple):
    """Room a worker must offer on one of its local paths of ``kind`` (in one of
    ``groups`` when given)."""

    size: int
    kind: PathKind
    groups: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class PoolSpec:
    """The windows a group of tasks may use in one pass."""

    workers: frozenset[str] | None = None
    """Only these workers (None = every worker with the task type)."""
    space: SpaceNeed | None = None
    """A local path with at least this much room (counting this pass's reservations)."""
    prefer_specialized: bool = False
    """On equal load, prefer workers with fewer enabled task types."""


class Pools(NamedTuple):
    """A selector's answer for one group: preferred windows first, else the fallback."""

    preferred: PoolSpec | None
    fallback: PoolSpec | None


class HolderLookup(Protocol):
    """What a selector needs from the pass: which workers have some paths locally."""

    def workers_with(self, paths: frozenset[str]) -> frozenset[str]:
        """Ids of the workers that have any of ``paths`` as a local path."""


class PathOwners:
    """A :class:`HolderLookup` over a set of workers: which of them have which paths."""

    def __init__(self, worker_paths: Iterable[tuple[str, frozenset[str]]]) -> None:
        """Index ``(worker id, its local path ids)`` pairs."""
        self._owners: dict[str, set[str]] = {}
        for worker_id, paths in worker_paths:
            for path in paths:
                self._owners.setdefault(path, set()).add(worker_id)

    def workers_with(self, paths: frozenset[str]) -> frozenset[str]:
        """Ids of the workers that have any of ``paths`` as a local path."""
        found: set[str] = set()
        for path in paths:
            found.update(self._owners.get(path, ()))
        return frozenset(found)


class Selector(Protocol):
    """Decides which workers may run a task (hashable: it is part of the group key)."""

    def locality(self, sector: SectorID, view: StorageView, affinity: bool) -> Hashable:
        """Where the files that matter to this selector are (read when the task is queued)."""

    def pools(self, proof: RegisteredSealProof, locality: Hashable, holders: HolderLookup,
              affinity: bool) -> Pools:
        """The preferred and fallback windows for tasks with this locality."""

    def requirement(self, locality: Hashable, affinity: bool) -> str:
        """What a worker must offer to run tasks with this locality, in words."""


AFFINITY_HINT: Final = "SectorAffinity keeps the sector's files where they are"
"""How a requirement says that ``SectorAffinity`` restricts it."""


@dataclass(frozen=True, slots=True)
class TaskSelector:
    """Any worker that has the task type enabled."""

    def locality(self, sector: SectorID, view: StorageView, affinity: bool) -> Hashable:
        """Nothing: the sector's files do not matter."""
        return None

    def pools(self, proof: RegisteredSealProof, locality: Hashable, holders: HolderLookup,
              affinity: bool) -> Pools:
        """Every worker; specialized workers first on ties."""
        return Pools(None, PoolSpec(prefer_specialized=True))

    def requirement(self, locality: Hashable, affinity: bool) -> str:
        """Nothing beyond the task type."""
        return "any worker that offers the task type"


@dataclass(frozen=True, slots=True)
class AllocSelector:
    """A worker with room on a local path of ``kind`` for new ``file_types`` files."""

    file_types: FileType
    kind: PathKind = PathKind.SEAL

    def locality(self, sector: SectorID, view: StorageView, affinity: bool) -> Hashable:
        """With affinity, the paths already holding any sealing file of the sector."""
        if not affinity:
            return None
        held = view.locations(sector, SEALING_FILES).all_paths()
        return held or None

    def pools(self, proof: RegisteredSealProof, locality: Hashable, holders: HolderLookup,
              affinity: bool) -> Pools:
        """Workers with room (limited to the sector's hosts under affinity)."""
        space = SpaceNeed(seal_space(self.file_types, proof.sector_size), self.kind)
        if isinstance(locality, frozenset):
            return Pools(None, PoolSpec(workers=holders.workers_with(locality), space=space))
        return Pools(None, PoolSpec(space=space))

    def requirement(self, locality: Hashable, affinity: bool) -> str:
        """Room for the new files (on an agent that holds the sector under affinity)."""
        names = ", ".join(self.file_types.names)
        room = f"a {self.kind} path with room for new {names} files"
        if isinstance(locality, frozenset):
            return f"{room} on an agent holding the sector's files ({AFFINITY_HINT})"
        return room


def _holders(locality: Hashable,
             holders: HolderLookup) -> tuple[frozenset[str], frozenset[str]] | None:
    """The workers holding any of the located files, and those holding every type of
    them; None when nobody holds any."""
    if not isinstance(locality, Locations):
        return None
    any_holder = holders.workers_with(locality.all_paths())
    if not any_holder:
        return None
    full: frozenset[str] | None = None
    for _, paths in locality.by_type:
        have = holders.workers_with(paths)
        full = have if full is None else full & have
    return any_holder, full or frozenset()


@dataclass(frozen=True, slots=True)
class ExistingSelector:
    """A worker that holds the sector's ``file_types`` (or may fetch them)."""

    file_types: FileType
    allow_fetch: bool = False

    def locality(self, sector: SectorID, view: StorageView, affinity: bool) -> Hashable:
        """The paths holding each requested file type."""
        return view.locations(sector, self.file_types)

    def pools(self, proof: RegisteredSealProof, locality: Hashable, holders: HolderLookup,
              affinity: bool) -> Pools:
        """Holders preferred; with ``allow_fetch``, workers with room as the fallback."""
        found = _holders(locality, holders)
        if found is None:
            return Pools(None, None)
        any_holder, full = found
        if not self.allow_fetch:
            return Pools(None, PoolSpec(workers=any_holder))
        preferred = PoolSpec(workers=full) if full else None
        space = SpaceNeed(seal_space(self.file_types, proof.sector_size), PathKind.SEAL)
        fallback = PoolSpec(workers=any_holder if affinity else None, space=space)
        return Pools(preferred, fallback)

    def requirement(self, locality: Hashable, affinity: bool) -> str:
        """The holders of the files (or, with ``allow_fetch``, room to fetch them)."""
        names = ", ".join(self.file_types.names)
        holding = f"an agent holding the sector's {names} files"
        if not self.allow_fetch:
            return holding
        if affinity:
            return f"{holding} ({AFFINITY_HINT})"
        return f"{holding}, or one with room to fetch them"


class MoveLocality(NamedTuple):
    """Where the files to move are, the groups their holders' ``AllowTo`` lets them go to
    (None: anywhere), and which of the optional files exist and go along."""

    locations: Locations
    groups: frozenset[str] | None
    carried: FileType = _NO_FILES


@dataclass(frozen=True, slots=True)
class MoveSelector:
    """A worker with room on a store path for the sector's finalized ``file_types``, and
    for those of the ``carries`` types the sector has (the unsealed copy moves along).

    The room asked for counts a carried file even where the chosen store path's
    ``DenyTypes`` will leave it behind: the scheduler's view has no per-type rules, so it
    may ask for more than the agent reserves, never less.
    """

    file_types: FileType
    allow_remote: bool = True
    carries: FileType = _NO_FILES

    def locality(self, sector: SectorID, view: StorageView, affinity: bool) -> Hashable:
        """The paths holding each file type to move, where ``AllowTo`` lets them go, and
        which ``carries`` types some path holds."""
        locations = view.locations(sector, self.file_types)
        optional = view.locations(sector, self.carries).by_type
        carried = _NO_FILES
        for file_type, paths in optional:
            if paths:
                carried |= file_type
        return MoveLocality(locations, view.allowed_groups(locations.all_paths()), carried)

    def pools(self, proof: RegisteredSealProof, locality: Hashable, holders: HolderLookup,
              affinity: bool) -> Pools:
        """Holders of every file preferred; workers with room to fetch as the fallback."""
        if not isinstance(locality, MoveLocality):
            return Pools(None, None)
        found = _holders(locality.locations, holders)
        if found is None:
            return Pools(None, None)
        any_holder, full = found
        space = SpaceNeed(store_space(self.file_types | locality.carried, proof.sector_size),
                          PathKind.STORE, locality.groups)
        preferred = PoolSpec(workers=full, space=space) if full else None
        local_only = affinity or not self.allow_remote
        return Pools(preferred, PoolSpec(workers=any_holder if local_only else None,
                                         space=space))

    def requirement(self, locality: Hashable, affinity: bool) -> str:
        """A store path with room (on an agent holding the files unless remote is allowed)."""
        moved = self.file_types
        if isinstance(locality, MoveLocality):
            moved |= locality.carried
        names = ", ".join(moved.names)
        room = f"a {PathKind.STORE} path with room for the finalized {names} files"
        if isinstance(locality, MoveLocality) and locality.groups is not None:
            room += f" in group {' or '.join(sorted(locality.groups))} (AllowTo)"
        if affinity:
            return f"{room} on an agent holding them ({AFFINITY_HINT})"
        if not self.allow_remote:
            return f"{room} on an agent holding them (DisallowRemoteFinalize)"
        return room
