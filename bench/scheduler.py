"""Scheduler benchmark: one pass over a large simulated cluster.

Builds a reproducible cluster – PC1 boxes, PC2+GPU boxes, C2 boxes, mixed boxes and
storage/fetch nodes, two scheduling windows each – and a queue: a backlog of tasks
waiting for capacity (AP, PC1, PC2, C2, RU, PR2, UNS, DC; 32 and 64 GiB V1_1 and 32 GiB
SyntheticPoRep; a quarter deal sectors) plus quick tasks that run as soon as they are
queued (C1, FIN, GET; 5 per worker, so they scale with the cluster, not the backlog).
Sector files sit on the boxes that produced them.

Two scenarios, each pass timed alone (assigned tasks are queued again afterwards so the
queue keeps its length):

``steady``  normal operation: every worker has its two windows, most of them already
            filled; before each pass 5 % of the workers (``--reopen``) start their
            assigned windows and reopen both;
``cold``    start-up: every worker idle with both windows open, so one pass hands out
            an idle worker's worth of work to each of 2000 windows.

    python bench/scheduler.py --workers 1000 --tasks 100000 --repeat 7
    python bench/scheduler.py --curve            # 10k / 100k / 1M queued tasks

Prints a table, ``cold_median_pass_ms=...`` per size, and as its last line
``median_pass_ms=<number>``: the steady pass of the last size.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sealagent.sched.queue import SchedTask
from sealagent.sched.resources import GpuInfo, WorkerResources
from sealagent.sched.scheduler import Scheduler
from sealagent.sched.selectors import AllocSelector, ExistingSelector, Selector, TaskSelector
from sealagent.sched.storage_view import PathStat, StorageView
from sealagent.sched.windows import SCHED_WINDOWS, SchedWorker
from sealagent.vocab.registry import GIB, RegisteredSealProof
from sealagent.vocab.sectors import FileType, SectorID
from sealagent.vocab.tasks import TaskType

TIB = 1024 * GIB
ALWAYS = frozenset({TaskType.FETCH, TaskType.COMMIT1, TaskType.PROVE_REPLICA_UPDATE_1,
                    TaskType.FINALIZE, TaskType.FINALIZE_UNSEALED,
                    TaskType.FINALIZE_REPLICA_UPDATE})
"""Task types every Lotus sealing worker has."""


@dataclass(frozen=True)
class Kind:
    """A kind of worker box."""

    name: str
    share: float
    cpus: int
    ram: int
    gpus: int
    tasks: frozenset[TaskType]
    space: int
    store: bool = False


T = TaskType
KINDS = (
    Kind("pc1", 0.45, 128, 1 * TIB, 0, ALWAYS | {T.ADD_PIECE, T.PRECOMMIT1}, 30 * TIB),
    Kind("pc2", 0.25, 64, 512 * GIB, 2, ALWAYS | {T.PRECOMMIT2}, 10 * TIB),
    Kind("c2", 0.15, 64, 512 * GIB, 2, ALWAYS | {T.COMMIT2, T.PROVE_REPLICA_UPDATE_2},
         2 * TIB),
    Kind("mixed", 0.10, 96, 768 * GIB, 1,
         ALWAYS | {T.ADD_PIECE, T.PRECOMMIT1, T.PRECOMMIT2, T.COMMIT2, T.UNSEAL,
                   T.REPLICA_UPDATE, T.PROVE_REPLICA_UPDATE_2, T.REGEN_SECTOR_KEY,
                   T.DATA_CID}, 20 * TIB),
    Kind("store", 0.05, 32, 128 * GIB, 0, ALWAYS, 500 * TIB, store=True),
)

SEAL = FileType.SEALED | FileType.CACHE
_Kind = tuple[TaskType, float, Selector, tuple[str, ...]]
# (task type, share, selector, kinds of box holding the sector's files)
BACKLOG: tuple[_Kind, ...] = (
    (T.ADD_PIECE, 0.28, AllocSelector(FileType.UNSEALED), ()),
    (T.PRECOMMIT1, 0.34, AllocSelector(SEAL), ()),
    (T.PRECOMMIT2, 0.13, ExistingSelector(SEAL, allow_fetch=True), ("pc1", "mixed")),
    (T.COMMIT2, 0.14, TaskSelector(), ()),
    (T.REPLICA_UPDATE, 0.04, AllocSelector(FileType.UPDATE | FileType.UPDATE_CACHE), ()),
    (T.PROVE_REPLICA_UPDATE_2, 0.03, TaskSelector(), ()),
    (T.UNSEAL, 0.02, ExistingSelector(SEAL, allow_fetch=True), ("store",)),
    (T.DATA_CID, 0.02, TaskSelector(), ()),
)
"""Tasks that wait for capacity: the queue's length is made of these."""
QUICK: tuple[_Kind, ...] = (
    (T.COMMIT1, 0.4, ExistingSelector(SEAL), ("pc2", "mixed")),
    (T.FINALIZE, 0.4, ExistingSelector(FileType.CACHE), ("pc2", "mixed")),
    (T.FETCH, 0.2, ExistingSelector(FileType.UNSEALED, allow_fetch=True), ("pc1",)),
)
"""Cheap tasks that start as soon as they are queued: they scale with the cluster."""
QUICK_PER_WORKER = 5
PROOFS = ((RegisteredSealProof.StackedDrg32GiBV1_1, 0.85),
          (RegisteredSealProof.StackedDrg64GiBV1_1, 0.10),
          (RegisteredSealProof.StackedDrg32GiBV1_1_Feat_SyntheticPoRep, 0.05))
