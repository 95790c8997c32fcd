"""The manager service without HTTP: agents lost, re-attached, timed out; abort; remove.

The manager reads time from a :class:`WallClock` the tests move: a timeout passes when a
test says so, never while it waits for the service to catch up.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import trio

from sealagent.errors import ManagerError, SessionError
from sealagent.manager import views
from sealagent.manager.beacon import LocalBeacon
from sealagent.manager.config import ManagerConfig, SealingConfig
from sealagent.manager.db import Database
from sealagent.manager.fsm import SectorInfo, SectorState
from sealagent.manager.service import ManagerService
from sealagent.manager.tasks import ReportOutcome, TaskState
from sealagent.manager.workers import WorkerReport
from sealagent.phases import AddPieceResult, PieceRef

CONFIG = ManagerConfig(sealing=SealingConfig(
    epoch_duration=30.0, min_retry_time=60.0, soft_error_retry_wait=5.0,
    worker_timeout=30.0, reattach_timeout=90.0))
TIMEOUT = CONFIG.sealing.worker_timeout


class WallClock:
    """The manager's wall clock: stands still until a test moves it."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


async def elapse(service: ManagerService, seconds: float) -> None:
    """Let ``seconds`` pass on the manager's clock; it notices silent agents and due steps."""
    clock = service.clock
    assert isinstance(clock, WallClock)
    clock.now += seconds
    await service.agents.check_liveness()
    service.poke()


def worker_info(name: str, running: Sequence[tuple[str, int]] = (),
                tasks: Sequence[str] = ("seal/v0/addpiece",)) -> dict[str, Any]:
    """A WorkerInfo with one sealing path and (by default) the AddPiece task type."""
    return {"worker_id": f"id-{name}", "name": name, "url": f"http://{name}:1",
            "tasks": list(tasks),
            "resources": {"cpus": 8, "mem_physical": 1 << 36},
            "paths": [{"meta": {"ID": f"path-{name}", "CanSeal": True, "CanStore": True},
                       "stat": {"capacity": 1 << 40, "available": 1 << 40,
                                "fs_available": 1 << 40, "reserved": 0}}],
            "running": [{"task_id": t, "attempt": a} for t, a in running]}


def never_checked(sector: SectorInfo, miner: int, snark: bool, c1: str) -> tuple[bool, str]:
    """These tests never reach the proof check."""
    raise AssertionError("unexpected proof check")


@asynccontextmanager
async def running_service(tmp_path: Path,
                          config: ManagerConfig = CONFIG) -> AsyncIterator[ManagerService]:
    """A service with its loops running on a fresh database."""
    db = await Database.open(tmp_path / "manager.db")
    clock = WallClock()
    beacon = LocalBeacon(clock(), config.sealing.epoch_duration, b"s" * 32, clock)
    service = ManagerService(config, db, beacon, token="token", proof_checker=never_checked,
                             clock=clock)
    await service.load()
    service.set_public_url("http://manager:2345")
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        yield service
        nursery.cancel_scope.cancel()
    await db.aclose()


async def until(condition: Callable[[], bool], limit: float = 5.0) -> None:
    """Wait until ``condition()`` holds."""
    with trio.fail_after(limit):
        while True:
            if condition():
                return
            await trio.sleep(0.02)


async def connect(service: ManagerService, name: str,
                  running: Sequence[tuple[str, int]] = (),
                  tasks: Sequence[str] = ("seal/v0/addpiece",)) -> str:
    """Connect an agent; returns its session."""
    answer = await service.connect(WorkerReport.from_json(worker_info(name, running, tasks)))
    return answer["session"]


async def window(service: ManagerService, session: str) -> list[dict[str, Any]]:
    """One window long-poll."""
    return await service.request_window(session, 2.0)


def ap_result(service: ManagerService, number: int) -> dict[str, Any]:
    """A correct AddPiece result for a pledged sector."""
    piece = service.sectors[number].pieces[0]
    return AddPieceResult(PieceRef(piece.size, piece.cid), 0, 2032).to_json()


def report(task: dict[str, Any], result: dict[str, Any] | None = None, *,
           ok: bool = True, error: str | None = None, code: int = 0) -> dict[str, Any]:
    """A report object."""
    return {"task_id": task["task_id"], "attempt": task["attempt"], "ok": ok,
            "result": result, "error": error, "code": code}


