"""What the admin commands show: sectors, workers, jobs, storage, metrics.

Read-only functions of a :class:`~sealagent.manager.service.ManagerService`; they never
block and never touch the database, so ``sealing jobs`` answers even on a busy manager.
"""

from __future__ import annotations

import functools
import operator
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sealagent.manager import fsm
from sealagent.manager.fsm import SectorInfo, SectorState
from sealagent.manager.metrics import PathSample, Snapshot, WorkerSample
from sealagent.manager.tasks import TaskRecord, TaskState
from sealagent.vocab.sectors import ALL_FILE_TYPES, SECTOR_FILES, FileType, SectorID

if TYPE_CHECKING:
    from sealagent.manager.service import ManagerService
    from sealagent.manager.sessions import Session


def waiting_reason(service: ManagerService, sector: SectorInfo,
                   queued: Mapping[str, str] | None = None) -> str | None:
    """Why a sector is not moving, in words (None when it is busy or done).

    ``queued`` may give the scheduler's reasons for queued tasks worked out beforehand
    (:meth:`~sealagent.sched.scheduler.Scheduler.waiting_reasons`, cheaper for many).
    """
    if sector.state.is_terminal:
        return None
    if sector.retry_at is not None and sector.retry_at > service.clock():
        return f"retrying in {sector.retry_at - service.clock():.0f}s: {sector.last_error}"
    if sector.state is SectorState.WAIT_SEED and sector.precommit_epoch is not None:
        ready = fsm.seed_epoch(sector, service.policy) + service.policy.seed_confidence
        return f"waiting for the seed: epoch {service.beacon.head()} of {ready}"
    task = service.tasks.get(sector.task_id or "")
    if task is None or task.state is not TaskState.QUEUED:
        return None
    reason = (queued.get(task.task_id) if queued is not None
              else service.sched.waiting_reason(task.task_id, service.view()))
    return None if reason is None else f"{task.phase.label} task queued: {reason}"


def sector_summary(service: ManagerService, sector: SectorInfo,
                   queued: Mapping[str, str] | None = None) -> dict[str, Any]:
    """What ``sectors list`` shows for a sector (``queued``: see :func:`waiting_reason`)."""
    task = service.tasks.get(sector.task_id or "")
    return {"number": sector.number, "state": str(sector.state),
            "deal": any(p.deal for p in sector.pieces), "piece_count": len(sector.pieces),
            "task": None if task is None else task.to_json(),
            "waiting": waiting_reason(service, sector, queued), "last_error": sector.last_error}


EVERY_FILE_TYPE = functools.reduce(operator.or_, ALL_FILE_TYPES, FileType(0))
"""Every file type a sector may have (``sectors status`` shows them all)."""


def sector_files(service: ManagerService, number: int) -> list[dict[str, Any]]:
    """Where a sector's files are: each path holding some, with its file types and URLs."""
    local = {p.id: str(p.root) for p in service.files.local_paths}
    found = service.files.index.find(SectorID(service.miner, number), EVERY_FILE_TYPE)
    return [{"path_id": loc.path_id, "file_types": list(loc.file_types.names),
             "urls": list(loc.urls), "can_seal": loc.can_seal, "can_store": loc.can_store,
             "primary": loc.primary, "healthy": loc.healthy, "local": local.get(loc.path_id)}
            for loc in found]


def phase_times(service: ManagerService, history: list[TaskRecord]) -> list[dict[str, Any]]:
    """Each finished-or-not task of a sector's history: type, outcome, where and how long."""
    return [{"task_id": t.task_id, "task_type": t.phase.task_type, "short": t.phase.short,
             "label": t.phase.label,
             "state": str(t.state), "attempt": t.attempt, "worker_id": t.worker_id,
             "hostname": service.hostname(t.worker_id), "created_at": t.created_at,
             "started_at": t.started_at, "finished_at": t.finished_at,
             "seconds": (None if t.started_at is None or t.finished_at is None
                         else t.finished_at - t.started_at), "error": t.error}
            for t in history]


def core_sharers(service: ManagerService) -> dict[str, list[str]]:
    """Worker id → the names of the other connected agents on its machine that may use
    some of its CPU cores (each counts those cores as its own)."""
    by_machine: dict[str, list[Session]] = {}
    for session in service.sessions.values():
        by_machine.setdefault(session.report.machine, []).append(session)
    return {s.worker_id: sorted(o.report.name for o in same
                                if o.worker_id != s.worker_id
                                and s.report.shares_cores_with(o.report))
            for same in by_machine.values() for s in same}


