"""The manager's open tasks: the queue, the running tasks and those in ``ret-wait``.

:class:`TaskBook` mirrors the open rows of the ``tasks`` table and keeps the scheduler's
queue, the windows tasks wait in and the resources of running tasks in step with them.
Every method that changes a task runs with the manager's lock held and commits first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import structlog

from sealagent.errors import ManagerError
from sealagent.manager import fsm, pipeline, sector_store, tasks, unsealing
from sealagent.manager.context import ManagerContext
from sealagent.manager.db import Transaction
from sealagent.manager.files import SectorFiles
from sealagent.manager.fsm import SectorInfo
from sealagent.manager.metrics import ManagerMetrics
from sealagent.manager.mirror import Mirror
from sealagent.manager.reports import result_event
from sealagent.manager.sector_book import SectorBook
from sealagent.manager.tasks import ReportOutcome, TaskRecord, TaskState
from sealagent.phases import Commit1Result
from sealagent.protocol import COPYING_PHASES, FetchDone, Report
from sealagent.sched.fit import Need
from sealagent.sched.queue import SchedTask
from sealagent.sched.scheduler import Scheduler
from sealagent.sched.windows import Placement
from sealagent.task_kinds import TaskKind
from sealagent.units import size_str
from sealagent.vocab.sectors import FileType, SectorID

C1_OUTPUT = "c1_output"
"""The sector blob holding the Commit1 output."""

_log = structlog.get_logger("sealagent.manager")


@dataclass(frozen=True)
class RunningTask:
    """A running task's resources, to release when it ends."""

    worker_id: str
    need: Need


