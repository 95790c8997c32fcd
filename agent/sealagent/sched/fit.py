"""Resource accounting and the fit check (Lotus' ``ActiveResources`` / ``CanHandleRequest``).

The fit check runs in Lotus' order, and the first failing step is the reason:

1. ``MaxConcurrent`` – the (proof, task type) counter already holds the limit of other
   tasks;
2. a worker that ignores resources (``ResourceFiltering = "disabled"``) accepts;
3. physical memory – ``MinMemory + BaseMinMemory`` must fit in ``MemPhysical`` minus the
   accumulated ``MinMemory`` (the OS's own usage is not subtracted here);
4. virtual memory – ``MaxMemory + BaseMinMemory`` must fit in ``MemPhysical + MemSwap``
   minus the larger of the accumulated ``MaxMemory`` and the worker's used RAM + swap;
5. threads – accumulated threads + the task's threads (92 % rule, GPU variant) must not
   exceed the worker's CPUs;
6. GPU – only when the worker has GPUs and the task uses one: accumulated
   ``GPUUtilization`` + the task's must not exceed the number of GPUs (fractions allowed).

``BaseMinMemory`` is part of every check but never accumulated.
"""

from __future__ import annotations

import enum
from collections.abc import Hashable
from dataclasses import dataclass, field

from sealagent.sched.resources import Resources, WorkerResources
from sealagent.vocab.tasks import SealTaskType


class Reject(enum.Enum):
    """Why a task does not fit (the first failing step of the fit check)."""

    MAX_CONCURRENT = "max-concurrent"
    PHYSICAL_MEMORY = "physical-memory"
    VIRTUAL_MEMORY = "virtual-memory"
    THREADS = "threads"
    GPU = "gpu"


@dataclass(frozen=True, slots=True)
class Need:
    """One task's resources resolved against one worker (threads and GPU decided)."""

    seal_task: SealTaskType
    resources: Resources
    threads: int
    gpu: float
    """GPU fraction accounted (``GPUUtilization``, whether or not the worker has a GPU)."""
    physical: int
    """``MinMemory + BaseMinMemory``: what the physical-memory step needs."""
    virtual: int
    """``MaxMemory + BaseMinMemory``: what the virtual-memory step needs."""
    gpu_checked: bool
    """True when the GPU step applies (the worker has GPUs and the task uses one)."""

    @classmethod
    def resolve(cls, seal_task: SealTaskType, res: Resources, worker: WorkerResources) -> Need:
        """Resolve ``res`` for ``worker``."""
        gpus = worker.gpu_count
        return cls(seal_task=seal_task, resources=res, threads=res.threads(worker.cpus, gpus),
                   gpu=res.gpu_utilization if res.gpu_utilization > 0 else 0.0,
                   physical=res.min_memory + res.base_min_memory,
                   virtual=res.max_memory + res.base_min_memory,
                   gpu_checked=gpus > 0 and res.gpu_utilization > 0)

    @property
    def granted_gpu(self) -> float:
        """GPU fraction the task runs with (0 on a worker without GPUs)."""
        return self.gpu if self.gpu_checked else 0.0