DEAL_SHARE = 0.25


@dataclass
class Cluster:
    """A built scenario."""

    sched: Scheduler
    view: StorageView
    tasks: list[SchedTask]


def build(workers: int, tasks: int, seed: int, assigner: str, affinity: bool) -> Cluster:
    """A reproducible cluster with ``workers`` workers and ``tasks`` queued requests."""
    rng = random.Random(seed)
    sched = Scheduler(assigner, sector_affinity=affinity)
    paths: dict[str, PathStat] = {}
    by_kind: dict[str, list[str]] = {k.name: [] for k in KINDS}
    kinds = rng.choices(KINDS, weights=[k.share for k in KINDS], k=workers)
    for i, kind in enumerate(kinds):
        wid = f"w{i:05d}-{kind.name}"
        path = f"p{i:05d}"
        paths[path] = PathStat(path, can_seal=not kind.store, can_store=kind.store,
                               available=kind.space)
        res = WorkerResources(cpus=kind.cpus, mem_physical=kind.ram,
                              mem_used=int(kind.ram * rng.uniform(0.02, 0.08)),
                              gpus=tuple(GpuInfo(f"GPU{g}") for g in range(kind.gpus)))
        sched.add_worker(SchedWorker(wid, res, kind.tasks, frozenset({path}), hostname=wid))
        by_kind[kind.name].append(path)
    sectors: dict[SectorID, dict[FileType, frozenset[str]]] = {}
    held_on = {path: {t: frozenset({path}) for t in FileType} for path in paths}
    queue: list[SchedTask] = []
    numbers = rng.sample(range(tasks * 4), tasks)
    quick = min(QUICK_PER_WORKER * workers, tasks // 10)
    proofs = [p for p, _ in PROOFS]
    proof_weights = [w for _, w in PROOFS]
    for n, number in enumerate(numbers):
        mix = QUICK if n < quick else BACKLOG
        task_type, _, selector, holders = rng.choices(mix, weights=[m[1] for m in mix])[0]
        sector = SectorID(1000, number)
        if holders:
            candidates = [p for k in holders for p in by_kind[k]]
            sectors[sector] = held_on[rng.choice(candidates)]
        queue.append(SchedTask(f"t{n}", task_type, rng.choices(proofs, proof_weights)[0],
                               sector, 1024 if rng.random() < DEAL_SHARE else 0, selector))
    view = StorageView(paths, sectors)
    sched.add_tasks(queue, view)
    return Cluster(sched, view, queue)


def open_all(sched: Scheduler) -> None:
    """Every worker idle with both windows open (the state right after start-up)."""
    open_count: dict[str, int] = {}
    for owner in sched.open_windows.values():
        open_count[owner] = open_count.get(owner, 0) + 1
    for wid, worker in sched.workers.items():
        for window_id in list(worker.assigned):
            sched.window_started(wid, window_id)
        for _ in range(SCHED_WINDOWS - open_count.get(wid, 0)):
            sched.open_window(wid)


def reopen_some(sched: Scheduler, rng: random.Random, share: float) -> None:
    """A ``share`` of the workers started their assigned windows and reopened them."""
    workers = sorted(sched.workers)
    open_count: dict[str, int] = {}
    for owner in sched.open_windows.values():
        open_count[owner] = open_count.get(owner, 0) + 1
    for wid in rng.sample(workers, max(1, int(len(workers) * share))):
        worker = sched.workers[wid]
        for window_id in list(worker.assigned):
            sched.window_started(wid, window_id)
        for _ in range(SCHED_WINDOWS - open_count.get(wid, 0)):
            sched.open_window(wid)


def time_passes(cluster: Cluster, repeat: int, prepare: Callable[[], None]
                ) -> dict[str, Any]:
    """Run ``prepare`` (untimed) and one timed pass, ``repeat`` times.

    Assigned tasks are queued again after each pass, so the queue keeps its length.
    """
    sched = cluster.sched
    wall: list[float] = []
    cpu: list[float] = []
    assigned: list[int] = []
    for _ in range(repeat):
        prepare()
        start, start_cpu = time.perf_counter(), time.process_time()
        result = sched.schedule(cluster.view)
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
        assigned.append(len(result))
        sched.add_tasks([a.task for a in result], cluster.view)
    wall.sort()
    stats = sched.last_pass
    return {
        "open_windows": stats.open_windows,
        "assignments_per_pass": statistics.median(assigned),
        "median_pass_ms": round(statistics.median(wall), 2),
        "p90_pass_ms": round(wall[min(len(wall) - 1, int(0.9 * len(wall)))], 2),
        "min_pass_ms": round(wall[0], 2),
        "median_cpu_ms": round(statistics.median(cpu), 2),
        "groups": stats.groups, "groups_visited": stats.groups_visited,
        "pools": stats.pools, "candidates": stats.candidates, "probes": stats.probes,
    }


def run_size(workers: int, tasks: int, repeat: int, seed: int, assigner: str,
             affinity: bool, scenarios: tuple[str, ...], share: float
             ) -> list[dict[str, Any]]:
    """Build one cluster and time ``repeat`` passes of each scenario on it."""
    t0 = time.perf_counter()
    cluster = build(workers, tasks, seed, assigner, affinity)
    build_s = time.perf_counter() - t0
    gc.collect()
    gc.freeze()  # the long-lived state is not garbage; a manager does this after loading
    sched = cluster.sched
    rng = random.Random(seed + 1)
    prepare = {"cold": lambda: open_all(sched),
               "steady": lambda: reopen_some(sched, rng, share)}
    rows = []
    for scenario in scenarios:
        if scenario == "steady" and not any(w.assigned for w in sched.workers.values()):
            time_passes(cluster, 1, prepare["cold"])  # reach the loaded state first
        row = {"scenario": scenario, "workers": workers, "tasks": tasks,
               "windows": workers * SCHED_WINDOWS, "assigner": assigner,
               "sector_affinity": affinity, "repeat": repeat, "build_s": round(build_s, 2)}
        row.update(time_passes(cluster, repeat, prepare[scenario]))
        rows.append(row)
    gc.unfreeze()
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    """A plain text table of the results."""
    cols = ("scenario", "workers", "tasks", "open_windows", "assignments_per_pass", "groups",
            "probes", "median_pass_ms", "p90_pass_ms", "median_cpu_ms")
    heads = ("scenario", "workers", "tasks", "open windows", "assigned/pass", "groups",
             "probes", "median ms", "p90 ms", "cpu ms")
    widths = [max(len(h), *(len(str(r[c])) for r in rows)) for h, c in zip(heads, cols,
                                                                          strict=True)]
    print("  ".join(h.rjust(w) for h, w in zip(heads, widths, strict=True)))
    for r in rows:
        print("  ".join(str(r[c]).rjust(w) for c, w in zip(cols, widths, strict=True)))


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=1000)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--assigner", default="utilization")
    parser.add_argument("--affinity", action="store_true", help="enable SectorAffinity")
    parser.add_argument("--scenario", choices=("steady", "cold", "both"), default="both",
                        help="steady: a share of the workers reopen their windows before each "
                             "pass; cold: every window of every idle worker open")
    parser.add_argument("--reopen", type=float, default=0.05,
                        help="share of workers reopening windows per steady pass")
    parser.add_argument("--curve", action="store_true",
                        help="run 10k, 100k and 1M queued tasks")
    parser.add_argument("--json", type=Path, help="write the results to this file")
    args = parser.parse_args(argv)
    sizes = (10_000, 100_000, 1_000_000) if args.curve else (args.tasks,)
    scenarios = ("steady", "cold") if args.scenario == "both" else (args.scenario,)
    rows = [row for n in sizes
            for row in run_size(args.workers, n, args.repeat, args.seed, args.assigner,
                                args.affinity, scenarios, args.reopen)]
    print_table(rows)
    if args.json is not None:
        doc = {"benchmark": "scheduler", "date": dt.date.today().isoformat(),
               "python": sys.version.split()[0], "platform": platform.platform(),
               "machine": platform.machine(), "cpus": os.cpu_count(),
               "load_average_after": [round(x, 2) for x in os.getloadavg()],
               "results": rows}
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
    for row in rows:
        if row["scenario"] == "cold":
            print(f"cold_median_pass_ms={row['median_pass_ms']} (tasks={row['tasks']})")
    headline = [r for r in rows if r["scenario"] == scenarios[0]][-1]
    print(f"median_pass_ms={headline['median_pass_ms']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
