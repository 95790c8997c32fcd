"""Why a queued request waits, in words (``sealing sched-diag``, ``sectors status``).

The checks follow what a pass asks of a worker, and the first one that no worker passes
is the reason:

1. the task type – some connected, enabled worker offers it;
2. the selector – the workers it allows (the holders of the sector's files, those under
   ``SectorAffinity``), described by :meth:`~sealagent.sched.selectors.Selector.requirement`;
3. space – one of their paths has room for the files the task creates or fetches;
4. resources – the task fits the worker when it is idle (the first failing step of the
   fit check, :class:`~sealagent.sched.fit.Reject`);
5. ``MaxConcurrent`` – the worker runs fewer tasks of the kind than its limit.

A request that passes them all waits for a window of one of the workers that could take
it.  Everything here is read-only and pure, like the rest of the scheduler.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Final

from sealagent.sched.fit import ActiveResources, Need, Reject
from sealagent.sched.queue import SchedTask
from sealagent.sched.selectors import HolderLookup, PoolSpec, SpaceNeed
from sealagent.sched.storage_view import StorageView
from sealagent.sched.windows import SchedWorker
from sealagent.units import size_str

NAMES_SHOWN: Final = 4
"""Worker names listed in a reason before "and N more"."""


def _names(workers: Collection[SchedWorker]) -> str:
    names = sorted(w.hostname or w.worker_id for w in workers)
    shown = ", ".join(names[:NAMES_SHOWN])
    return shown if len(names) <= NAMES_SHOWN else f"{shown} and {len(names) - NAMES_SHOWN} more"


def _allowed(worker: SchedWorker, spec: PoolSpec) -> bool:
    return spec.workers is None or worker.worker_id in spec.workers


def _has_room(worker: SchedWorker, space: SpaceNeed, view: StorageView) -> bool:
    """True when one of the worker's paths may hold files of ``space.kind`` and has room."""
    for path_id in worker.paths:
        stat = view.paths.get(path_id)
        if (stat is not None and stat.allows(space.kind, space.groups)
                and stat.available >= space.size):
            return True
    return False


def _misfit(worker: SchedWorker, need: Need, reject: Reject) -> str:
    """One worker's fit-check failure, in words."""
    res = worker.resources
    name = worker.hostname or worker.worker_id
    if reject is Reject.PHYSICAL_MEMORY:
        return f"{name} has {size_str(res.mem_physical)} of RAM, it needs {size_str(need.physical)}"
    if reject is Reject.VIRTUAL_MEMORY:
        free = res.vmem_total - res.vmem_floor
        return (f"{name} has {size_str(free)} of RAM + swap free, it needs "
                f"{size_str(need.virtual)}")
    if reject is Reject.THREADS:
        return f"{name} has {res.cpus} CPUs, it needs {need.threads} threads"
    return f"{name} has {res.gpu_count} GPUs, it needs {need.gpu:g}"


def waiting_reason(task: SchedTask, workers: Mapping[str, SchedWorker],
                   open_workers: Collection[str], holders: HolderLookup, view: StorageView,
                   affinity: bool) -> str:
    """Why the queued ``task`` is not running, as one sentence.

    :param workers: the connected workers; :param open_workers: ids of those with an open
        window; :param holders: which workers have which paths; :param affinity: the
        scheduler's ``SectorAffinity``.
    """
    task_type = task.task_type
    short = task_type.short
    offering = [w for w in workers.values() if task_type in w.task_types]
    if not offering:
        return f"no connected worker offers {short} ({task_type.value})"
    enabled = [w for w in offering if w.enabled]
    if not enabled:
        return f"every worker that offers {short} is disabled ({_names(offering)})"
    placed = _placeable(task, enabled, workers, holders, view, affinity)
    if isinstance(placed, str):
        return placed
    return _capacity_reason(task, placed, open_workers)


def _placeable(task: SchedTask, enabled: list[SchedWorker], workers: Mapping[str, SchedWorker],
               holders: HolderLookup, view: StorageView,
               affinity: bool) -> list[SchedWorker] | str:
    """The enabled workers the selector allows and that have room; else the reason."""
    short = task.task_type.short
    selector = task.selector
    specs = [s for s in selector.pools(task.proof, task.locality, holders, affinity)
             if s is not None]
    requirement = selector.requirement(task.locality, affinity)
    allowed = [w for w in enabled if any(_allowed(w, s) for s in specs)]
    if not allowed:
        named = frozenset().union(*(s.workers or () for s in specs))
        others = [workers[wid] for wid in named if wid in workers]
        if not others:
            return f"{short} needs {requirement}, and there is none"
        plural = len(others) > 1
        if any(task.task_type not in w.task_types for w in others):
            why = f"{'do' if plural else 'does'} not offer {short}"
        else:
            why = f"{'are' if plural else 'is'} disabled"
        return f"{short} needs {requirement}: {_names(others)}, which {why}"
    roomy = [w for w in allowed if any(
        _allowed(w, s) and (s.space is None or _has_room(w, s.space, view)) for s in specs)]
    if not roomy:
        space = next(s.space for s in specs if s.space is not None)
        return (f"{short} needs {requirement}: no {space.kind} path of {_names(allowed)} "
                f"has {size_str(space.size)} free")
    return roomy


def _capacity_reason(task: SchedTask, candidates: list[SchedWorker],
                     open_workers: Collection[str]) -> str:
    """Resources and ``MaxConcurrent`` of the workers that may take the task, or windows."""
    short = task.task_type.short
    fitting = []
    misfits = []
    for worker in sorted(candidates, key=lambda w: w.hostname or w.worker_id):
        need = worker.need(task.task_type, task.proof)
        reject = (None if worker.ignore_resources
                  else ActiveResources().resource_reject(need, worker.resources))
        if reject is None:
            fitting.append(worker)
        else:
            misfits.append(_misfit(worker, need, reject))
    if not fitting:
        return f"{short} fits no worker that may run it, even idle: {'; '.join(misfits)}"
    below_limit = [w for w in fitting if not _at_limit(w, task)]
    if not below_limit:
        limit = fitting[0].need(task.task_type, task.proof).resources.max_concurrent
        return (f"{_names(fitting)} already run(s) MaxConcurrent = {limit} {short} "
                f"task(s)")
    if any(w.worker_id in open_workers for w in below_limit):
        return f"waiting for the next scheduling pass ({_names(below_limit)} may take it)"
    return f"waiting for a window of {_names(below_limit)}"


def _at_limit(worker: SchedWorker, task: SchedTask) -> bool:
    need = worker.need(task.task_type, task.proof)
    limit = need.resources.max_concurrent
    return bool(limit) and worker.count(need.seal_task) >= limit
