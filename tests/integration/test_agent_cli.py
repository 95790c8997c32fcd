"""The agent's own commands against a running agent: ``info``, ``tasks``, ``storage
attach --worker``; the manager sees each change at the next heartbeat."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import trio

from sealagent.manager.server import serve_manager
from sealagent.worker.agent import Agent, run_agent
from tests.integration.agent_harness import (
    AP_PC1,
    ManagerProbe,
    agent_config,
    cli,
    manager_repo,
    run_cli,
)


async def test_info_tasks_and_storage_attach(tmp_path: Path) -> None:
    repo = manager_repo(tmp_path / "miner")
    extra = tmp_path / "nvme2"
    async with trio.open_nursery() as nursery:
        running = await nursery.start(functools.partial(serve_manager, repo))
        probe = await nursery.start(ManagerProbe.serve, running, repo)
        agent: Agent = await nursery.start(functools.partial(
            run_agent, agent_config(repo.api_info(), tmp_path / "w", "box", AP_PC1)))
        env = {"SEALAGENT_WORKER_PATH": str(tmp_path / "w")}
        info = await cli(["info"], env)
        disabled = await cli(["tasks", "disable", "PC1"], env)

        async def offers_pc1() -> bool:
            (worker,) = await probe.workers()
            return "seal/v0/precommit/1" in worker["tasks"]

        async def no_pc1() -> bool:
            return not await offers_pc1()

        await probe.wait(no_pc1, 10, "the manager to see PC1 disabled")
        status, _, refused = await run_cli(["tasks", "disable", "C1"], env)
        enabled = await cli(["tasks", "enable", "--all"], env)
        await probe.wait(offers_pc1, 10, "the manager to see PC1 enabled again")
        attached = await cli(["storage", "attach", "--worker", "--init", "--seal",
                              "--weight", "5", "--max-storage", "3MiB", "--groups", "g1",
                              "--allow-to", "g1,g2", str(extra)], env)
        path_id = (extra / "sectorstore.json").read_text().split('"ID": "')[1].split('"')[0]
        async def indexed() -> list[dict[str, object]]:
            return [p for p in await probe.client.call("Storage.List") if p["id"] == path_id]

        async def is_indexed() -> bool:
            return bool(await indexed())

        await probe.wait(is_indexed, 10, "the manager to index the new path")
        (record,) = await indexed()
        agent.stop()
        await agent.finished.wait()
        running.stop()
        nursery.cancel_scope.cancel()

    assert "Name: box" in info and "Task types: FIN GET C1 PC1 AP" in info
    assert "Use: Seal" in info
    assert disabled.strip() == "Task types: FIN GET C1 AP"
    assert status == 1 and "C1 cannot be enabled or disabled" in refused
    assert "UNS" in enabled and "PC2" in enabled and "PC1" in enabled
    assert path_id in attached and "use: Seal" in attached
    assert record["weight"] == 5 and record["can_seal"] is True
    meta = json.loads((extra / "sectorstore.json").read_text())
    assert (meta["MaxStorage"], meta["Groups"], meta["AllowTo"]) == (3 << 20, ["g1"],
                                                                     ["g1", "g2"])