class TaskBook(Mirror[str, TaskRecord]):
    """Every open task by id, and what the scheduler holds for it."""

    def __init__(self, context: ManagerContext, sched: Scheduler, sectors: SectorBook,
                 files: SectorFiles, metrics: ManagerMetrics) -> None:
        super().__init__()
        self._context = context
        self._sched = sched
        self._sectors = sectors
        self._files = files
        self._metrics = metrics
        self._running: dict[str, RunningTask] = {}
        self.placed: dict[str, tuple[str, int]] = {}
        """``task_id → (worker_id, window_id)`` of tasks waiting in a window."""
        self._aborts: dict[str, set[str]] = {}

    def load(self, open_tasks: Sequence[TaskRecord]) -> None:
        """Start from the open tasks read from the database; queue the queued ones."""
        self._rows = {t.task_id: t for t in open_tasks}
        self._sched.add_tasks([self._sched_task(t) for t in open_tasks
                               if t.state is TaskState.QUEUED], self._files.view())

    async def withdraw_stale(self) -> None:
        """End the open tasks their sector no longer runs under the configuration in force
        (a queued C2 once ``[Proving] Snark`` is off); the sector's log says why.  Tasks
        admin calls asked for (Unseal) are outside the sector's flow and stay."""
        policy = self._context.policy
        for task in list(self._rows.values()):
            if task.phase in unsealing.REQUEST_PHASES:
                continue
            sector = self._sectors.get(task.sector)
            if sector is None or not fsm.still_expected(sector, task.task_id, task.phase,
                                                        policy):
                await self.end(task, "the configuration changed", notify=True)

    # ------------------------------------------------------------------ aborts

    @property
    def aborts(self) -> Mapping[str, set[str]]:
        """Tasks each worker must be told to drop, by worker id."""
        return self._aborts

    def tell_abort(self, worker_id: str, task_ids: Iterable[str]) -> None:
        """Tell ``worker_id`` at its next heartbeat to drop ``task_ids``."""
        self._aborts.setdefault(worker_id, set()).update(task_ids)

    def take_aborts(self, worker_id: str) -> list[str]:
        """The tasks ``worker_id`` must drop (told once)."""
        return sorted(self._aborts.pop(worker_id, set()))

    # ------------------------------------------------------------ scheduler side

    def _sched_task(self, task: TaskRecord) -> SchedTask:
        sector = self._sectors[task.sector]
        selector = pipeline.selector_for(
            task.phase, sector,
            disallow_remote_finalize=self._context.config.storage.disallow_remote_finalize)
        return SchedTask(task.task_id, task.phase.task_type, self._context.proof,
                         SectorID(self._context.miner, task.sector), task.priority, selector)

    def files_moved(self, numbers: Iterable[int]) -> None:
        """The index changed where these sectors' files are: let their queued tasks read
        where the files are again (selectors read it when a task is queued)."""
        self._files.changed()
        numbers = set(numbers)
        queued = [t.task_id for t in self._rows.values()
                  if t.sector in numbers and t.task_id in self._sched.queue]
        if queued:
            self._sched.refresh_locality(queued, self._files.view())
            self._context.sched_wake.set()

    def _left_window(self, task_id: str) -> None:
        """The task is no longer waiting in its window; release the window when empty."""
        placed = self.placed.pop(task_id, None)
        if placed is None:
            return
        worker_id, window_id = placed
        if any(w == placed for w in self.placed.values()):
            return
        worker = self._sched.workers.get(worker_id)
        if worker is not None and window_id in worker.assigned:
            self._sched.window_started(worker_id, window_id)

    def start_running(self, task: TaskRecord) -> None:
        """The task runs: it leaves its window and its resources count on its worker."""
        self._left_window(task.task_id)
        worker = self._sched.workers.get(task.worker_id or "")
        if worker is None or task.task_id in self._running:
            return
        need = worker.need(task.phase.task_type, self._context.proof)
        worker.active.add(task.task_id, need, worker.resources)
        self._running[task.task_id] = RunningTask(worker.worker_id, need)

    def running_counts(self) -> dict[str, dict[str, int]]:
        """Worker id → task type → tasks running there."""
        counts: dict[str, dict[str, int]] = {}
        for task_id, running in self._running.items():
            task = self._rows.get(task_id)
            if task is not None:
                per_type = counts.setdefault(running.worker_id, {})
                per_type[task.phase.task_type] = per_type.get(task.phase.task_type, 0) + 1
        return counts

    def stop_running(self, task_id: str) -> None:
        """Release the task's window and resources."""
        self._left_window(task_id)
        running = self._running.pop(task_id, None)
        if running is not None:
            worker = self._sched.workers.get(running.worker_id)
            if worker is not None:
                worker.active.free(task_id, running.need)
        self._context.sched_wake.set()

    # ------------------------------------------------------------------ changes

    async def move(self, task: TaskRecord, state: TaskState,
                   story: tuple[str, str] | None = None) -> TaskRecord:
        """Move an open task to another open state; ``story`` (kind, message) goes into
        the sector's log in the same transaction. Lock held."""
        now = self._context.clock()

        def write(tx: Transaction) -> TaskRecord:
            if story is not None:
                sector_store.add_log(tx, task.sector, *story, now)
            return tasks.move(tx, task, state, now)

        record = await self._context.db.transaction(write)
        self._rows[task.task_id] = record
        return record

    async def requeue(self, task: TaskRecord, why: str) -> None:
        """Put a task that never started back into the queue (the sector's log says
        ``why``). Lock held."""
        now = self._context.clock()

        def write(tx: Transaction) -> TaskRecord:
            sector_store.add_log(tx, task.sector, "TaskRequeued",
                                 f"{describe(task)} requeued: {why}", now)
            return tasks.requeue(tx, task, now)

        record = await self._context.db.transaction(write)
        self.stop_running(task.task_id)
        self._rows[task.task_id] = record
        self._sched.add_task(self._sched_task(record), self._files.view())
        _log.info("task requeued", sector=task.sector, task=task.task_id, why=why)

    async def end(self, task: TaskRecord, error: str, *, notify: bool,
                  temporary: bool = False) -> None:
        """Fail an open task (abort, lost worker) and tell its sector. Lock held."""
        now = self._context.clock()
        sector = self._sectors.get(task.sector)
        event = fsm.TaskFailed(task.phase, error, soft=temporary)
        new = None
        policy = self._context.policy
        if sector is not None and fsm.still_expected(sector, task.task_id, task.phase, policy):
            new, message = fsm.apply(sector, event, policy, now)
        elif sector is not None and sector.task_id == task.task_id:
            new, message = fsm.withdraw(sector, task.phase, error, policy)

        def write(tx: Transaction) -> TaskRecord:
            record = tasks.fail(tx, task, error, now)
            if new is None:
                sector_store.add_log(tx, task.sector, "TaskEnded",
                                     f"{describe(task)} ended: {error}", now)
            else:
                sector_store.save_sector(tx, new, now)
                sector_store.add_log(tx, new.number, event.name, message, now)
            return record

        await self._context.db.transaction(write)
        if task.worker_id is not None and task.state is not TaskState.QUEUED:
            self._metrics.observe_failure(task.worker_id, task.phase.task_type)
        if task.state is TaskState.QUEUED and task.task_id in self._sched.queue:
            self._sched.remove_task(task.task_id)
        self.stop_running(task.task_id)
        self._rows.pop(task.task_id, None)
        if new is not None:
            self._sectors.stored(new)
        if notify and task.worker_id is not None and task.state is not TaskState.QUEUED:
            self.tell_abort(task.worker_id, [task.task_id])
        _log.info("task ended", sector=task.sector, task=task.task_id, error=error)
        self._context.pipeline_wake.set()

    async def queue(self, sector: SectorInfo, phase: TaskKind,
                    params: Callable[[Transaction], dict[str, Any]], *,
                    requested: str | None = None) -> TaskRecord:
        """Create the sector's task for ``phase`` with ``params(tx)``. Lock held.

        With ``requested`` (why, for the sector's log) the task is an admin call's,
        outside the sector's state flow: the sector's ``task_id`` stays as it is.
        """
        now = self._context.clock()
        number = sector.number

        def write(tx: Transaction) -> tuple[TaskRecord, SectorInfo]:
            task = tasks.insert_task(tx, number, phase, sector.proof, sector.priority,
                                     params(tx), now)
            updated = sector
            if requested is None:
                updated = replace(sector, task_id=task.task_id)
                sector_store.save_sector(tx, updated, now)
            why = "" if requested is None else f": {requested}"
            sector_store.add_log(tx, number, "TaskQueued",
                                 f"{phase.label} task {task.task_id} queued{why}", now)
            return task, updated

        task, updated = await self._context.db.transaction(write)
        self._rows[task.task_id] = task
        self._sectors.stored(updated)
        self._sched.add_task(self._sched_task(task), self._files.view())
        _log.info("task queued", sector=number, task=task.task_id, phase=phase.label)
        self._context.sched_wake.set()
        return task

    async def assign(self, placements: Sequence[Placement]) -> list[TaskRecord]:
        """Record the scheduler's placements: each task is assigned in its window. Lock held."""
        now = self._context.clock()
        chosen = [(self._rows[p.task.task_id], p.worker_id) for p in placements]

        def write(tx: Transaction) -> list[TaskRecord]:
            records = []
            for task, worker_id in chosen:
                record = tasks.assign(tx, task, worker_id, now)
                worker = self._sched.workers.get(worker_id)
                host = worker.hostname if worker is not None else worker_id[:8]
                retry = " (a retry)" if record.attempt > 1 else ""
                sector_store.add_log(tx, record.sector, "TaskAssigned",
                                     f"{describe(record)} assigned to {host}{retry}", now)
                records.append(record)
            return records

        assigned = await self._context.db.transaction(write)
        for p, record in zip(placements, assigned, strict=True):
            self._rows[record.task_id] = record
            self.placed[record.task_id] = (p.worker_id, p.window_id)
            if record.attempt > 1:
                self._metrics.observe_retry(p.worker_id, record.phase.task_type)
            _log.info("task assigned", sector=record.sector, task=record.task_id,
                      worker=p.worker_id, attempt=record.attempt)
        return assigned

    async def abort(self, job_id: str, *, sched: bool) -> TaskRecord:
        """Fail the open task ``job_id`` (a unique prefix will do; ``sched``: only a queued
        one) and return it as it was. Lock held."""
        matches = [t for t in self._rows.values() if t.task_id.startswith(job_id)]
        exact = [t for t in matches if t.task_id == job_id]
        if exact:
            matches = exact
        if not matches:
            raise ManagerError(f"no open job matches {job_id!r}")
        if len(matches) > 1:
            raise ManagerError(f"{job_id!r} matches {len(matches)} jobs: "
                               + ", ".join(sorted(t.task_id for t in matches)))
        task = matches[0]
        if sched and task.state is not TaskState.QUEUED:
            raise ManagerError(f"{task.task_id} is not queued ({task.state}); "
                               "abort it without --sched")
        await self.end(task, "task aborted", notify=True)
        return task

    # ------------------------------------------------------------------ results

    async def finish(self, report: Report,
                     hostname: Callable[[str | None], str]) -> ReportOutcome:
        """Record a task's result and move its sector (``hostname`` names the worker).

        Idempotent by ``(task_id, attempt)``: a repeated or stale report is acknowledged
        without changing anything, though the files it declares are indexed.  The
        outcome, the sector's new state and log line, the Commit1 output and the storage
        index commit in one transaction.  Lock held.
        """
        now = self._context.clock()
        task = self._rows.get(report.task_id)
        current = (task is not None and task.attempt == report.attempt
                   and task.state is not TaskState.QUEUED)
        if task is not None:
            self._files.record(task.sector, report.declared, report.dropped,
                               stale=task.phase.writes
                               if current and task.phase not in COPYING_PHASES
                               else FileType(0))
            self.files_moved([task.sector])
        save_index = self._files.saver()
        if task is None or not current:
            outcome = await self._context.db.transaction(
                lambda tx: self._record(tx, report, now, save_index)[0])
            _log.info("report acknowledged again", task=report.task_id,
                      attempt=report.attempt, outcome=str(outcome))
            return outcome
        sector = self._sectors.get(task.sector)
        requested = task.phase in unsealing.REQUEST_PHASES
        event = None if requested else result_event(task.phase, report)
        new, message = None, ""
        if event is not None and sector is not None and sector.task_id == task.task_id:
            new, message = fsm.apply(sector, event, self._context.policy, now)
            message += f" [{hostname(task.worker_id)}]"

        def write(tx: Transaction) -> TaskRecord:
            outcome, record = self._record(tx, report, now, save_index)
            if outcome is not ReportOutcome.ACCEPTED:
                raise ManagerError(f"task {task.task_id} report was {outcome}")
            for done in report.fetched:
                sector_store.add_log(tx, task.sector, "FileFetched", fetch_story(
                    task, done, hostname(task.worker_id)), now)
            if requested:
                sector_store.add_log(tx, task.sector, *unsealing.result_story(
                    record, report, hostname(task.worker_id)), now)
            if new is not None and event is not None:
                if (isinstance(event, fsm.TaskSucceeded)
                        and isinstance(event.result, Commit1Result)):
                    sector_store.put_blob(tx, new.number, C1_OUTPUT, event.result.c1_output)
                sector_store.save_sector(tx, new, now)
                sector_store.add_log(tx, new.number, event.name, message, now)
            return record

        record = await self._context.db.transaction(write)
        self.stop_running(task.task_id)
        self._rows.pop(task.task_id, None)
        if new is not None:
            self._sectors.stored(new)
        for done in report.fetched:
            self._metrics.observe_fetch(done.file_type.dir_name, done.size, done.seconds)
        if not report.ok and task.worker_id is not None:
            self._metrics.observe_failure(task.worker_id, task.phase.task_type)
        if record.started_at is not None and record.finished_at is not None:
            self._metrics.observe_task(task.phase.task_type,
                                       record.finished_at - record.started_at,
                                       record.finished_at)
        _log.info("task finished", sector=task.sector, task=task.task_id, ok=report.ok,
                  error=report.error, kind=event.name if event is not None else "request")
        self._context.pipeline_wake.set()
        return ReportOutcome.ACCEPTED

    @staticmethod
    def _record(tx: Transaction, report: Report, now: float,
                save_index: Callable[[Transaction], None]) -> tuple[ReportOutcome, TaskRecord]:
        """Record the report's outcome and the storage index it changed."""
        save_index(tx)
        return tasks.record_report(tx, report.task_id, report.attempt, report.ok,
                                   report.result, report.error, now)


def describe(task: TaskRecord) -> str:
    """``PreCommit1 task t-3 (attempt 2)``: a task as the sector's log names it."""
    return f"{task.phase.label} task {task.task_id} (attempt {task.attempt})"


def fetch_story(task: TaskRecord, done: FetchDone, host: str) -> str:
    """A download of ``task``'s preparing as the sector's log tells it."""
    rate = f", {size_str(int(done.size / done.seconds))}/s" if done.seconds > 0 else ""
    return (f"{done.file_type.dir_name} fetched for {describe(task)} by {host} from "
            f"{done.url}: {size_str(done.size)} in {done.seconds:.2f}s{rate}")