async def test_a_lost_agents_unstarted_task_moves_to_another_agent(tmp_path: Path) -> None:
    async with running_service(tmp_path) as service:
        a = await connect(service, "a")
        await service.pledge()
        [task] = await window(service, a)
        assert (task["task_type"], task["attempt"]) == ("seal/v0/addpiece", 1)
        assert task["params"]["piece_url"] is None and task["fetch"] == []
        # "a" goes silent: after WorkerTimeout its assigned task is queued again
        await elapse(service, TIMEOUT)
        assert service.tasks[task["task_id"]].state is TaskState.ASSIGNED
        await elapse(service, 1)
        assert service.tasks[task["task_id"]].state is TaskState.QUEUED
        with pytest.raises(SessionError):
            await service.heartbeat(a, WorkerReport.from_json(worker_info("a")))
        b = await connect(service, "b")
        [again] = await window(service, b)
        assert (again["task_id"], again["attempt"]) == (task["task_id"], 2)
        # the old attempt's late report is acknowledged and ignored
        late = await service.report_result(a, report(task, ap_result(service, 0)))
        assert late is ReportOutcome.STALE
        ok = await service.report_result(b, report(again, ap_result(service, 0)))
        assert ok is ReportOutcome.ACCEPTED
        assert await service.report_result(b, report(again, ap_result(service, 0))) \
            is ReportOutcome.DUPLICATE
        await until(lambda: service.sectors[0].state is SectorState.PRECOMMIT1)


async def test_a_running_task_is_reattached_when_its_agent_returns(tmp_path: Path) -> None:
    async with running_service(tmp_path) as service:
        a = await connect(service, "a")
        await service.pledge()
        [task] = await window(service, a)
        await service.task_state(a, task["task_id"], 1, "running")
        assert service.tasks[task["task_id"]].state is TaskState.RUNNING
        await elapse(service, TIMEOUT + 1)
        assert service.tasks[task["task_id"]].state is TaskState.RET_WAIT
        assert [j["state"] for j in views.jobs(service)] == ["ret-wait"]
        a2 = await connect(service, "a", running=[(task["task_id"], 1)])
        assert service.tasks[task["task_id"]].state is TaskState.RUNNING
        assert await service.report_result(a2, report(task, ap_result(service, 0))) \
            is ReportOutcome.ACCEPTED
        await until(lambda: service.sectors[0].state is SectorState.PRECOMMIT1)


async def test_ret_wait_times_out_into_a_temporary_failure_and_a_retry(tmp_path: Path) -> None:
    async with running_service(tmp_path) as service:
        a = await connect(service, "a")
        await service.pledge()
        [task] = await window(service, a)
        await service.task_state(a, task["task_id"], 1, "running")
        await elapse(service, TIMEOUT + 1)
        assert service.tasks[task["task_id"]].state is TaskState.RET_WAIT
        await elapse(service, CONFIG.sealing.reattach_timeout)
        assert service.tasks[task["task_id"]].state is TaskState.RET_WAIT
        await elapse(service, 1)
        assert task["task_id"] not in service.tasks
        sector = service.sectors[0]
        assert sector.state is SectorState.PACKING and sector.soft_errors == 1
        assert "did not come back" in (sector.last_error or "")
        # the step is retried as a new task after SoftErrorRetryWait, once an agent is there
        await elapse(service, CONFIG.sealing.soft_error_retry_wait)
        b = await connect(service, "b")
        [retry] = await window(service, b)
        assert retry["task_id"] != task["task_id"] and retry["attempt"] == 1


async def test_an_agent_that_restarted_without_the_task_fails_it_temporarily(
        tmp_path: Path) -> None:
    async with running_service(tmp_path) as service:
        a = await connect(service, "a")
        await service.pledge()
        [task] = await window(service, a)
        await service.task_state(a, task["task_id"], 1, "running")
        await connect(service, "a", running=[("t-999", 3)])
        assert task["task_id"] not in service.tasks
        assert service.sectors[0].soft_errors == 1
        assert "restarted" in (service.sectors[0].last_error or "")
        # the agent is told to drop the task the manager does not know
        assert service.tasks.aborts["id-a"] == {"t-999"}


