"""``kill -9`` of an agent right after it moved a sector's files here (the holder deleted
its copy) and before it reported: the storage index never loses the copy, and the sector
finishes once the agent is back.

Two real ``sealagent run`` child processes: ``r1`` takes AddPiece and PreCommit1, ``r2``
PreCommit2, so PreCommit2 moves the sealed and cache files from r1 to r2.  A start-up
hook (``pause_hook``) stops r2 right after the cache move, where the test kills it; then
PreCommit2 is switched on at r1 too, and r2 is restarted.
"""

from __future__ import annotations

import functools
import os
import signal
from pathlib import Path

import trio

from sealagent.manager.server import serve_manager
from tests.integration.agent_harness import (
    ManagerProbe,
    agent_process,
    cli,
    manager_repo,
    stop_process,
    wait_until,
)

HOOK_DIR = Path(__file__).resolve().parent / "pause_hook"


async def test_kill_9_between_a_move_and_its_report_loses_no_copy(tmp_path: Path) -> None:
    repo = manager_repo(tmp_path / "miner")
    moved_file = tmp_path / "moved"
    pausing = {"PYTHONPATH": os.pathsep.join([str(HOOK_DIR), os.environ.get("PYTHONPATH", "")]),
               "SEALAGENT_TEST_PAUSE_AFTER_MOVE": str(moved_file)}
    r1_repo, r2_repo = tmp_path / "r1", tmp_path / "r2"
    sealed_at_r2 = r2_repo / "sealed" / "s-t01000-0"
    async with trio.open_nursery() as nursery:
        running = await nursery.start(functools.partial(serve_manager, repo))
        probe = await nursery.start(ManagerProbe.serve, running, repo)
        api = repo.api_info()
        r1 = agent_process(r1_repo, "r1", api, ["--no-default", "--addpiece", "--precommit1"],
                           {}, tmp_path / "r1.log")
        r2 = agent_process(r2_repo, "r2", api, ["--no-default", "--precommit2"], pausing,
                           tmp_path / "r2.log")
        try:
            await probe.pledge()
            await wait_until(moved_file.exists, 90, "r2 to move the cache directory")
            assert sealed_at_r2.exists() and not (r1_repo / "cache" / "s-t01000-0").exists()
            r2.send_signal(signal.SIGKILL)
            assert r2.wait(timeout=10) == -signal.SIGKILL
            await cli(["tasks", "enable", "PC2", "--worker-repo", str(r1_repo)])
            await trio.sleep(3)  # r1 may be offered PreCommit2 now: it holds no input
            r2 = agent_process(r2_repo, "r2", api, ["--no-default", "--precommit2"], {},
                               tmp_path / "r2.log")
            await probe.wait(lambda: probe.all_proving(1), 90, "the sector in Proving")
            history = await probe.tasks(0)
            status = await probe.client.call("Sectors.Status", [0, True])
        finally:
            await stop_process(r2)
            await stop_process(r1)
        running.stop()
        nursery.cancel_scope.cancel()

    pc2 = [t for t in history if t.phase.short == "PC2"]
    assert pc2[-1].state.value == "done"
    assert sum(t.state.value == "done" for t in pc2) == 1
    soft = [e["message"] for e in status["log"] if "soft error" in e["message"]]
    assert len(soft) <= 3, soft
