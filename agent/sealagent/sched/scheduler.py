"""The scheduler: fills open windows from the queue, one deterministic pass at a time.

A pass follows Lotus' ``trySched``: walk the queue in order; for each request, the
candidate windows are the open windows of enabled workers that have the task type, that
the request's selector accepts (holders preferred, see
:mod:`~sealagent.sched.selectors`) and that could take it if the worker were idle; the
assigner picks among the candidates that still fit the window's accumulator; a request
that fits nowhere stays queued and the walk goes on.  Windows that received tasks close.

It does so without Lotus' O(requests × windows) walk.  Requests are grouped by (task
type, proof, selector, locality) – members of a group need the same resources and accept
the same windows – and the candidate workers of each (task type, proof, selector answer)
form one heap keyed by load.  Because accumulators only grow within a pass, a window that
cannot fit a group's task now never will in this pass, so it leaves that heap for good;
and once a heap is empty every later request of its groups is skipped without being
looked at.  The walk merges the groups in
queue order and takes whole runs of consecutive requests from one group at a time, so a
pass costs O((assignments + groups) · log) plus building the candidate heaps it touches,
whatever the length of the queue.

Deliberate differences from Lotus, each fixing a reported pain point:

* no random shuffle: ties go to the worker whose window waited longest, so passes are
  reproducible;
* the lowest-load worker always wins (Lotus stops scanning at the first window that is
  not better, piling batches onto one worker);
* ``MaxConcurrent`` counts the worker's running, preparing and already assigned tasks, not
  just the window's (Lotus let a worker at its limit collect two more windows of that
  task, which then waited there while other workers idled);
* allocation selectors count the space this pass already promised on each path;
* with ``allow_fetch`` the workers holding a sector's files are preferred, and
  ``sector_affinity`` forbids moving sealing data between hosts;
* the queue is grouped, so ``sched-diag`` and a pass stay fast with 100 000 requests.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sealagent.errors import SchedulerError
from sealagent.sched.assigners import Assigner, Load, PassAssigner
from sealagent.sched.explain import waiting_reason
from sealagent.sched.fit import Need
from sealagent.sched.queue import Entry, GroupKey, RequestQueue, SchedTask, TaskGroup
from sealagent.sched.selectors import PathOwners, Pools, PoolSpec, SpaceNeed
from sealagent.sched.storage_view import PathKind, StorageView
from sealagent.sched.windows import PassWindow, Placement, SchedWindow, SchedWorker
from sealagent.vocab.registry import RegisteredSealProof
from sealagent.vocab.tasks import SealTaskType, TaskType

_EMPTY_VIEW = StorageView()


@dataclass
class PassStats:
    """What the last pass did (for ``sched-diag`` and for tests of its cost)."""

    queued: int = 0
    open_windows: int = 0
    groups: int = 0
    groups_visited: int = 0
    pools: int = 0
    candidates: int = 0
    """Window entries put into candidate heaps."""
    probes: int = 0
    """Windows looked at while choosing (including stale and full ones)."""
    assigned: int = 0


class _Slot:
    """A worker in one pool: its need, its load, and windows that may still fit."""

    __slots__ = ("load", "need", "windows", "worker")

    def __init__(self, worker: SchedWorker, need: Need, load: Load,
                 windows: list[PassWindow]) -> None:
        self.worker = worker
        self.need = need
        self.load = load
        self.windows = windows


_Entry = tuple[float, int, int, _Slot]
"""A pool heap entry: (load, rank, age of the worker's oldest open window, slot)."""


class _Pool:
    """The candidate workers of one (task type, proof, pool spec) during a pass."""

    __slots__ = ("heap", "initially_empty", "space")

    def __init__(self, space: SpaceNeed | None, heap: list[_Entry]) -> None:
        self.space = space
        self.heap = heap
        self.initially_empty = not heap


class _Pass:
    """The state of one scheduling pass."""

    def __init__(self, sched: Scheduler, view: StorageView, assigner: PassAssigner,
                 windows: list[PassWindow]) -> None:
        self.sched = sched
        self.view = view
        self.assigner = assigner
        self.by_worker: dict[str, list[PassWindow]] = {}
        for window in windows:
            self.by_worker.setdefault(window.worker.worker_id, []).append(window)
        self.open_workers = frozenset(self.by_worker)
        self.open_types: set[TaskType] = set().union(
            *(ws[0].worker.task_types for ws in self.by_worker.values()))
        self.by_type: dict[TaskType, list[list[PassWindow]]] = {}
        self.pools: dict[tuple[TaskType, RegisteredSealProof, PoolSpec], _Pool] = {}
        self.owners: PathOwners | None = None
        self.space_left: dict[str, int] = {}
        self.usable_paths: dict[tuple[str, PathKind, frozenset[str] | None],
                                list[tuple[str, int]]] = {}
        self.counts: dict[tuple[str, SealTaskType], int] = {}
        self.assignments: list[Placement] = []
        self.stats = PassStats(open_windows=len(windows))

    # -- what selectors ask ------------------------------------------------------------

    def workers_with(self, paths: frozenset[str]) -> frozenset[str]:
        """Workers (with open windows or not) that have any of ``paths`` locally."""
        if self.owners is None:
            self.owners = self.sched.path_owners()
        return self.owners.workers_with(paths)

    # -- candidate pools -----------------------------------------------------------------

    def _typed(self, task_type: TaskType) -> list[list[PassWindow]]:
        found = self.by_type.get(task_type)
        if found is None:
            found = self.by_type[task_type] = [
                ws for ws in self.by_worker.values() if task_type in ws[0].worker.task_types]
        return found

    def _pool(self, task_type: TaskType, proof: RegisteredSealProof, spec: PoolSpec) -> _Pool:
        key = (task_type, proof, spec)
        pool = self.pools.get(key)
        if pool is not None:
            return pool
        if spec.workers is None:
            candidates = self._typed(task_type)
        else:
            candidates = [self.by_worker[wid] for wid in sorted(spec.workers)
                          if wid in self.by_worker
                          and task_type in self.by_worker[wid][0].worker.task_types]
        load_of = self.assigner.load
        heap: list[_Entry] = []
        for windows in candidates:
            worker = windows[0].worker
            need, idle_fit = worker.need_idle(task_type, proof)
            if not idle_fit:
                continue
            if spec.space is not None and self._space_path(worker, spec.space) is None:
                continue
            rank = len(worker.task_types) if spec.prefer_specialized else 0
            load = load_of(worker, task_type)
            heap.append((load.value, rank, windows[0].window_id,
                         _Slot(worker, need, load, list(windows))))
        heapq.heapify(heap)
        self.stats.pools += 1
        self.stats.candidates += len(heap)
        pool = self.pools[key] = _Pool(spec.space, heap)
        return pool

    def _pools_of(self, group: TaskGroup) -> Pools:
        """The selector's answer for a group (cached until the worker topology changes)."""
        sched = self.sched
        if group.pools is None or group.pools_topology != sched.topology:
            pools = sched.selector_cache.get(group.key)
            if pools is None:
                _, proof, selector, locality = group.key
                pools = selector.pools(proof, locality, self, sched.sector_affinity)
                sched.selector_cache[group.key] = pools
            group.pools = pools
            group.pools_topology = sched.topology
        return group.pools

    def _reachable(self, spec: PoolSpec | None) -> bool:
        """Some worker the spec allows has an open window (cheap, before any heap)."""
        return spec is not None and (spec.workers is None
                                     or not spec.workers.isdisjoint(self.open_workers))

    def may_serve(self, group: TaskGroup) -> bool:
        """Cheap test: some worker with an open window might take this group's tasks."""
        return (group.task_type in self.open_types
                and any(self._reachable(spec) for spec in self._pools_of(group)))

    def pool_for(self, group: TaskGroup) -> _Pool | None:
        """The pool a group draws from this pass (preferred if any worker qualifies)."""
        for spec in self._pools_of(group):
            if spec is not None and self._reachable(spec):
                pool = self._pool(group.task_type, group.proof, spec)
                if not pool.initially_empty:
                    return pool
        return None

    # -- space ----------------------------------------------------------------------------

    def _space_path(self, worker: SchedWorker, space: SpaceNeed) -> str | None:
        """The worker's local path with the most (weighted) room left for ``space``."""
        key = (worker.worker_id, space.kind, space.groups)
        usable = self.usable_paths.get(key)
        if usable is None:
            stats = self.view.paths
            usable = self.usable_paths[key] = [
                (path_id, stats[path_id].weight) for path_id in sorted(worker.paths)
                if path_id in stats and stats[path_id].allows(space.kind, space.groups)]
        best: str | None = None
        best_score = -1
        space_left = self.space_left
        for path_id, weight in usable:
            left = space_left.get(path_id)
            if left is None:
                left = space_left[path_id] = self.view.paths[path_id].available
            if left >= space.size and left * weight > best_score:
                best, best_score = path_id, left * weight
        return best

    # -- choosing and assigning -----------------------------------------------------------

    def _count(self, worker: SchedWorker, seal_task: SealTaskType) -> int:
        key = (worker.worker_id, seal_task)
        count = self.counts.get(key)
        if count is None:
            count = self.counts[key] = worker.count(seal_task)
        return count

    def fill(self, pool: _Pool, entries: list[Entry], pos: int, bound: int) -> int:
        """Assign ``entries[pos:bound]`` from ``pool`` until done or the pool runs dry.

        Returns the position reached.  The worker with the lowest load wins; within it,
        its oldest window that fits.  A worker or window that does not fit leaves the
        pool for the rest of the pass (accumulators only grow).
        """
        heap = pool.heap
        space = pool.space
        record = self.assigner.record
        assignments = self.assignments
        probes = 0
        while pos < bound and heap:
            probes += 1
            key, rank, age, slot = heap[0]
            worker = slot.worker
            current = slot.load.value
            if current != key:
                heapq.heapreplace(heap, (current, rank, age, slot))
                continue
            need = slot.need
            limit = need.resources.max_concurrent
            if limit and self._count(worker, need.seal_task) >= limit:
                heapq.heappop(heap)
                continue
            path = None
            if space is not None:
                path = self._space_path(worker, space)
                if path is None:
                    heapq.heappop(heap)
                    continue
            windows = slot.windows
            capacity, ignore = worker.resources, worker.ignore_resources
            util = None
            while windows:
                util = windows[0].allocated.try_accumulate(need, capacity, ignore)
                if util is not None:
                    break
                del windows[0]
            if util is None:
                heapq.heappop(heap)
                continue
            window = windows[0]
            task = entries[pos][-1]
            pos += 1
            delta, window.util = util - window.util, util
            if limit:
                self.counts[(worker.worker_id, need.seal_task)] += 1
            if path is not None and space is not None:
                self.space_left[path] -= space.size
            window.todo.append((task, need))
            assignments.append(Placement(task, worker.worker_id, window.window_id,
                                          need.threads, need.granted_gpu))
            heapq.heapreplace(heap, (record(slot.load, delta), rank, age, slot))
        self.stats.probes += probes
        return pos

    def run(self, groups: list[TaskGroup]) -> list[int]:
        """Walk the groups in queue order; returns how many head requests each gave."""
        taken = [0] * len(groups)
        resolved: list[_Pool | bool | None] = [False] * len(groups)
        heap = [(g.entries[0], i) for i, g in enumerate(groups) if self.may_serve(g)]
        heapq.heapify(heap)
        while heap:
            _, group_index = heapq.heappop(heap)
            pool = resolved[group_index]
            if pool is False:
                pool = resolved[group_index] = self.pool_for(groups[group_index])
                self.stats.groups_visited += 1
            if not isinstance(pool, _Pool) or not pool.heap:
                continue
            entries = groups[group_index].entries
            pos = taken[group_index]
            bound = bisect.bisect_left(entries, heap[0][0], pos) if heap else len(entries)
            pos = taken[group_index] = self.fill(pool, entries, pos, bound)
            if pos == bound and pos < len(entries):
                heapq.heappush(heap, (entries[pos], group_index))
        return taken


class Scheduler:
    """Queue, workers, open windows, and the pass that matches them.

    Pure and deterministic: no I/O, no clock, no threads.  The manager's event loop calls
    the mutators as events arrive and :meth:`schedule` when something changed.
    """

    def __init__(self, assigner: str | Assigner = "utilization", *,
                 sector_affinity: bool = False) -> None:
        """Create an empty scheduler with an assigner name (``[Storage] Assigner``)."""
        self.assigner = assigner if isinstance(assigner, Assigner) else Assigner.parse(assigner)
        self.sector_affinity = sector_affinity
        self.queue = RequestQueue()
        self.workers: dict[str, SchedWorker] = {}
        self.open_windows: dict[int, str] = {}
        """Open window id → worker id, oldest first."""
        self.last_pass = PassStats()
        self.topology = 0
        """Bumped whenever workers or their paths change (selector answers are cached)."""
        self.selector_cache: dict[GroupKey, Pools] = {}
        self._next_window = 1
        self._passes = 0

    # -- workers and windows -------------------------------------------------------------

    def add_worker(self, worker: SchedWorker) -> None:
        """Register a worker, or replace its snapshot (reconnect, new report).

        Its open windows stay open; its running/assigned accounting carries over.
        """
        old = self.workers.get(worker.worker_id)
        if old is not None and old is not worker:
            worker.active = old.active
            worker.preparing = old.preparing
            worker.assigned = old.assigned
        self.workers[worker.worker_id] = worker
        self._topology_changed()

    def _topology_changed(self) -> None:
        self.topology += 1
        self.selector_cache.clear()

    def _worker(self, worker_id: str) -> SchedWorker:
        worker = self.workers.get(worker_id)
        if worker is None:
            raise SchedulerError(f"unknown worker {worker_id!r}")
        return worker

    def remove_worker(self, worker_id: str) -> list[SchedTask]:
        """Forget a worker; returns the tasks of its assigned, not yet started windows."""
        worker = self._worker(worker_id)
        del self.workers[worker_id]
        self._topology_changed()
        for window_id in [w for w, owner in self.open_windows.items() if owner == worker_id]:
            del self.open_windows[window_id]
        return [task for window in worker.assigned.values() for task in window.todo]

    def set_enabled(self, worker_id: str, enabled: bool) -> None:
        """Enable or disable a worker; a disabled worker's open windows are dropped."""
        worker = self._worker(worker_id)
        worker.enabled = enabled
        if not enabled:
            for window_id in [w for w, owner in self.open_windows.items() if owner == worker_id]:
                del self.open_windows[window_id]

    def open_window(self, worker_id: str) -> int:
        """Open a scheduling window for a worker; returns its id (ids grow with age)."""
        worker = self._worker(worker_id)
        if not worker.enabled:
            raise SchedulerError(f"worker {worker_id} is disabled")
        window_id = self._next_window
        self._next_window += 1
        self.open_windows[window_id] = worker_id
        return window_id

    def close_window(self, window_id: int) -> None:
        """Withdraw an open window that received nothing (e.g. its long-poll timed out)."""
        if self.open_windows.pop(window_id, None) is None:
            raise SchedulerError(f"no open window {window_id}")

    def window_started(self, worker_id: str, window_id: int) -> SchedWindow:
        """Every task of an assigned window has started: stop counting the window."""
        window = self._worker(worker_id).assigned.pop(window_id, None)
        if window is None:
            raise SchedulerError(f"worker {worker_id} has no assigned window {window_id}")
        return window

    # -- requests ------------------------------------------------------------------------

    def add_task(self, task: SchedTask, view: StorageView = _EMPTY_VIEW) -> None:
        """Queue a request; its selector reads the sector's file locations from ``view``."""
        self.queue.add(task, task.selector.locality(task.sector, view, self.sector_affinity))

    def add_tasks(self, tasks: Iterable[SchedTask], view: StorageView = _EMPTY_VIEW) -> None:
        """Queue many requests at once."""
        affinity = self.sector_affinity
        self.queue.add_many((t, t.selector.locality(t.sector, view, affinity)) for t in tasks)

    def remove_task(self, task_id: str) -> SchedTask:
        """Take a queued request out (``sealing abort --sched``)."""
        return self.queue.remove(task_id)

    def refresh_locality(self, task_ids: Iterable[str], view: StorageView) -> None:
        """Read again where the sectors of queued requests have their files.

        A request's locality is read when it is queued; call this when the files of its
        sector moved.  Ids that are not queued are skipped.
        """
        for task_id in task_ids:
            task = self.queue.get(task_id)
            if task is not None:
                self.queue.relocate(task_id, task.selector.locality(task.sector, view,
                                                                    self.sector_affinity))

    def path_owners(self) -> PathOwners:
        """Which connected workers have which paths locally."""
        return PathOwners((w.worker_id, w.paths) for w in self.workers.values())

    def waiting_reason(self, task_id: str, view: StorageView = _EMPTY_VIEW) -> str | None:
        """Why a queued request is not running yet, in words (None when not queued)."""
        task = self.queue.get(task_id)
        if task is None:
            return None
        return self._explain(task, self.path_owners(), view)

    def waiting_reasons(self, task_ids: Iterable[str],
                        view: StorageView = _EMPTY_VIEW) -> dict[str, str]:
        """:meth:`waiting_reason` of each queued task of ``task_ids`` (others left out),
        worked out once per task group."""
        owners = self.path_owners()
        by_group: dict[GroupKey | None, str] = {}
        reasons = {}
        for task_id in task_ids:
            task = self.queue.get(task_id)
            if task is None:
                continue
            reason = by_group.get(task.group)
            if reason is None:
                reason = by_group[task.group] = self._explain(task, owners, view)
            reasons[task_id] = reason
        return reasons

    def _explain(self, task: SchedTask, owners: PathOwners, view: StorageView) -> str:
        return waiting_reason(task, self.workers,
                              frozenset(self.open_windows.values()), owners, view,
                              self.sector_affinity)

    # -- the pass ------------------------------------------------------------------------

    def schedule(self, view: StorageView = _EMPTY_VIEW) -> list[Placement]:
        """Run one pass: fill open windows from the queue; returns the assignments made.

        Assigned requests leave the queue; windows that received tasks close and count
        toward their worker's load until :meth:`window_started`.
        """
        self._passes += 1
        windows = [PassWindow(window_id, self.workers[worker_id])
                   for window_id, worker_id in self.open_windows.items()
                   if self.workers[worker_id].enabled]
        groups = self.queue.groups
        if len(self.selector_cache) > 2 * len(groups) + 1024:
            self.selector_cache.clear()  # answers for localities no longer queued
        state = _Pass(self, view, self.assigner.new_pass(self._passes), windows)
        state.stats.queued = len(self.queue)
        state.stats.groups = len(groups)
        if windows and groups:
            taken = state.run(groups)
            for group, count in zip(groups, taken, strict=True):
                if count:
                    self.queue.pop_heads(group, count)
            for window in windows:
                if window.todo:
                    del self.open_windows[window.window_id]
                    window.worker.assigned[window.window_id] = window.close()
        state.stats.assigned = len(state.assignments)
        self.last_pass = state.stats
        return state.assignments

    # -- diagnostics ---------------------------------------------------------------------

    def diag(self, view: StorageView = _EMPTY_VIEW) -> dict[str, Any]:
        """``sealing sched-diag``: Lotus' ``SchedInfo`` plus workers and the last pass.

        Each request also says why it is still waiting (``Waiting``, see
        :mod:`~sealagent.sched.explain`; the sector files are read from ``view``).
        """
        queued = list(self.queue.ordered())
        reasons = self.waiting_reasons((t.task_id for t in queued), view)
        requests = [{"Priority": t.priority, "SchedId": t.task_id,
                     "Sector": {"Miner": t.sector.miner, "Number": t.sector.number},
                     "TaskType": t.task_type.value, "Waiting": reasons[t.task_id]}
                    for t in queued]
        workers: dict[str, Any] = {}
        for wid in sorted(self.workers):
            worker = self.workers[wid]
            counts: dict[str, int] = {}
            for seal_task, ids in worker.active.counters.items():
                if ids:
                    counts[str(seal_task)] = len(ids)
            workers[wid] = {"Hostname": worker.hostname, "Enabled": worker.enabled,
                            "Utilization": round(worker.utilization(), 6),
                            "AssignedWindows": sorted(worker.assigned),
                            "TaskCounts": counts}
        stats = self.last_pass
        return {
            "SchedInfo": {"OpenWindows": list(self.open_windows.values()),
                          "Requests": requests},
            "Assigner": self.assigner.name,
            "SectorAffinity": self.sector_affinity,
            "Workers": workers,
            "LastPass": {"Queued": stats.queued, "OpenWindows": stats.open_windows,
                         "Groups": stats.groups, "GroupsVisited": stats.groups_visited,
                         "Pools": stats.pools, "Candidates": stats.candidates,
                         "Probes": stats.probes, "Assigned": stats.assigned},
        }

