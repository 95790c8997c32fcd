"""The sealing manager service: the Trio loops around the pure pieces.

:class:`ManagerService` holds the in-memory mirror of what the database stores (sectors,
open tasks) plus the scheduler (:class:`~sealagent.sched.scheduler.Scheduler`), the storage
index and the agents' sessions.  Three loops run:

- the *pipeline* loop asks the state machine what each sector needs
  (:func:`~sealagent.manager.fsm.next_step`) and does it: queue a task, draw a ticket or a
  seed, submit a message, check a proof, remove files;
- the *scheduler* loop runs a pass whenever a task, a window or a worker changed, records
  the assignments and answers the waiting windows;
- the *liveness* loop notices agents that went silent (their tasks that never started go
  back to the queue, running ones wait in ``ret-wait`` for the agent to come back) and
  heartbeats the manager's own storage paths.

Every change is committed to SQLite before it is acknowledged or acted upon; one
:class:`trio.Lock` serialises the changes, so the mirror always equals the database.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, Final

import structlog
import trio

from sealagent.errors import (
    InvalidInputError,
    ManagerError,
    SealAgentError,
    StorageError,
)
from sealagent.manager import fsm, pipeline, reports, sector_store, tasks, views
from sealagent.manager.beacon import ChainMessage, RandomnessTag, miner_entropy
from sealagent.manager.db import Transaction
from sealagent.manager.fsm import Event, SectorInfo, SectorState
from sealagent.manager.sessions import AgentSessions
from sealagent.manager.staging import file_size, stage_piece
from sealagent.manager.state import C1_OUTPUT, INDEX_KEY, WindowWait
from sealagent.manager.tasks import ReportOutcome, TaskRecord, TaskState
from sealagent.phases import Phase
from sealagent.proofs.pieces import PieceInfo, check_unpadded_piece_size
from sealagent.sched.windows import Assignment
from sealagent.storage.fetch import RemoteClient
from sealagent.storage.index import StorageIndex
from sealagent.storage.paths import LocalPath
from sealagent.vocab.sectors import SECTOR_FILES, FileType, SectorID

MAX_SLEEP: Final = 5.0
"""Longest the pipeline loop sleeps without a wake-up."""

_log = structlog.get_logger("sealagent.manager")


class ManagerService(AgentSessions):
    """The manager: sectors, their pipeline, the scheduler; :mod:`.api` exposes it."""

    # ------------------------------------------------------------------ startup

    async def load(self) -> None:
        """Read sectors, open tasks, workers and the storage index from the database."""
        def read(tx: Transaction) -> tuple[Any, ...]:
            workers = tx.query("SELECT worker_id, name FROM workers")
            return (sector_store.load_sectors(tx), tasks.open_tasks(tx),
                    {r["name"]: r["worker_id"] for r in workers}, tx.get_meta(INDEX_KEY))

        sectors, open_tasks, worker_ids, snapshot = await self.db.transaction(read)
        self.sectors, self.worker_ids = sectors, worker_ids
        if snapshot is not None:
            self.index = StorageIndex.from_snapshot(snapshot, clock=self.clock)
        self.tasks = {t.task_id: t for t in open_tasks}
        self.sched.add_tasks([self._sched_task(t) for t in open_tasks
                              if t.state is TaskState.QUEUED], self.view())
        self._boot = self.clock()
        _log.info("manager state loaded", sectors=len(sectors), open_tasks=len(open_tasks))

    def set_public_url(self, url: str) -> None:
        """Where agents reach this manager; attaches the local paths at ``<url>/remote``."""
        self.public_url = url.rstrip("/")
        for path in self.local_paths:
            self._attach_local(path)

    def _attach_local(self, path: LocalPath) -> None:
        self.index.attach(path.meta, self.public_url + "/remote", path.stat())
        held = path.sectors()
        for sector, types in held.items():
            self.index.declare(path.id, sector, types, primary=path.meta.can_store)
        self._files_moved(s.number for s in held if s.miner == self.miner)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        """Run the pipeline, scheduler and liveness loops until cancelled."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._pipeline_loop, nursery)
            nursery.start_soon(self._scheduler_loop)
            nursery.start_soon(self._liveness_loop)
            self.poke()
            task_status.started()

    def poke(self) -> None:
        """Wake the pipeline and the scheduler."""
        self._pipeline_wake.set()
        self._sched_wake.set()

    async def pledge(self) -> int:
        """Start a committed-capacity sector; returns its number."""
        return await self._create_sector(lambda number: pipeline.pledge_pieces(self.proof),
                                         SectorState.PACKING)

    async def add_piece(self, path: str, cid: str, size: int) -> int:
        """Start a deal sector holding the piece at ``path`` (on this host).

        The file (at most ``size`` bytes, zero-padded to ``size``, which must be
        ``127·2^k``) is copied into the staging area and its CommP checked against ``cid``.
        """
        try:
            check_unpadded_piece_size(size)
            expected = PieceInfo.from_cid(cid, (size // 127) * 128)
        except InvalidInputError as exc:
            raise ManagerError(f"bad piece: {exc}") from None
        if expected.size > self.proof.sector_size:
            raise ManagerError(f"a {size}-byte piece does not fit a "
                               f"{self.proof.sector_size}-byte sector")
        source = Path(path)
        length = await trio.to_thread.run_sync(file_size, source)
        if length is None:
            raise ManagerError(f"{path}: no such file on the manager's host")
        if length > size:
            raise ManagerError(f"{path} has {length} bytes, more than the {size}-byte piece")
        if self.staging is None:
            raise ManagerError("this manager has no staging area for pieces")
        staging = self.staging

        def build(number: int) -> tuple[fsm.SectorPiece, ...]:
            return pipeline.deal_pieces(self.proof, expected, SectorID(self.miner, number).name)

        async def stage(number: int) -> None:
            target = staging.sector_path(FileType.PIECE, SectorID(self.miner, number))
            found = await trio.to_thread.run_sync(stage_piece, source, target, size)
            if found != expected:
                target.unlink(missing_ok=True)
                raise ManagerError(f"CommP mismatch: {path} has {found.cid}, "
                                   f"expected {expected.cid}")

        return await self._create_sector(build, SectorState.ADD_PIECE, stage)

    async def _create_sector(self, pieces: Callable[[int], tuple[fsm.SectorPiece, ...]],
                             state: SectorState, prepare: Any = None) -> int:
        number = await self.db.transaction(sector_store.allocate_number)
        if prepare is not None:
            await prepare(number)
        sector = SectorInfo(number=number, proof=int(self.proof), state=state,
                            pieces=pieces(number))
        async with self._lock:
            await self._commit_sector(sector, "SectorStart",
                                      f"sector created with {len(sector.pieces)} piece(s)")
        return number

    async def remove_sector(self, number: int) -> None:
        """Remove a sector: abort its task, then delete its files everywhere."""
        async with self._lock:
            sector = self._sector(number)
            task_id = sector.task_id
            await self._apply_locked(number, fsm.RemoveRequested())
            if task_id is not None and task_id in self.tasks:
                await self._end_task(self.tasks[task_id], "sector removed", notify=True)

    # ---------------------------------------------------------------- pipeline

    async def _pipeline_loop(self, nursery: trio.Nursery) -> None:
        while True:
            self._pipeline_wake = trio.Event()
            wake_at = await self._advance_all(nursery)
            delay = min(MAX_SLEEP, max(0.0, wake_at - self.clock()))
            with trio.move_on_after(delay):
                await self._pipeline_wake.wait()

    async def _advance_all(self, nursery: trio.Nursery) -> float:
        """Do every sector's next step; returns when something next becomes due."""
        wake_at = self.clock() + MAX_SLEEP
        for number in sorted(self.sectors):
            for _ in range(32):
                if number in self._busy:
                    break
                step = fsm.next_step(self.sectors[number], self.policy, self.clock(),
                                     self.beacon.head())
                due = await self._do_step(number, step, nursery)
                if due is not None:
                    wake_at = min(wake_at, due)
                    break
        return wake_at

    async def _do_step(self, number: int, step: fsm.Step, nursery: trio.Nursery) -> float | None:
        """Do one step; returns when to look again (None = look again now)."""
        if isinstance(step, fsm.Idle):
            return float("inf")
        if isinstance(step, fsm.WaitUntil):
            return step.at
        if isinstance(step, fsm.WaitEpoch):
            return self.beacon.time_of(step.epoch)
        if isinstance(step, fsm.RunTask):
            queued = await self._queue_task(number, step.phase)
            return None if queued else float("inf")
        if isinstance(step, fsm.Emit):
            await self._apply(number, step.event)
            return None
        if isinstance(step, fsm.DrawTicket | fsm.DrawSeed):
            tag = (RandomnessTag.SEAL_RANDOMNESS if isinstance(step, fsm.DrawTicket)
                   else RandomnessTag.INTERACTIVE_SEAL_CHALLENGE_SEED)
            value = self.beacon.draw(tag, step.epoch, miner_entropy(self.miner)).hex()
            event: Event = (fsm.TicketDrawn(value, step.epoch)
                            if isinstance(step, fsm.DrawTicket)
                            else fsm.SeedDrawn(value, step.epoch))
            await self._apply(number, event)
            return None
        self._busy.add(number)
        nursery.start_soon(self._background_step, number, step)
        return float("inf")

    async def _background_step(self, number: int, step: fsm.Step) -> None:
        """Run a step that may take long (chain, proof check, deletions) outside the lock.

        The sector stays busy until the step's event is applied, so the step never runs
        twice (a message is never submitted twice).
        """
        state = self.sectors[number].state
        try:
            try:
                event = await self._step_event(number, step)
            except Exception as exc:  # any failure becomes the step's failure event
                _log.warning("step failed", sector=number, step=type(step).__name__,
                             error=str(exc), exc_info=not isinstance(exc, SealAgentError))
                event = _failure_event(step, str(exc) if isinstance(exc, SealAgentError)
                                       else f"{type(exc).__name__}: {exc}")
            await self._apply(number, event, expect=state)
        finally:
            self._busy.discard(number)
            self._pipeline_wake.set()

    async def _step_event(self, number: int, step: fsm.Step) -> Event:
        sector = self.sectors[number]
        if isinstance(step, fsm.SubmitPreCommit):
            expected = await trio.to_thread.run_sync(pipeline.expected_comm_d, sector.proof,
                                                     sector.pieces)
            if expected != sector.comm_d:
                return fsm.BadCommitment(f"CommD {sector.comm_d} does not match the pieces "
                                         f"({expected})")
            landed = await self.beacon.submit(ChainMessage(
                "precommit", self.miner, number,
                {"comm_r": sector.comm_r, "comm_d": sector.comm_d,
                 "ticket_epoch": sector.ticket_epoch}))
            return fsm.PreCommitLanded(landed)
        if isinstance(step, fsm.SubmitCommit):
            landed = await self.beacon.submit(ChainMessage(
                "commit", self.miner, number,
                {"proof": sector.seal_proof, "snark": sector.seal_proof is not None}))
            return fsm.CommitLanded(landed)
        if isinstance(step, fsm.CheckProof):
            c1 = await self.db.transaction(
                lambda tx: sector_store.get_blob(tx, number, C1_OUTPUT))
            valid, message = await trio.to_thread.run_sync(
                self._check_proof, sector, self.miner, step.snark, c1)
            return fsm.ProofChecked(valid, message)
        if isinstance(step, fsm.RemoveFiles):
            await self._remove_files(number)
            return fsm.FilesRemoved()
        raise ManagerError(f"no handler for step {step!r}")  # pragma: no cover

    async def _remove_files(self, number: int) -> None:
        """Delete the sector's files on every host that has them, and its staged piece."""
        sector_id = SectorID(self.miner, number)
        local = {p.id: p for p in self.local_paths}
        async with RemoteClient(self.token) as client:
            for location in self.index.find(sector_id, SECTOR_FILES):
                for single in location.file_types.split():
                    if location.path_id in local:
                        await trio.to_thread.run_sync(local[location.path_id].remove,
                                                      single, sector_id)
                    else:
                        if not location.urls:
                            raise StorageError(f"path {location.path_id} has no URL")
                        await client.delete(f"{location.urls[0]}/{single.dir_name}/"
                                            f"{sector_id.name}")
                    self.index.drop(location.path_id, sector_id, single)
        if self.staging is not None:
            await trio.to_thread.run_sync(self.staging.remove, FileType.PIECE, sector_id)

        def forget(tx: Transaction) -> None:
            sector_store.drop_blobs(tx, number)
            tx.set_meta(INDEX_KEY, self.index.snapshot())

        self._view = None
        await self.db.transaction(forget)

    async def _queue_task(self, number: int, phase: Phase) -> bool:
        """Create the sector's task for ``phase`` unless one is open; True if created."""
        async with self._lock:
            sector = self.sectors[number]
            if sector.task_id is not None or fsm.expected_task(sector, self.policy) is not phase:
                return False
            now = self.clock()
            piece_url = None
            if phase is Phase.ADD_PIECE:
                piece = sector.pieces[sector.next_piece or 0]
                if piece.source is not None:
                    piece_url = f"{self.public_url}/remote/piece/{piece.source}"

            def write(tx: Transaction) -> tuple[TaskRecord, SectorInfo]:
                c1 = sector_store.get_blob(tx, number, C1_OUTPUT) \
                    if phase is Phase.COMMIT2 else None
                params = pipeline.task_params(phase, self.miner, sector, piece_url=piece_url,
                                              c1_output=c1)
                task = tasks.insert_task(tx, number, phase, sector.proof, sector.priority,
                                         params, now)
                updated = replace(sector, task_id=task.task_id)
                sector_store.save_sector(tx, updated, now)
                sector_store.add_log(tx, number, "TaskQueued",
                                     f"{phase.label} task {task.task_id} queued", now)
                return task, updated

            task, updated = await self.db.transaction(write)
            self.tasks[task.task_id] = task
            self.sectors[number] = updated
            self.sched.add_task(self._sched_task(task), self.view())
            _log.info("task queued", sector=number, task=task.task_id, phase=phase.label)
            if not any(phase.task_type in s.report.tasks
                       for s in self.sessions.values()):
                _log.warning("no connected worker can run this task yet", sector=number,
                             task=task.task_id, task_type=phase.task_type)
            self._sched_wake.set()
            return True

    async def _scheduler_loop(self) -> None:
        while True:
            await self._sched_wake.wait()
            self._sched_wake = trio.Event()
            await self._schedule_pass()

    async def _schedule_pass(self) -> None:
        """One scheduling pass; assignments are committed before any window is answered."""
        async with self._lock:
            if not self.sched.open_windows or not len(self.sched.queue):
                return
            assignments = self.sched.schedule(self.view())
            if not assignments:
                return
            now = self.clock()

            def write(tx: Transaction) -> list[TaskRecord]:
                return [tasks.assign(tx, self.tasks[a.task.task_id], a.worker_id, now)
                        for a in assignments]

            assigned = await self.db.transaction(write)
            filled: dict[int, WindowWait] = {}
            for a, record in zip(assignments, assigned, strict=True):
                self.tasks[record.task_id] = record
                self.task_windows[record.task_id] = (a.worker_id, a.window_id)
                waiter = self._windows[a.window_id]
                waiter.tasks.append(self._assignment_json(record, a))
                filled[a.window_id] = waiter
                _log.info("task assigned", sector=record.sector, task=record.task_id,
                          worker=a.worker_id, attempt=record.attempt)
            for waiter in filled.values():
                waiter.filled.set()

    def _assignment_json(self, task: TaskRecord, a: Assignment) -> dict[str, Any]:
        return {"task_id": task.task_id, "attempt": task.attempt,
                "task_type": task.phase.task_type,
                "sector": {"miner": self.miner, "number": task.sector}, "proof": task.proof,
                "priority": task.priority, "params": task.params,
                "fetch": self._fetch_list(task, a.worker_id), "threads": a.threads,
                "gpu": a.gpu}

    def _fetch_list(self, task: TaskRecord, worker_id: str) -> list[dict[str, str]]:
        """Inputs of the task the worker lacks locally, with a URL to download each."""
        session = self._session_by_worker(worker_id)
        local = {p.meta.id for p in session.report.paths} if session else set()
        sector = SectorID(self.miner, task.sector)
        fetch = []
        for single in task.phase.reads.split():
            holders = [loc for loc in self.index.find(sector, single) if loc.urls]
            if not holders or any(loc.path_id in local for loc in holders):
                continue
            fetch.append({"file_type": single.dir_name,
                          "url": f"{holders[0].urls[0]}/{single.dir_name}/{sector.name}"})
        return fetch

    async def abort(self, job_id: str, *, sched: bool) -> dict[str, Any]:
        """``sealing abort``: fail a job (``sched``: only a queued one) found by id prefix."""
        async with self._lock:
            matches = [t for t in self.tasks.values() if t.task_id.startswith(job_id)]
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
            await self._end_task(task, "task aborted", notify=True)
            host = self.hostname(task.worker_id)
            return {"task_id": task.task_id, "sector": task.sector,
                    "task_type": task.phase.short, "state": str(task.state), "host": host}

    # ----------------------------------------------------------------- results

    async def report_result(self, session: str, data: Mapping[str, Any]) -> ReportOutcome:
        """Record a task result (idempotent by ``(task_id, attempt)``) and move the sector.

        Everything (the task's outcome, the sector's new state and log line, the Commit1
        output, the files the task declared or dropped) commits in one transaction.
        """
        report = reports.parse_report(data)
        self._touch(session)
        async with self._lock:
            now = self.clock()
            task = self.tasks.get(report.task_id)
            current = (task is not None and task.attempt == report.attempt
                       and task.state is not TaskState.QUEUED)
            if task is not None:
                self._record_files(task.sector, report, of_record=current)
            if task is None or not current:
                outcome = await self.db.transaction(
                    lambda tx: self._record(tx, report, now)[0])
                _log.info("report acknowledged again", task=report.task_id,
                          attempt=report.attempt, outcome=str(outcome))
                return outcome
            sector = self.sectors.get(task.sector)
            event = reports.result_event(task, report)
            new, message = None, ""
            if sector is not None and sector.task_id == task.task_id:
                new, message = fsm.apply(sector, event, self.policy, now)
                message += f" [{self.hostname(task.worker_id)}]"

            def write(tx: Transaction) -> TaskRecord:
                outcome, record = self._record(tx, report, now)
                if outcome is not ReportOutcome.ACCEPTED:
                    raise ManagerError(f"task {task.task_id} report was {outcome}")
                if new is not None:
                    if isinstance(event, fsm.TaskSucceeded) and task.phase is Phase.COMMIT1:
                        sector_store.put_blob(tx, new.number, C1_OUTPUT,
                                              str(event.result[C1_OUTPUT]))
                    sector_store.save_sector(tx, new, now)
                    sector_store.add_log(tx, new.number, event.name, message, now)
                return record

            record = await self.db.transaction(write)
            self._stop_running(task.task_id)
            self.tasks.pop(task.task_id, None)
            if new is not None:
                self.sectors[new.number] = new
            if record.started_at is not None and record.finished_at is not None:
                self.metrics.observe_task(task.phase.task_type,
                                          record.finished_at - record.started_at)
            _log.info("task finished", sector=task.sector, task=task.task_id, ok=report.ok,
                      error=report.error, kind=event.name)
            self._pipeline_wake.set()
            return ReportOutcome.ACCEPTED

    def _record(self, tx: Transaction, report: reports.Report,
                now: float) -> tuple[ReportOutcome, TaskRecord]:
        """Record the report's outcome and the storage index it changed."""
        tx.set_meta(INDEX_KEY, self.index.snapshot())
        return tasks.record_report(tx, report.task_id, report.attempt, report.ok,
                                   report.result, report.error, now)

    def _record_files(self, number: int, report: reports.Report, *, of_record: bool) -> None:
        """Index the files a task left on an agent's paths and the copies it moved away.

        The files a current task reports are the sector's copy of record: other copies
        of those file types (left behind by a copying fetch) are dropped from the index.
        A repeated report of an older attempt only adds what it declares.
        """
        sector = SectorID(self.miner, number)
        declare = partial(self.index.declare, exclusive=of_record)
        for entries, change in ((report.declared, declare),
                                (report.dropped, self.index.drop)):
            for path_id, file_type in entries:
                try:
                    change(path_id, sector, file_type)
                except StorageError as exc:
                    _log.warning("files reported on an unknown path", path=path_id,
                                 error=str(exc), sector=number)
        self._files_moved([number])

    async def sector_status(self, number: int, with_log: bool) -> dict[str, Any]:
        """Everything about one sector (``sectors status``)."""
        sector = self._sector(number)
        data = sector.to_json()
        data.update(views.sector_summary(self, sector))
        data["proof_name"] = self.proof.name
        data["snark"] = self.policy.snark
        if with_log:
            data["log"] = await self.db.transaction(
                lambda tx: sector_store.sector_log(tx, number))
        return data

    async def attach_local(self, path: LocalPath) -> None:
        """Serve a storage path of this host and index it."""
        async with self._lock:
            if path.id not in {p.id for p in self.local_paths}:
                self.local_paths.append(path)
            if self.public_url:
                self._attach_local(path)
            await self._save_index()


def _failure_event(step: fsm.Step, error: str) -> Event:
    """The event that reports a failed background step."""
    if isinstance(step, fsm.SubmitPreCommit | fsm.SubmitCommit):
        return fsm.MessageFailed(error)
    if isinstance(step, fsm.CheckProof):
        return fsm.ProofChecked(False, f"proof check failed: {error}")
    return fsm.RemoveFailedEvent(error)
