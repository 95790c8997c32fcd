"""Where the sectors' files are: the storage index, the manager's own paths, staging.

:class:`SectorFiles` owns the :class:`~sealagent.storage.index.StorageIndex` (persisted
in the ``meta`` table), the storage paths this host serves, the staging area of deal
pieces and the snapshot of it all that the scheduler reads.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import structlog
import trio

from sealagent.errors import (
    ManagerError,
    RPCTransportError,
    SectorFileNotFoundError,
    StorageError,
)
from sealagent.manager import sector_store
from sealagent.manager.context import ManagerContext
from sealagent.manager.db import Transaction
from sealagent.manager.sector_check import CopyCheck, ProofCheck, check_copies, prove_copies
from sealagent.manager.workers import WorkerReport
from sealagent.protocol import FetchSource, FileMove, SectorFile
from sealagent.sched.storage_view import PathStat, StorageView
from sealagent.storage.fetch import RemoteClient
from sealagent.storage.index import StorageIndex
from sealagent.storage.paths import LocalPath
from sealagent.task_kinds import STORED_FILES, StorageJob, TaskKind
from sealagent.vocab.registry import RegisteredSealProof
from sealagent.vocab.sectors import SECTOR_FILES, FileType, SectorID

INDEX_KEY: Final = "storage_index"
"""The ``meta`` key of the persisted storage index."""
PATH_HEARTBEAT_INTERVAL: Final = 10.0
"""Seconds between health reports of the manager's own storage paths."""
FIRST_PATH_HEARTBEAT: Final = 0.5
"""Seconds after start-up of the first health report of the manager's own paths."""

_log = structlog.get_logger("sealagent.manager")


