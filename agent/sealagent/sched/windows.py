"""Workers and their scheduling windows, as the scheduler sees them.

Each agent keeps two scheduling windows open at the manager (Lotus' ``SchedWindows = 2``).
A window is a bucket of tasks that would fit on the worker *if it were idle*: in a pass,
every open window starts from an empty accumulator, so a busy worker still gets a full
window of work queued behind what it runs (the agent prepares and starts it as its own
preparing/executing accounting allows).  A window that received at least one task is
handed to the agent and closes; an empty one stays open for the next pass.

A worker's load for the ``utilization`` assigner is, as in Lotus, the sum of the
utilization of what it runs (``active``), prepares (``preparing``), and of the windows it
was handed but has not started yet (``assigned``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from sealagent.errors import SchedulerError
from sealagent.sched.fit import ActiveResources, Need
from sealagent.sched.queue import SchedTask
from sealagent.sched.resources import WorkerResources
from sealagent.vocab.registry import RegisteredSealProof
from sealagent.vocab.tasks import SealTaskType, TaskType, parse_task_type

SCHED_WINDOWS = 2
"""Scheduling windows each agent keeps open."""


@dataclass(eq=False)
class SchedWindow:
    """A window handed to a worker: its tasks and what they add up to."""

    window_id: int
    worker_id: str
    allocated: ActiveResources = field(default_factory=ActiveResources)
    todo: list[SchedTask] = field(default_factory=list)


@dataclass(eq=False)
class SchedWorker:
    """A connected worker: its report, its enabled task types, its load."""

    worker_id: str
    resources: WorkerResources
    task_types: frozenset[TaskType]
    paths: frozenset[str] = frozenset()
    """Ids of the storage paths local to this worker."""
    hostname: str = ""
    enabled: bool = True
    ignore_resources: bool = False
    """True for the built-in agent under ``ResourceFiltering = "disabled"``."""
    active: ActiveResources = field(default_factory=ActiveResources)
    preparing: ActiveResources = field(init=False)
    assigned: dict[int, SchedWindow] = field(default_factory=dict)
    """Windows handed to the worker whose tasks have not all started yet."""
    _needs: dict[tuple[TaskType, RegisteredSealProof], tuple[Need, bool]] = field(
        default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        """Check the report; share ``active``'s task counters with ``preparing`` (as Lotus)."""
        if not isinstance(self.worker_id, str) or not self.worker_id:
            raise SchedulerError(f"worker id must be a non-empty string, got {self.worker_id!r}")
        self.preparing = ActiveResources(counters=self.active.counters)
        self.task_types = frozenset(parse_task_type(t) for t in self.task_types)
        self.paths = frozenset(self.paths)

    def need(self, task_type: TaskType, proof: RegisteredSealProof) -> Need:
        """What a ``(task_type, proof)`` task needs on this worker (cached)."""
        return self.need_idle(task_type, proof)[0]

    def need_idle(self, task_type: TaskType, proof: RegisteredSealProof) -> tuple[Need, bool]:
        """The need, and whether it fits this worker when idle (a fresh window)."""
        cached = self._needs.get((task_type, proof))
        if cached is None:
            res = self.resources.spec(proof, task_type)
            need = Need.resolve(SealTaskType(proof, task_type), res, self.resources)
            idle = (self.ignore_resources
                    or ActiveResources().resource_reject(need, self.resources) is None)
            cached = self._needs[(task_type, proof)] = (need, idle)
        return cached

    def utilization(self) -> float:
        """Load: active + preparing + every assigned window (each a max over resources)."""
        res = self.resources
        util = self.active.utilization(res) + self.preparing.utilization(res)
        return util + sum(w.allocated.utilization(res) for w in self.assigned.values())

    def count(self, seal_task: SealTaskType | None = None) -> int:
        """Tasks of ``seal_task`` (all when None) running, preparing or in assigned windows."""
        return self.active.count(seal_task) + sum(w.allocated.count(seal_task)
                                            for w in self.assigned.values())

    def count_type(self, task_type: TaskType) -> int:
        """Tasks of ``task_type`` (any proof) running, preparing or in assigned windows."""
        counters = [self.active.counters] + [w.allocated.counters for w in self.assigned.values()]
        return sum(len(ids) for c in counters for seal_task, ids in c.items()
                   if seal_task.task_type is task_type)


class Placement(NamedTuple):
    """One task placed in one window by a pass."""

    task: SchedTask
    worker_id: str
    window_id: int
    threads: int
    """CPU threads the task was accounted with (the child process gets this many)."""
    gpu: float
    """GPU fraction granted (0 when the worker has no GPU)."""


@dataclass(eq=False, slots=True)
class PassWindow:
    """An open window during one pass: its worker and what the pass put in it."""

    window_id: int
    worker: SchedWorker
    allocated: ActiveResources = field(default_factory=ActiveResources)
    util: float = 0.0
    """Utilization of ``allocated`` on the worker (kept up to date by the pass)."""
    todo: list[tuple[SchedTask, Need]] = field(default_factory=list)

    def __post_init__(self) -> None:
        """Start from the utilization of the (empty) accumulator."""
        self.util = self.allocated.utilization(self.worker.resources)

    def close(self) -> SchedWindow:
        """The window as handed to the worker, with its task counters filled in."""
        counters = self.allocated.counters
        for task, need in self.todo:
            ids = counters.setdefault(need.seal_task, {})
            ids[task.task_id] = ids.get(task.task_id, 0) + 1
        return SchedWindow(self.window_id, self.worker.worker_id, self.allocated,
                           [task for task, _ in self.todo])
