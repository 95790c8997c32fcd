"""The agents' side of the manager: connect, heartbeats, windows, task states, liveness.

A vanished agent's tasks that never started go back to the queue; a running one waits in
``ret-wait`` until the agent reconnects with it in its ``running`` list (re-attached) or
``[Sealing] ReattachTimeout`` passes (then it fails with a temporary error and the sector
retries the step).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from typing import Any, Final

import structlog
import trio

from sealagent.errors import (
    ManagerError,
    SchedulerError,
    SessionError,
)
from sealagent.manager.db import Transaction
from sealagent.manager.state import ServiceState, Session, WindowWait
from sealagent.manager.tasks import TaskState
from sealagent.manager.workers import WorkerReport
from sealagent.sched.windows import SchedWorker

LIVENESS_INTERVAL: Final = 0.5
"""Seconds between checks for silent agents."""
PATH_HEARTBEAT_INTERVAL: Final = 10.0
"""Seconds between health reports of the manager's own storage paths."""

_log = structlog.get_logger("sealagent.manager")


class AgentSessions(ServiceState):
    """``Sealing.WorkerConnect`` and friends, on top of :class:`ServiceState`."""

    async def task_state(self, session: str, task_id: str, attempt: int, state: str) -> None:
        """An agent says a task is ``prepared`` or ``running``."""
        current = self._session(session)
        self._touch(session)
        try:
            new_state = TaskState(state)
        except ValueError:
            raise ManagerError(f"state must be 'prepared' or 'running', got {state!r}") from None
        if new_state not in (TaskState.PREPARED, TaskState.RUNNING):
            raise ManagerError(f"state must be 'prepared' or 'running', got {state!r}")
        async with self._lock:
            task = self.tasks.get(task_id)
            if (task is None or task.attempt != attempt
                    or task.worker_id != current.worker_id or task.state is new_state
                    or task.state is TaskState.QUEUED):
                return
            if new_state is TaskState.PREPARED and task.state is not TaskState.ASSIGNED:
                return
            record = await self._move(task, new_state)
            if new_state is TaskState.RUNNING:
                self._left_window(task_id)
                self._start_running(record)

    async def connect(self, report: WorkerReport) -> dict[str, str]:
        """``Sealing.WorkerConnect``: (re)register an agent and reconcile its tasks."""
        async with self._lock:
            now = self.clock()
            worker_id = self.worker_ids.get(report.name) or str(uuid.uuid4())

            def write(tx: Transaction) -> None:
                tx.execute("INSERT INTO workers (worker_id, name, info, last_seen) "
                           "VALUES (?,?,?,?) ON CONFLICT (worker_id) DO UPDATE SET "
                           "info = excluded.info, last_seen = excluded.last_seen",
                           (worker_id, report.name, json.dumps({"url": report.url}), now))

            await self.db.transaction(write)
            self.worker_ids[report.name] = worker_id
            for old in [s for s, v in self.sessions.items() if v.worker_id == worker_id]:
                del self.sessions[old]
            self._close_windows(worker_id)
            session = Session(worker_id, str(uuid.uuid4()), report, now)
            self.sessions[session.session] = session
            self._update_worker(session)
            await self._reconcile(session, connecting=True)
            await self._save_index()
            _log.info("worker connected", worker=worker_id, name=report.name,
                      tasks=sorted(t.short for t in report.tasks))
            self._sched_wake.set()
            return {"worker_id": worker_id, "session": session.session}

    def _close_windows(self, worker_id: str) -> None:
        """Answer the long-polls of the worker's earlier sessions with no task: their
        connection may be gone (a restarted agent), and tasks put there would be lost."""
        for waiter in self._windows.values():
            if waiter.worker_id == worker_id and not waiter.filled.is_set():
                if waiter.window_id in self.sched.open_windows:
                    self.sched.close_window(waiter.window_id)
                waiter.filled.set()

    def _update_worker(self, session: Session) -> None:
        """Give the scheduler and the index the agent's latest report."""
        report = session.report
        self.sched.add_worker(SchedWorker(
            session.worker_id, report.resources, report.tasks,
            frozenset(p.meta.id for p in report.paths), report.hostname))
        for path in report.paths:
            self.index.attach(path.meta, report.remote_url, path.stat)
            if path.error is not None or path.stat is None:
                self.index.report_health(path.meta.id, path.stat, path.error or "no stat")
        self._view = None

    async def _reconcile(self, session: Session, *, connecting: bool) -> None:
        """Match the tasks given to this worker with what it says it holds. Lock held."""
        holds = session.report.running
        now = self.clock()
        known = set()
        for task in [t for t in self.tasks.values() if t.worker_id == session.worker_id]:
            if task.state is TaskState.QUEUED:
                continue
            known.add((task.task_id, task.attempt))
            if (task.task_id, task.attempt) in holds:
                if task.state is TaskState.RET_WAIT:
                    self._start_running(await self._move(task, TaskState.RUNNING))
                    _log.info("task re-attached", task=task.task_id, sector=task.sector)
                elif task.state is TaskState.RUNNING:
                    self._start_running(task)
                continue
            if not connecting and now - task.state_since < self.config.sealing.worker_timeout:
                continue
            if task.state.is_started:
                await self._end_task(task, f"worker {session.report.name} restarted",
                                     notify=False, temporary=True)
            else:
                await self._requeue(task, "the worker does not hold it")
        stale = {task_id for task_id, attempt in holds if (task_id, attempt) not in known}
        if stale:
            self.aborts.setdefault(session.worker_id, set()).update(stale)

    async def heartbeat(self, session_id: str, report: WorkerReport) -> list[str]:
        """``Sealing.WorkerHeartbeat``: fresh inventory in, tasks to abort out."""
        session = self._session(session_id)
        async with self._lock:
            session.report = replace(report, name=session.report.name)
            session.last_seen = self.clock()
            self._update_worker(session)
            await self._reconcile(session, connecting=False)
            aborts = sorted(self.aborts.pop(session.worker_id, set()))
        return aborts

    async def request_window(self, session_id: str, wait_s: float) -> list[dict[str, Any]]:
        """``Sealing.RequestWindow``: wait until the scheduler fills a window for the agent."""
        session = self._session(session_id)
        self._touch(session_id)
        async with self._lock:
            try:
                window_id = self.sched.open_window(session.worker_id)
            except SchedulerError as exc:
                raise SessionError(f"{exc}; reconnect") from None
            waiter = self._windows[window_id] = WindowWait(window_id, session.worker_id)
        self._sched_wake.set()
        try:
            with trio.move_on_after(max(0.0, wait_s)):
                await waiter.filled.wait()
        finally:
            with trio.CancelScope(shield=True):
                async with self._lock:
                    del self._windows[window_id]
                    if not waiter.filled.is_set() and window_id in self.sched.open_windows:
                        self.sched.close_window(window_id)
        self._touch(session_id)
        return waiter.tasks

    async def _liveness_loop(self) -> None:
        while True:
            await trio.sleep(LIVENESS_INTERVAL)
            async with self._lock:
                await self._check_liveness()
            if self.clock() - self._last_path_heartbeat >= PATH_HEARTBEAT_INTERVAL:
                self._last_path_heartbeat = self.clock()
                for path in self.local_paths:
                    stat = await trio.to_thread.run_sync(path.stat)
                    self.index.report_health(path.id, stat)
                self._view = None

    async def _check_liveness(self) -> None:
        """Drop silent agents and settle the tasks of agents that are gone. Lock held."""
        now = self.clock()
        timeout = self.config.sealing.worker_timeout
        for key, session in list(self.sessions.items()):
            if now - session.last_seen > timeout:
                del self.sessions[key]
                self._silent_since[session.worker_id] = session.last_seen
                self.sched.remove_worker(session.worker_id)
                _log.warning("worker lost", worker=session.worker_id,
                             name=session.report.name, silent_for=round(now - session.last_seen))
                self._sched_wake.set()
        connected = {s.worker_id for s in self.sessions.values()}
        for task in list(self.tasks.values()):
            if task.worker_id is None or task.worker_id in connected:
                continue
            silent = self._silent_since.get(task.worker_id, self._boot)
            gone_for = now - max(task.state_since, silent)
            if task.state in (TaskState.ASSIGNED, TaskState.PREPARED):
                if gone_for > timeout:
                    await self._requeue(task, "its worker is gone")
            elif task.state is TaskState.RUNNING:
                self._stop_running(task.task_id)
                await self._move(task, TaskState.RET_WAIT)
            elif (task.state is TaskState.RET_WAIT
                  and gone_for > self.config.sealing.reattach_timeout):
                await self._end_task(task, "its worker did not come back", notify=False,
                                     temporary=True)
