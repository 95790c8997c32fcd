"""Windows: agents wait for work here, the scheduler loop fills them.

An agent's ``Sealing.RequestWindow`` long-poll opens a window at the scheduler and waits;
the scheduler loop runs a pass whenever a task, a window or a worker changed, records the
placements (committed before any window is answered) and answers the waiting windows with
the assignments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import trio

from sealagent.errors import SchedulerError, SessionError
from sealagent.manager.context import ManagerContext
from sealagent.manager.files import SectorFiles
from sealagent.manager.task_book import TaskBook
from sealagent.manager.tasks import TaskRecord
from sealagent.protocol import Assignment
from sealagent.sched.scheduler import Scheduler
from sealagent.sched.windows import Placement
from sealagent.vocab.registry import resolve_proof
from sealagent.vocab.sectors import SectorID


@dataclass
class WindowWait:
    """A ``Sealing.RequestWindow`` call waiting for the scheduler."""

    window_id: int
    worker_id: str
    filled: trio.Event = field(default_factory=trio.Event)
    tasks: list[dict[str, Any]] = field(default_factory=list)


class WindowBroker:
    """The windows agents wait in, and the loop that fills them."""

    def __init__(self, context: ManagerContext, sched: Scheduler, tasks: TaskBook,
                 files: SectorFiles) -> None:
        self._context = context
        self._sched = sched
        self._tasks = tasks
        self._files = files
        self._waiting: dict[int, WindowWait] = {}

    async def wait(self, worker_id: str, wait_s: float) -> list[dict[str, Any]]:
        """Open a window for ``worker_id`` and wait up to ``wait_s`` for tasks in it."""
        context = self._context
        async with context.lock:
            try:
                window_id = self._sched.open_window(worker_id)
            except SchedulerError as exc:
                raise SessionError(f"{exc}; reconnect") from None
            waiter = self._waiting[window_id] = WindowWait(window_id, worker_id)
        context.sched_wake.set()
        try:
            with trio.move_on_after(max(0.0, wait_s)):
                await waiter.filled.wait()
        finally:
            with trio.CancelScope(shield=True):
                async with context.lock:
                    del self._waiting[window_id]
                    if not waiter.filled.is_set() and window_id in self._sched.open_windows:
                        self._sched.close_window(window_id)
        return waiter.tasks

    def close(self, worker_id: str) -> None:
        """Answer the worker's waiting windows with no task: their connection may be gone
        (a restarted agent), and tasks put there would be lost. Lock held."""
        for waiter in self._waiting.values():
            if waiter.worker_id == worker_id and not waiter.filled.is_set():
                if waiter.window_id in self._sched.open_windows:
                    self._sched.close_window(waiter.window_id)
                waiter.filled.set()

    async def run(self) -> None:
        """Run a scheduling pass whenever something changed."""
        while True:
            await self._context.sched_wake.wait()
            self._context.sched_wake.reset()
            await self.schedule_pass()

    async def schedule_pass(self) -> None:
        """One scheduling pass; placements are committed before any window is answered."""
        async with self._context.lock:
            if not self._sched.open_windows or not len(self._sched.queue):
                return
            placements = self._sched.schedule(self._files.view())
            if not placements:
                return
            assigned = await self._tasks.assign(placements)
            filled: dict[int, WindowWait] = {}
            for placement, record in zip(placements, assigned, strict=True):
                waiter = self._waiting[placement.window_id]
                waiter.tasks.append(self._assignment_json(record, placement))
                filled[placement.window_id] = waiter
            for waiter in filled.values():
                waiter.filled.set()

    def _assignment_json(self, task: TaskRecord, placement: Placement) -> dict[str, Any]:
        worker = self._sched.workers.get(placement.worker_id)
        local = worker.paths if worker is not None else frozenset()
        return Assignment(
            task_id=task.task_id, attempt=task.attempt, task_type=task.phase,
            sector=SectorID(self._context.miner, task.sector),
            proof=resolve_proof(task.proof), priority=task.priority, params=task.params,
            fetch=self._files.fetch_list(task.phase, task.sector, local),
            threads=placement.threads, gpu=placement.gpu).to_json()
