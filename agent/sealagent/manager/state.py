"""The manager's in-memory state and the task and sector changes shared by its parts.

:class:`ServiceState` is the base of :class:`~sealagent.manager.service.ManagerService`:
the agent-facing methods (:mod:`~sealagent.manager.sessions`) and the pipeline build on
the helpers here (apply an FSM event, requeue or end a task, account a running task).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import structlog
import trio

from sealagent.errors import (
    ManagerError,
    SessionError,
)
from sealagent.manager import fsm, pipeline, sector_store, tasks, views
from sealagent.manager.beacon import Beacon
from sealagent.manager.config import ManagerConfig
from sealagent.manager.db import Database, Transaction
from sealagent.manager.fsm import Event, Policy, SectorInfo, SectorState
from sealagent.manager.metrics import ManagerMetrics
from sealagent.manager.tasks import TaskRecord, TaskState
from sealagent.manager.workers import WorkerReport
from sealagent.sched.fit import Need
from sealagent.sched.queue import SchedTask
from sealagent.sched.scheduler import Scheduler
from sealagent.sched.storage_view import PathStat, StorageView
from sealagent.storage.index import StorageIndex
from sealagent.storage.paths import LocalPath
from sealagent.vocab.registry import default_proof
from sealagent.vocab.sectors import FileType, SectorID

INDEX_KEY: Final = "storage_index"
"""The ``meta`` key of the persisted storage index."""
C1_OUTPUT: Final = "c1_output"
"""The sector blob holding the Commit1 output."""

ProofChecker = Callable[[SectorInfo, int, bool, str], tuple[bool, str]]
"""``(sector, miner, snark, c1_output) -> (valid, message)``; runs in a worker thread."""

_log = structlog.get_logger("sealagent.manager")


@dataclass
class WindowWait:
    """A ``Sealing.RequestWindow`` call waiting for the scheduler."""

    window_id: int
    worker_id: str
    filled: trio.Event = field(default_factory=trio.Event)
    tasks: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Session:
    """A connected agent."""

    worker_id: str
    session: str
    report: WorkerReport
    last_seen: float


@dataclass(frozen=True)
class RunningTask:
    """A running task's resources, to release when it ends."""

    worker_id: str
    need: Need


