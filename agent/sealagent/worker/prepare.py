"""The preparing window: make a task's sector files local before it runs.

A task enters the preparing window when it fits there (the same fit check as the
executing window; its task counters are shared with the executing window, so
``MaxConcurrent`` counts a task once).  Preparing then:

1. finds each file the phase uses in this agent's paths;
2. picks the sealing path for the files the phase creates or downloads and reserves their
   space there (:class:`~sealagent.errors.NoSpaceError` when it is not free);
3. downloads every file the manager listed in the assignment's ``fetch`` and that is not
   here yet, from the holder's ``/remote``.  At most ``--parallel-fetch-limit`` downloads
   run at once (shared by all tasks), and their progress is visible in
   :attr:`Preparer.progress` and in the log;
4. completes the move, as Lotus' sealing fetches do, in an order that survives a crash
   at any point (an Unseal's fetches are copies and stop before it,
   :data:`~sealagent.protocol.COPYING_PHASES`): the new copy is declared to the manager
   (``Sealing.StorageDeclare``, acknowledged once the storage index is on disk), then the
   holder deletes its copy (a
   stale copy must not serve a later task once this one rewrote the files), then the
   removal is declared too (and named again in the task's report).  Until the manager
   has recorded the new copy the old one stays; a holder that cannot be reached keeps
   its copy, and the task goes on.

The move to long-term storage (:attr:`~sealagent.task_kinds.StorageJob.MOVE_STORAGE`) is
done entirely here: its destination is the best ``CanStore`` path (by available space ×
``Weight``, accepting sealed and cache files, in the groups the holders' ``AllowTo``
names), files held by a peer are fetched into it as above, and files in another path of
this agent are renamed into it (copied, then deleted, across filesystems).  It takes the
sealed file and the cache, and the unsealed copy where one was kept unless the path's
``AllowTypes``/``DenyTypes`` refuse it (the copy then stays where it is).  No phase runs
afterwards; :attr:`Prepared.moved` says what moved.

Commit1 and Commit2 skip the preparing window, as in Lotus: C1 runs where the files are,
C2 needs none; they only get their paths resolved (:meth:`Preparer.locate`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import structlog
import trio

from sealagent.errors import SealAgentError, SectorFileNotFoundError, StorageError
from sealagent.phases import SectorPaths
from sealagent.protocol import Assignment, FetchDone, SectorFile
from sealagent.sched.fit import ActiveResources
from sealagent.sched.resources import WorkerResources
from sealagent.storage.fetch import RemoteClient
from sealagent.storage.paths import LocalPath, Reservation, move_sector_file
from sealagent.task_kinds import MOVED_FILES, STORED_FILES, MoveResult, StorageJob
from sealagent.vocab.sectors import FileType
from sealagent.worker.execute import resolve_need
from sealagent.worker.local_storage import LocalStorage

Announce = Callable[[Assignment, Sequence[SectorFile], Sequence[SectorFile]], Awaitable[None]]
"""Declares moved files to the manager: ``(assignment, declared, dropped)``."""

PROGRESS_LOG_STEP = 0.25
"""Log a download's progress every time it passes another quarter."""

_log = structlog.get_logger(__name__)


@dataclass
class FetchProgress:
    """Bytes received so far of one task's downloads (``total`` None while unknown)."""

    file_type: str
    done: int = 0
    total: int | None = None
    _logged: float = field(default=0.0, repr=False)

    def update(self, done: int, total: int | None) -> None:
        """Record a chunk; logs every :data:`PROGRESS_LOG_STEP` of the total."""
        self.done, self.total = done, total
        if total:
            fraction = done / total
            if fraction >= self._logged + PROGRESS_LOG_STEP or done == total:
                self._logged = fraction
                _log.info("fetching", file_type=self.file_type, done=done, total=total,
                          percent=round(100 * fraction))


@dataclass
class Prepared:
    """A prepared task: its file paths and the space reserved for what it will write."""

    paths: SectorPaths
    reservation: Reservation | None = None
    dropped: tuple[SectorFile, ...] = ()
    """Copies at peers that were moved here."""
    fetched: tuple[FetchDone, ...] = ()
    """The downloads that brought them."""
    store: LocalPath | None = None
    """The long-term storage path a move to storage puts the files in."""
    moved: MoveResult | None = None
    """What a move to storage did, once done."""

    def release(self) -> None:
        """Give the reserved space back (the files now hold it)."""
        if self.reservation is not None:
            self.reservation.release()


