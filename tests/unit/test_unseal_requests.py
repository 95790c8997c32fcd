"""Unseal requests on the manager service: outside the sector's flow, durable, reported.

A sector in Proving is written to the database before the service starts; agents are
played by the test through the service's agent calls.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sealagent.errors import ManagerError
from sealagent.manager import sector_store, tasks
from sealagent.manager.db import Database
from sealagent.manager.fsm import SectorInfo, SectorPiece, SectorState
from sealagent.manager.tasks import TaskState
from sealagent.phases import Phase
from sealagent.protocol import FileMove, SectorFile
from sealagent.vocab.registry import resolve_proof
from sealagent.vocab.sectors import FileType
from tests.unit.test_manager_service import connect, report, running_service, until, window

UNSEAL = "seal/v0/unseal"
DEAL = SectorPiece(1024, "baga6ea4seaqdeal", deal=True, source="s-t01000-0", added=True)
FILLER = SectorPiece(1024, "baga6ea4seaqzero", added=True)


async def store_sector(tmp_path: Path, state: SectorState = SectorState.PROVING) -> None:
    """Sector 0, a sealed deal sector, in the database the service will open."""
    sector = SectorInfo(0, resolve_proof("StackedDrg2KiBV1_1").value, state, (DEAL, FILLER),
                        ticket="cd" * 32, comm_d="baga6ea4seaqcommd", comm_r="bagboea4commr")
    db = await Database.open(tmp_path / "manager.db")
    await db.transaction(lambda tx: sector_store.save_sector(tx, sector, 1.0))
    await db.aclose()


async def test_an_unseal_request_runs_outside_the_sectors_flow(tmp_path: Path) -> None:
    await store_sector(tmp_path)
    async with running_service(tmp_path) as service:
        queued = await service.unseals.request(0)
        assert queued["status"] == "queued" and queued["unsealed"] == []
        assert "no connected agent runs Unseal" in queued["waiting"]
        [task] = service.unseals.open_tasks(0)
        assert task.phase is Phase.UNSEAL and service.sectors[0].task_id is None
        assert task.params["offset"] == 0 and task.params["size"] == 2032
        # asked again: the same request; a configuration check does not withdraw it
        await service.unseals.request(0)
        await service.tasks.withdraw_stale()
        assert [t.task_id for t in service.unseals.open_tasks(0)] == [task.task_id]

        # an agent with Unseal but without the sector's files: it has to wait for them
        a = await connect(service, "a", tasks=[UNSEAL])
        status = await service.unseals.status(0)
        assert status["status"] == "queued" and "sealed" in status["waiting"]
        await service.declare_files(a, 0, FileMove(declared=(
            SectorFile("path-a", FileType.SEALED), SectorFile("path-a", FileType.CACHE))))
        [assigned] = await window(service, a)
        assert assigned["task_type"] == UNSEAL and assigned["fetch"] == []
        await service.task_state(a, assigned["task_id"], 1, "running")
        assert (await service.unseals.status(0))["status"] == "running"

        await service.report_result(a, report(assigned, ok=False, error="cache is gone"))
        failed = await service.unseals.status(0)
        assert failed["status"] == "failed" and failed["task"]["error"] == "cache is gone"
        assert service.sectors[0].state is SectorState.PROVING

        await service.unseals.request(0)
        [again] = await window(service, a)
        done = {**report(again, {"written": 2032}),
                "declared": [{"path_id": "path-a", "file_type": "unsealed"}]}
        await service.report_result(a, done)
        unsealed = await service.unseals.status(0)
        assert unsealed["status"] == "unsealed" and unsealed["unsealed"] == ["path-a"]
        assert service.sectors[0].state is SectorState.PROVING
        assert service.sectors[0].task_id is None
        # a stored copy: nothing more to do
        assert (await service.unseals.request(0))["status"] == "unsealed"
        assert service.unseals.open_tasks(0) == []
        assert service.unseals.pieces() == [{
            "cid": DEAL.cid, "sector": 0, "index": 0, "offset": 0, "padded_size": 1024,
            "size": 1016, "state": "Proving", "unsealed": True}]

        log = await service.db.transaction(lambda tx: sector_store.sector_log(tx, 0))
        history = await service.db.transaction(lambda tx: tasks.sector_tasks(tx, 0))
    stories = {e["kind"]: e["message"] for e in log}
    assert stories["TaskQueued"].endswith("queued: no unsealed copy is stored")
    assert "failed on a" in stories["UnsealFailed"]
    assert "2032 bytes unsealed; the unsealed copy is in path-a" in stories["Unsealed"]
    assert [(t.phase, t.state) for t in history] == [(Phase.UNSEAL, TaskState.FAILED),
                                                     (Phase.UNSEAL, TaskState.DONE)]


async def test_an_open_request_survives_a_restart_and_removal_ends_it(tmp_path: Path) -> None:
    await store_sector(tmp_path)
    async with running_service(tmp_path) as service:
        await service.unseals.request(0)
    async with running_service(tmp_path) as service:
        [task] = service.unseals.open_tasks(0)
        assert task.state is TaskState.QUEUED
        await service.remove_sector(0)
        assert service.unseals.open_tasks(0) == []
        await until(lambda: service.sectors[0].state is SectorState.REMOVED)


async def test_refusals_name_the_reason(tmp_path: Path) -> None:
    await store_sector(tmp_path, SectorState.FINALIZE_SECTOR)
    async with running_service(tmp_path) as service:
        with pytest.raises(ManagerError, match="sector 0 is in FinalizeSector, not sealed yet"):
            await service.unseals.request(0)
        with pytest.raises(ManagerError, match="no sector 4"):
            await service.unseals.request(4)
        with pytest.raises(ManagerError, match="no sector holds a deal piece"):
            await service.unseals.read("baga6ea4seaqnone", 0, 10)
        with pytest.raises(ManagerError, match="has no unsealed copy"):
            await service.unseals.read(DEAL.cid, 0, 10)
        with pytest.raises(ManagerError, match="outside the 1016-byte piece"):
            await service.unseals.read(DEAL.cid, 1000, 100)
