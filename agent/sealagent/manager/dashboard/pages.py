"""What each dashboard page shows, built from the views the CLI uses.

Every function reads the manager's in-memory state (sectors, tasks, sessions, the
scheduler, the storage index); only a sector's own page and the ages of the sectors on one
page of the table read SQLite, by primary key or index.  Long lists are cut to a page so
a render costs the same with ten thousand sectors as with ten.
"""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from sealagent.manager import views
from sealagent.manager.fsm import SectorState
from sealagent.manager.tasks import TaskState

if TYPE_CHECKING:
    from sealagent.manager.db import Transaction
    from sealagent.manager.service import ManagerService

PAGE_SIZE: Final = 100
"""Rows per page of the worker and sector tables and the scheduler queue."""
CHART_SPAN_S: Final = 6 * 3600.0
"""How far back the cluster page's charts look."""


@dataclass(frozen=True)
class SectorPage:
    """One page of the sector table."""

    rows: list[dict[str, Any]]
    state: str | None
    page: int
    pages: int
    total: int
    by_state: list[tuple[str, int]]


def sectors_by_state(service: ManagerService) -> list[tuple[str, int]]:
    """``(state, count)`` in the pipeline's order, states without sectors left out."""
    counts = Counter(s.state for s in service.sectors.values())
    return [(str(state), counts[state]) for state in SectorState if counts[state]]


def cluster(service: ManagerService, page: int) -> dict[str, Any]:
    """The cluster page: workers (one page of them), sectors by state, queue, and the
    charts' data."""
    queued = Counter(str(t.task_type) for t in service.sched.queue.ordered())
    running = sum(1 for t in service.tasks.values() if t.state is TaskState.RUNNING)
    everyone = views.workers_info(service)
    pages = max(1, -(-len(everyone) // PAGE_SIZE))
    page = min(max(1, page), pages)
    workers = everyone[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
    placed = Counter(worker_id for worker_id, _ in service.tasks.placed.values())
    for worker in workers:
        worker["queued"] = placed[worker["worker_id"]]
    return {"workers": workers, "worker_count": len(everyone), "page": page, "pages": pages,
            "by_state": sectors_by_state(service),
            "sector_count": len(service.sectors), "queued": sum(queued.values()),
            "queued_by_type": sorted(queued.items()), "running": running,
            "history": service.metrics.history.series(service.clock(), CHART_SPAN_S)}


async def load_history(service: ManagerService, until: float) -> None:
    """Put the tasks that finished in the charts' span before ``until`` (when the manager
    started recording them) into the history: one query, once per manager start."""
    history = service.metrics.history
    since = until - history.keep

    def read(tx: Transaction) -> list[tuple[str, float, float]]:
        rows = tx.query("SELECT task_type, started_at, finished_at FROM tasks WHERE "
                        "state = ? AND finished_at >= ? AND finished_at < ? "
                        "AND started_at IS NOT NULL", (str(TaskState.DONE), since, until))
        return [(r["task_type"], r["started_at"], r["finished_at"]) for r in rows]

    for task_type, started, finished in await service.db.transaction(read):
        history.observe(task_type, finished - started, finished)


async def sector_table(service: ManagerService, state: str | None, page: int) -> SectorPage:
    """Sectors (in ``state`` when given), one page of them, with age, worker and why they
    wait; the ages come from one query by primary key for the page's sectors."""
    wanted = None if not state else SectorState(state)
    numbers = sorted(n for n, s in service.sectors.items()
                     if wanted is None or s.state is wanted)
    pages = max(1, -(-len(numbers) // PAGE_SIZE))
    page = min(max(1, page), pages)
    shown = numbers[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
    created = await service.db.transaction(functools.partial(_created_at, numbers=shown))
    now = service.clock()
    queued = service.sched.waiting_reasons(
        (service.sectors[n].task_id or "" for n in shown), service.view())
    rows = []
    for number in shown:
        row = views.sector_summary(service, service.sectors[number], queued)
        task = row["task"]
        row["worker"] = service.hostname(task["worker_id"]) if task and task["worker_id"] else ""
        row["age"] = now - created[number] if number in created else None
        rows.append(row)
    return SectorPage(rows, state or None, page, pages, len(numbers), sectors_by_state(service))


def _created_at(tx: Transaction, numbers: list[int]) -> dict[int, float]:
    if not numbers:
        return {}
    marks = ",".join("?" * len(numbers))
    rows = tx.query(f"SELECT number, created_at FROM sectors WHERE number IN ({marks})",
                    tuple(numbers))
    return {r["number"]: r["created_at"] for r in rows}


async def sector_detail(service: ManagerService, number: int) -> dict[str, Any]:
    """A sector's page: its status and log, each task's times (``phases``), and where its
    files are (``files``): what ``sectors status --log --json`` prints."""
    return await service.sector_status(number, True)


def jobs(service: ManagerService) -> list[dict[str, Any]]:
    """``sealing jobs``, running first, then by worker and sector."""
    order = {"running": 0, "prepared": 1, "assigned": 2}
    return sorted(views.jobs(service),
                  key=lambda j: (order.get(j["state"], 3), j["hostname"], j["sector"]))


def storage(service: ManagerService) -> list[tuple[str, list[dict[str, Any]]]]:
    """``storage list`` grouped by the host serving each path."""
    hosts: dict[str, list[dict[str, Any]]] = {}
    for path in views.storage_info(service):
        host = urlsplit(path["urls"][0]).netloc if path["urls"] else "(no URL)"
        hosts.setdefault(host, []).append(path)
    return sorted(hosts.items())


def scheduler(service: ManagerService, page: int) -> dict[str, Any]:
    """``sealing sched-diag``: the queue in order with why each task waits, one page."""
    diag = views.sched_diag(service)
    requests = diag.get("SchedInfo", {}).get("Requests", [])
    pages = max(1, -(-len(requests) // PAGE_SIZE))
    page = min(max(1, page), pages)
    return {"requests": requests[(page - 1) * PAGE_SIZE: page * PAGE_SIZE],
            "total": len(requests), "page": page, "pages": pages,
            "open_windows": len(service.sched.open_windows),
            "ret_wait": diag.get("RetWait", []), "workers": diag.get("Workers", {})}
