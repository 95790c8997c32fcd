"""A manager and two agents on loopback seal 2 KiB sectors to Proving.

One agent takes AddPiece and PreCommit1, the other PreCommit2 and Commit2 (the manager
runs with ``Snark = false``, so no Commit2 is queued); Commit1 and Finalize run where the
files are.  The PC2 agent gets the sealed
file and the cache from the PC1 agent's ``/remote`` (a move: the PC1 agent's copy goes).
"""

from __future__ import annotations

import functools
from pathlib import Path

import trio

from sealagent.manager.server import serve_manager
from sealagent.storage.paths import RepoStorage
from sealagent.vocab.sectors import FileType, SectorID
from sealagent.worker.agent import Agent, run_agent
from tests.integration.agent_harness import (
    AP_PC1,
    PC2_COMMIT,
    ManagerProbe,
    agent_config,
    cli,
    manager_env,
    manager_repo,
)


def holds(repo: Path, file_type: FileType, sector: int) -> bool:
    """Whether an agent's storage holds the file."""
    return any(p.has(file_type, SectorID(1000, sector)) for p in RepoStorage(repo).open_all())


async def watch_jobs(probe: ManagerProbe, seen: set[tuple[str, str]]) -> None:
    """Record every (host, task) pair ``sealing jobs`` shows as running."""
    while True:
        seen.update((j["hostname"], j["short"]) for j in await probe.jobs()
                    if j["state"] == "running")
        await trio.sleep(0.02)


async def test_two_agents_seal_with_files_moving_between_them(tmp_path: Path) -> None:
    repo = manager_repo(tmp_path / "miner")
    seen: set[tuple[str, str]] = set()
    async with trio.open_nursery() as nursery:
        running = await nursery.start(functools.partial(serve_manager, repo))
        async with ManagerProbe.open(running, repo) as probe, \
                trio.open_nursery() as watcher:
            watcher.start_soon(watch_jobs, probe, seen)
            api = repo.api_info()
            pc1: Agent = await nursery.start(functools.partial(
                run_agent, agent_config(api, tmp_path / "pc1", "pc1-box", AP_PC1)))
            pc2: Agent = await nursery.start(functools.partial(
                run_agent, agent_config(api, tmp_path / "pc2", "pc2-box", PC2_COMMIT)))
            assert "seal/v0/commit/2" in pc2.task_types()  # cpu proves Commit2
            env = manager_env(repo)
            workers = await cli(["sealing", "workers"], env)
            await probe.pledge(2)
            await probe.wait(lambda: probe.all_proving(2), 90, "both sectors in Proving")
            jobs = await cli(["sealing", "jobs"], env)
            history = [t for n in (0, 1) for t in await probe.tasks(n)]
            names = {w["worker_id"]: w["name"] for w in await probe.workers()}
            watcher.cancel_scope.cancel()
        for agent in (pc1, pc2):
            agent.stop()
            await agent.finished.wait()
        running.stop()
        nursery.cancel_scope.cancel()

    assert "host pc1-box" in workers and "host pc2-box" in workers
    assert jobs.splitlines()[0].split() == ["ID", "Sector", "Worker", "Hostname", "Task",
                                            "State", "Time"]
    assert {("pc1-box", "PC1"), ("pc2-box", "PC2")} <= seen
    ran = {(names[t.worker_id or ""], t.phase.short) for t in history
           if str(t.state) == "done"}
    assert {("pc1-box", "AP"), ("pc1-box", "PC1"), ("pc2-box", "PC2")} <= ran
    assert not {("pc1-box", "PC2"), ("pc2-box", "PC1"), ("pc2-box", "AP")} & ran
    for sector in (0, 1):
        assert holds(tmp_path / "pc2", FileType.SEALED, sector)
        assert holds(tmp_path / "pc2", FileType.CACHE, sector)
        assert not holds(tmp_path / "pc1", FileType.SEALED, sector)
        assert not holds(tmp_path / "pc1", FileType.CACHE, sector)
        assert holds(tmp_path / "pc1", FileType.UNSEALED, sector)