class ServiceState:
    """What the manager holds in memory, and the changes every part of it makes.

    The sectors and open tasks mirror the database; the scheduler, the storage index and
    the sessions live only here and are rebuilt after a restart (the index from its
    persisted snapshot, sessions when agents reconnect).  Every change happens under
    :attr:`_lock` and is committed before it shows in memory.
    """

    def __init__(self, config: ManagerConfig, db: Database, beacon: Beacon, *,
                 token: str, proof_checker: ProofChecker,
                 local_paths: Sequence[LocalPath] = (), staging: LocalPath | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.db = db
        self.beacon = beacon
        self.token = token
        self.policy = Policy.from_config(config)
        self.miner = config.miner.actor_id
        self.proof = default_proof(config.miner.sector_size)
        self.local_paths = list(local_paths)
        self.staging = staging
        self.clock = clock
        self.public_url = ""
        self._check_proof = proof_checker
        self.sched = Scheduler(config.storage.assigner,
                               sector_affinity=config.storage.sector_affinity)
        self.index = StorageIndex(clock=clock)
        self.metrics = ManagerMetrics(lambda: views.metrics_snapshot(self))
        self.sectors: dict[int, SectorInfo] = {}
        self.tasks: dict[str, TaskRecord] = {}
        self.sessions: dict[str, Session] = {}
        self.worker_ids: dict[str, str] = {}
        self.aborts: dict[str, set[str]] = {}
        self._windows: dict[int, WindowWait] = {}
        self.task_windows: dict[str, tuple[str, int]] = {}
        self._running: dict[str, RunningTask] = {}
        self._busy: set[int] = set()
        self._lock = trio.Lock()
        self._pipeline_wake = trio.Event()
        self._sched_wake = trio.Event()
        self._view: StorageView | None = None
        self._boot = clock()
        self._silent_since: dict[str, float] = {}
        """When each disconnected worker was last heard of (the boot time after a restart)."""
        self._last_path_heartbeat = 0.0

    # ----------------------------------------------------------- storage view

    def view(self) -> StorageView:
        """The storage snapshot the scheduler reads (cached until the index changes)."""
        if self._view is None:
            paths: dict[str, PathStat] = {}
            sectors: dict[SectorID, dict[FileType, frozenset[str]]] = {}
            for record in self.index.paths():
                paths[record.id] = PathStat(record.id, record.meta.can_seal,
                                            record.meta.can_store, record.available,
                                            record.meta.weight, self.index.is_healthy(record.id))
                for sector, types in self.index.sectors_in(record.id).items():
                    held = sectors.setdefault(sector, {})
                    for single in types.split():
                        held[single] = held.get(single, frozenset()) | {record.id}
            self._view = StorageView(paths, sectors)
        return self._view

    def _files_moved(self, numbers: Iterable[int]) -> None:
        """The index changed where these sectors' files are: drop the cached view and
        let their queued tasks read where the files are again (selectors read it when a
        task is queued)."""
        self._view = None
        open_tasks = (self.sectors[n].task_id for n in numbers if n in self.sectors)
        queued = [t for t in open_tasks if t is not None and t in self.sched.queue]
        if queued:
            self.sched.refresh_locality(queued, self.view())
            self._sched_wake.set()

    async def _save_index(self, tx: Transaction | None = None) -> None:
        """Persist the storage index (inside ``tx`` when given)."""
        self._view = None
        snapshot = self.index.snapshot()
        if tx is not None:
            tx.set_meta(INDEX_KEY, snapshot)
        else:
            await self.db.transaction(lambda t: t.set_meta(INDEX_KEY, snapshot))

    # ---------------------------------------------------------------- sectors

    async def _commit_sector(self, sector: SectorInfo, kind: str, message: str,
                             extra: Callable[[Transaction], None] | None = None) -> None:
        """Write a sector and its log line (and ``extra``) in one transaction. Lock held."""
        now = self.clock()

        def write(tx: Transaction) -> None:
            sector_store.save_sector(tx, sector, now)
            sector_store.add_log(tx, sector.number, kind, message, now)
            if extra is not None:
                extra(tx)

        await self.db.transaction(write)
        self.sectors[sector.number] = sector
        _log.info(message, sector=sector.number, state=str(sector.state), kind=kind)
        self._pipeline_wake.set()

    async def _apply_locked(self, number: int, event: Event,
                            expect: SectorState | None = None) -> None:
        """Apply an FSM event to a sector (the lock is held by the caller)."""
        sector = self.sectors[number]
        if expect is not None and sector.state is not expect:
            _log.info("event dropped: the sector moved on", sector=number, kind=event.name,
                      state=str(sector.state))
            return
        new, message = fsm.apply(sector, event, self.policy, self.clock())
        await self._commit_sector(new, event.name, message)

    async def _apply(self, number: int, event: Event, expect: SectorState | None = None) -> None:
        async with self._lock:
            await self._apply_locked(number, event, expect)

    def _sector(self, number: int) -> SectorInfo:
        try:
            return self.sectors[number]
        except KeyError:
            raise ManagerError(f"no sector {number}") from None

    # ------------------------------------------------------------------- tasks

    def _sched_task(self, task: TaskRecord) -> SchedTask:
        sector = self.sectors[task.sector]
        selector = pipeline.selector_for(
            task.phase, sector,
            disallow_remote_finalize=self.config.storage.disallow_remote_finalize)
        return SchedTask(task.task_id, task.phase.task_type, self.proof,
                         SectorID(self.miner, task.sector), task.priority, selector)

    def _left_window(self, task_id: str) -> None:
        """The task is no longer waiting in its window; release the window when empty."""
        placed = self.task_windows.pop(task_id, None)
        if placed is None:
            return
        worker_id, window_id = placed
        if any(w == placed for w in self.task_windows.values()):
            return
        worker = self.sched.workers.get(worker_id)
        if worker is not None and window_id in worker.assigned:
            self.sched.window_started(worker_id, window_id)

    def _start_running(self, task: TaskRecord) -> None:
        worker = self.sched.workers.get(task.worker_id or "")
        if worker is None or task.task_id in self._running:
            return
        need = worker.need(task.phase.task_type, self.proof)
        worker.active.add(task.task_id, need, worker.resources)
        self._running[task.task_id] = RunningTask(worker.worker_id, need)

    def _stop_running(self, task_id: str) -> None:
        self._left_window(task_id)
        running = self._running.pop(task_id, None)
        if running is not None:
            worker = self.sched.workers.get(running.worker_id)
            if worker is not None:
                worker.active.free(task_id, running.need)
        self._sched_wake.set()

    async def _move(self, task: TaskRecord, state: TaskState) -> TaskRecord:
        """Move an open task to another open state. Lock held."""
        now = self.clock()

        def write(tx: Transaction) -> TaskRecord:
            return tasks.move(tx, task, state, now)

        record = await self.db.transaction(write)
        self.tasks[task.task_id] = record
        return record

    async def _requeue(self, task: TaskRecord, why: str) -> None:
        """Put a task that never started back into the queue. Lock held."""
        record = await self.db.transaction(lambda tx: tasks.requeue(tx, task, self.clock()))
        self._stop_running(task.task_id)
        self.tasks[task.task_id] = record
        self.sched.add_task(self._sched_task(record), self.view())
        _log.info("task requeued", sector=task.sector, task=task.task_id, why=why)

    async def _end_task(self, task: TaskRecord, error: str, *, notify: bool,
                        temporary: bool = False) -> None:
        """Fail an open task (abort, lost worker) and tell its sector. Lock held."""
        now = self.clock()
        sector = self.sectors.get(task.sector)
        event = fsm.TaskFailed(task.phase, error, soft=temporary)
        new = None
        if sector is not None and sector.task_id == task.task_id:
            new, message = fsm.apply(sector, event, self.policy, now)

        def write(tx: Transaction) -> TaskRecord:
            record = tasks.fail(tx, task, error, now)
            if new is not None:
                sector_store.save_sector(tx, new, now)
                sector_store.add_log(tx, new.number, event.name, message, now)
            return record

        await self.db.transaction(write)
        if task.state is TaskState.QUEUED and task.task_id in self.sched.queue:
            self.sched.remove_task(task.task_id)
        self._stop_running(task.task_id)
        self.tasks.pop(task.task_id, None)
        if new is not None:
            self.sectors[new.number] = new
        if notify and task.worker_id is not None and task.state is not TaskState.QUEUED:
            self.aborts.setdefault(task.worker_id, set()).add(task.task_id)
        _log.info("task ended", sector=task.sector, task=task.task_id, error=error)
        self._pipeline_wake.set()

    # ------------------------------------------------------------------ workers

    def _session(self, session: str) -> Session:
        found = self.sessions.get(session)
        if found is None:
            raise SessionError(f"unknown session {session!r}; reconnect")
        return found

    def _session_by_worker(self, worker_id: str) -> Session | None:
        return next((s for s in self.sessions.values() if s.worker_id == worker_id), None)

    def _touch(self, session: str) -> None:
        found = self.sessions.get(session)
        if found is not None:
            found.last_seen = self.clock()

    def hostname(self, worker_id: str | None) -> str:
        """The host name a worker reported (its id's first 8 characters when gone)."""
        found = self._session_by_worker(worker_id or "")
        return found.report.hostname if found else (worker_id or "")[:8]