class SectorFiles:
    """The storage index and the manager's own paths (see the module docs)."""

    def __init__(self, context: ManagerContext, token: str,
                 local_paths: Sequence[LocalPath] = (),
                 staging: LocalPath | None = None) -> None:
        self._context = context
        self._token = token
        self.index = StorageIndex(clock=context.clock)
        self.local_paths = list(local_paths)
        self.staging = staging
        self.public_url = ""
        self._view: StorageView | None = None

    def restore(self, snapshot: Any) -> None:
        """Start from a persisted index snapshot."""
        self.index = StorageIndex.from_snapshot(snapshot, clock=self._context.clock)
        self.changed()

    def view(self) -> StorageView:
        """The storage snapshot the scheduler reads (cached until the index changes)."""
        if self._view is None:
            paths: dict[str, PathStat] = {}
            sectors: dict[SectorID, dict[FileType, frozenset[str]]] = {}
            for record in self.index.paths():
                paths[record.id] = PathStat(record.id, record.meta.can_seal,
                                            record.meta.can_store, record.available,
                                            record.meta.weight, self.index.is_healthy(record.id),
                                            record.meta.groups, record.meta.allow_to)
                for sector, types in self.index.sectors_in(record.id).items():
                    held = sectors.setdefault(sector, {})
                    for single in types.split():
                        held[single] = held.get(single, frozenset()) | {record.id}
            self._view = StorageView(paths, sectors)
        return self._view

    def changed(self) -> None:
        """The index changed: the next :meth:`view` reads it again."""
        self._view = None

    def saver(self) -> Callable[[Transaction], None]:
        """What persists the index as it is now, inside a transaction.

        The snapshot is taken here, in the event loop, so the database thread never
        reads the index while the loop changes it.
        """
        self.changed()
        snapshot = self.index.snapshot()
        return lambda tx: tx.set_meta(INDEX_KEY, snapshot)

    async def save(self) -> None:
        """Persist the index in a transaction of its own."""
        await self._context.db.transaction(self.saver())

    # ----------------------------------------------------------- this host's paths

    def serve_at(self, url: str) -> list[int]:
        """Agents reach this manager at ``url``: attach the local paths at ``<url>/remote``.

        Returns the numbers of this miner's sectors found on them.
        """
        self.public_url = url.rstrip("/")
        return [n for path in self.local_paths for n in self._attach_local(path)]

    def add_local(self, path: LocalPath) -> list[int]:
        """Serve another path of this host; returns the sectors found on it (once served)."""
        if path.id not in {p.id for p in self.local_paths}:
            self.local_paths.append(path)
        return self._attach_local(path) if self.public_url else []

    def redeclare_local(self) -> list[int]:
        """``storage redeclare``: make the index hold exactly the sector files found now
        in each of this host's paths; returns the sectors whose files changed."""
        moved: set[int] = set()
        for path in self.local_paths:
            moved |= self._redeclare(path.id, path.sectors(), primary=path.meta.can_store)
        self.changed()
        return sorted(moved)

    def sole_copies(self, path_id: str) -> dict[SectorID, FileType]:
        """The sector files of which ``path_id`` holds the only indexed copy."""
        sole: dict[SectorID, FileType] = {}
        for sector, types in self.index.sectors_in(path_id).items():
            for single in types.split():
                if all(loc.path_id == path_id for loc in self.index.find(sector, single)):
                    sole[sector] = sole.get(sector, FileType(0)) | single
        return sole

    def refuse_sole_copies(self, path_id: str, what: str, *, force: bool) -> int:
        """Raise ManagerError naming each sector file of which ``path_id`` holds the only
        indexed copy, unless ``force``; returns how many sectors have such files."""
        sole = self.sole_copies(path_id)
        if sole and not force:
            listed = ", ".join(f"{s.name} ({', '.join(t.dir_name for t in types.split())})"
                               for s, types in sorted(sole.items()))
            raise ManagerError(f"{what} holds the only copy of {listed}: move them first, "
                               "or pass --force to detach it anyway")
        return len(sole)

    def detach_path(self, path_id: str) -> list[int]:
        """Stop indexing a path (its files stay on disk); returns the sectors that had
        files in it."""
        held = self.index.sectors_in(path_id)
        self.index.detach(path_id)
        self.changed()
        return sorted(s.number for s in held if s.miner == self._context.miner)

    def detach_local(self, path: LocalPath) -> list[int]:
        """Stop serving and indexing one of this host's paths (its files stay on disk);
        returns the sectors that had files in it."""
        self.local_paths = [p for p in self.local_paths if p.id != path.id]
        return self.detach_path(path.id)

    def _attach_local(self, path: LocalPath) -> list[int]:
        self.index.attach(path.meta, self.public_url + "/remote", path.stat())
        held = path.sectors()
        for sector, types in held.items():
            self.index.declare(path.id, sector, types, primary=path.meta.can_store)
        self.changed()
        return [s.number for s in held if s.miner == self._context.miner]

    async def health_loop(self) -> None:
        """Report the health of this host's paths to the index, every so often."""
        delay = FIRST_PATH_HEARTBEAT
        while True:
            await trio.sleep(delay)
            delay = PATH_HEARTBEAT_INTERVAL
            for path in self.local_paths:
                stat = await trio.to_thread.run_sync(path.stat)
                self.index.report_health(path.id, stat)
            self.changed()

    # ------------------------------------------------------------------ agents

    def agent_paths(self, report: WorkerReport,
                    serving: Callable[[], Collection[str]]) -> list[int]:
        """Index the paths an agent reported, with their health, and the sector files it
        declared in them (as it connects); returns the sectors whose files moved.

        ``serving`` gives the URLs of the connected agents: a reported path is reached only
        at those (and at this manager's), never at the address of an agent that is gone.
        It is asked at most once, and only for a path reached at more than one URL.
        """
        moved: set[int] = set()
        live: set[str] = set()

        def serving_now() -> set[str]:
            if not live:
                live.update(serving(), (report.remote_url, self.public_url + "/remote"))
            return live

        for path in report.paths:
            self.index.attach(path.meta, report.remote_url, path.stat, serving=serving_now)
            if path.error is not None or path.stat is None:
                self.index.report_health(path.meta.id, path.stat, path.error or "no stat")
            if path.sectors is not None:
                moved |= self._redeclare(path.meta.id, path.sectors,
                                         primary=path.meta.can_store)
        self.changed()
        return sorted(moved)

    def _redeclare(self, path_id: str, held: Mapping[SectorID, FileType], *,
                   primary: bool) -> set[int]:
        """Make the index hold exactly what an agent says its path holds (Lotus' storage
        redeclare): files the index lost (a move whose report never arrived) come back,
        files that are gone (deleted by a move) stop being offered."""
        indexed = self.index.sectors_in(path_id)
        changed = set()
        for sector in indexed.keys() | held.keys():
            have, known = held.get(sector, FileType(0)), indexed.get(sector, FileType(0))
            if known & ~have:
                self.index.drop(path_id, sector, known & ~have)
            if have & ~known:
                self.index.declare(path_id, sector, have & ~known, primary=primary)
            if have != known and sector.miner == self._context.miner:
                changed.add(sector.number)
        if changed:
            _log.info("storage redeclared", path=path_id, sectors=sorted(changed))
        return changed

    def moved(self, number: int, move: FileMove) -> None:
        """Index files an agent moved while preparing a task (``Sealing.StorageDeclare``):
        its new copies, and the holder's copies it had deleted.  ManagerError for a path
        the index does not know."""
        sector = SectorID(self._context.miner, number)
        for entries, change in ((move.declared, self.index.declare),
                                (move.dropped, self.index.drop)):
            for entry in entries:
                try:
                    change(entry.path_id, sector, entry.file_type)
                except StorageError as exc:
                    raise ManagerError(f"cannot record {entry.file_type.dir_name} of "
                                       f"{sector} in {entry.path_id}: {exc}") from None
        self.changed()

    def record(self, number: int, declared: Iterable[SectorFile],
               dropped: Iterable[SectorFile], *, stale: FileType) -> None:
        """Index the files a task left on an agent's paths and the copies it moved away.

        The ``stale`` file types a current task reports (those its phase writes) are the
        sector's copy of record: other copies of them are dropped from the index.  Other
        copies of files it only read stay indexed: they are as good, and a move to
        long-term storage deletes them.  Copies on a store path are primary (as when a
        path is attached or redeclared).
        """
        sector = SectorID(self._context.miner, number)

        def declare(path_id: str, sector: SectorID, file_type: FileType) -> None:
            primary = self.index.path(path_id).meta.can_store
            self.index.declare(path_id, sector, file_type,
                               exclusive=bool(file_type & stale), primary=primary)

        for entries, change in ((declared, declare), (dropped, self.index.drop)):
            for entry in entries:
                try:
                    change(entry.path_id, sector, entry.file_type)
                except StorageError as exc:
                    _log.warning("files reported on an unknown path", path=entry.path_id,
                                 error=str(exc), sector=number)
        self.changed()

    def fetch_list(self, phase: TaskKind, number: int,
                   local: frozenset[str]) -> tuple[FetchSource, ...]:
        """Inputs of ``phase`` an agent with paths ``local`` lacks, with a URL for each.

        A storage job is told of every copy outside the agent of each file it moves, even
        of a file it holds already (an earlier attempt fetched it, then was cut off before
        the holder deleted its copy) and of copies a move during sealing left behind: the
        agent fetches the first one it lacks and deletes every other, so none is left in
        a sealing path.
        """
        sector = SectorID(self._context.miner, number)
        fetch = []
        if isinstance(phase, StorageJob):
            for single in phase.moves.split():
                urls = dict.fromkeys(f"{loc.urls[0]}/{single.dir_name}/{sector.name}"
                                     for loc in self.index.find(sector, single)
                                     if loc.urls and loc.path_id not in local)
                fetch += [FetchSource(single, url) for url in urls]
            return tuple(fetch)
        for single in phase.reads.split():
            holders = [loc for loc in self.index.find(sector, single) if loc.urls]
            if not holders or any(loc.path_id in local for loc in holders):
                continue
            fetch.append(FetchSource(single,
                                     f"{holders[0].urls[0]}/{single.dir_name}/{sector.name}"))
        return tuple(fetch)

    def no_move_needed(self, number: int) -> str | None:
        """Why sector ``number``'s finalized files stay where they are, or None when they
        are to move to long-term storage: they are on a store path already (and on no
        other path: a move cut off before the holders deleted their copies is finished),
        or no store path (``CanStore``, weight > 0, taking sealed and cache files of this
        miner) is attached anywhere."""
        sector = SectorID(self._context.miner, number)
        held = self.index.find(sector, STORED_FILES)
        stored = [loc for loc in held if loc.can_store]
        if len(stored) == len(held) and all(any(single in loc.file_types for loc in stored)
                                            for single in STORED_FILES.split()):
            paths = ", ".join(sorted(loc.path_id for loc in stored))
            return f"sealed and cache already in long-term storage ({paths})"
        miner = self._context.miner
        if not any(r.meta.can_store and r.meta.weight > 0 and r.meta.allows(STORED_FILES)
                   and r.meta.allows_miner(miner) for r in self.index.paths()):
            where = ", ".join(sorted(loc.path_id for loc in held)) or "no indexed path"
            return f"no store path attached: sealed and cache stay in {where}"
        return None

    def move_groups(self, number: int) -> list[str] | None:
        """The storage groups sector ``number``'s sealed and cache may move to (the
        holders' ``AllowTo``), or None for any."""
        sector = SectorID(self._context.miner, number)
        holders = {loc.path_id for loc in self.index.find(sector, STORED_FILES)}
        groups = self.index.allowed_groups(holders)
        return None if groups is None else sorted(groups)

    async def check(self, number: int, proof: RegisteredSealProof) -> list[CopyCheck]:
        """Every indexed copy of sector ``number``'s files, looked at where it is stored
        (:mod:`sealagent.manager.sector_check`)."""
        return await check_copies(self.index, SectorID(self._context.miner, number), proof,
                                  self._token)

    def holders(self, number: int, file_type: FileType) -> list[str]:
        """The ids of the paths the index says hold ``file_type`` of sector ``number``."""
        sector = SectorID(self._context.miner, number)
        return [loc.path_id for loc in self.index.find(sector, file_type)]

    async def read_range(self, number: int, file_type: FileType, start: int,
                         length: int) -> tuple[bytes, str]:
        """Bytes ``[start, start + length)`` of sector ``number``'s ``file_type`` file from
        the first indexed copy that answers (read here, or with a ``/remote`` Range read
        at its host); returns them and the id of the path they came from.

        :raises SectorFileNotFoundError: the index holds no copy.
        :raises StorageError: no copy could be read (each one's reason is named).
        """
        sector = SectorID(self._context.miner, number)
        copies = self.index.find(sector, file_type)
        if not copies:
            raise SectorFileNotFoundError(f"no {file_type.dir_name} copy of {sector} is "
                                          "indexed")
        local = {p.id: p for p in self.local_paths}
        problems = []
        async with RemoteClient(self._token) as client:
            for copy in copies:
                try:
                    if copy.path_id in local:
                        path = local[copy.path_id].sector_path(file_type, sector)
                        data = await trio.to_thread.run_sync(_read_exact, path, start, length)
                    elif copy.urls:
                        data = await client.read_range(
                            f"{copy.urls[0]}/{file_type.dir_name}/{sector.name}", start, length)
                    else:
                        problems.append(f"{copy.path_id}: no URL")
                        continue
                    return data, copy.path_id
                except (StorageError, RPCTransportError, OSError) as exc:
                    problems.append(f"{copy.path_id}: {exc}")
        raise StorageError(f"no {file_type.dir_name} copy of {sector} could be read: "
                           + "; ".join(problems))

    async def prove(self, number: int, proof: RegisteredSealProof, comm_r: bytes,
                    randomness: bytes) -> tuple[list[int], list[ProofCheck]]:
        """Fresh challenges from ``randomness``, answered by every host holding sector
        ``number``'s sealed file and cache and verified against ``comm_r``
        (:mod:`sealagent.manager.sector_check`)."""
        return await prove_copies(self.index, SectorID(self._context.miner, number), proof,
                                  comm_r, randomness, self._token)

    def piece_url(self, source: str) -> str:
        """Where agents download the staged deal piece ``source``."""
        return f"{self.public_url}/remote/piece/{source}"

    # ---------------------------------------------------------------- removal

    async def remove(self, number: int, file_types: FileType = SECTOR_FILES) -> None:
        """Delete the sector's ``file_types`` files on every host that has them, and (when
        all of them go) its staged piece."""
        sector_id = SectorID(self._context.miner, number)
        local = {p.id: p for p in self.local_paths}
        async with RemoteClient(self._token) as client:
            for location in self.index.find(sector_id, file_types):
                for single in (location.file_types & file_types).split():
                    if location.path_id in local:
                        await trio.to_thread.run_sync(local[location.path_id].remove,
                                                      single, sector_id)
                    else:
                        if not location.urls:
                            raise StorageError(f"path {location.path_id} has no URL")
                        await client.delete(f"{location.urls[0]}/{single.dir_name}/"
                                            f"{sector_id.name}")
                    self.index.drop(location.path_id, sector_id, single)
        if self.staging is not None and file_types == SECTOR_FILES:
            await trio.to_thread.run_sync(self.staging.remove, FileType.PIECE, sector_id)

        save_index = self.saver()

        def forget(tx: Transaction) -> None:
            if file_types == SECTOR_FILES:
                sector_store.drop_blobs(tx, number)
            save_index(tx)

        await self._context.db.transaction(forget)


def _read_exact(path: Path, start: int, length: int) -> bytes:
    """``length`` bytes at ``start`` of a local file (StorageError when it is shorter)."""
    with open(path, "rb") as file:
        file.seek(start)
        data = file.read(length)
    if len(data) != length:
        raise StorageError(f"{path} holds {len(data)} of the {length} bytes at {start}")
    return data
