"""``storage detach|redeclare --worker`` on a real manager and a real agent.

The agent gets two paths; files put into them behind the index's back are indexed by
``storage redeclare --worker``.  Detaching the path that holds a sector's only copy is
refused (and changes nothing) unless ``--force``; a detached path leaves the index for
good (later heartbeats do not bring it back) and comes back when attached again.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import trio

from sealagent.manager.server import serve_manager
from sealagent.worker.agent import Agent, run_agent
from tests.integration.agent_harness import (
    AP_PC1,
    ManagerProbe,
    agent_config,
    cli,
    manager_env,
    manager_repo,
    run_cli,
)


def path_id(directory: Path) -> str:
    """The ID in a path's ``sectorstore.json``."""
    return str(json.loads((directory / "sectorstore.json").read_text())["ID"])


def attached(repo: Path) -> list[str]:
    """The directories the agent's ``storage.json`` lists."""
    return [e["Path"] for e in json.loads((repo / "storage.json").read_text())["StoragePaths"]]


async def test_detach_and_redeclare_an_agents_paths(tmp_path: Path) -> None:
    repo = manager_repo(tmp_path / "miner")
    first, second = tmp_path / "first", tmp_path / "second"
    async with trio.open_nursery() as nursery:
        running = await nursery.start(functools.partial(serve_manager, repo))
        async with ManagerProbe.open(running, repo) as probe:
            agent: Agent = await nursery.start(functools.partial(
                run_agent, agent_config(repo.api_info(), tmp_path / "w", "box", AP_PC1)))
            env = {**manager_env(repo), "SEALAGENT_WORKER_PATH": str(tmp_path / "w")}

            async def indexed() -> dict[str, dict[str, Any]]:
                return {p["id"]: p for p in await probe.client.call("Storage.List")}

            for directory in (first, second):
                await cli(["storage", "attach", "--worker", "--init", "--seal",
                           str(directory)], env)
            ids = path_id(first), path_id(second)

            async def both_indexed() -> bool:
                return set(ids) <= (await indexed()).keys()

            await probe.wait(both_indexed, 10, "the manager to index both paths")
            (first / "sealed" / "s-t01000-5").write_bytes(b"only copy")
            for directory in (first, second):
                (directory / "unsealed" / "s-t01000-6").write_bytes(b"two copies")
            before = (await indexed())[ids[0]]["sectors"]
            redeclared = await cli(["storage", "redeclare", "--worker"], env)
            after = await indexed()

            refused = await run_cli(["storage", "detach", "--worker", str(first)], env)
            after_refusal = await indexed()
            detached = await cli(["storage", "detach", "--worker", str(second)], env)
            await trio.sleep(2)  # four heartbeats: none may index the path again
            after_detach = await indexed()
            storage_json = attached(tmp_path / "w")
            unknown = await run_cli(["storage", "detach", "--worker", str(second)], env)
            forced = await cli(["storage", "detach", "--worker", "--force", str(first)], env)
            await trio.sleep(1)
            after_force = await indexed()

            await cli(["storage", "attach", "--worker", str(first)], env)

            async def back() -> bool:
                return ids[0] in await indexed()

            await probe.wait(back, 10, "the re-attached path in the index")
            again = await cli(["storage", "redeclare", "--worker"], env)
            after_again = await indexed()
        agent.stop()
        await agent.finished.wait()
        running.stop()
        nursery.cancel_scope.cancel()

    assert before == 0
    assert redeclared.strip() == ("Redeclared the agent's paths; sectors whose files "
                                  "changed: 5, 6")
    assert (after[ids[0]]["sectors"], after[ids[1]]["sectors"]) == (2, 1)

    status, _, err = refused
    assert status != 0
    assert "holds the only copy of s-t01000-5 (sealed)" in err and "--force" in err
    assert {i: p["sectors"] for i, p in after_refusal.items()} == {
        i: p["sectors"] for i, p in after.items()}
    assert str(first) in storage_json

    assert f"Detached {second} ({ids[1]})" in detached
    assert ids[1] not in after_detach and ids[0] in after_detach
    assert str(second) not in storage_json
    assert (second / "unsealed" / "s-t01000-6").exists()  # the files stay
    assert unknown[0] != 0 and "is not a storage path of this agent" in unknown[2]

    assert f"Detached {first} ({ids[0]})" in forced
    assert ids[0] not in after_force
    assert again.strip().endswith("changed: 5, 6")
    assert after_again[ids[0]]["sectors"] == 2