def workers_info(service: ManagerService) -> list[dict[str, Any]]:
    """``sealing workers``: every connected agent with its resources and usage."""
    counts_by_worker: dict[str | None, Counter[str]] = {}
    for task in service.tasks.values():
        if task.state not in (TaskState.QUEUED, TaskState.RET_WAIT):
            counts_by_worker.setdefault(task.worker_id, Counter())[task.phase.task_type] += 1
    sharers = core_sharers(service)
    out = []
    for session in sorted(service.sessions.values(), key=lambda s: s.worker_id):
        worker = service.sched.workers.get(session.worker_id)
        counts = counts_by_worker.get(session.worker_id, Counter())
        report = session.report
        limits = {t.value: report.resources.spec(service.proof, t).max_concurrent
                  for t in report.tasks if t.sector_sized}
        active = worker.active if worker is not None else None
        out.append({
            "worker_id": session.worker_id, "name": report.name,
            "hostname": report.hostname, "url": report.url,
            "enabled": worker.enabled if worker is not None else False,
            "tasks": sorted(t.value for t in report.tasks),
            "resources": report.resources.machine_json(),
            "usage": {"cpu_use": active.cpu_use if active else 0,
                      "mem_used_min": active.mem_used_min if active else 0,
                      "mem_used_max": active.mem_used_max if active else 0,
                      "gpu_used": active.gpu_used if active else 0.0},
            "task_counts": dict(counts), "max_concurrent": limits,
            "plugins": dict(report.plugins), "last_seen": session.last_seen,
            "machine": report.machine,
            "shares_cores_with": sharers.get(session.worker_id, [])})
    return out


def jobs(service: ManagerService) -> list[dict[str, Any]]:
    """``sealing jobs``: tasks given to workers, with the window rank of assigned ones."""
    ranks: dict[str, int] = {}
    by_worker: dict[str, list[int]] = {}
    for worker_id, window_id in service.tasks.placed.values():
        by_worker.setdefault(worker_id, []).append(window_id)
    for task_id, (worker_id, window_id) in service.tasks.placed.items():
        ranks[task_id] = sorted(set(by_worker[worker_id])).index(window_id)
    now = service.clock()
    out = []
    for task in service.tasks.values():
        if task.state is TaskState.QUEUED:
            continue
        since = task.started_at if task.state is TaskState.RUNNING else task.state_since
        out.append({"task_id": task.task_id, "sector": task.sector,
                    "worker_id": task.worker_id, "hostname": service.hostname(task.worker_id),
                    "task_type": task.phase.task_type, "short": task.phase.short,
                    "state": str(task.state), "window": ranks.get(task.task_id, 0),
                    "attempt": task.attempt, "elapsed": now - (since or now)})
    return out


def sched_diag(service: ManagerService) -> dict[str, Any]:
    """``sealing sched-diag``: the scheduler's view plus tasks in ret-wait."""
    diag = service.sched.diag(service.view())
    diag["RetWait"] = sorted(t.task_id for t in service.tasks.values()
                             if t.state is TaskState.RET_WAIT)
    return diag


def storage_info(service: ManagerService) -> list[dict[str, Any]]:
    """``storage list``: every indexed path with its space and sector count."""
    local = {p.id: str(p.root) for p in service.files.local_paths}
    return [{"id": r.id, "urls": list(r.urls), "weight": r.meta.weight,
             "can_seal": r.meta.can_seal, "can_store": r.meta.can_store,
             "stat": None if r.stat is None else r.stat.to_json(),
             "healthy": service.files.index.is_healthy(r.id), "error": r.error,
             "sectors": len(service.files.index.sectors_in(r.id)), "local": local.get(r.id)}
            for r in service.files.index.paths()]


def sector_locations(service: ManagerService, number: int) -> list[dict[str, Any]]:
    """``storage find``: which paths, on which hosts, hold which files of a sector."""
    service.sectors.find(number)
    hosts = {p.meta.id: s.report.hostname for s in service.sessions.values()
             for p in s.report.paths}
    local = {p.id: str(p.root) for p in service.files.local_paths}
    index = service.files.index
    return [{"path_id": loc.path_id,
             "file_types": [t.dir_name for t in loc.file_types.split()],
             "host": hosts.get(loc.path_id, "manager" if loc.path_id in local else None),
             "local": local.get(loc.path_id), "urls": list(loc.urls),
             "weight": index.path(loc.path_id).meta.weight, "can_seal": loc.can_seal,
             "can_store": loc.can_store, "primary": loc.primary, "healthy": loc.healthy}
            for loc in index.find(SectorID(service.miner, number), SECTOR_FILES)]


def metrics_snapshot(service: ManagerService) -> Snapshot:
    """The numbers ``/debug/metrics`` reports (no pass over every sector)."""
    queue: Counter[str] = Counter()
    for group in service.sched.queue.groups:
        queue[group.task_type.value] += len(group.entries)
    running = service.tasks.running_counts()
    workers = [WorkerSample(s.worker_id, s.report.hostname, s.report.name, True,
                            s.last_seen, running.get(s.worker_id, {}))
               for s in service.sessions.values()]
    workers += [WorkerSample(worker_id, service.hostname(worker_id), "", False, seen, {})
                for worker_id, seen in service.agents.lost().items()]
    paths = [PathSample(r.id, 0 if r.stat is None else r.stat.capacity, r.available,
                        r.reserved, service.files.index.is_healthy(r.id))
             for r in service.files.index.paths()]
    ages = service.sectors.ages
    return Snapshot(queue=queue, open_windows=len(service.sched.open_windows),
                    sectors=ages.counts(), oldest_age=ages.oldest(service.clock()),
                    workers=workers, paths=paths)
