"""An agent with a wrong token is refused clearly; a vanished agent's unstarted tasks go
to another agent."""

from __future__ import annotations

import functools
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
import trio

from sealagent.errors import AuthError
from sealagent.manager.server import serve_manager
from sealagent.protocol import Assignment
from sealagent.web.auth import APIInfo, create_token
from sealagent.worker.agent import Agent, run_agent
from sealagent.worker.task_flow import HeldTask
from tests.integration.agent_harness import (
    AP_PC1,
    PC2_COMMIT,
    ManagerProbe,
    agent_config,
    manager_repo,
)


class FrozenAgent(Agent):
    """An agent that takes its windows and then never starts anything (a machine that
    froze); ``kill()`` makes it vanish without a word to the manager."""

    async def _dispatch(self, tasks: Sequence[Assignment]) -> None:
        for assignment in tasks:
            self.held[assignment.task_id] = HeldTask(assignment)
        await trio.sleep_forever()


async def test_wrong_tokens_are_refused_clearly(tmp_path: Path) -> None:
    repo = manager_repo(tmp_path / "miner")
    async with trio.open_nursery() as nursery:
        running = await nursery.start(functools.partial(serve_manager, repo))
        api = repo.api_info()
        forged = APIInfo(create_token(secrets.token_bytes(32), ["admin"]), api.host, api.port)
        done = await trio.run_process(
            [sys.executable, "-m", "sealagent", "run", "--worker-repo", str(tmp_path / "w"),
             "--listen", "127.0.0.1:0"], env={"MINER_API_INFO": str(forged), "PATH": ""},
            capture_stdout=True, capture_stderr=True, check=False)
        read_only = APIInfo(create_token(repo.secret(), ["read"]), api.host, api.port)
        with pytest.raises(AuthError, match=r"refused this agent's token.*admin"):
            await run_agent(agent_config(read_only, tmp_path / "r", "reader", AP_PC1))
        running.stop()
        nursery.cancel_scope.cancel()
    assert done.returncode == 1
    stderr = done.stderr.decode()
    assert "refused this agent's token" in stderr and "invalid token" in stderr
    assert "Traceback" not in stderr


async def test_vanished_agents_unstarted_tasks_go_elsewhere(tmp_path: Path) -> None:
    repo = manager_repo(tmp_path / "miner", worker_timeout=2.0)
    async with trio.open_nursery() as nursery:
        running = await nursery.start(functools.partial(serve_manager, repo))
        probe = await nursery.start(ManagerProbe.serve, running, repo)
        api = repo.api_info()
        frozen = FrozenAgent(agent_config(api, tmp_path / "frozen", "frozen", AP_PC1))
        await nursery.start(frozen.run)
        await probe.pledge()
        assigned: list[dict[str, object]] = []

        async def in_frozen_window() -> bool:
            assigned[:] = [j for j in await probe.jobs()
                           if j["hostname"] == "frozen" and j["state"] == "assigned"]
            return bool(assigned)

        await probe.wait(in_frozen_window, 30, "the AddPiece in the frozen window")
        task_id = str(assigned[0]["task_id"])
        healthy: Agent = await nursery.start(functools.partial(run_agent, agent_config(
            api, tmp_path / "healthy", "healthy", AP_PC1 | PC2_COMMIT)))
        frozen.kill()
        await probe.wait(lambda: probe.all_proving(1), 60, "the sector in Proving")
        record = await probe.task(task_id)
        names = {w["worker_id"]: w["name"] for w in await probe.workers()}
        healthy.stop()
        await healthy.finished.wait()
        running.stop()
        nursery.cancel_scope.cancel()
    assert record.attempt == 2 and str(record.state) == "done"
    assert names[record.worker_id or ""] == "healthy"
