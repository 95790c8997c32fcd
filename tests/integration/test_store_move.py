"""The move to long-term storage across hosts, on a manager and two real agents.

``sealer`` (``sealagent run`` with its repo as its only path: CanSeal, not CanStore) seals
a 2 KiB sector; ``keeper`` (``--no-local-storage --no-default``, one attached path:
CanStore, not CanSeal) takes nothing but what every agent takes.  After Finalize the
sector's MoveStorage task can only go to the keeper, which fetches the sealed file, the
cache and the unsealed copy from the sealer (who deletes its copies): the sector ends in
Proving with every file in the keeper's store path and the sealer's path empty, and
``sectors check`` and ``storage find`` agree.  The manager's built-in agent does the same
with the manager's own paths, where the move is a rename.
"""

from __future__ import annotations

import functools
from pathlib import Path

import trio

from sealagent.manager.config import StorageConfig
from sealagent.manager.repo import MinerRepo
from sealagent.manager.server import serve_manager
from sealagent.storage.paths import LocalPath, RepoStorage, init_path
from sealagent.vocab.sectors import FileType, SectorID
from tests.integration.agent_harness import (
    ManagerProbe,
    agent_process,
    cli,
    manager_config,
    manager_env,
    manager_repo,
    stop_process,
)

SECTOR = SectorID(1000, 0)
EVERY_FILE = FileType.UNSEALED | FileType.SEALED | FileType.CACHE


async def test_a_finalized_sector_moves_to_the_store_path_of_another_agent(
        tmp_path: Path) -> None:
    repo = manager_repo(tmp_path / "miner")
    store = init_path(tmp_path / "keeper-store", can_seal=False, can_store=True)
    RepoStorage(tmp_path / "keeper").attach(store.root)
    async with trio.open_nursery() as nursery:
        running = await nursery.start(functools.partial(serve_manager, repo))
        probe = await nursery.start(ManagerProbe.serve, running, repo)
        api = repo.api_info()
        sealer = agent_process(tmp_path / "sealer", "sealer", api, [], {},
                               tmp_path / "sealer.log")
        keeper = agent_process(tmp_path / "keeper", "keeper", api,
                               ["--no-local-storage", "--no-default"], {},
                               tmp_path / "keeper.log")
        try:
            await probe.pledge()
            await probe.wait(lambda: probe.all_proving(1), 120, "the sector in Proving")
            env = manager_env(repo)
            found = await cli(["storage", "find", "0"], env)
            checked = await cli(["sectors", "check", "0"], env)
            located = await probe.client.call("Storage.Find", [0])
            status = await probe.client.call("Sectors.Status", [0, True])
            history = await probe.tasks(0)
        finally:
            await stop_process(keeper)
            await stop_process(sealer)
        running.stop()
        nursery.cancel_scope.cancel()

    sealing_paths = RepoStorage(tmp_path / "sealer").open_all()
    assert [(p.meta.can_seal, p.meta.can_store) for p in sealing_paths] == [(True, False)]
    assert sealing_paths[0].sectors() == {}, "the sealing path still holds sector files"
    assert store.sectors() == {SECTOR: EVERY_FILE}
    assert store.sector_path(FileType.SEALED, SECTOR).stat().st_size == 2048

    workers = {t.worker_id for t in history if t.phase.label == "MoveStorage"}
    moves = [t for t in history if t.phase.label == "MoveStorage"]
    assert [t.state.value for t in moves] == ["done"] and len(workers) == 1
    assert moves[0].result is not None and moves[0].result["path_id"] == store.id
    log = [e["message"] for e in status["log"]]
    stored = [line for line in log if "moved to long-term storage path" in line]
    assert len(stored) == 1 and store.id in stored[0] and "from http://" in stored[0]
    assert stored[0].endswith("sector is proving [keeper]")
    assert sum("fetched for MoveStorage task" in line for line in log) == 3

    assert [(loc["path_id"], loc["host"], loc["can_store"]) for loc in located] == [
        (store.id, "keeper", True)]
    assert sorted(located[0]["file_types"]) == ["cache", "sealed", "unsealed"]
    assert f"In {store.id}" in found and "Host: keeper; Use: Store" in found
    assert checked.rstrip().endswith("sector 0: ok")


def seal_and_store_manager(tmp_path: Path) -> tuple[LocalPath, LocalPath, MinerRepo]:
    """A sealing path, a store path, and a manager whose built-in agent uses both."""
    seal = init_path(tmp_path / "seal", can_seal=True, can_store=False)
    store = init_path(tmp_path / "store", can_seal=False, can_store=True)
    return seal, store, sealing_manager(tmp_path / "miner", seal, store)