async def test_a_lost_window_answer_is_noticed_by_heartbeats(tmp_path: Path) -> None:
    async with running_service(tmp_path) as service:
        a = await connect(service, "a")
        await service.pledge()
        [task] = await window(service, a)
        # the agent keeps heartbeating but never got (or lost) the window's answer
        info = WorkerReport.from_json(worker_info("a"))
        await service.heartbeat(a, info)
        assert service.tasks[task["task_id"]].state is TaskState.ASSIGNED
        await elapse(service, TIMEOUT - 1)
        await service.heartbeat(a, info)
        assert service.tasks[task["task_id"]].state is TaskState.ASSIGNED
        await elapse(service, 1)
        await service.heartbeat(a, info)
        assert service.tasks[task["task_id"]].state is TaskState.QUEUED


async def test_abort_and_remove(tmp_path: Path) -> None:
    async with running_service(tmp_path) as service:
        await service.pledge()
        await until(lambda: service.sectors[0].task_id is not None)
        queued = service.sectors[0].task_id
        assert queued is not None
        with pytest.raises(ManagerError, match="no open job"):
            await service.abort("t-77", sched=True)
        job = await service.abort(queued, sched=True)
        assert (job["task_id"], job["state"]) == (queued, "queued")
        sector = service.sectors[0]
        assert sector.state is SectorState.ADD_PIECE_FAILED
        assert sector.last_error == "task aborted" and sector.add_piece_fails == 1
        assert len(service.sched.queue) == 0
        # after the cooldown (MinRetryTime) the sector queues the step again; abort it
        # while running
        await elapse(service, CONFIG.sealing.min_retry_time)
        a = await connect(service, "a")
        [task] = await window(service, a)
        await service.task_state(a, task["task_id"], 1, "running")
        with pytest.raises(ManagerError, match="not queued"):
            await service.abort(task["task_id"], sched=True)
        await service.abort(task["task_id"][:3], sched=False)
        abort = await service.heartbeat(a, WorkerReport.from_json(
            worker_info("a", [(task["task_id"], 1)])))
        assert abort == [task["task_id"]]
        await service.remove_sector(0)
        await until(lambda: service.sectors[0].state is SectorState.REMOVED)
        with pytest.raises(ManagerError, match="already Removed"):
            await service.remove_sector(0)
        with pytest.raises(ManagerError, match="no sector 4"):
            await service.remove_sector(4)


async def test_temporary_errors_retry_the_step_and_malformed_results_fail_it(
        tmp_path: Path) -> None:
    async with running_service(tmp_path) as service:
        a = await connect(service, "a")
        await service.pledge()
        [task] = await window(service, a)
        await service.report_result(a, report(task, ok=False, error="no space yet", code=102))
        sector = service.sectors[0]
        assert sector.state is SectorState.PACKING and sector.add_piece_fails == 0
        await elapse(service, CONFIG.sealing.soft_error_retry_wait)
        [retry] = await window(service, a)
        piece = ap_result(service, 0)["piece"]
        await service.report_result(a, report(retry, {"piece": piece}))
        assert service.sectors[0].state is SectorState.ADD_PIECE_FAILED
        assert "malformed AddPiece result" in (service.sectors[0].last_error or "")


@pytest.mark.parametrize("affinity", [False, True])
async def test_sector_affinity_keeps_pc1_on_the_ap_agent_and_says_why_it_waits(
        tmp_path: Path, affinity: bool) -> None:
    config = replace(CONFIG, storage=replace(CONFIG.storage, sector_affinity=affinity))
    async with running_service(tmp_path, config) as service:
        ap = await connect(service, "ap")
        pc1 = await connect(service, "pc1", tasks=["seal/v0/precommit/1"])
        await service.pledge()
        [task] = await window(service, ap)
        unsealed = [{"path_id": "path-ap", "file_type": "unsealed"}]
        await service.report_result(ap, report(task, ap_result(service, 0)) | {
            "declared": unsealed})
        await until(lambda: service.sectors[0].state is SectorState.PRECOMMIT1
                    and service.sectors[0].task_id is not None)
        if not affinity:
            [moved] = await window(service, pc1)
            assert moved["task_type"] == "seal/v0/precommit/1"
            assert moved["fetch"] == [{"file_type": "unsealed",
                                       "url": "http://ap:1/remote/unsealed/s-t01000-0"}]
            return
        with trio.move_on_after(0.3):
            await window(service, pc1)
            pytest.fail("SectorAffinity let PreCommit1 move to another agent")
        status = await service.sector_status(0, False)
        assert status["waiting"] == (
            "PreCommit1 task queued: PC1 needs a seal path with room for new sealed, cache "
            "files on an agent holding the sector's files (SectorAffinity keeps the "
            "sector's files where they are): ap, which does not offer PC1")
        [request] = views.sched_diag(service)["SchedInfo"]["Requests"]
        assert request["Waiting"] == status["waiting"].removeprefix(
            "PreCommit1 task queued: ")


