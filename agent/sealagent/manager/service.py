"""The sealing manager service: a thin front over the parts that each own their state.

:class:`ManagerService` builds the parts and is what :mod:`.api` calls:

- :class:`~.sector_book.SectorBook`: the sectors (mirror of the ``sectors`` table);
- :class:`~.task_book.TaskBook`: the open tasks (queued, running, in ``ret-wait``);
- :class:`~.files.SectorFiles`: the storage index, this host's paths, the staging area;
- :class:`~.window_broker.WindowBroker`: the agents' windows and the scheduler loop;
- :class:`~.sessions.SessionRegistry`: the agents' sessions and their liveness;
- :class:`~.driver.PipelineDriver`: the loop that does each sector's next step;
- :class:`~.unseal_requests.UnsealRequests`: Unseal tasks admin calls ask for, and
  reading deal pieces back.

Every change is committed to SQLite before it is acknowledged or acted upon; one
:class:`trio.Lock` (:attr:`~.context.ManagerContext.lock`) serialises the changes, so the
mirror always equals the database.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import structlog
import trio

from sealagent.errors import InvalidInputError, ManagerError
from sealagent.manager import fsm, pipeline, reports, sector_check, sector_store, tasks, views
from sealagent.manager.beacon import Beacon
from sealagent.manager.config import ManagerConfig
from sealagent.manager.context import ManagerContext
from sealagent.manager.db import Database, Transaction
from sealagent.manager.driver import PipelineDriver, ProofChecker
from sealagent.manager.files import INDEX_KEY, SectorFiles
from sealagent.manager.fsm import SectorState
from sealagent.manager.metrics import ManagerMetrics
from sealagent.manager.sector_book import SectorBook
from sealagent.manager.sessions import Session, SessionRegistry
from sealagent.manager.staging import file_size, stage_piece
from sealagent.manager.task_book import TaskBook
from sealagent.manager.tasks import ReportOutcome
from sealagent.manager.unseal_requests import UnsealRequests
from sealagent.manager.window_broker import WindowBroker
from sealagent.manager.workers import WorkerReport
from sealagent.proofs.cid import cid_to_sealed_commitment
from sealagent.proofs.pieces import PieceInfo, check_unpadded_piece_size
from sealagent.proofs.post import fresh_randomness
from sealagent.protocol import FileMove
from sealagent.sched.scheduler import Scheduler
from sealagent.sched.storage_view import StorageView
from sealagent.storage.paths import LocalPath
from sealagent.vocab.registry import resolve_proof
from sealagent.vocab.sectors import FileType, SectorID
from sealagent.worker.agent import Agent

_log = structlog.get_logger("sealagent.manager")


class ManagerService:
    """The manager: sectors, their pipeline, the scheduler; :mod:`.api` exposes it."""

    def __init__(self, config: ManagerConfig, db: Database, beacon: Beacon, *,
                 token: str, proof_checker: ProofChecker,
                 local_paths: Sequence[LocalPath] = (), staging: LocalPath | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        context = self._context = ManagerContext(config, db, clock)
        self.config, self.db, self.clock, self.beacon = config, db, clock, beacon
        self.policy, self.miner, self.proof = context.policy, context.miner, context.proof
        self.metrics = ManagerMetrics(lambda: views.metrics_snapshot(self),
                                      host=lambda worker_id: self.hostname(worker_id))
        self.sched = Scheduler(config.storage.assigner,
                               sector_affinity=config.storage.sector_affinity)
        self.sectors = SectorBook(context)
        self.files = SectorFiles(context, token, local_paths, staging)
        self.tasks = TaskBook(context, self.sched, self.sectors, self.files, self.metrics)
        self.windows = WindowBroker(context, self.sched, self.tasks, self.files)
        self.agents = SessionRegistry(context, self.sched, self.tasks, self.files,
                                      self.windows)
        self.driver = PipelineDriver(context, beacon, self.sectors, self.tasks, self.files,
                                     self.agents, proof_checker)
        self.unseals = UnsealRequests(context, self.sched, self.sectors, self.tasks,
                                      self.files, self.agents)
        self.local_agent: Agent | None = None
        """The built-in agent once it runs (set by the server): paths attached or
        detached while it runs are passed to it."""

    # ------------------------------------------------------------- what views read

    @property
    def sessions(self) -> Mapping[str, Session]:
        """The connected agents by session id."""
        return self.agents.sessions

    def view(self) -> StorageView:
        """The storage snapshot the scheduler reads."""
        return self.files.view()

    def hostname(self, worker_id: str | None) -> str:
        """The host name a worker reported (its id's first 8 characters when gone)."""
        return self.agents.hostname(worker_id)

    # ------------------------------------------------------------------ startup

    async def load(self) -> None:
        """Read sectors, open tasks, the storage index and the workers' host names from the
        database; withdraw the tasks the configuration in force no longer runs."""
        def read(tx: Transaction) -> tuple[Any, ...]:
            hosts = {r["worker_id"]: json.loads(r["info"]).get("hostname") or r["name"]
                     for r in tx.query("SELECT worker_id, name, info FROM workers")}
            return (sector_store.load_sectors(tx), sector_store.change_times(tx),
                    tasks.open_tasks(tx), hosts, tx.get_meta(INDEX_KEY))

        sectors, changed, open_tasks, hosts, snapshot = await self._context.db.transaction(
            read)
        self.sectors.load(sectors, changed)
        self.agents.load(hosts)
        if snapshot is not None:
            self.files.restore(snapshot)
        self.tasks.load(open_tasks)
        await self.tasks.withdraw_stale()
        _log.info("manager state loaded", sectors=len(sectors), open_tasks=len(open_tasks))

    def set_public_url(self, url: str) -> None:
        """Where agents reach this manager; attaches the local paths at ``<url>/remote``."""
        self.tasks.files_moved(self.files.serve_at(url))

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        """Run the pipeline, scheduler, liveness and path health loops until cancelled."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.driver.run)
            nursery.start_soon(self.windows.run)
            nursery.start_soon(self.agents.liveness_loop)
            nursery.start_soon(self.files.health_loop)
            self.poke()
            task_status.started()

    def poke(self) -> None:
        """Wake the pipeline and the scheduler."""
        self._context.pipeline_wake.set()
        self._context.sched_wake.set()

    # ----------------------------------------------------------- agents (Sealing.*)

    async def connect(self, report: WorkerReport) -> dict[str, str]:
        """``Sealing.WorkerConnect``: (re)register an agent and reconcile its tasks."""
        return await self.agents.connect(report)

    async def heartbeat(self, session: str, report: WorkerReport) -> list[str]:
        """``Sealing.WorkerHeartbeat``: fresh inventory in, tasks to abort out."""
        return await self.agents.heartbeat(session, report)

    async def worker_detach_path(self, session: str, path_id: str, force: bool) -> None:
        """``Sealing.WorkerDetachPath``: an agent stops using one of its paths."""
        await self.agents.detach_path(session, path_id, force=force)

    async def worker_redeclare(self, session: str, report: WorkerReport) -> list[int]:
        """``Sealing.WorkerRedeclare``: an agent's paths with every file they hold now."""
        return await self.agents.redeclare(session, report)

    async def declare_files(self, session: str, number: int, move: FileMove) -> None:
        """``Sealing.StorageDeclare``: files an agent moved, recorded before it deletes the
        holder's copy."""
        await self.agents.declare_files(session, number, move)

    async def leave(self, session: str) -> None:
        """``Sealing.WorkerLeave``: an agent stops; its session ends now."""
        await self.agents.leave(session)

    async def request_window(self, session: str, wait_s: float) -> list[dict[str, Any]]:
        """``Sealing.RequestWindow``: wait until the scheduler fills a window for the agent."""
        return await self.agents.request_window(session, wait_s)

    async def task_state(self, session: str, task_id: str, attempt: int, state: str) -> None:
        """``Sealing.TaskState``: an agent says a task is ``prepared`` or ``running``."""
        await self.agents.task_state(session, task_id, attempt, state)

    async def report_result(self, session: str, data: Mapping[str, Any]) -> ReportOutcome:
        """``Sealing.ReportResult``: record a task result (idempotent by ``(task_id,
        attempt)``) and move the sector."""
        report = reports.parse_report(data)
        self.agents.touch(session)
        async with self._context.lock:
            return await self.tasks.finish(report, self.agents.hostname)

    # --------------------------------------------------------- operator commands

    async def pledge(self) -> int:
        """Start a committed-capacity sector; returns its number."""
        return await self.sectors.create(lambda number: pipeline.pledge_pieces(self.proof),
                                         SectorState.PACKING)

    async def add_piece(self, path: str, cid: str, size: int) -> int:
        """Start a deal sector holding the piece at ``path`` (on this host).

        The file (at most ``size`` bytes, zero-padded to ``size``, which must be
        ``127·2^k``) is copied into the staging area and its CommP checked against ``cid``.
        """
        try:
            check_unpadded_piece_size(size)
            expected = PieceInfo.from_cid(cid, (size // 127) * 128)
        except InvalidInputError as exc:
            raise ManagerError(f"bad piece: {exc}") from None
        source = Path(path)
        length = await trio.to_thread.run_sync(file_size, source)
        if length is None:
            raise ManagerError(f"{path}: no such regular file on the manager's host")
        if length == 0:
            raise ManagerError(f"{path} is empty: a deal sector needs data")
        if expected.size > self.proof.sector_size:
            capacity = self.proof.sector_size // 128 * 127
            raise ManagerError(f"{path} has {length} bytes ({expected.size} padded); a "
                               f"{self.proof.sector_size}-byte sector holds at most "
                               f"{capacity} bytes ({self.proof.sector_size} padded)")
        if length > size:
            raise ManagerError(f"{path} has {length} bytes, more than the {size}-byte piece")
        staging = self.files.staging
        if staging is None:
            raise ManagerError("this manager has no staging area for pieces")

        def build(number: int) -> tuple[fsm.SectorPiece, ...]:
            return pipeline.deal_pieces(self.proof, expected, SectorID(self.miner, number).name)

        async def stage(number: int) -> None:
            target = staging.sector_path(FileType.PIECE, SectorID(self.miner, number))
            found = await trio.to_thread.run_sync(stage_piece, source, target, size)
            if found != expected:
                target.unlink(missing_ok=True)
                raise ManagerError(f"CommP mismatch: {path} has {found.cid}, "
                                   f"expected {expected.cid}")

        return await self.sectors.create(build, SectorState.ADD_PIECE, stage)

    async def remove_sector(self, number: int) -> None:
        """Remove a sector: abort its tasks (an Unseal too), then delete its files
        everywhere."""
        async with self._context.lock:
            task_id = self.sectors.find(number).task_id
            await self.sectors.apply_locked(number, fsm.RemoveRequested())
            if task_id is not None and task_id in self.tasks:
                await self.tasks.end(self.tasks[task_id], "sector removed", notify=True)
            for task in self.unseals.open_tasks(number):
                await self.tasks.end(task, "sector removed", notify=True)

    async def abort(self, job_id: str, *, sched: bool) -> dict[str, Any]:
        """``sealing abort``: fail a job (``sched``: only a queued one) found by id prefix."""
        async with self._context.lock:
            task = await self.tasks.abort(job_id, sched=sched)
            return {"task_id": task.task_id, "sector": task.sector,
                    "task_type": task.phase.short, "state": str(task.state),
                    "host": self.hostname(task.worker_id)}

    async def sector_status(self, number: int, with_log: bool) -> dict[str, Any]:
        """Everything about one sector (``sectors status``)."""
        sector = self.sectors.find(number)
        data = sector.to_json()
        data.update(views.sector_summary(self, sector))
        data["proof_name"] = self.proof.name
        data["snark"] = self.policy.snark
        data["files"] = views.sector_files(self, number)
        history = await self._context.db.transaction(
            lambda tx: tasks.sector_tasks(tx, number))
        data["phases"] = views.phase_times(self, history)
        if with_log:
            data["log"] = await self._context.db.transaction(
                lambda tx: sector_store.sector_log(tx, number))
        return data

    async def check_sector(self, number: int, slow: bool = False) -> dict[str, Any]:
        """``sectors check``: every copy of the sector's files, and whether it can be
        proven from them; with ``slow``, fresh challenges answered from the files and
        verified against the sector's CommR (:mod:`sealagent.manager.sector_check`)."""
        sector = self.sectors.find(number)
        if sector.comm_r is None:
            raise ManagerError(f"sector {number} has no sealed replica yet "
                               f"(state {sector.state})")
        proof = resolve_proof(sector.proof)
        copies = await self.files.check(number, proof)
        problems = sector_check.verdict(copies)
        answer: dict[str, Any] = {"number": number, "state": str(sector.state),
                                  "copies": [c.to_json() for c in copies]}
        if slow:
            randomness = fresh_randomness()
            challenges, proofs = await self.files.prove(
                number, proof, cid_to_sealed_commitment(sector.comm_r), randomness)
            problems += sector_check.proof_verdict(proofs)
            answer |= {"randomness": randomness.hex(), "challenges": challenges,
                       "proofs": [p.to_json() for p in proofs]}
        return {**answer, "ok": not problems, "problems": problems}

    async def redeclare_local(self) -> list[int]:
        """``storage redeclare``: index exactly the files now in this host's paths."""
        async with self._context.lock:
            moved = self.files.redeclare_local()
            self.tasks.files_moved(moved)
            await self.files.save()
            return moved

    async def detach_local(self, directory: Path, *, force: bool,
                           forget: Callable[[Path], None]) -> str:
        """``storage detach``: stop using one of this host's paths; ``forget`` drops it
        from the repo's list.  Refused while it holds the only copy of a sector's file,
        unless ``force``.  The index drops it, on disk, then the built-in agent stops
        using it.  Returns its id."""
        agent = self.local_agent
        async with self._context.lock:
            found = [p for p in self.files.local_paths if p.root == directory]
            if not found:
                raise ManagerError(f"{directory} is not a storage path of this manager")
            path = found[0]
            sole = self.files.refuse_sole_copies(path.id, str(directory), force=force)
            await trio.to_thread.run_sync(forget, directory)
            if agent is not None:
                self.agents.path_detached(agent.identity, path.id)
            self.tasks.files_moved(self.files.detach_local(path))
            await self.files.save()
        if agent is not None:
            await trio.to_thread.run_sync(agent.storage.forget, path.id)
        _log.warning("storage path detached", path=path.id, directory=str(directory),
                     sole_copies=sole)
        return path.id

    async def attach_local(self, path: LocalPath) -> None:
        """Serve a storage path of this host and index it; the built-in agent uses it at
        once (a new store path takes moves at once)."""
        async with self._context.lock:
            self.tasks.files_moved(self.files.add_local(path))
            await self.files.save()
        if self.local_agent is not None:
            await trio.to_thread.run_sync(self.local_agent.storage.attach, path.root)
