"""The agents' sessions: connect, heartbeats, windows, task states, liveness.

A vanished agent's tasks that never started go back to the queue; a running one waits in
``ret-wait`` until the agent reconnects with it in its ``running`` list (re-attached) or
``[Sealing] ReattachTimeout`` passes (then it fails with a temporary error and the sector
retries the step).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

import structlog
import trio

from sealagent.errors import ManagerError, SessionError
from sealagent.manager.context import ManagerContext
from sealagent.manager.db import Transaction
from sealagent.manager.files import SectorFiles
from sealagent.manager.task_book import TaskBook, describe
from sealagent.manager.tasks import TaskState
from sealagent.manager.window_broker import WindowBroker
from sealagent.manager.workers import WorkerReport
from sealagent.protocol import FileMove
from sealagent.sched.scheduler import Scheduler
from sealagent.sched.windows import SchedWorker
from sealagent.vocab.tasks import TaskType

LIVENESS_INTERVAL: Final = 0.5
"""Seconds between checks for silent agents."""

_log = structlog.get_logger("sealagent.manager")


@dataclass
class Session:
    """A connected agent."""

    worker_id: str
    session: str
    report: WorkerReport
    last_seen: float
    detached: set[str] = field(default_factory=set)
    """Paths the agent detached, left out of its reports until one no longer lists them
    (a heartbeat sent before the detach must not index them again)."""

    def take_report(self, report: WorkerReport) -> None:
        """Keep ``report`` (under the agent's first name), less its detached paths."""
        listed = {p.meta.id for p in report.paths}
        self.report = replace(report, name=self.report.name, paths=tuple(
            p for p in report.paths if p.meta.id not in self.detached))
        self.detached &= listed


class SessionRegistry:
    """The connected agents, the host names of every agent ever seen, and their liveness.

    An agent is known by the identity it brings (``worker_id``, kept in its repo); its
    name is only a label, so agents sharing a name never take each other's session.
    """

    def __init__(self, context: ManagerContext, sched: Scheduler, tasks: TaskBook,
                 files: SectorFiles, windows: WindowBroker) -> None:
        self._context = context
        self._sched = sched
        self._tasks = tasks
        self._files = files
        self._windows = windows
        self._sessions: dict[str, Session] = {}
        self._hosts: dict[str, str] = {}
        self._silent_since: dict[str, float] = {}
        """When each disconnected worker was last heard of."""
        self._boot = context.clock()
        """When this manager started: a worker unheard of since is silent since then."""

    def load(self, hosts: Mapping[str, str]) -> None:
        """Start from the workers known to the database (``worker_id → host name``)."""
        self._hosts = dict(hosts)
        self._boot = self._context.clock()

    # ----------------------------------------------------------------- lookups

    @property
    def sessions(self) -> Mapping[str, Session]:
        """The connected agents by session id."""
        return self._sessions

    def find(self, session: str) -> Session:
        """The session ``session``; SessionError (reconnect) when it is unknown."""
        found = self._sessions.get(session)
        if found is None:
            raise SessionError(f"unknown session {session!r}; reconnect")
        return found

    def touch(self, session: str) -> None:
        """The agent of ``session`` was heard of now."""
        found = self._sessions.get(session)
        if found is not None:
            found.last_seen = self._context.clock()

    def by_worker(self, worker_id: str) -> Session | None:
        """The session of a connected worker."""
        return next((s for s in self._sessions.values() if s.worker_id == worker_id), None)

    def lost(self) -> dict[str, float]:
        """Workers that dropped off and did not come back: worker id → last heard of."""
        connected = {s.worker_id for s in self._sessions.values()}
        return {w: t for w, t in self._silent_since.items() if w not in connected}

    def hostname(self, worker_id: str | None) -> str:
        """The host name a worker reported, also once it is gone (its id's first 8
        characters for a worker never seen)."""
        found = self.by_worker(worker_id or "")
        if found is not None:
            return found.report.hostname
        return self._hosts.get(worker_id or "", (worker_id or "")[:8])

    def offers(self, task_type: TaskType) -> bool:
        """True when a connected agent runs ``task_type``."""
        return any(task_type in s.report.tasks for s in self._sessions.values())

    # --------------------------------------------------------------- agent calls

    async def connect(self, report: WorkerReport) -> dict[str, str]:
        """``Sealing.WorkerConnect``: (re)register an agent and reconcile its tasks."""
        context = self._context
        async with context.lock:
            now = context.clock()
            worker_id = report.worker_id

            def write(tx: Transaction) -> None:
                tx.execute("INSERT INTO workers (worker_id, name, info, last_seen) "
                           "VALUES (?,?,?,?) ON CONFLICT (worker_id) DO UPDATE SET "
                           "name = excluded.name, info = excluded.info, "
                           "last_seen = excluded.last_seen",
                           (worker_id, report.name,
                            json.dumps({"url": report.url, "hostname": report.hostname}), now))

            await context.db.transaction(write)
            self._hosts[worker_id] = report.hostname
            for old in [s for s, v in self._sessions.items() if v.worker_id == worker_id]:
                del self._sessions[old]
            self._windows.close(worker_id)
            session = Session(worker_id, str(uuid.uuid4()), report, now)
            self._sessions[session.session] = session
            self._update_worker(session)
            await self._reconcile(session, connecting=True)
            await self._files.save()
            _log.info("worker connected", worker=worker_id, name=report.name,
                      tasks=sorted(t.short for t in report.tasks))
            self._warn_shared_cores(session)
            context.sched_wake.set()
            return {"worker_id": worker_id, "session": session.session}

    def _warn_shared_cores(self, session: Session) -> None:
        """Log once per connection when the agent may use another agent's CPU cores."""
        others = sorted(o.report.name for o in self._sessions.values()
                        if o.worker_id != session.worker_id
                        and session.report.shares_cores_with(o.report))
        if others:
            _log.warning("agents on one machine share CPU cores; each counts them, so the "
                         "scheduler overcommits them (give each agent its own cores)",
                         worker=session.worker_id, name=session.report.name, others=others,
                         cpus=len(session.report.cpu_set))

    def _update_worker(self, session: Session) -> list[int]:
        """Give the scheduler and the index the agent's latest report; returns the
        sectors whose files moved."""
        report = session.report
        self._sched.add_worker(SchedWorker(
            session.worker_id, report.resources, report.tasks,
            frozenset(p.meta.id for p in report.paths), report.hostname))
        moved = self._files.agent_paths(
            report, lambda: {s.report.remote_url for s in self._sessions.values()})
        self._tasks.files_moved(moved)
        return moved

    async def _reconcile(self, session: Session, *, connecting: bool) -> None:
        """Match the tasks given to this worker with what it says it holds. Lock held."""
        holds = session.report.running
        now = self._context.clock()
        known = set()
        for task in [t for t in self._tasks.values() if t.worker_id == session.worker_id]:
            if task.state is TaskState.QUEUED:
                continue
            known.add((task.task_id, task.attempt))
            if (task.task_id, task.attempt) in holds:
                if task.state is TaskState.RET_WAIT:
                    story = ("TaskReattached", f"{describe(task)} re-attached: "
                             f"{session.report.hostname} is back and still runs it")
                    self._tasks.start_running(
                        await self._tasks.move(task, TaskState.RUNNING, story))
                    _log.info("task re-attached", task=task.task_id, sector=task.sector)
                elif task.state is TaskState.RUNNING:
                    self._tasks.start_running(task)
                continue
            if (not connecting
                    and now - task.state_since < self._context.config.sealing.worker_timeout):
                continue
            if task.state.is_started:
                await self._tasks.end(task, f"worker {session.report.name} restarted",
                                      notify=False, temporary=True)
            else:
                await self._tasks.requeue(task, "the worker does not hold it")
        stale = {task_id for task_id, attempt in holds if (task_id, attempt) not in known}
        if stale:
            self._tasks.tell_abort(session.worker_id, stale)

    async def heartbeat(self, session_id: str, report: WorkerReport) -> list[str]:
        """``Sealing.WorkerHeartbeat``: fresh inventory in, tasks to abort out."""
        session = self.find(session_id)
        async with self._context.lock:
            session.take_report(report)
            session.last_seen = self._context.clock()
            self._update_worker(session)
            await self._reconcile(session, connecting=False)
            return self._tasks.take_aborts(session.worker_id)

    async def redeclare(self, session_id: str, report: WorkerReport) -> list[int]:
        """``Sealing.WorkerRedeclare``: the agent's report listing every sector file in its
        paths; the index holds exactly those files, on disk, before the answer.  Returns
        the sectors whose files changed."""
        session = self.find(session_id)
        async with self._context.lock:
            session.take_report(report)
            session.last_seen = self._context.clock()
            moved = self._update_worker(session)
            await self._files.save()
            return moved

    async def detach_path(self, session_id: str, path_id: str, *, force: bool) -> None:
        """``Sealing.WorkerDetachPath``: drop one of the agent's paths from the index, on
        disk, before the agent stops using it.  Refused while the path holds the only
        indexed copy of a sector's file, unless ``force``."""
        session = self.find(session_id)
        async with self._context.lock:
            if path_id not in {p.meta.id for p in session.report.paths}:
                raise ManagerError(f"worker {session.report.name} reports no path {path_id}")
            sole = self._files.refuse_sole_copies(
                path_id, f"path {path_id} of worker {session.report.name}", force=force)
            self._leave_out(session, path_id)
            self._tasks.files_moved(self._files.detach_path(path_id))
            await self._files.save()
        _log.warning("storage path detached", path=path_id, worker=session.worker_id,
                     sole_copies=sole)

    def path_detached(self, worker_id: str, path_id: str) -> None:
        """The manager detached one of its own paths, which the agent ``worker_id`` (its
        built-in agent) reports too: leave it out of that agent's reports from now on.
        Lock held."""
        for session in list(self._sessions.values()):
            if session.worker_id == worker_id and any(
                    p.meta.id == path_id for p in session.report.paths):
                self._leave_out(session, path_id)

    def _leave_out(self, session: Session, path_id: str) -> None:
        """Drop ``path_id`` from the agent's report, and from those still on their way."""
        session.detached.add(path_id)
        session.take_report(session.report)
        self._update_worker(session)

    async def declare_files(self, session_id: str, number: int, move: FileMove) -> None:
        """``Sealing.StorageDeclare``: an agent moved sector files (a fetch); the index
        records the new copies and the removed ones, on disk, before the agent deletes
        the source copy."""
        self.find(session_id)
        self.touch(session_id)
        async with self._context.lock:
            self._files.moved(number, move)
            await self._files.save()
            self._tasks.files_moved([number])

    async def leave(self, session_id: str) -> None:
        """``Sealing.WorkerLeave``: an agent stops.  Its session ends now rather than after
        ``WorkerTimeout``; the tasks it still runs wait for it in ``ret-wait``."""
        session = self.find(session_id)
        async with self._context.lock:
            self._drop(session_id, self._context.clock())
            await self._check_liveness()
        _log.info("worker left", worker=session.worker_id, name=session.report.name)

    async def request_window(self, session_id: str, wait_s: float) -> list[dict[str, Any]]:
        """``Sealing.RequestWindow``: wait until the scheduler fills a window for the agent."""
        session = self.find(session_id)
        self.touch(session_id)
        tasks = await self._windows.wait(session.worker_id, wait_s)
        self.touch(session_id)
        return tasks

    async def task_state(self, session: str, task_id: str, attempt: int, state: str) -> None:
        """``Sealing.TaskState``: an agent says a task is ``prepared`` or ``running``."""
        current = self.find(session)
        self.touch(session)
        try:
            new_state = TaskState(state)
        except ValueError:
            raise ManagerError(f"state must be 'prepared' or 'running', got {state!r}") from None
        if new_state not in (TaskState.PREPARED, TaskState.RUNNING):
            raise ManagerError(f"state must be 'prepared' or 'running', got {state!r}")
        async with self._context.lock:
            task = self._tasks.get(task_id)
            if (task is None or task.attempt != attempt
                    or task.worker_id != current.worker_id or task.state is new_state
                    or task.state is TaskState.QUEUED):
                return
            if new_state is TaskState.PREPARED and task.state is not TaskState.ASSIGNED:
                return
            record = await self._tasks.move(task, new_state)
            if new_state is TaskState.RUNNING:
                self._tasks.start_running(record)

    # ----------------------------------------------------------------- liveness

    async def liveness_loop(self) -> None:
        """Check for silent agents every :data:`LIVENESS_INTERVAL` seconds."""
        while True:
            await trio.sleep(LIVENESS_INTERVAL)
            await self.check_liveness()

    async def check_liveness(self) -> None:
        """Drop silent agents and settle the tasks of agents that are gone."""
        async with self._context.lock:
            await self._check_liveness()

    def _drop(self, key: str, silent_since: float) -> None:
        """Forget a session; the liveness check settles its worker's tasks. Lock held."""
        session = self._sessions.pop(key)
        self._silent_since[session.worker_id] = silent_since
        self._sched.remove_worker(session.worker_id)
        self._context.sched_wake.set()

    async def _check_liveness(self) -> None:
        now = self._context.clock()
        sealing = self._context.config.sealing
        for key, session in list(self._sessions.items()):
            if now - session.last_seen > sealing.worker_timeout:
                self._drop(key, session.last_seen)
                _log.warning("worker lost", worker=session.worker_id,
                             name=session.report.name, silent_for=round(now - session.last_seen))
        connected = {s.worker_id for s in self._sessions.values()}
        for task in list(self._tasks.values()):
            if task.worker_id is None or task.worker_id in connected:
                continue
            silent = self._silent_since.get(task.worker_id, self._boot)
            gone_for = now - max(task.state_since, silent)
            if task.state in (TaskState.ASSIGNED, TaskState.PREPARED):
                if gone_for > sealing.worker_timeout:
                    await self._tasks.requeue(task, "its worker is gone")
            elif task.state is TaskState.RUNNING:
                self._tasks.stop_running(task.task_id)
                story = ("TaskRetWait", f"{describe(task)} waits for its worker "
                         f"{self.hostname(task.worker_id)} to come back (ret-wait, up to "
                         f"{sealing.reattach_timeout:g}s)")
                await self._tasks.move(task, TaskState.RET_WAIT, story)
            elif task.state is TaskState.RET_WAIT and gone_for > sealing.reattach_timeout:
                await self._tasks.end(task, "its worker did not come back", notify=False,
                                      temporary=True)
