"""A graceful stop: the agent takes no new window, hands back the task it had not started
(the manager queues it again at once), keeps the running one in its journal, and tells
the manager it left, so that ``sealing jobs`` shows that task waiting for it (``ret-wait``,
with the agent's host name) at once rather than ``running`` until WorkerTimeout."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import trio

from sealagent.manager.server import serve_manager
from sealagent.worker.agent import Agent, run_agent
from sealagent.worker.inventory import usable_cpus
from sealagent.worker.journal import TaskJournal
from tests.integration.agent_harness import AP_PC1, ManagerProbe, agent_config, manager_repo

HOOK_DIR = Path(__file__).resolve().parent / "pause_hook"


async def test_stop_hands_back_unstarted_work(tmp_path: Path) -> None:
    repo = manager_repo(tmp_path / "miner", worker_timeout=60.0)
    paused = tmp_path / "paused"
    pause_pc1 = {"PYTHONPATH": os.pathsep.join([str(HOOK_DIR), os.environ.get("PYTHONPATH", "")]),
                 "SEALAGENT_TEST_PC1_PAUSE_AFTER_LAYER": "1",
                 "SEALAGENT_TEST_PC1_PAUSED_FILE": str(paused)}
    # One PC1 takes every CPU, so the second one waits in the agent, prepared.
    one_pc1_at_a_time = {"PC1_2K_MAX_PARALLELISM": str(usable_cpus())}
    async with trio.open_nursery() as nursery:
        running = await nursery.start(functools.partial(serve_manager, repo))
        probe = await nursery.start(ManagerProbe.serve, running, repo)
        agent: Agent = await nursery.start(functools.partial(run_agent, agent_config(
            repo.api_info(), tmp_path / "w", "box", AP_PC1, phase_env=pause_pc1,
            environ=one_pc1_at_a_time, stop_grace=0.5)))
        await probe.pledge(2)

        async def pc1(state: str) -> list[str]:
            return [str(t.task_id) for n in (0, 1) for t in await probe.tasks(n)
                    if t.phase.short == "PC1" and str(t.state) == state]

        async def one_paused_one_prepared() -> bool:
            return paused.exists() and len(await pc1("prepared")) == 1

        await probe.wait(one_paused_one_prepared, 60, "one PC1 paused, the other prepared")
        (waiting,) = await pc1("prepared")
        (busy,) = await pc1("running")
        stopped_at = trio.current_time()
        agent.stop()
        await agent.finished.wait()
        stop_took = trio.current_time() - stopped_at
        queued, waiting_for_it = await pc1("queued"), await pc1("ret-wait")
        jobs = {job["task_id"]: job for job in await probe.jobs()}
        journal = [a.task_id for a, _ in TaskJournal(tmp_path / "w" / "journal").unfinished()]
        running.stop()
        nursery.cancel_scope.cancel()

    assert stop_took < 15
    assert queued == [waiting]
    assert waiting_for_it == [busy]
    assert (jobs[busy]["state"], jobs[busy]["hostname"]) == ("ret-wait", "box")
    assert journal == [busy]