class Preparer:
    """Prepares tasks for one agent."""

    def __init__(self, storage: LocalStorage, remote: RemoteClient, worker: WorkerResources,
                 *, counters: ActiveResources, scratch: Path, announce: Announce,
                 ignore_resources: bool = False,
                 observe_fetch: Callable[[FetchDone], None] = lambda done: None) -> None:
        """
        :param storage: this agent's paths.
        :param announce: declares moved files to the manager (raises when it could not).
        :param scratch: a directory for the unused paths of tasks that place no file.
        :param remote: the ``/remote`` client (its limiter is ``--parallel-fetch-limit``).
        :param worker: the hardware the agent reported (the fit check's capacity).
        :param counters: the accumulator whose task counters the executing window shares.
        :param ignore_resources: accept every task (MaxConcurrent still applies).
        :param observe_fetch: told of every finished download (the agent's metrics).
        """
        self.storage = storage
        self.announce = announce
        self.scratch = scratch
        self.remote = remote
        self.worker = worker
        self.ignore_resources = ignore_resources
        self.observe_fetch = observe_fetch
        self.preparing = ActiveResources(counters=counters.counters)
        self.progress: dict[str, FetchProgress] = {}
        self._accounted = 0
        self._freed = trio.Event()

    @contextlib.asynccontextmanager
    async def slot(self, assignment: Assignment) -> AsyncIterator[None]:
        """Wait until ``assignment`` fits in the preparing window; hold it in the body."""
        need = resolve_need(assignment, self.worker)
        while self._accounted and not self.preparing.can_handle(
                assignment.key, need, self.worker, self.ignore_resources):
            await self._freed.wait()
        self.preparing.add(assignment.key, need, self.worker)
        self._accounted += 1
        try:
            yield
        finally:
            self._accounted -= 1
            self.preparing.free(assignment.key, need)
            self._freed.set()
            self._freed = trio.Event()

    async def locate(self, assignment: Assignment) -> Prepared:
        """Resolve the task's paths and reserve space for the files it will create.

        :raises SectorFileNotFoundError: an input of the phase is not on this agent.
        """
        prepared = await trio.to_thread.run_sync(self._locate, assignment)
        await self._check_inputs(assignment, prepared)
        return prepared

    async def _check_inputs(self, assignment: Assignment, prepared: Prepared) -> None:
        missing = [t.dir_name for t in assignment.phase.reads.split()
                   if not await trio.to_thread.run_sync(_exists, _path_of(prepared.paths, t))]
        if missing:
            prepared.release()
            raise SectorFileNotFoundError(
                f"{assignment.phase.label} of {assignment.sector} needs its "
                f"{', '.join(missing)} file(s), which are not on this agent")

    def _locate(self, assignment: Assignment) -> Prepared:
        """Paths, and space in the best sealing path for files to create or download.

        A task that places no file (C1, C2, Finalize) needs no sealing path; the paths of
        files it does not have then point into the scratch directory, unused.
        """
        if isinstance(assignment.phase, StorageJob):
            return self._locate_store(assignment)
        sector = assignment.sector
        placed = FileType(0)
        for file_type in (assignment.phase.creates | assignment.fetched).split():
            if self.storage.find(file_type, sector) is None:
                placed |= file_type
        if not placed:
            return Prepared(self.storage.sector_paths(sector, self.scratch))
        seal = self.storage.best_for(placed, assignment.proof, sector)
        reservation = seal.reserve_sector(sector, placed, assignment.proof)
        return Prepared(self.storage.sector_paths(sector, seal.root), reservation)

    def _locate_store(self, assignment: Assignment) -> Prepared:
        """The store path for a move to storage, with space reserved for what is not in
        it yet; the paths all point into it."""
        sector = assignment.sector
        groups = assignment.params.get("allow_to")
        store = self.storage.best_for(STORED_FILES, assignment.proof, sector, store=True,
                                      groups=None if groups is None else list(groups))
        moving = FileType(0)
        for file_type in _moving(store).split():
            here = self.storage.find(file_type, sector) is not None
            if not store.has(file_type, sector) and (here or file_type & assignment.fetched):
                moving |= file_type
        reservation = (store.reserve_sector(sector, moving, assignment.proof, sealing=False)
                       if moving else None)
        return Prepared(SectorPaths.under(store.root, assignment.sector_ref), reservation,
                        store=store)

    def _move_here(self, assignment: Assignment, prepared: Prepared) -> None:
        """Rename (or copy, then delete) the files another path of this agent holds into
        the store path; completes :attr:`Prepared.moved` and :attr:`Prepared.dropped`."""
        store, sector = prepared.store, assignment.sector
        assert store is not None
        size = sum(f.size for f in prepared.fetched)
        sources = [f.url for f in prepared.fetched]
        dropped = list(prepared.dropped)
        for file_type in _moving(store).split():
            for holder in self.storage.paths():
                if holder.id == store.id or not holder.has(file_type, sector):
                    continue
                size += move_sector_file(holder, store, file_type, sector)
                sources.append(str(holder.sector_path(file_type, sector)))
                dropped.append(SectorFile(holder.id, file_type))
                _log.info("moved to long-term storage", file_type=file_type.dir_name,
                          source=str(holder.root), dest=str(store.root))
        prepared.dropped = tuple(dropped)
        stored = tuple(t for t in MOVED_FILES.split() if store.has(t, sector))
        prepared.moved = MoveResult(stored, store.id, str(store.root), size, tuple(sources))

    async def prepare(self, assignment: Assignment) -> Prepared:
        """Locate the task's files and fetch the missing ones; returns their paths.

        :raises RPCTransportError, AuthError, SectorFileNotFoundError, StorageError: a
            download failed (see :mod:`sealagent.storage.fetch`); the reservation is
            released.
        """
        prepared = await trio.to_thread.run_sync(self._locate, assignment)
        dropped: list[SectorFile] = []
        fetched: list[FetchDone] = []
        try:
            for source in assignment.fetch:
                if prepared.store is not None and not prepared.store.meta.allows(
                        source.file_type):
                    continue  # an unsealed copy the store path does not take stays
                dest = _path_of(prepared.paths, source.file_type)
                if await trio.to_thread.run_sync(_exists, dest):
                    if prepared.store is not None:  # an earlier attempt fetched it
                        dropped += await self._drop_source(assignment, source.url,
                                                           source.file_type, strict=True)
                    continue
                progress = FetchProgress(source.file_type.dir_name)
                self.progress[assignment.task_id] = progress
                started = trio.current_time()
                try:
                    received = await self.remote.fetch(source.url, dest,
                                                       progress=progress.update)
                finally:
                    del self.progress[assignment.task_id]
                done = FetchDone(source.file_type, source.url, received,
                                 trio.current_time() - started)
                fetched.append(done)
                self.observe_fetch(done)
                _log.info("fetched", file_type=source.file_type.dir_name, bytes=received,
                          source=source.url, seconds=round(done.seconds, 3))
                if assignment.moves_inputs:
                    dropped += await self._drop_source(assignment, source.url,
                                                       source.file_type,
                                                       strict=prepared.store is not None)
        except BaseException:
            prepared.release()
            raise
        prepared.dropped = tuple(dropped)
        prepared.fetched = tuple(fetched)
        if prepared.store is not None:
            try:
                await trio.to_thread.run_sync(self._move_here, assignment, prepared)
            except BaseException:
                prepared.release()
                raise
        await self._check_inputs(assignment, prepared)
        return prepared

    async def _drop_source(self, assignment: Assignment, url: str, file_type: FileType, *,
                           strict: bool = False) -> list[SectorFile]:
        """Complete a move: declare the new copy, delete the holder's, declare that; returns
        where it was removed from.  Any step that fails leaves the holder's copy (and the
        index entry for it) in place: a copy too many, never one too few.

        :param strict: re-raise when the holder's copy is kept (a move to long-term
            storage must not end with a copy left in a sealing path: it fails, and its
            retry deletes the copy).
        """
        here = await trio.to_thread.run_sync(self._copies_here, assignment, file_type)
        try:
            await self.announce(assignment, here, ())
        except SealAgentError as exc:
            _log.warning("source copy kept: the manager did not record the new one",
                         source=url, error=str(exc))
            if strict:
                raise
            return []
        keep = [p.id for p in self.storage.paths()]
        try:
            removed = await self.remote.delete(url, keep=keep)
        except SealAgentError as exc:
            _log.warning("source copy kept", source=url, error=str(exc))
            if strict:
                raise
            return []
        dropped = [SectorFile(path_id, file_type) for path_id in removed]
        try:
            await self.announce(assignment, (), dropped)
        except SealAgentError as exc:
            _log.warning("removal of the source copy not declared yet (the report will)",
                         source=url, error=str(exc))
        return dropped

    def _copies_here(self, assignment: Assignment, file_type: FileType) -> list[SectorFile]:
        return [SectorFile(p.id, file_type)
                for p in self.storage.paths() if p.has(file_type, assignment.sector)]


def _moving(store: LocalPath) -> FileType:
    """What a move to ``store`` takes: the sealed file and the cache, and the unsealed copy
    (where one exists) unless the path's ``AllowTypes``/``DenyTypes`` refuse it."""
    taken = STORED_FILES
    for file_type in (MOVED_FILES & ~STORED_FILES).split():
        if store.meta.allows(file_type):
            taken |= file_type
    return taken


def _path_of(paths: SectorPaths, file_type: FileType) -> str:
    by_type = {FileType.UNSEALED: paths.unsealed, FileType.SEALED: paths.sealed,
               FileType.CACHE: paths.cache}
    try:
        return by_type[file_type]
    except KeyError:
        raise StorageError(f"cannot fetch {file_type.dir_name} files for a sealing "
                           "task") from None


def _exists(path: str) -> bool:
    return Path(path).exists()