async def test_a_window_stops_counting_once_its_task_runs(tmp_path: Path) -> None:
    async with running_service(tmp_path) as service:
        a = await connect(service, "a")
        await service.pledge()
        [task] = await window(service, a)
        worker = service.sched.workers["id-a"]
        assert len(worker.assigned) == 1 and worker.count() == 1
        await service.task_state(a, task["task_id"], 1, "running")
        assert worker.assigned == {} and worker.active.count() == 1


async def test_queued_tasks_follow_files_a_late_report_declares(tmp_path: Path) -> None:
    config = replace(CONFIG, storage=replace(CONFIG.storage, sector_affinity=True))
    async with running_service(tmp_path, config) as service:
        a = await connect(service, "a")
        await service.pledge()
        [task] = await window(service, a)
        await elapse(service, TIMEOUT + 1)
        assert service.tasks[task["task_id"]].state is TaskState.QUEUED
        queued = service.sched.queue.get(task["task_id"])
        assert queued is not None and queued.locality is None
        # the lost agent's late report of the old attempt still says where files are
        declared = [{"path_id": "path-a", "file_type": "unsealed"}]
        outcome = await service.report_result(a, report(task, ap_result(service, 0)) | {
            "declared": declared})
        assert outcome is ReportOutcome.STALE
        assert queued.locality == frozenset({"path-a"})


async def test_add_piece_speaks_in_the_files_bytes(tmp_path: Path) -> None:
    from sealagent.manager.staging import staging_path
    from sealagent.proofs.pieces import generate_piece_commitment
    db = await Database.open(tmp_path / "manager.db")
    beacon = LocalBeacon(trio.current_time(), 0.05, b"s" * 32)
    service = ManagerService(CONFIG, db, beacon, token="token", proof_checker=never_checked,
                             staging=staging_path(tmp_path / "staging"))
    await service.load()
    big, empty = tmp_path / "big", tmp_path / "empty"
    big.write_bytes(b"\1" * 3000)
    empty.write_bytes(b"")
    commp = generate_piece_commitment(io.BytesIO(b"\1" * 3000 + bytes(4064 - 3000)), 4064)
    with pytest.raises(ManagerError) as too_big:
        await service.add_piece(str(big), commp.cid, 4064)
    assert str(too_big.value) == (f"{big} has 3000 bytes (4096 padded); a 2048-byte sector "
                                  "holds at most 2032 bytes (2048 padded)")
    with pytest.raises(ManagerError, match="is empty"):
        await service.add_piece(str(empty), commp.cid, 127)
    await db.aclose()


async def test_agents_are_told_apart_by_their_identity_not_their_name(tmp_path: Path) -> None:
    async with running_service(tmp_path) as service:
        first = await service.connect(WorkerReport.from_json(worker_info("box")))
        twin = await service.connect(WorkerReport.from_json(
            {**worker_info("box"), "worker_id": "id-other-box"}))
        assert first["worker_id"] != twin["worker_id"]
        assert {s.worker_id for s in service.sessions.values()} == {"id-box", "id-other-box"}
        await service.heartbeat(first["session"], WorkerReport.from_json(worker_info("box")))
        again = await service.connect(WorkerReport.from_json(worker_info("box")))
        assert again["worker_id"] == "id-box" and len(service.sessions) == 2
        with pytest.raises(SessionError):
            await service.heartbeat(first["session"], WorkerReport.from_json(worker_info("box")))
        with pytest.raises(ManagerError, match="'worker_id'"):
            WorkerReport.from_json({**worker_info("box"), "worker_id": "../x"})