@dataclass
class ActiveResources:
    """Resources accumulated by a set of tasks (a window, or a worker's preparing/active).

    ``counters`` maps each (proof, task type) to the scheduling ids counted under it; a
    worker's preparing and active accumulators share one counter map, so a task that
    moves from preparing to active is not counted twice.
    """

    mem_used_min: int = 0
    mem_used_max: int = 0
    gpu_used: float = 0.0
    cpu_use: int = 0
    counters: dict[SealTaskType, dict[Hashable, int]] = field(default_factory=dict)

    def count(self, seal_task: SealTaskType | None = None) -> int:
        """Distinct tasks counted under ``seal_task`` (all kinds when None)."""
        if seal_task is None:
            return sum(len(ids) for ids in self.counters.values())
        return len(self.counters.get(seal_task, ()))

    def reject_reason(self, sched_id: Hashable, need: Need, worker: WorkerResources,
                      ignore_resources: bool = False) -> Reject | None:
        """The first fit-check step ``need`` fails on top of this accumulator, or None."""
        limit = need.resources.max_concurrent
        if limit > 0:
            ids = self.counters.get(need.seal_task, {})
            if len(ids) >= limit and sched_id not in ids:
                return Reject.MAX_CONCURRENT
        if ignore_resources:
            return None
        return self.resource_reject(need, worker)

    def resource_reject(self, need: Need, worker: WorkerResources) -> Reject | None:
        """Steps 3–6 only (memory, threads, GPU), for callers that count tasks themselves."""
        if need.physical > worker.mem_physical - self.mem_used_min:
            return Reject.PHYSICAL_MEMORY
        floor = worker.vmem_floor
        vmem_used = self.mem_used_max if self.mem_used_max > floor else floor
        if need.virtual > worker.vmem_total - vmem_used:
            return Reject.VIRTUAL_MEMORY
        if self.cpu_use + need.threads > worker.cpus:
            return Reject.THREADS
        if need.gpu_checked and self.gpu_used + need.gpu > worker.gpu_count:
            return Reject.GPU
        return None

    def can_handle(self, sched_id: Hashable, need: Need, worker: WorkerResources,
                   ignore_resources: bool = False) -> bool:
        """True when ``need`` fits on top of this accumulator (every step passes)."""
        return self.reject_reason(sched_id, need, worker, ignore_resources) is None

    def add(self, sched_id: Hashable, need: Need, worker: WorkerResources) -> float:
        """Account one task; returns how much :meth:`utilization` grew."""
        before = self.utilization(worker)
        self.accumulate(need)
        ids = self.counters.setdefault(need.seal_task, {})
        ids[sched_id] = ids.get(sched_id, 0) + 1
        return self.utilization(worker) - before

    def accumulate(self, need: Need) -> None:
        """Add a task's memory, threads and GPU (not its counter: see :meth:`add`)."""
        self.gpu_used += need.gpu
        self.cpu_use += need.threads
        self.mem_used_min += need.resources.min_memory
        self.mem_used_max += need.resources.max_memory

    def try_accumulate(self, need: Need, worker: WorkerResources,
                       ignore_resources: bool = False) -> float | None:
        """Steps 3–6, then :meth:`accumulate` if they pass; returns the new utilization.

        None (and nothing added) when the task does not fit.
        """
        if not ignore_resources and self.resource_reject(need, worker) is not None:
            return None
        self.accumulate(need)
        return self.utilization(worker)

    def free(self, sched_id: Hashable, need: Need) -> None:
        """Release what :meth:`add` accounted for this task."""
        self.gpu_used -= need.gpu
        self.cpu_use -= need.threads
        self.mem_used_min -= need.resources.min_memory
        self.mem_used_max -= need.resources.max_memory
        ids = self.counters.get(need.seal_task)
        if ids is not None and sched_id in ids:
            if ids[sched_id] <= 1:
                del ids[sched_id]
            else:
                ids[sched_id] -= 1

    def utilization(self, worker: WorkerResources) -> float:
        """The most used resource as a fraction (0..1, more when overcommitted).

        Threads / CPUs, max(MinMemory sum, used RAM) / RAM, max(MaxMemory sum, used RAM +
        swap) / (RAM + swap), and GPU use / GPUs when the worker has any.
        """
        util = self.cpu_use / worker.cpus
        used = self.mem_used_min if self.mem_used_min > worker.mem_used else worker.mem_used
        mem = used / worker.mem_physical
        if mem > util:
            util = mem
        floor = worker.vmem_floor
        vmem = (self.mem_used_max if self.mem_used_max > floor else floor) / worker.vmem_total
        if vmem > util:
            util = vmem
        if worker.gpus and self.gpu_used / worker.gpu_count > util:
            util = self.gpu_used / worker.gpu_count
        return util
