"""Dashboard benchmark: what one page render costs the manager at scale.

Builds a manager service on a fresh SQLite file with ``--sectors`` sectors (spread over
the pipeline's states, every unfinished one with a queued task), ``--workers`` connected
agents and six hours of finished tasks in the charts' history, then renders each page
through the dashboard's ASGI app (logged in, as a browser would: the whole page, and the
live part the page's script fetches every two seconds).

    python bench/dashboard.py --workers 1000 --sectors 10000 --repeat 9 --json results/x.json

Prints a table (median and worst ms per page) and as its last line
``median_cluster_fragment_ms=<n>``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import trio

from sealagent.manager import pipeline, sector_store, tasks
from sealagent.manager.beacon import LocalBeacon
from sealagent.manager.config import ManagerConfig
from sealagent.manager.dashboard import PREFIX, Dashboard
from sealagent.manager.db import Database, Transaction
from sealagent.manager.fsm import SectorInfo, SectorState
from sealagent.manager.service import ManagerService
from sealagent.manager.workers import WorkerReport
from sealagent.phases import Phase
from sealagent.web.auth import create_token, jwt_verifier

SECRET = b"b" * 32
PHASE_OF = {SectorState.PACKING: Phase.ADD_PIECE, SectorState.PRECOMMIT1: Phase.PRECOMMIT1,
            SectorState.PRECOMMIT2: Phase.PRECOMMIT2, SectorState.COMMITTING: Phase.COMMIT1}
STATES = (*PHASE_OF, SectorState.WAIT_SEED, SectorState.PROVING, SectorState.PROVING)
PAGES = ("/", "/sectors", "/sectors?state=PreCommit1&page=3", "/sectors/{middle}", "/jobs",
         "/storage", "/scheduler")


def never_checked(*_: Any) -> tuple[bool, str]:
    """The benchmark never reaches a proof check."""
    raise AssertionError("no proof check in the benchmark")


def fill(tx: Transaction, service: ManagerService, count: int, now: float) -> None:
    """``count`` sectors in various states, each unfinished one with a queued task."""
    rng = random.Random(7)
    pieces = pipeline.pledge_pieces(service.proof)
    for number in range(count):
        state = rng.choice(STATES)
        sector = SectorInfo(number, int(service.proof), state, pieces)
        phase = PHASE_OF.get(state)
        if phase is not None:
            task = tasks.insert_task(tx, number, phase, int(service.proof), 0, {}, now)
            sector = SectorInfo(number, int(service.proof), state, pieces, task_id=task.task_id)
        sector_store.save_sector(tx, sector, now - rng.uniform(0, 86400))
        sector_store.add_log(tx, number, "SectorStart", "created", now)
    tx.set_meta(sector_store.NEXT_SECTOR_KEY, count)


def worker_info(index: int) -> dict[str, Any]:
    """A big sealing box with one path."""
    name = f"box-{index:04d}"
    return {"name": name, "worker_id": f"agent-{index:04d}", "url": f"http://{name}:3456",
            "tasks": ["seal/v0/addpiece", "seal/v0/precommit/1", "seal/v0/precommit/2",
                      "seal/v0/commit/1", "seal/v0/finalize"],
            "resources": {"cpus": 64, "mem_physical": 512 << 30},
            "plugins": {"seal/v0/precommit/1": "cpu"},
            "paths": [{"meta": {"ID": f"path-{name}", "CanSeal": True, "CanStore": True},
                       "stat": {"capacity": 1 << 44, "available": 1 << 43,
                                "fs_available": 1 << 43, "reserved": 0}}]}


async def build(root: Path, sectors: int, workers: int) -> tuple[ManagerService, Database]:
    """The service, loaded and with its agents connected (its loops are not running)."""
    db = await Database.open(root / "manager.db")
    now = time.time()
    config = ManagerConfig()
    beacon = LocalBeacon(now, config.sealing.epoch_duration, b"s" * 32, time.time)
    service = ManagerService(config, db, beacon, token="token", proof_checker=never_checked)
    await db.transaction(lambda tx: fill(tx, service, sectors, now))
    await service.load()
    for index in range(workers):
        await service.connect(WorkerReport.from_json(worker_info(index)))
    rng = random.Random(3)
    for _ in range(20 * workers):
        phase = rng.choice(list(PHASE_OF.values()))
        service.metrics.history.observe(phase.task_type, rng.uniform(30, 3600),
                                        now - rng.uniform(0, 6 * 3600))
    return service, db


async def measure(service: ManagerService, repeat: int) -> list[dict[str, Any]]:
    """Median and worst milliseconds per page, whole and live part."""
    app = Dashboard(service, jwt_verifier(SECRET))
    token = create_token(SECRET, ["read", "admin"])
    transport = httpx.ASGITransport(app=app, root_path=PREFIX)
    rows = []
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        client.cookies.set("sealagent_dashboard", token)
        for page in (p.format(middle=len(service.sectors) // 2) for p in PAGES):
            for fragment in (False, True):
                headers = {"x-dashboard-fragment": "1"} if fragment else {}
                times, size = [], 0
                for _ in range(repeat):
                    start = time.perf_counter()
                    answer = await client.get(PREFIX + page, headers=headers)
                    times.append((time.perf_counter() - start) * 1000)
                    if answer.status_code != 200:
                        raise SystemExit(f"{page}: HTTP {answer.status_code}: {answer.text}")
                    size = len(answer.content)
                rows.append({"page": page, "part": "live" if fragment else "page",
                             "median_ms": round(statistics.median(times), 2),
                             "max_ms": round(max(times), 2), "bytes": size})
    return rows


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Build, measure, report."""
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        service, db = await build(Path(tmp), args.sectors, args.workers)
        built = time.perf_counter() - start
        try:
            rows = await measure(service, args.repeat)
        finally:
            await db.aclose()
    return {"benchmark": "dashboard", "date": dt.date.today().isoformat(),
            "machine": f"{platform.machine()} {platform.python_version()}",
            "sectors": args.sectors, "workers": args.workers, "repeat": args.repeat,
            "build_s": round(built, 1), "pages": rows}


def main() -> int:
    """Parse the arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=1000)
    parser.add_argument("--sectors", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    result = trio.run(run, args)
    print(f"{args.workers} workers, {args.sectors} sectors, median of {args.repeat} "
          f"(built in {result['build_s']} s)")
    print(f"{'page':<36} {'part':<5} {'median ms':>10} {'max ms':>9} {'KiB':>7}")
    for row in result["pages"]:
        print(f"{row['page']:<36} {row['part']:<5} {row['median_ms']:>10.1f} "
              f"{row['max_ms']:>9.1f} {row['bytes'] / 1024:>7.0f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    cluster = next(r for r in result["pages"] if r["page"] == "/" and r["part"] == "live")
    print(f"median_cluster_fragment_ms={cluster['median_ms']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