def sealing_manager(root: Path, *paths: LocalPath) -> MinerRepo:
    """A manager whose built-in agent (``mgr``) seals, with these storage paths."""
    repo = MinerRepo(root)
    repo.init(manager_config(storage=StorageConfig(local_worker_name="mgr")),
              local_storage=False)
    for path in paths:
        repo.storage.attach(path.root)
    return repo


async def test_the_built_in_agent_renames_files_into_the_managers_store_path(
        tmp_path: Path) -> None:
    seal, store, repo = seal_and_store_manager(tmp_path)
    async with trio.open_nursery() as nursery:
        running = await nursery.start(functools.partial(serve_manager, repo))
        async with ManagerProbe.open(running, repo) as probe:
            await probe.pledge()
            await probe.wait(lambda: probe.all_proving(1), 120, "the sector in Proving")
            status = await probe.client.call("Sectors.Status", [0, True])
        running.stop()
        nursery.cancel_scope.cancel()

    assert seal.sectors() == {} and store.sectors() == {SECTOR: EVERY_FILE}
    stored = [e["message"] for e in status["log"]
              if "moved to long-term storage path" in e["message"]]
    assert len(stored) == 1 and f"({store.root})" in stored[0]
    assert str(seal.sector_path(FileType.SEALED, SECTOR)) in stored[0]  # renamed, not fetched
    assert not any("fetched for MoveStorage" in e["message"] for e in status["log"])


async def test_without_a_store_path_files_stay_until_one_is_attached(tmp_path: Path) -> None:
    seal = init_path(tmp_path / "seal", can_seal=True, can_store=False)
    repo = sealing_manager(tmp_path / "miner", seal)
    async with trio.open_nursery() as nursery:
        running = await nursery.start(functools.partial(serve_manager, repo))
        async with ManagerProbe.open(running, repo) as probe:
            await probe.pledge()
            await probe.wait(lambda: probe.all_proving(1), 120, "sector 0 in Proving")
            first = await probe.client.call("Sectors.Status", [0, True])
            attached = await probe.client.call(
                "Storage.Attach", [str(tmp_path / "cold"), False, True, True, 10])
            await probe.pledge()
            await probe.wait(lambda: probe.all_proving(2), 120, "sector 1 in Proving")
            history = await probe.tasks(0)
        running.stop()
        nursery.cancel_scope.cancel()

    assert not any(t.phase.label == "MoveStorage" for t in history)
    stays = [e["message"] for e in first["log"] if e["kind"] == "FilesStored"]
    assert stays == [f"no store path attached: sealed and cache stay in {seal.id}: "
                     "sector is proving"]
    cold = RepoStorage(repo.root).open_all()[-1]
    assert cold.id == attached["id"] and cold.meta.can_store and not cold.meta.can_seal
    assert seal.sectors() == {SECTOR: EVERY_FILE}  # sector 0 stayed
    assert cold.sectors() == {SectorID(1000, 1): EVERY_FILE}


async def test_a_path_detached_while_the_manager_runs_is_dropped_by_its_built_in_agent(
        tmp_path: Path) -> None:
    seal, store, repo = seal_and_store_manager(tmp_path)
    async with trio.open_nursery() as nursery:
        running = await nursery.start(functools.partial(serve_manager, repo))
        async with ManagerProbe.open(running, repo) as probe:
            await probe.client.call("Storage.Detach", [str(store.root)])
            agent = running.service.local_agent
            assert agent is not None
            in_use = [p.id for p in agent.storage.paths()]
            detached_at = running.service.clock()

            async def heartbeat() -> bool:
                return any(s.worker_id == agent.identity and s.last_seen > detached_at
                           for s in running.service.sessions.values())

            await probe.wait(heartbeat, 30, "a heartbeat of the built-in agent")
            await probe.pledge()
            await probe.wait(lambda: probe.all_proving(1), 120, "the sector in Proving")
            status = await probe.client.call("Sectors.Status", [0, True])
            indexed = [p["id"] for p in await probe.client.call("Storage.List", [])]
        running.stop()
        nursery.cancel_scope.cancel()

    assert in_use == [seal.id]  # at once, not after a restart
    assert indexed == [seal.id]  # the built-in agent's heartbeats did not index it again
    assert store.sectors() == {} and seal.sectors() == {SECTOR: EVERY_FILE}
    assert [e["message"] for e in status["log"] if e["kind"] == "FilesStored"] == [
        f"no store path attached: sealed and cache stay in {seal.id}: sector is proving"]
