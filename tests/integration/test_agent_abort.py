"""``sealing abort`` of a running phase: the manager's heartbeat answer makes the agent kill
the phase's process; the sector takes its failure path."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import trio

from sealagent.manager.server import serve_manager
from sealagent.worker.agent import Agent, run_agent
from tests.integration.agent_harness import AP_PC1, ManagerProbe, agent_config, manager_repo

HOOK_DIR = Path(__file__).resolve().parent / "pause_hook"


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"


async def test_sealing_abort_kills_the_running_phase(tmp_path: Path) -> None:
    repo = manager_repo(tmp_path / "miner")
    paused = tmp_path / "paused"
    pause_pc1 = {"PYTHONPATH": os.pathsep.join([str(HOOK_DIR), os.environ.get("PYTHONPATH", "")]),
                 "SEALAGENT_TEST_PC1_PAUSE_AFTER_LAYER": "1",
                 "SEALAGENT_TEST_PC1_PAUSED_FILE": str(paused)}
    async with trio.open_nursery() as nursery:
        running = await nursery.start(functools.partial(serve_manager, repo))
        probe = await nursery.start(ManagerProbe.serve, running, repo)
        agent: Agent = await nursery.start(functools.partial(run_agent, agent_config(
            repo.api_info(), tmp_path / "w", "box", AP_PC1, phase_env=pause_pc1)))
        await probe.pledge()

        async def pc1_paused() -> bool:
            return paused.exists() and any(
                j["short"] == "PC1" and j["state"] == "running" for j in await probe.jobs())

        await probe.wait(pc1_paused, 60, "PreCommit1 to run and pause")
        phase_pid = int(paused.read_text())
        (job,) = [j for j in await probe.jobs() if j["short"] == "PC1"]
        answer = await probe.client.call("Sealing.Abort", [job["task_id"]])

        async def phase_killed() -> bool:
            return _gone(phase_pid) and not agent.held

        await probe.wait(phase_killed, 20, "the agent to kill the phase")
        record = await probe.task(job["task_id"])
        agent.stop()
        await agent.finished.wait()
        running.stop()
        nursery.cancel_scope.cancel()
    assert answer["host"] == "box" and answer["task_type"] == "PC1"
    assert str(record.state) == "failed" and record.error == "task aborted"