async def test_an_agent_redeclares_its_files_when_it_connects(tmp_path: Path) -> None:
    from sealagent.protocol import FileMove, SectorFile
    from sealagent.vocab.sectors import FileType, SectorID
    async with running_service(tmp_path) as service:
        info = worker_info("a")
        info["paths"][0]["sectors"] = {"s-t01000-3": ["sealed", "cache"],
                                       "s-t01000-4": ["unsealed"]}
        await service.connect(WorkerReport.from_json(info))
        assert service.files.index.sectors_in("path-a") == {
            SectorID(1000, 3): FileType.SEALED | FileType.CACHE,
            SectorID(1000, 4): FileType.UNSEALED}
        info["paths"][0]["sectors"] = {"s-t01000-3": ["sealed"], "s-t01000-5": ["cache"]}
        session = await service.connect(WorkerReport.from_json(info))
        assert service.files.index.sectors_in("path-a") == {
            SectorID(1000, 3): FileType.SEALED, SectorID(1000, 5): FileType.CACHE}
        del info["paths"][0]["sectors"]
        await service.heartbeat(session["session"], WorkerReport.from_json(info))
        assert len(service.files.index.sectors_in("path-a")) == 2
        await service.declare_files(session["session"], 6,
                                    FileMove(declared=(SectorFile("path-a", FileType.CACHE),)))
        assert service.files.index.sectors_in("path-a")[SectorID(1000, 6)] == FileType.CACHE
        with pytest.raises(ManagerError, match="worker info"):
            WorkerReport.from_json({**info, "paths": [{**info["paths"][0],
                                                      "sectors": {"s-t01000-x": ["cache"]}}]})


async def test_a_detached_agent_path_stays_out_of_the_index(tmp_path: Path) -> None:
    """A heartbeat built before the detach still lists the path: it must not index it
    again; once a report leaves it out, attaching it again works."""
    from sealagent.vocab.sectors import FileType, SectorID
    async with running_service(tmp_path) as service:
        info = worker_info("a")
        info["paths"][0]["sectors"] = {"s-t01000-3": ["sealed"]}
        session = (await service.connect(WorkerReport.from_json(info)))["session"]
        with pytest.raises(ManagerError, match=r"only copy of s-t01000-3 \(sealed\)"):
            await service.worker_detach_path(session, "path-a", False)
        with pytest.raises(ManagerError, match="reports no path path-b"):
            await service.worker_detach_path(session, "path-b", True)
        assert "path-a" in {p.id for p in service.files.index.paths()}
        await service.worker_detach_path(session, "path-a", True)
        stale = WorkerReport.from_json(worker_info("a"))
        await service.heartbeat(session, stale)
        assert "path-a" not in {p.id for p in service.files.index.paths()}
        await service.heartbeat(session, WorkerReport.from_json({**worker_info("a"),
                                                                  "paths": []}))
        info["paths"][0]["sectors"] = {"s-t01000-3": ["sealed"], "s-t01000-4": ["cache"]}
        assert await service.worker_redeclare(session, WorkerReport.from_json(info)) == [3, 4]
        assert service.files.index.sectors_in("path-a") == {
            SectorID(1000, 3): FileType.SEALED, SectorID(1000, 4): FileType.CACHE}


async def test_an_agent_back_at_a_new_address_is_fetched_from_there(tmp_path: Path) -> None:
    """An agent restarted on another port serves its files at its new URL only: copies
    are fetched from there, not from the address of the agent that died; a path two live
    agents share keeps both URLs."""
    from sealagent.task_kinds import StorageJob
    async with running_service(tmp_path) as service:
        info = worker_info("a")
        info["paths"][0]["sectors"] = {"s-t01000-3": ["sealed", "cache"]}
        await service.connect(WorkerReport.from_json(info))
        await service.connect(WorkerReport.from_json({**info, "url": "http://a:2"}))
        fetch = service.files.fetch_list(StorageJob.MOVE_STORAGE, 3, frozenset())
        assert [source.url for source in fetch] == [
            "http://a:2/remote/sealed/s-t01000-3", "http://a:2/remote/cache/s-t01000-3"]
        assert service.files.index.path("path-a").urls == ["http://a:2/remote"]
        await service.connect(WorkerReport.from_json({**worker_info("b"),
                                                      "paths": info["paths"]}))
        assert service.files.index.path("path-a").urls == [
            "http://a:2/remote", "http://b:1/remote"]
